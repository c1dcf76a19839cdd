/**
 * @module Reading the timestamp prefix that `timestamps=1` puts in front of every log message.
 *
 * The engine formats it as `2006-01-02T15:04:05.000000000Z ` (Go `RFC3339NanoFixed` plus one
 * space): always 9 fractional digits, always UTC (docs/engine-notes.md#log-timestamps).
 */

/** Length of the prefix, including the separating space. */
export const TIMESTAMP_PREFIX_BYTES = 31

/**
 * Content bytes in each partial message when the engine splits a long line: the copier's
 * buffer size (`defaultBufSize = 16 * 1024` in moby `daemon/logger/copier.go`). Every partial
 * carries its own copy of the first partial's timestamp prefix (docs/engine-notes.md#long-lines).
 */
export const PARTIAL_MESSAGE_BYTES = 16384

const DIGIT = -1
const ZERO = 0x30
const NINE = 0x39

// Expected byte per position of `YYYY-MM-DDTHH:MM:SS.nnnnnnnnnZ `; DIGIT stands for [0-9]
const PREFIX_PATTERN = Int16Array.from('dddd-dd-ddTdd:dd:dd.dddddddddZ ', (char) =>
  char === 'd' ? DIGIT : char.charCodeAt(0),
)

/** Whether the 31 bytes at `offset` are exactly a timestamp prefix (pattern only, no calendar check). */
export function isTimestampPrefix(bytes: Uint8Array, offset = 0): boolean {
  if (offset < 0 || bytes.length - offset < TIMESTAMP_PREFIX_BYTES) return false
  for (let i = 0; i < TIMESTAMP_PREFIX_BYTES; i++) {
    const byte = bytes[offset + i] ?? 0
    const expected = PREFIX_PATTERN[i]
    const matches = expected === DIGIT ? byte >= ZERO && byte <= NINE : byte === expected
    if (!matches) return false
  }
  return true
}

/**
 * Reads the timestamp prefix at `offset`.
 *
 * @returns the timestamp without the trailing space (30 characters, e.g.
 *   `2026-11-29T03:40:53.902667431Z`), or `undefined` if the bytes do not match the pattern
 */
export function readTimestampPrefix(bytes: Uint8Array, offset = 0): string | undefined {
  if (!isTimestampPrefix(bytes, offset)) return undefined
  // Known ASCII here. A native decode is several times faster than spreading 30 bytes into
  // String.fromCharCode, and this runs once per log message
  return asciiDecoder.decode(bytes.subarray(offset, offset + TIMESTAMP_PREFIX_BYTES - 1))
}

const asciiDecoder = new TextDecoder()
