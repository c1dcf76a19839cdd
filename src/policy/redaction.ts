/**
 * @module Redaction of what reads could leak: env values and secret-looking label values.
 */
import { globMatches } from './policy.ts'

export interface RedactionSettings {
  exposeEnvKeys: readonly string[]
  secretLabelPatterns: readonly string[]
}

/** `KEY=value` entries as `{ KEY: value }`, with every value not explicitly exposed as null. */
export function redactEnv(env: readonly string[], exposed: readonly string[]) {
  const out: Record<string, string | null> = {}
  for (const entry of env) {
    const at = entry.indexOf('=')
    const key = at === -1 ? entry : entry.slice(0, at)
    out[key] = at !== -1 && exposed.includes(key) ? entry.slice(at + 1) : null
  }
  return out
}

/** Labels with the values of secret-looking keys (by glob, any case) as null. */
export function redactLabels(
  labels: Readonly<Record<string, string>>,
  patterns: readonly string[],
): Record<string, string | null> {
  const out: Record<string, string | null> = {}
  for (const [key, value] of Object.entries(labels)) {
    const lower = key.toLowerCase()
    out[key] = patterns.some((p) => globMatches(p.toLowerCase(), lower)) ? null : value
  }
  return out
}
