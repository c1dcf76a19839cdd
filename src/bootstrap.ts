/**
 * @module What every long-running entry point does the same way: load the config (creating the
 * first admin token when there is no credential at all), build the authenticator, reload it on
 * demand, log as JSON lines, say so when no engine answers, and build the gateway from it all
 * (`entryGateway`).
 */

import { type AppDependencies, createApp, type EngineSharing, type Gateway } from './app.ts'
import { authenticatorFromConfig, SwappableAuthenticator } from './auth/from-config.ts'
import {
  type ConfigFile,
  type ConfigReloads,
  configReloads,
  DEFAULT_SETTINGS,
  settingsFromConfig,
} from './config.ts'
import {
  type ConfigFiles,
  DEFAULT_CONFIG_PATH,
  loadConfig,
  loadOrCreateConfig,
  readJwks,
} from './config-store.ts'
import { jsonLineAudit } from './domain/audit.ts'
import { EngineClient } from './engine/client.ts'
import type { EngineTransport } from './engine/transport.ts'
import type { SharedRing } from './events/shared.ts'
import { redisSharedRing } from './events/shared-redis.ts'
import { requestLogLine } from './http/request-log-line.ts'
import type { WritePositions } from './model/positions.ts'
import { redisWritePositions } from './model/positions-redis.ts'
import { type ReloadSignal, redisReloadSignal } from './reload-signal.ts'
import { type StoreEnvironment, storeSettingsFromEnv } from './store/config.ts'
import { MemoryStore } from './store/memory.ts'
import type { StateStore } from './store/port.ts'
import { RedisStore } from './store/redis.ts'
import type { RedisConnection } from './store/redis-connection.ts'
import {
  type DockerEnv,
  type EngineTarget,
  engineTargetFromEntry,
  engineTargetFromEnv,
} from './transport/docker-host.ts'

export type Log = (fields: Record<string, unknown>) => void

/** Each message as one JSON line, with its time, through `write`. */
export const jsonLogTo =
  (write: (line: string) => void): Log =>
  (fields) =>
    write(JSON.stringify({ time: new Date().toISOString(), ...fields }))

export interface EntryEnvironment extends StoreEnvironment {
  DOCKGATE_CONFIG?: string | undefined
  DOCKGATE_TOKEN?: string | undefined
  DOCKGATE_JWT_SECRET?: string | undefined
}

export interface Credentials {
  config: ConfigFile
  configPath: string
  authenticator: SwappableAuthenticator
  /** Each successful reload, once its credentials are in force: give it to the app. */
  reloads: ConfigReloads
  /** Reads the config file again; on an error the previous one stays (and it is logged). */
  reload(): void
}

export async function loadCredentials(
  files: ConfigFiles,
  env: EntryEnvironment,
  log: Log,
): Promise<Credentials> {
  const configPath = env.DOCKGATE_CONFIG ?? DEFAULT_CONFIG_PATH
  const authEnv = {
    envToken: env.DOCKGATE_TOKEN || undefined,
    jwtSecret: env.DOCKGATE_JWT_SECRET || undefined,
  }
  const hasOther = authEnv.envToken !== undefined || authEnv.jwtSecret !== undefined
  const { config, createdToken } = await loadOrCreateConfig(files, configPath, hasOther)
  if (createdToken) {
    console.log(
      `\nCreated ${configPath} with one admin token. It is shown only this once:\n\n  ${createdToken}\n\n` +
        'Only its hash is stored. Use it as: Authorization: Bearer <token>\n',
    )
  }
  const authenticator = new SwappableAuthenticator(
    authenticatorFromConfig(config, { ...authEnv, jwks: readJwks(files, config, configPath) }),
  )
  const reloads = configReloads()
  const reload = () => {
    try {
      const next = loadConfig(files, configPath)
      const jwks = readJwks(files, next, configPath)
      authenticator.replace(authenticatorFromConfig(next, { ...authEnv, jwks }))
      reloads.notify(settingsFromConfig(next))
      log({ level: 'info', msg: 'config reloaded', tokens: next.tokens.length })
    } catch (error) {
      log({
        level: 'error',
        msg: 'config reload failed; the previous config stays',
        error: String(error),
      })
    }
  }
  return { config, configPath, authenticator, reloads, reload }
}

/**
 * Reloads on every instance: a reload here tells the others (`signal`), and one asked for by
 * another instance reloads here. Answers the reload to call on SIGHUP or a config change, and
 * the function that stops listening. Listening begins in the background: while Redis is
 * unreachable the instance still starts (and its store-bound requests answer 503), and it listens
 * once Redis answers.
 */
export function shareReloads(
  credentials: Pick<Credentials, 'reload'>,
  signal: ReloadSignal,
  log: Log,
): { reload(): void; stop(): Promise<void> } {
  const listening = signal.listen(() => {
    log({ level: 'info', msg: 'config reload asked for by another instance' })
    credentials.reload()
  })
  listening.then(
    () => log({ level: 'info', msg: "listening for the other instances' reloads" }),
    (error: unknown) =>
      log({ level: 'error', msg: 'cannot listen for reloads', error: String(error) }),
  )
  return {
    reload() {
      credentials.reload()
      signal.publish().catch((error: unknown) =>
        log({
          level: 'error',
          msg: 'the other instances could not be told to reload',
          error: String(error),
        }),
      )
    },
    stop: () => listening.then((stop) => stop()).catch(() => {}),
  }
}

export interface SharedInstancePorts {
  /** For `createApp`: the events replay ring every instance shares. */
  sharedEvents: SharedRing
  /** For `createApp`: the positions of every instance's changes. */
  positions: WritePositions
  /** For `createApp`: the events ring and positions of an engine other than `default`. */
  engineSharing: (name: string) => EngineSharing
  /** For {@link shareReloads}. */
  reloadSignal: ReloadSignal
  /** Closes the connection the reload signal listens on (not the store's). */
  close(): Promise<void>
}

/**
 * What instances share through Redis beyond the state store: the events ring and the write
 * positions on the store's one connection, and the reload signal, which listens on a connection
 * of its own (a subscribed connection sends nothing else). Every key starts with `prefix`.
 * No I/O: the listening connection opens when the signal first listens.
 */
export function sharedInstancePorts(
  redis: RedisConnection,
  options: {
    prefix: string
    ringSize: number
    logError: (message: string, error: unknown) => void
  },
): SharedInstancePorts {
  const { client } = redis
  const listener = client.duplicate()
  // Without a listener, a connection error would end the process; the client reconnects itself.
  let failing = false
  listener.on('error', (error: unknown) => {
    if (!failing) options.logError(`reload signal connection to ${redis.display} failed`, error)
    failing = true
  })
  listener.on('ready', () => {
    failing = false
  })
  const { prefix, logError } = options
  return {
    sharedEvents: redisSharedRing(client, { prefix, capacity: options.ringSize, logError }),
    positions: redisWritePositions(client, { prefix, logError }),
    // Each engine's own keys: its events and positions are not another engine's.
    engineSharing: (name) => {
      const keys = `${prefix}engine:${name}:`
      return {
        sharedEvents: redisSharedRing(client, {
          prefix: keys,
          capacity: options.ringSize,
          logError,
        }),
        positions: redisWritePositions(client, { prefix: keys, logError }),
      }
    },
    reloadSignal: redisReloadSignal(client, listener, { channel: `${prefix}reload` }),
    close: async () => {
      if (listener.isReady) await listener.close()
      else if (listener.isOpen) listener.destroy()
    },
  }
}

/** What several instances share beyond the state store, for an entry to give the app. */
export interface InstanceSharing {
  /** For `createApp`: none with the memory store (one instance). */
  ports: {
    sharedEvents?: SharedRing
    positions?: WritePositions
    engineSharing?: (name: string) => EngineSharing
  }
  /** The reload to call on SIGHUP or a config change: with Redis, every instance reloads. */
  reload(): void
  /** Stops listening for the other instances and closes the listening connection. */
  stop(): Promise<void>
}

/**
 * With a Redis store: the shared events ring, write positions and reloads on its connection
 * (README, "Several instances"); with the memory store, the plain reload and nothing shared.
 * Waits for the connection once (an unreachable Redis is logged by it and the instance starts
 * all the same), so that the events hub's first events reach the shared ring.
 */
export async function shareBetweenInstances(
  shared: EntryStore,
  config: ConfigFile,
  credentials: Pick<Credentials, 'reload'>,
  log: Log,
): Promise<InstanceSharing> {
  if (!shared.redis) return { ports: {}, reload: credentials.reload, stop: async () => {} }
  const instances = sharedInstancePorts(shared.redis, {
    prefix: 'dockgate:',
    ringSize: settingsFromConfig(config).eventsRingSize ?? DEFAULT_SETTINGS.eventsRingSize,
    logError: (message, error) => log({ level: 'error', msg: message, error: String(error) }),
  })
  await shared.redis.ready().catch(() => {})
  const everywhere = shareReloads(credentials, instances.reloadSignal, log)
  return {
    ports: {
      sharedEvents: instances.sharedEvents,
      positions: instances.positions,
      engineSharing: instances.engineSharing,
    },
    reload: everywhere.reload,
    stop: () => everywhere.stop().then(() => instances.close()),
  }
}

/** Logs whether the engine answers; if not, how to start the project's own. */
export function reportEngine(engine: EngineClient, log: Log, name = 'default'): void {
  engine.ping().then(
    ({ apiVersion }) => log({ level: 'info', msg: 'engine answers', engine: name, apiVersion }),
    () =>
      name === 'default'
        ? log({
            level: 'warn',
            msg: `no Docker Engine answers at ${engine.transport.description}; /readyz says 503 until one does`,
            hint: 'start the project engine with: eval "$(bash scripts/engine.sh up)" and restart, or set DOCKER_HOST',
          })
        : log({
            level: 'warn',
            msg: `engine ${name} does not answer at ${engine.transport.description}; its routes answer 503 until it does`,
          }),
  )
}

/** How long an entry that has answered nothing waits before it follows the engine anyway. */
const FIRST_ANSWER_BOUND_MS = 1_000

/**
 * Settles once the entry has answered its first request (`answered()`, called as the answer is
 * handed to the server), a turn of the event loop later so that the answer is written first; or
 * after `boundMs` without one. What waits for it (the read models' first load: a list and an
 * inspect per container, each parsed; the engine report) then does not run between `listening`
 * and the first answer, where on Bun it cost a cold start 10–15 ms of its 50 (bench/README.md,
 * "Cold start on Bun, fifth session").
 */
export function firstAnswer(boundMs = FIRST_ANSWER_BOUND_MS): FirstAnswer {
  let answered: (() => void) | undefined
  const settled = new Promise<void>((resolve) => {
    const bound = setTimeout(resolve, boundMs)
    ;(bound as { unref?: () => void }).unref?.()
    answered = () => {
      answered = undefined
      clearTimeout(bound)
      setTimeout(resolve, 0)
    }
  })
  const answer = () => answered?.()
  return {
    settled,
    answered: answer,
    watch: (fetch) => (request, env) => {
      const response = fetch(request, env)
      // Once answered, only this test is left of it in a request's path.
      if (answered) void Promise.resolve(response).then(answer, answer)
      return response
    },
  }
}

export interface FirstAnswer {
  readonly settled: Promise<void>
  /** The entry has handed its first answer to the server. */
  answered(): void
  /** `fetch` as it is, calling {@link answered} once its first answer is handed over. */
  watch<E>(
    fetch: (request: Request, env: E) => Response | Promise<Response>,
  ): (request: Request, env: E) => Response | Promise<Response>
}

/**
 * Where each engine is: `default` is `DOCKER_HOST` (with `DOCKER_TLS_VERIFY` and
 * `DOCKER_CERT_PATH`) unless the config names an engine `default`; the others are the config's
 * `engines`. Throws a `TypeError` that says which engine is wrong.
 */
export function engineTargets(
  config: ConfigFile,
  env: DockerEnv,
): { default: EngineTarget; others: Record<string, EngineTarget> } {
  const targetOf = (name: string) => {
    const entry = config.engines[name]!
    try {
      return engineTargetFromEntry(entry, env.HOME)
    } catch (error) {
      throw new TypeError(`engines.${name}: ${(error as Error).message}`)
    }
  }
  const others: Record<string, EngineTarget> = {}
  for (const name of Object.keys(config.engines))
    if (name !== 'default') others[name] = targetOf(name)
  const fallback = config.engines.default ? targetOf('default') : engineTargetFromEnv(env)
  return { default: fallback, others }
}

/**
 * A client per engine of the config, each on its own transport (`connect`: the runtime's, its
 * own connections and TLS material) with its own API version; engine errors logged by name.
 */
export function engineClients(
  config: ConfigFile,
  env: DockerEnv,
  connect: (target: EngineTarget) => EngineTransport,
  log: Log,
): { engine: EngineClient; engines: Record<string, EngineClient> } {
  const targets = engineTargets(config, env)
  const clientOf = (name: string, target: EngineTarget) =>
    new EngineClient(connect(target), {
      onEngineError: (detail) =>
        log({ level: 'warn', msg: 'engine error', engine: name, ...detail }),
    })
  const engines = Object.fromEntries(
    Object.entries(targets.others).map(([name, target]) => [name, clientOf(name, target)]),
  )
  return { engine: clientOf('default', targets.default), engines }
}

/** The state store an entry gives the app, and what it closes on shutdown. */
export interface EntryStore {
  store: StateStore
  /** `DOCKGATE_SECRET`, for the app's `ticketSecret`. */
  secret: string | undefined
  /** The one Redis connection of the process (none with the memory store), for whatever else needs Redis. */
  redis: RedisConnection | undefined
  /** The store as logs may show it: `memory`, or its URL without the password. */
  display: string
  close(): Promise<void>
}

/**
 * The store `DOCKGATE_STORE` names (memory unless set) and the ticket secret. Rejects with a
 * one-line reason for a malformed URL, or Redis without `DOCKGATE_SECRET`: the entry refuses to
 * start.
 * No I/O: the Redis connection opens on first use.
 */
export async function storeFromEnv(env: StoreEnvironment, log: Log): Promise<EntryStore> {
  const { store: target, secret } = storeSettingsFromEnv(env)
  if (target.kind === 'memory') {
    const store = new MemoryStore()
    return { store, secret, redis: undefined, display: target.display, close: () => store.close() }
  }
  // Imported only for Redis: a start with the memory store never evaluates @redis/client
  // (esbuild keeps a dynamically imported module's evaluation lazy in the Node bundle).
  const { openRedisConnection } = await import('./store/redis-connection.ts')
  const redis = openRedisConnection(target, (message) => log({ level: 'warn', msg: message }))
  const store = new RedisStore(redis, {
    logError: (message, error) =>
      log({
        level: 'warn',
        msg: message,
        error: error instanceof Error ? error.message : String(error),
      }),
  })
  return {
    store,
    secret,
    redis,
    display: target.display,
    close: () => store.close().then(() => redis.close()),
  }
}

/** What an entry gives {@link entryGateway}: what differs between runtimes. */
export interface EntryParts {
  env: EntryEnvironment & DockerEnv
  files: ConfigFiles
  log: Log
  /** Where the request log and audit records go, a line at a time (the entry's batched stdout). */
  line: (text: string) => void
  /** The runtime's transport to an engine. */
  connect: (target: EngineTarget) => EngineTransport
  /** The app's ports only this runtime has (metrics, its response writers, WebSockets). */
  ports: Pick<
    AppDependencies,
    'metrics' | 'writeRequestId' | 'readRequestHeader' | 'eventStreamOutput' | 'upgradeWebSocket'
  >
}

/** An entry's gateway, and what it stops and reports on. */
export interface EntryGateway {
  gateway: Gateway
  shared: EntryStore
  instances: InstanceSharing
  engine: EngineClient
  engines: Record<string, EngineClient>
  configPath: string
}

/**
 * The store first (a malformed `DOCKGATE_STORE`, or Redis without `DOCKGATE_SECRET`, refuses to
 * start), then the credentials, the sharing between instances, the engine clients, and the app
 * with them all. Serving, signals and config watching stay the entry's.
 */
export async function entryGateway(parts: EntryParts): Promise<EntryGateway> {
  const { env, files, log, line } = parts
  const shared = await storeFromEnv(env, log)
  const { config, configPath, authenticator, reloads, reload } = await loadCredentials(
    files,
    env,
    log,
  )
  const instances = await shareBetweenInstances(shared, config, { reload }, log)
  const { engine, engines } = engineClients(config, env, parts.connect, log)
  const gateway = createApp({
    engine,
    engines,
    authenticator,
    reloads,
    settings: settingsFromConfig(config),
    store: shared.store,
    ticketSecret: shared.secret,
    requestLog: (entry) => line(requestLogLine(entry)),
    audit: jsonLineAudit(line),
    logError: (message, error) => log({ level: 'error', msg: message, error: String(error) }),
    ...instances.ports,
    ...parts.ports,
  })
  return { gateway, shared, instances, engine, engines, configPath }
}
