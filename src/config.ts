/**
 * @module The gateway's configuration: the config file's schema and the settings from the environment.
 *
 * Parsing is pure; reading files and the environment happens in the entry points.
 */
import { z } from '@hono/zod-openapi'
import { ScopeSchema } from './auth/principal.ts'
import { PolicySchema } from './policy/policy.ts'

export const TokenEntrySchema = z.strictObject({
  name: z
    .string()
    .regex(/^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,63}$/, 'letters, digits, _ . - (at most 64)'),
  hash: z.string().regex(/^sha256:[0-9a-f]{64}$/, 'sha256:<64 hex digits>'),
  scopes: z.array(ScopeSchema).min(1),
  policy: PolicySchema.optional(),
})

export const ConfigFileSchema = z.strictObject({
  tokens: z.array(TokenEntrySchema).default([]),
  /** Environment variable names whose values inspect may show; every other value is redacted. */
  exposeEnvKeys: z.array(z.string()).default([]),
})

export type ConfigFile = z.infer<typeof ConfigFileSchema>

export interface GatewaySettings {
  /** Largest request body accepted, in bytes. */
  bodyLimitBytes: number
  /** Most log lines one JSON logs answer carries before it says `truncated`. */
  logsMaxLines: number
  /** Environment variable names whose values inspect may show. */
  exposeEnvKeys: readonly string[]
  /** Milliseconds of silence after which an event stream gets a heartbeat comment. */
  heartbeatMs: number
  /** The reconnection delay event-stream clients are told to use, in milliseconds. */
  sseRetryMs: number
}

export const DEFAULT_SETTINGS: GatewaySettings = {
  bodyLimitBytes: 64 * 1024,
  logsMaxLines: 10_000,
  exposeEnvKeys: [],
  heartbeatMs: 15_000,
  sseRetryMs: 2_000,
}

/** Parses the config file's JSON text; the error names the file and the offending field. */
export function parseConfigFile(text: string, source: string): ConfigFile {
  let raw: unknown
  try {
    raw = JSON.parse(text)
  } catch (error) {
    throw new Error(`Cannot parse ${source}: ${(error as Error).message}`)
  }
  const result = ConfigFileSchema.safeParse(raw)
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
