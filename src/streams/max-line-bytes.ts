/**
 * @module The longest line a line-splitting stage holds (log lines, NDJSON records), so that a
 * peer cannot make the gateway buffer an endless line.
 */

/** The limit unless a stage is given one: 1 MiB. */
const DEFAULT_MAX_LINE_BYTES = 1024 * 1024

/**
 * The limit `value` sets (the default when undefined); a `RangeError` that names `stage` unless it
 * is a whole number of at least 4 bytes: a log line over the limit is cut between UTF-8
 * characters, which needs room for one (up to 4 bytes).
 */
export function validMaxLineBytes(value: number | undefined, stage: string): number {
  const bytes = value ?? DEFAULT_MAX_LINE_BYTES
  if (!Number.isSafeInteger(bytes) || bytes < 4) {
    throw new RangeError(
      `Cannot create ${stage}: maxLineBytes must be an integer >= 4: current value is ${value}`,
    )
  }
  return bytes
}
