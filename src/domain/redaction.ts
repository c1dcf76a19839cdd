/**
 * @module Redaction of what reads could leak: env values and secret-looking label values.
 */
import { badRequest } from '../errors.ts'
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

/**
 * Labels with the values of secret-looking keys (by glob, any case) as null. `isSecret` judges a
 * key for these patterns when the caller keeps a memo of it ({@link secretKeyMemo}).
 */
export function redactLabels(
  labels: Readonly<Record<string, string>>,
  patterns: readonly string[],
  isSecret: (key: string) => boolean = (key) => isSecretKey(key, patterns),
): Record<string, string | null> {
  const out: Record<string, string | null> = {}
  for (const [key, value] of Object.entries(labels)) {
    out[key] = isSecret(key) ? null : value
  }
  return out
}

/** Keys a memo of {@link secretKeyMemo} remembers; past that, keys are judged each time. */
const SECRET_KEY_MEMO_SIZE = 1_000

/**
 * Whether a label key is secret for `patterns`, remembered per key: the same keys come with every
 * event of a container. Judging them took 60 µs of an event's delivery on a fresh gateway (7
 * patterns × 5 labels; bench phase `latency`), remembered 10 µs.
 */
export function secretKeyMemo(patterns: readonly string[]): (key: string) => boolean {
  const verdicts = new Map<string, boolean>()
  return (key) => {
    let secret = verdicts.get(key)
    if (secret === undefined) {
      secret = isSecretKey(key, patterns)
      if (verdicts.size < SECRET_KEY_MEMO_SIZE) verdicts.set(key, secret)
    }
    return secret
  }
}

/** Whether a label key's value is redacted: it matches one of the patterns, in any case. */
function isSecretKey(key: string, patterns: readonly string[]): boolean {
  const lower = key.toLowerCase()
  return patterns.some((p) => globMatches(p.toLowerCase(), lower))
}

/**
 * Refuses `key=value` selectors on secret-looking keys: their values are redacted in every
 * answer, so a filter that matched them would tell a caller what the value is, one guess at a
 * time. A bare `key` selector stays allowed (the key itself is shown).
 */
export function refuseSecretSelectors(
  selectors: readonly string[],
  patterns: readonly string[],
  param: string,
): void {
  const refused = selectors.filter((selector) => {
    const at = selector.indexOf('=')
    return at !== -1 && isSecretKey(selector.slice(0, at), patterns)
  })
  if (refused.length === 0) return
  throw badRequest(
    `Invalid ${param}: label values of secret-looking keys are redacted and cannot be matched`,
    refused.map((selector) => ({
      name: param,
      reason: `${selector.slice(0, selector.indexOf('='))}: a secret-looking key; select it without a value`,
    })),
  )
}
