import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { ByteWriter } from '../../src/streams/byte-writer.ts'
import { concatBytes } from '../../src/streams/demux.ts'

import { sameBytes, viaStrings } from '../support/json-text.ts'

const encoder = new TextEncoder()

function viaBytes(bytes: Uint8Array): Uint8Array {
  const writer = new ByteWriter()
  writer.writeJsonText(bytes)
  return writer.take()
}

/** `bytes` at `offset` inside a larger buffer of plain bytes: the word scan must stay inside. */
function placed(bytes: Uint8Array, offset: number): Uint8Array {
  const buffer = new Uint8Array(offset + bytes.length + 11).fill(0x79)
  buffer.set(bytes, offset)
  return buffer.subarray(offset, offset + bytes.length)
}

// Pieces that reach every branch: long plain runs (the word scan), escapes, valid UTF-8 of any
// code point (lone surrogates become EF BF BD), and broken or overlong sequences
const piece = fc.oneof(
  {
    weight: 4,
    arbitrary: fc.string({ unit: 'binary-ascii', maxLength: 40 }).map((s) => encoder.encode(s)),
  },
  {
    weight: 2,
    arbitrary: fc.string({ unit: 'binary', maxLength: 8 }).map((s) => encoder.encode(s)),
  },
  { weight: 2, arbitrary: fc.uint8Array({ maxLength: 6 }) },
  {
    weight: 2,
    arbitrary: fc
      .constantFrom(
        [0x22],
        [0x5c],
        [0x7f],
        [0x00],
        [0x1f],
        [0xe2, 0x80, 0xa8], // U+2028, which JSON.stringify leaves as it is
        [0xef, 0xbb, 0xbf], // a BOM, kept
        [0xef, 0xbf, 0xbd], // a real U+FFFD
        [0xc0, 0x80],
        [0xc1, 0xbf],
        [0xe0, 0x80, 0x80],
        [0xe0, 0xa0],
        [0xed, 0xa0, 0x80],
        [0xf0, 0x8f, 0xbf, 0xbf],
        [0xf0, 0x90, 0x80],
        [0xf4, 0x90, 0x80, 0x80],
        [0xf5],
        [0xff],
        [0x80],
      )
      .map((bytes) => Uint8Array.from(bytes)),
  },
  {
    weight: 1,
    arbitrary: fc.integer({ min: 8, max: 300 }).map((n) => encoder.encode('y'.repeat(n))),
  },
)
const mixedBytes = fc.array(piece, { maxLength: 12 }).map((pieces) => concatBytes(pieces))

describe('ByteWriter.writeJsonText', () => {
  it('writes exactly what JSON.stringify of the decoded text gives, for any bytes anywhere', () => {
    fc.assert(
      fc.property(
        fc.oneof(mixedBytes, fc.uint8Array({ maxLength: 64 })),
        fc.integer({ min: 0, max: 7 }),
        (bytes, offset) => {
          expect(viaBytes(placed(bytes, offset))).toEqual(viaStrings(bytes))
        },
      ),
      { numRuns: 3000 },
    )
  })

  it('finds every byte value at every place of a word, at every alignment, in a range of the input', () => {
    // The word scan's flags: any one byte among plain ones, in each of the four lanes
    for (let value = 0; value < 256; value++) {
      for (let at = 0; at < 24; at++) {
        const bytes = new Uint8Array(24).fill(0x79)
        bytes[at] = value
        for (let offset = 0; offset < 4; offset++) {
          const input = placed(bytes, offset)
          expect(viaBytes(input), `0x${value.toString(16)} at ${at}+${offset}`).toEqual(
            viaStrings(bytes),
          )
        }
        // A range that leaves the byte out is written without it
        const writer = new ByteWriter()
        writer.writeJsonText(bytes, at + 1, bytes.length)
        expect(writer.take()).toEqual(bytes.subarray(at + 1))
      }
    }
  })

  it('writes long texts of many changes after what the batch holds, one after the other', () => {
    // The input is first copied where its end stays and moved down run by run: texts that grow
    // by up to 6× (C0 controls), of more changes than the writer keeps marks for, after bytes
    // already in the batch, in the same slab or a new one
    const longText = fc
      .array(fc.oneof(piece, fc.constant(Uint8Array.of(0x01, 0x0a, 0x1f))), {
        minLength: 50,
        maxLength: 600,
      })
      .map((pieces) => concatBytes(pieces))
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.string({ unit: 'binary-ascii', maxLength: 20 }), longText), {
          minLength: 1,
          maxLength: 5,
        }),
        fc.integer({ min: 0, max: 3 }),
        (texts, offset) => {
          const writer = new ByteWriter()
          const expected: Uint8Array[] = []
          for (const [before, bytes] of texts) {
            const prefix = encoder.encode(before)
            writer.write(prefix)
            writer.writeJsonText(placed(bytes, offset))
            expected.push(prefix, viaStrings(bytes))
          }
          expect(sameBytes(writer.take(), concatBytes(expected))).toBe(true)
        },
      ),
      { seed: 20261204, numRuns: 200 },
    )
    // Every byte value between plain runs, 64 times over (16,384 changes in one text), then a
    // short text with the writer's marks back to their usual size
    const all = concatBytes(
      Array.from({ length: 64 }, () =>
        Uint8Array.from({ length: 512 }, (_, i) => (i % 2 ? i >> 1 : 0x79)),
      ),
    )
    const writer = new ByteWriter()
    writer.writeJsonText(all)
    expect(sameBytes(writer.take(), viaStrings(all))).toBe(true)
    writer.writeJsonText(encoder.encode('a\tb'))
    expect(new TextDecoder().decode(writer.take())).toBe('a\\tb')
  })

  it('escapes as JSON.stringify does, and copies the rest', () => {
    const bytes = encoder.encode('a"b\\c\td\ne\rf\bg\fh\u0001i\u007fj\u2028k€l')
    expect(new TextDecoder().decode(viaBytes(bytes))).toBe(
      'a\\"b\\\\c\\td\\ne\\rf\\bg\\fh\\u0001i\u007fj\u2028k€l',
    )
  })

  it('shows each invalid sequence as U+FFFD, as TextDecoder does', () => {
    const bytes = Uint8Array.of(0x61, 0xff, 0xf0, 0x90, 0x80, 0x41, 0xed, 0xa0, 0x80, 0xe2, 0x82)
    expect(new TextDecoder().decode(viaBytes(bytes))).toBe('a\uFFFD\uFFFDA\uFFFD\uFFFD\uFFFD\uFFFD')
  })

  it('copies a long line of any alignment, and keeps its place across writes', () => {
    const line = encoder.encode(`${'x'.repeat(3 * 1024 * 1024)}"`)
    const writer = new ByteWriter()
    writer.write(encoder.encode('['))
    writer.writeJsonText(line.subarray(1))
    writer.writeAscii(']')
    const taken = writer.take()
    expect(taken.length).toBe(3 * 1024 * 1024 + 2 + 1)
    expect(new TextDecoder().decode(taken.subarray(-4))).toBe('x\\"]')
    expect(writer.length).toBe(0)
    writer.writeAscii('next')
    expect(new TextDecoder().decode(writer.take())).toBe('next')
  })

  it('hands out chunks that later writes do not change', () => {
    const writer = new ByteWriter()
    writer.writeAscii('first')
    const first = writer.take()
    writer.writeAscii('other')
    expect(new TextDecoder().decode(first)).toBe('first')
  })

  it('hands out exactly what was written since the last take, for any sizes of writes and batches', () => {
    // Batches from a few bytes (a quiet log) to past the largest slab, in any order
    const write = fc.oneof(
      { weight: 6, arbitrary: fc.integer({ min: 1, max: 400 }) },
      { weight: 2, arbitrary: fc.integer({ min: 1_000, max: 40_000 }) },
      { weight: 1, arbitrary: fc.integer({ min: 100_000, max: 300_000 }) },
    )
    const batch = fc.array(write, { minLength: 0, maxLength: 6 })
    fc.assert(
      fc.property(fc.array(batch, { minLength: 1, maxLength: 40 }), (batches) => {
        const writer = new ByteWriter()
        const taken: { chunk: Uint8Array; expected: Uint8Array }[] = []
        let fill = 0
        for (const sizes of batches) {
          const parts = sizes.map((size) => new Uint8Array(size).fill(++fill % 256))
          for (const part of parts) writer.write(part)
          expect(writer.length).toBe(parts.reduce((n, p) => n + p.length, 0))
          taken.push({ chunk: writer.take(), expected: concatBytes(parts) })
        }
        // Every chunk as it was written, also after the writes that came later
        for (const { chunk, expected } of taken) expect(sameBytes(chunk, expected)).toBe(true)
      }),
      { seed: 20261203, numRuns: 60 },
    )
  })

  it('holds a few KiB for a stream that sends little, not a 256 KiB slab each', () => {
    const message = encoder.encode(`event: stdout\nid: 1\ndata: {"text":"${'x'.repeat(150)}"}\n\n`)
    const before = process.memoryUsage().arrayBuffers
    const quiet = Array.from({ length: 1_000 }, () => {
      const writer = new ByteWriter()
      writer.write(message)
      writer.take()
      writer.write(message)
      return writer
    })
    const perWriter = (process.memoryUsage().arrayBuffers - before) / quiet.length
    expect(perWriter).toBeLessThan(8 * 1024)
    expect(quiet.every((writer) => writer.length === message.length)).toBe(true)
  })

  it('refuses to write a line break or a non-ASCII character as ASCII', () => {
    const writer = new ByteWriter()
    expect(() => writer.writeAscii('a\nb')).toThrow(RangeError)
    expect(() => writer.writeAscii('é')).toThrow(RangeError)
  })
})

describe('ByteWriter.reuse', () => {
  const fill = (writer: ByteWriter, size: number, value: number) =>
    writer.write(new Uint8Array(size).fill(value))

  it('starts the next batch where the batch given back started, in the same slab', () => {
    const writer = new ByteWriter()
    for (let i = 0; i < 50; i++) {
      // Batches this large would otherwise fill a slab every other take
      fill(writer, 60 * 1024, i)
      const batch = writer.take()
      expect(batch.byteOffset).toBe(0)
      expect(batch.every((byte) => byte === i)).toBe(true)
      writer.reuse(batch)
    }
  })

  it('does nothing for a batch that is not the last taken, or once more was written', () => {
    const writer = new ByteWriter()
    fill(writer, 100, 1)
    const first = writer.take()
    fill(writer, 100, 2)
    const second = writer.take()
    writer.reuse(first)
    fill(writer, 100, 3)
    expect(first.every((byte) => byte === 1)).toBe(true)
    expect(second.every((byte) => byte === 2)).toBe(true)
    writer.reuse(second)
    expect(writer.take().every((byte) => byte === 3)).toBe(true)
    expect(second.every((byte) => byte === 2)).toBe(true)
  })
})
