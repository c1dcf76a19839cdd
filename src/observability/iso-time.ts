/**
 * @module The current time as an ISO 8601 string, for log lines and audit records.
 *
 * Formatting a `Date` costs about 0.5 µs (V8 formats it with `snprintf`: ~7k instructions under
 * callgrind, bench/README.md "Changes and their effect"); under load many requests end within the
 * same millisecond, so the string is made once per millisecond and shared, and only once per
 * second through a `Date`: a new millisecond of the same second changes the last digits.
 */
let lastMs = Number.NaN
let lastIso = ''
let lastSecond = Number.NaN
/** `YYYY-MM-DDTHH:mm:ss.` of `lastSecond`. */
let secondPrefix = ''

export function isoNow(): string {
  const now = Date.now()
  if (now !== lastMs) {
    lastMs = now
    const ms = now % 1000
    // Before 1970 the remainder is negative (and the years that need more digits are far off):
    // those times go through a `Date` as they are.
    if (ms < 0) lastIso = new Date(now).toISOString()
    else {
      if (now - ms !== lastSecond) {
        lastSecond = now - ms
        secondPrefix = new Date(lastSecond).toISOString().slice(0, 20)
      }
      lastIso = `${secondPrefix}${ms < 10 ? '00' : ms < 100 ? '0' : ''}${ms}Z`
    }
  }
  return lastIso
}
