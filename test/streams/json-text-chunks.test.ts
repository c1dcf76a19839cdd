/**
 * JsonTextChunks writes, chunk by chunk, exactly the UTF-8 of `JSON.stringify` of what a
 * streaming TextDecoder (keeping a BOM) answers for each chunk, and at the end what it flushes:
 * on random and hostile bytes (invalid UTF-8, characters split across chunk boundaries, C0
 * controls, quotes, backslashes, U+2028/2029, a BOM), however they are cut.
 */
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { ByteWriter } from '../../src/streams/byte-writer.ts'
import { concatBytes } from '../../src/streams/demux.ts'
import { JsonTextChunks } from '../../src/streams/json-text-chunks.ts'

const encoder = new TextEncoder()
const hex = (bytes: Uint8Array) => Buffer.from(bytes).toString('hex')

/** The exec route's former path: a streaming decoder per stream, then JSON.stringify per chunk. */
function viaStrings(chunks: Uint8Array[]): { perChunk: string[]; end: string } {
  const decoder = new TextDecoder('utf-8', { ignoreBOM: true })
  const inner = (text: string) => hex(encoder.encode(JSON.stringify(text).slice(1, -1)))
  const perChunk = chunks.map((chunk) => inner(decoder.decode(chunk, { stream: true })))
  const rest = decoder.decode()
  return { perChunk, end: rest === '' ? '' : inner(rest) }
}

function viaBytes(chunks: Uint8Array[]): { perChunk: string[]; end: string } {
  const writer = new ByteWriter()
  const text = new JsonTextChunks()
  const perChunk = chunks.map((chunk) => {
    text.write(writer, chunk)
    return hex(writer.take())
  })
  text.end(writer)
  return { perChunk, end: hex(writer.take()) }
}

/** `bytes` cut at the given positions (any order, any repeats). */
function cutAt(bytes: Uint8Array, positions: readonly number[]): Uint8Array[] {
  const cuts = positions.map((position) => position % (bytes.length + 1)).sort((a, b) => a - b)
  return [...cuts, bytes.length].map((end, i) => bytes.subarray(cuts[i - 1] ?? 0, end))
}

const hostile = fc
  .constantFrom(
    [0x22],
    [0x5c],
    [0x00],
    [0x1f],
    [0x7f],
    [0x0a],
    [0x0d],
    [0xe2, 0x80, 0xa8], // U+2028
    [0xe2, 0x80, 0xa9], // U+2029
    [0xef, 0xbb, 0xbf], // a BOM, kept
    [0xef, 0xbf, 0xbd], // a real U+FFFD
    [0xf0, 0x9f, 0x98, 0x80], // 😀
    [0xc3, 0xa9], // é
    [0xc0, 0x80],
    [0xc1],
    [0xe0, 0x80],
    [0xe0, 0xa0],
    [0xed, 0xa0, 0x80], // a surrogate's bytes
    [0xf0, 0x8f],
    [0xf0, 0x90, 0x80],
    [0xf4, 0x90],
    [0xf5],
    [0xff],
    [0x80],
    [0xbf, 0xbf],
  )
  .map((bytes) => Uint8Array.from(bytes))
const piece = fc.oneof(
  { weight: 3, arbitrary: hostile },
  { weight: 2, arbitrary: fc.uint8Array({ maxLength: 8 }) },
  {
    weight: 2,
    arbitrary: fc.string({ unit: 'binary', maxLength: 8 }).map((s) => encoder.encode(s)),
  },
  {
    weight: 1,
    arbitrary: fc.integer({ min: 8, max: 100 }).map((n) => encoder.encode('x'.repeat(n))),
  },
)
const hostileBytes = fc.array(piece, { maxLength: 16 }).map((pieces) => concatBytes(pieces))

describe('JsonTextChunks', () => {
  it('writes what JSON.stringify of a streaming decode gives, chunk by chunk, however the bytes are cut', () => {
    fc.assert(
      fc.property(hostileBytes, fc.array(fc.nat(), { maxLength: 8 }), (bytes, positions) => {
        const chunks = cutAt(bytes, positions)
        expect(viaBytes(chunks)).toEqual(viaStrings(chunks))
      }),
      { numRuns: 3000 },
    )
  })

  it('keeps a character split at every cut whole, in the chunk that ends it', () => {
    const all = encoder.encode('a€b😀c"\\\u2028é\u0001')
    for (let i = 0; i <= all.length; i++) {
      for (let j = i; j <= all.length; j++) {
        const chunks = cutAt(all, [i, j])
        expect(viaBytes(chunks), `${i} ${j}`).toEqual(viaStrings(chunks))
      }
    }
  })

  it('writes one U+FFFD at the end for a character begun and never finished, else nothing', () => {
    const writer = new ByteWriter()
    const text = new JsonTextChunks()
    text.write(writer, Uint8Array.of(0x61, 0xf0))
    text.write(writer, Uint8Array.of(0x9f))
    text.write(writer, new Uint8Array(0))
    text.write(writer, Uint8Array.of(0x98))
    expect(new TextDecoder().decode(writer.take())).toBe('a')
    expect(text.end(writer)).toBe(true)
    expect(writer.take()).toEqual(Uint8Array.of(0xef, 0xbf, 0xbd))
    expect(text.end(writer)).toBe(false)
    expect(writer.length).toBe(0)
  })

  it('reads a byte that breaks a held character again, as the decoder does', () => {
    const chunks = [Uint8Array.of(0xe2, 0x82), Uint8Array.of(0x22, 0xe2), Uint8Array.of(0x41)]
    expect(viaBytes(chunks)).toEqual(viaStrings(chunks))
    expect(Buffer.from(viaBytes(chunks).perChunk[1] ?? '', 'hex').toString()).toBe('\uFFFD\\"')
  })
})
