/** The reference the JSON text escapers are held to, and long texts to hold them to it on. */
import fc from 'fast-check'
import { concatBytes } from '../../src/streams/demux.ts'

const encoder = new TextEncoder()
// What the log lines are decoded with (src/streams/lines.ts)
const decoder = new TextDecoder('utf-8', { fatal: false, ignoreBOM: true })

/** The bytes of JSON.stringify of the decoded text, without the quotes. */
export function viaStrings(bytes: Uint8Array): Uint8Array {
  return encoder.encode(JSON.stringify(decoder.decode(bytes)).slice(1, -1))
}

/** Byte equality at memcmp speed (a deep `toEqual` takes seconds on 300 KB arrays). */
export const sameBytes = (a: Uint8Array, b: Uint8Array) =>
  Buffer.from(a.buffer, a.byteOffset, a.length).equals(b)

/**
 * Long texts of plain runs short and long (past 64 KiB), between quotes, controls, multi-byte
 * characters and broken sequences, after `offset` bytes of something else in the same array.
 */
export function longTexts(): fc.Arbitrary<{ bytes: Uint8Array; offset: number }> {
  const piece = fc.oneof(
    fc.integer({ min: 1, max: 3000 }).map((n) => new Uint8Array(n).fill(0x61)),
    fc.integer({ min: 60_000, max: 140_000 }).map((n) => new Uint8Array(n).fill(0x7e)),
    fc.string({ unit: 'binary', maxLength: 6 }).map((s) => encoder.encode(s)),
    fc.string({ unit: 'binary', minLength: 200, maxLength: 2000 }).map((s) => encoder.encode(s)),
    fc.uint8Array({ maxLength: 6 }),
    fc.constantFrom(Uint8Array.of(0x22), Uint8Array.of(0x5c), Uint8Array.of(0x0a)),
  )
  return fc
    .tuple(fc.array(piece, { minLength: 1, maxLength: 12 }), fc.integer({ min: 0, max: 7 }))
    .map(([pieces, offset]) => ({
      bytes: concatBytes([new Uint8Array(offset).fill(0x79), ...pieces]),
      offset,
    }))
}
