/**
 * @module The current time as an ISO 8601 string, for log lines and audit records.
 *
 * Formatting a `Date` costs about 0.5 µs; under load many requests end within the same
 * millisecond, so the string is made once per millisecond and shared.
 */
let lastMs = Number.NaN
let lastIso = ''

export function isoNow(): string {
  const now = Date.now()
  if (now !== lastMs) {
    lastMs = now
    lastIso = new Date(now).toISOString()
  }
  return lastIso
}
