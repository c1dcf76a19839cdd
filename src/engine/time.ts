/**
 * @module Turns the time values clients send into the engine's `since`/`until` grammar.
 *
 * The engine takes Unix seconds with an optional decimal fraction and answers 500 to anything
 * else, so the gateway accepts friendlier forms and converts them exactly (no float maths:
 * nanoseconds are carried as digits).
 */

const UNIX = /^(\d{1,12})(?:\.(\d{1,9}))?$/
const RFC3339 =
  /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?(Z|[+-]\d{2}:\d{2})$/
const DURATION = /^(?:(\d{1,6})h)?(?:(\d{1,6})m)?(?:(\d{1,8})s)?$/

/**
 * Accepts Unix seconds (`1732860000`, `1732860000.5`), RFC 3339 (`2026-11-29T03:40:53.9Z`) or a
 * duration before `now` (`90s`, `10m`, `1h30m`). Returns the engine's `seconds.nanoseconds`
 * form, or undefined when the value is none of these.
 */
export function toEngineTime(value: string, now: Date = new Date()): string | undefined {
  const unix = UNIX.exec(value)
  if (unix) return `${unix[1]}.${(unix[2] ?? '').padEnd(9, '0')}`
  const rfc = RFC3339.exec(value)
  if (rfc) return fromRfc3339(rfc)
  const duration = DURATION.exec(value)
  if (duration && value !== '') {
    const [, h = '0', m = '0', s = '0'] = duration
    const ms = now.getTime() - (Number(h) * 3600 + Number(m) * 60 + Number(s)) * 1000
    if (ms < 0) return undefined
    return `${Math.floor(ms / 1000)}.${String((ms % 1000) * 1_000_000).padStart(9, '0')}`
  }
  return undefined
}

function fromRfc3339(match: RegExpExecArray): string | undefined {
  const [, year, month, day, hour, minute, second, fraction = '', zone] = match
  const base = Date.parse(`${year}-${month}-${day}T${hour}:${minute}:${second}${zone}`)
  if (Number.isNaN(base) || base < 0) return undefined
  // Date.parse silently rolls over impossible dates (Feb 30): round-trip the date part to refuse them.
  const roundTrip = new Date(Date.UTC(Number(year), Number(month) - 1, Number(day)))
  if (roundTrip.getUTCDate() !== Number(day) || Number(hour) > 23 || Number(minute) > 59) {
    return undefined
  }
  if (Number(second) > 59) return undefined
  return `${Math.floor(base / 1000)}.${fraction.padEnd(9, '0')}`
}

/** Whether an RFC 3339 time of the engine's is Go's zero `time.Time`: the engine's "never". */
export function isZeroTime(time: string): boolean {
  return time.startsWith('0001-01-01')
}

/** Orders two engine times (`seconds.nanoseconds`) without losing precision. */
export function compareEngineTimes(a: string, b: string): number {
  const big = (t: string) => {
    const [s = '0', ns = '0'] = t.split('.')
    return BigInt(s) * 1_000_000_000n + BigInt(ns.padEnd(9, '0'))
  }
  const difference = big(a) - big(b)
  return difference < 0n ? -1 : difference > 0n ? 1 : 0
}

/** Moves an engine time by a number of nanoseconds, exactly. */
export function shiftEngineTime(engineTime: string, nanoseconds: bigint): string {
  const [s = '0', ns = '0'] = engineTime.split('.')
  return nanosToEngineTime(BigInt(s) * 1_000_000_000n + BigInt(ns.padEnd(9, '0')) + nanoseconds)
}

/** Nanoseconds since the epoch (as digits or a bigint) → the engine's `seconds.nanoseconds`. */
export function nanosToEngineTime(nanos: string | bigint): string {
  const value = BigInt(nanos)
  return `${value / 1_000_000_000n}.${String(value % 1_000_000_000n).padStart(9, '0')}`
}
