/**
 * The chunked transfer coding's decoder (src/streams/chunked.ts): pure, on bytes made here.
 */
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { ChunkedDecoder } from '../../src/streams/chunked.ts'
import { concat } from '../../src/transport/upgrade.ts'

const encoder = new TextEncoder()

/** A body as chunks of the given sizes, with the size line's forms the RFC allows. */
function chunked(
  body: Uint8Array,
  sizes: number[],
  upper: boolean,
  extension: boolean,
): Uint8Array {
  const parts: Uint8Array[] = []
  let at = 0
  for (const size of sizes) {
    if (at >= body.length) break
    const piece = body.subarray(at, Math.min(body.length, at + size))
    at += piece.length
    const hex = piece.length.toString(16)
    parts.push(encoder.encode(`${upper ? hex.toUpperCase() : hex}${extension ? ';x=1' : ''}\r\n`))
    parts.push(piece, encoder.encode('\r\n'))
  }
  if (at < body.length) {
    parts.push(encoder.encode(`${(body.length - at).toString(16)}\r\n`))
    parts.push(body.subarray(at), encoder.encode('\r\n'))
  }
  parts.push(encoder.encode('0\r\nx-trailer: 1\r\n\r\n'))
  return concat(parts)
}

/** Decodes `wire` pushed in pieces cut at `cuts`; the body and whether it was complete. */
function decode(wire: Uint8Array, cuts: number[]) {
  const decoder = new ChunkedDecoder()
  const pieces: number[] = []
  let complete = false
  let at = 0
  for (const cut of [
    ...cuts.map((c) => c % (wire.length + 1)).sort((a, b) => a - b),
    wire.length,
  ]) {
    if (cut < at) continue
    complete = decoder.push(wire.subarray(at, cut), (bytes) => pieces.push(...bytes))
    at = cut
  }
  return { body: Uint8Array.from(pieces), complete, done: decoder.done }
}

describe('ChunkedDecoder', () => {
  it('gives back the body however it was chunked and however the bytes arrive', () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ maxLength: 600 }),
        fc.array(fc.integer({ min: 1, max: 300 }), { maxLength: 8 }),
        fc.array(fc.nat(), { maxLength: 12 }),
        fc.boolean(),
        fc.boolean(),
        (body, sizes, cuts, upper, extension) => {
          const result = decode(chunked(body, sizes, upper, extension), cuts)
          expect(result.body).toEqual(body)
          expect(result.complete).toBe(true)
          expect(result.done).toBe(true)
        },
      ),
      { numRuns: 500 },
    )
  })

  it('is not complete before the last chunk and its empty line', () => {
    const wire = encoder.encode('5\r\nhello\r\n0\r\n')
    const result = decode(wire, [])
    expect(new TextDecoder().decode(result.body)).toBe('hello')
    expect(result.complete).toBe(false)
  })

  it('refuses bytes that are not the chunked coding', () => {
    for (const wire of ['zz\r\nhello\r\n', '5\r\nhelloXX\r\n', `${'1'.repeat(2000)}\r\n`]) {
      expect(() => new ChunkedDecoder().push(encoder.encode(wire), () => {})).toThrow(TypeError)
    }
  })
})
