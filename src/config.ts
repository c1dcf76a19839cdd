/**
 * @module The gateway's configuration: the config file's schema and the settings from the environment.
 *
 * Parsing is pure; reading files and the environment happens in the entry points.
 */
import { z } from '@hono/zod-openapi'
import { PolicySchema } from './domain/policy.ts'
import { ScopeSchema } from './domain/principal.ts'

export const TokenEntrySchema = z.strictObject({
  name: z
    .string()
    .regex(/^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,63}$/, 'letters, digits, _ . - (at most 64)'),
  hash: z.string().regex(/^sha256:[0-9a-f]{64}$/, 'sha256:<64 hex digits>'),
  scopes: z.array(ScopeSchema).min(1),
  policy: PolicySchema.optional(),
})

const JwtConfigSchema = z.strictObject({
  /** A JWKS file with the RS/ES public keys that sign accepted tokens. */
  jwksFile: z.string().optional(),
  /** A JWKS URL with those keys. */
  jwksUrl: z.url({ protocol: /^https?$/ }).optional(),
  issuer: z.string().optional(),
  audience: z.string().default('dockgate'),
  /** Refuse tokens issued (`iat`) longer ago than this, whatever their `exp`; none by default. */
  maxAgeSeconds: z.number().int().min(1).optional(),
})

/** A registry host as image references name it: `registry.example.com`, `127.0.0.1:5000`, `docker.io`. */
export const RegistryHostSchema = z
  .string()
  .max(255)
  .regex(
    /^(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*)(?::[0-9]{1,5})?$/,
    'a registry host, host[:port]',
  )

/**
 * How the engine signs in to one registry: both or neither. The password is a secret: it goes to
 * the engine only (as `X-Registry-Auth`), never into an answer, a log line, an audit line or a problem.
 */
const RegistryAccessSchema = z
  .strictObject({
    username: z.string().min(1).max(255).optional(),
    password: z.string().min(1).max(4096).optional(),
  })
  .refine((entry) => (entry.username === undefined) === (entry.password === undefined), {
    message: 'username and password go together',
  })

export type RegistryAccess = z.infer<typeof RegistryAccessSchema>

/** An engine's name as paths carry it (`/v1/engines/<name>/…`): lower-case letters, digits, `_` `-`. */
export const ENGINE_NAME = /^[a-z0-9][a-z0-9_-]{0,62}$/

/** The engine `DOCKER_HOST` is, and the one every `/v1/…` route without an engine prefix uses. */
export const DEFAULT_ENGINE = 'default'

/**
 * One engine the gateway reaches besides (or instead of) `DOCKER_HOST`: its address as
 * `DOCKER_HOST` takes it, and its TLS client certificates as `DOCKER_TLS_VERIFY` and
 * `DOCKER_CERT_PATH` give them.
 */
export const EngineEntrySchema = z.strictObject({
  host: z
    .string()
    .regex(
      /^(?:unix|tcp|https?):\/\/\S+$/,
      'unix://<socket>, tcp://, http:// or https://<host:port>',
    ),
  /** TLS with the engine verified against `ca.pem` and `cert.pem`/`key.pem` presented (`tcp://` becomes TLS). */
  tlsVerify: z.boolean().optional(),
  /** Folder with `ca.pem`, `cert.pem`, `key.pem` (default `~/.docker`). */
  certPath: z.string().min(1).optional(),
})

export type EngineEntry = z.infer<typeof EngineEntrySchema>

/**
 * Bounds on the events settings. A held event of a container with six compose labels took about
 * 250 bytes of heap (`parseEngineEvent` on 100,000 such lines), more with longer labels: a
 * million is some hundreds of MB per engine. A longer queue only lets a client that cannot keep
 * up fall further behind before it gets `resync`.
 */
const MAX_RING_SIZE = 1_000_000
const MAX_QUEUE_LIMIT = 100_000

const ConfigFileSchema = z.strictObject({
  tokens: z.array(TokenEntrySchema).default([]),
  /** JWT verification; `DOCKGATE_JWT_SECRET` in the environment adds HS256. */
  jwt: JwtConfigSchema.optional(),
  /** Policies of JWT principals, by their `sub`. */
  principals: z.record(z.string(), z.strictObject({ policy: PolicySchema })).default({}),
  /** Environment variable names whose values inspect may show; every other value is redacted. */
  exposeEnvKeys: z.array(z.string()).default([]),
  /** Label keys (globs, any case) whose values are redacted in every answer and event. */
  secretLabelPatterns: z.array(z.string().min(1)).optional(),
  limits: z
    .strictObject({
      requestsPerSecond: z.number().positive().optional(),
      burst: z.number().int().min(1).optional(),
      streamsPerClient: z.number().int().min(1).optional(),
      /** Requests (other than event streams) one principal may have in progress at once. */
      engineCallsPerClient: z.number().int().min(1).optional(),
    })
    .default({}),
  /**
   * The engine events the gateway holds for resumes (per engine, and in the shared stream of a
   * Redis store), and how many one slow client may have queued. Read at start only.
   */
  events: z
    .strictObject({
      ringSize: z.number().int().min(1).max(MAX_RING_SIZE).optional(),
      queueLimit: z.number().int().min(1).max(MAX_QUEUE_LIMIT).optional(),
    })
    .default({}),
  /** false: ask the engine on every container list and inspect instead of the read model. */
  readModel: z.boolean().optional(),
  /** The registries images may be pulled from, by host, with their credentials if they need any. */
  registries: z.record(RegistryHostSchema, RegistryAccessSchema).default({}),
  /**
   * The engines besides `DOCKER_HOST`, by name; one named `default` replaces `DOCKER_HOST`.
   * Read at start only (like `readModel`): a reload does not add or remove engines.
   */
  engines: z
    .record(
      z.string().regex(ENGINE_NAME, 'an engine name ([a-z0-9][a-z0-9_-]*, at most 63)'),
      EngineEntrySchema,
    )
    .default({}),
})

export type ConfigFile = z.infer<typeof ConfigFileSchema>

export interface GatewaySettings {
  /** Largest request body accepted, in bytes. */
  bodyLimitBytes: number
  /** Most log lines one JSON logs answer carries before it says `truncated`. */
  logsMaxLines: number
  /**
   * Most bytes of line text (UTF-8) one JSON logs answer carries before it says `truncated`;
   * its first line always goes (lines are at most 1 MiB).
   */
  logsMaxBytes: number
  /** Environment variable names whose values inspect may show. */
  exposeEnvKeys: readonly string[]
  /** Label keys (globs, any case) whose values are shown as null. */
  secretLabelPatterns: readonly string[]
  /** Milliseconds of silence after which an event stream gets a heartbeat comment. */
  heartbeatMs: number
  /** The reconnection delay event-stream clients are told to use, in milliseconds. */
  sseRetryMs: number
  /** Bytes an event stream buffers for a slow client, beyond what the socket holds. */
  sseBufferBytes: number
  /** Sustained requests per second per principal (token bucket). */
  rateLimitPerSecond: number
  /** Requests a principal may make at once after a quiet spell. */
  rateLimitBurst: number
  /** Event streams one principal may hold open at once. */
  maxStreamsPerPrincipal: number
  /**
   * Requests other than event streams one principal may have in progress at once: each may hold
   * an engine connection (a wait, a stop with a timeout, a log read) for as long as it lasts.
   */
  engineCallsPerPrincipal: number
  /** Answer container lists and inspects from the events-fed read model (see src/model/). */
  readModel: boolean
  /** Engine events the gateway keeps for replay (the engine itself keeps 256). */
  eventsRingSize: number
  /** Engine events queued for a slow event-stream client before it gets `resync` and is dropped. */
  eventsQueueLimit: number
  /** The registries pulls may use, by host (`docker.io` for Docker Hub), with their credentials. */
  registries: Readonly<Record<string, RegistryAccess>>
  /**
   * The longest a pull may take, its progress stream included: a registry that accepts and then
   * stalls must not hold a pull (and the caller's engine budget) for ever. The engine's own
   * bounds cover only part of it (docs/engine-notes.md#image-pull).
   */
  pullTimeoutMs: number
}

export const DEFAULT_SETTINGS: GatewaySettings = {
  bodyLimitBytes: 64 * 1024,
  pullTimeoutMs: 10 * 60_000,
  logsMaxLines: 10_000,
  logsMaxBytes: 1024 * 1024,
  exposeEnvKeys: [],
  secretLabelPatterns: [
    '*secret*',
    '*password*',
    '*passwd*',
    '*token*',
    '*api*key*',
    '*credential*',
    '*private*key*',
  ],
  heartbeatMs: 15_000,
  sseRetryMs: 2_000,
  sseBufferBytes: 64 * 1024,
  rateLimitPerSecond: 50,
  rateLimitBurst: 100,
  maxStreamsPerPrincipal: 20,
  engineCallsPerPrincipal: 16,
  readModel: true,
  eventsRingSize: 10_000,
  eventsQueueLimit: 1_000,
  registries: {},
}

/**
 * The config is parsed at the start and at a reload, never per request: without zod's compiled
 * fast path (`jitless`, a parse option of zod's own; the same result). That path builds a parser
 * for each object schema with `new Function` on its first parse, which the config's schema (its
 * tokens, policies, limits, engines) pays for once and never uses again: on Bun, `main` up to
 * `createApp` took 5.0 → 2.6 ms of CPU with it (bench/README.md, "Cold start, fourth session").
 */
const ONCE = { jitless: true } as const

/** Parses the config file's JSON text; the error names the file and the offending field. */
export function parseConfigFile(text: string, source: string): ConfigFile {
  let raw: unknown
  try {
    raw = JSON.parse(text)
  } catch (error) {
    throw new Error(`Cannot parse ${source}: ${notJson(text, error)}`)
  }
  const result = ConfigFileSchema.safeParse(raw, ONCE)
  if (!result.success) {
    const issues = result.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`)
    throw new Error(`Cannot use ${source}: ${issues.join('; ')}`)
  }
  const names = new Set<string>()
  for (const token of result.data.tokens) {
    if (names.has(token.name))
      throw new Error(`Cannot use ${source}: token name ${token.name} is used twice`)
    names.add(token.name)
  }
  return result.data
}

/**
 * Why the text is not JSON, without any of it: the runtime's own message may quote the text
 * around the fault (V8: `Unexpected token 'h', ..."assword": hunter2-To"... is not valid JSON`;
 * JavaScriptCore: `Unexpected identifier "hunter2"`), and a config holds secrets. Only V8's
 * messages that name a position and quote nothing are kept, with that position as a line and a
 * column.
 */
function notJson(text: string, error: unknown): string {
  const message = error instanceof Error ? error.message : ''
  const located = /^([\w ,'{}:[\]-]+) in JSON at position (\d+)/.exec(message)
  if (!located) return 'it is not valid JSON'
  const before = text.slice(0, Number(located[2]))
  const line = before.split('\n').length
  const column = before.length - before.lastIndexOf('\n')
  return `it is not valid JSON: ${located[1]} at line ${line}, column ${column}`
}

/**
 * The settings a config reload changes in a running gateway; `readModel` and `events` need a
 * restart.
 */
export const LIVE_SETTINGS = [
  'exposeEnvKeys',
  'secretLabelPatterns',
  'rateLimitPerSecond',
  'rateLimitBurst',
  'maxStreamsPerPrincipal',
  'engineCallsPerPrincipal',
  'registries',
] as const satisfies readonly (keyof GatewaySettings)[]

type LiveSettings = Pick<GatewaySettings, (typeof LIVE_SETTINGS)[number]>

/** The live settings a reloaded config sets: what it leaves out is the default again. */
export function liveSettings(next: Partial<GatewaySettings>): LiveSettings {
  const live = {} as Record<(typeof LIVE_SETTINGS)[number], unknown>
  for (const key of LIVE_SETTINGS) live[key] = next[key] ?? DEFAULT_SETTINGS[key]
  return live as LiveSettings
}

/**
 * A port: tells a running gateway that its config was reloaded, once the new credentials are
 * in force, with the settings the new config sets.
 */
export interface ConfigReloads {
  /** Calls `listener` after every reload; answers the function that stops it. */
  subscribe(listener: (settings: Partial<GatewaySettings>) => void): () => void
}

/** A {@link ConfigReloads} that the entry point tells of each reload with `notify`. */
export function configReloads(): ConfigReloads & {
  notify(settings: Partial<GatewaySettings>): void
} {
  const listeners = new Set<(settings: Partial<GatewaySettings>) => void>()
  return {
    subscribe(listener) {
      listeners.add(listener)
      return () => listeners.delete(listener)
    },
    notify(settings) {
      for (const listener of listeners) listener(settings)
    },
  }
}

/** The settings a config file sets; the rest keep their defaults. */
export function settingsFromConfig(config: ConfigFile): Partial<GatewaySettings> {
  const settings: Partial<GatewaySettings> = {
    exposeEnvKeys: config.exposeEnvKeys,
    registries: config.registries,
  }
  if (config.readModel !== undefined) settings.readModel = config.readModel
  if (config.events.ringSize) settings.eventsRingSize = config.events.ringSize
  if (config.events.queueLimit) settings.eventsQueueLimit = config.events.queueLimit
  if (config.secretLabelPatterns) settings.secretLabelPatterns = config.secretLabelPatterns
  if (config.limits.requestsPerSecond) settings.rateLimitPerSecond = config.limits.requestsPerSecond
  if (config.limits.burst) settings.rateLimitBurst = config.limits.burst
  if (config.limits.streamsPerClient)
    settings.maxStreamsPerPrincipal = config.limits.streamsPerClient
  if (config.limits.engineCallsPerClient)
    settings.engineCallsPerPrincipal = config.limits.engineCallsPerClient
  return settings
}
