import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { concatBytes, type LogFrame } from '../../src/streams/demux.ts'
import { RawLogStream } from '../../src/streams/raw.ts'
import { PARTIAL_MESSAGE_BYTES } from '../../src/streams/timestamp.ts'
import { collect, readableOf } from '../support/streams.ts'

const encoder = new TextEncoder()
const decoder = new TextDecoder()
const TIME = '2026-11-29T03:40:53.902667431Z'
const LATER = '2026-11-29T03:40:54.000000000Z'

/** Cuts bytes into chunks of the given sizes, used in turn. */
function chunksOf(bytes: Uint8Array, sizes: readonly number[]): Uint8Array[] {
  const chunks: Uint8Array[] = []
  for (let offset = 0, i = 0; offset < bytes.length; i++) {
    const size = sizes[i % sizes.length] ?? bytes.length
    chunks.push(bytes.subarray(offset, offset + size))
    offset += size
  }
  return chunks
}

async function split(chunks: readonly (Uint8Array | string)[]): Promise<LogFrame[]> {
  const bytes = chunks.map((chunk) => (typeof chunk === 'string' ? encoder.encode(chunk) : chunk))
  return collect(readableOf(bytes).pipeThrough(new RawLogStream()))
}

// Bytes as text that is fast to compare: toEqual on large typed arrays is slow
function toHex(bytes: Uint8Array): string {
  return Array.from(bytes, (byte) => HEX[byte]).join('')
}
const HEX = Array.from({ length: 256 }, (_, byte) => byte.toString(16).padStart(2, '0'))

function texts(frames: readonly LogFrame[]): string[] {
  return frames.map((frame) => decoder.decode(frame.payload))
}

/** The message pieces the engine logs: 16 KiB partials of the bytes, each with the prefix. */
function partialsOf(time: string, bytes: Uint8Array): Uint8Array[] {
  const pieces: Uint8Array[] = []
  for (let offset = 0; offset < bytes.length; offset += PARTIAL_MESSAGE_BYTES) {
    const piece = bytes.subarray(offset, offset + PARTIAL_MESSAGE_BYTES)
    pieces.push(concatBytes([encoder.encode(`${time} `), piece]))
  }
  return pieces
}

describe('RawLogStream', () => {
  it('splits messages after each newline and keeps the newline', async () => {
    const frames = await split([`${TIME} out1\r\n${TIME} err1\r\n`])
    expect(texts(frames)).toEqual([`${TIME} out1\r\n`, `${TIME} err1\r\n`])
  })

  it('emits every message on stdout', async () => {
    const frames = await split([`${TIME} a\r\n${LATER} b\r\n`])
    expect(frames.map((frame) => frame.stream)).toEqual(['stdout', 'stdout'])
  })

  it('emits a last message without newline at the end of the stream', async () => {
    expect(texts(await split([`${TIME} a\r\n${LATER} no newline`]))).toEqual([
      `${TIME} a\r\n`,
      `${LATER} no newline`,
    ])
  })

  it('joins a message split across chunks, even one byte at a time', async () => {
    const wire = encoder.encode(`${TIME} first\r\n${LATER} second\r\n${LATER} third`)
    for (const sizes of [[1], [2, 7], [40]]) {
      expect(texts(await split(chunksOf(wire, sizes)))).toEqual([
        `${TIME} first\r\n`,
        `${LATER} second\r\n`,
        `${LATER} third`,
      ])
    }
  })

  it('splits at newlines when the logs have no timestamps', async () => {
    expect(texts(await split(['a\r\nb', '\r\nc']))).toEqual(['a\r\n', 'b\r\n', 'c'])
  })

  it('emits nothing for an empty stream', async () => {
    expect(await split([])).toEqual([])
  })

  it('cuts glued 16 KiB partials into the messages the engine logged', async () => {
    // The engine's 40 000-byte line came as frames of 16415, 16415 and 7264 bytes (docs/engine-notes.md#long-lines)
    const line = encoder.encode(`${'a'.repeat(40000)}\r\n`)
    const wire = concatBytes([...partialsOf(TIME, line), encoder.encode(`${LATER} next\r\n`)])
    const frames = await split(chunksOf(wire, [1000]))
    expect(frames.map((frame) => frame.payload.length)).toEqual([16415, 16415, 7265, 37])
    expect(frames.slice(0, 3).map((frame) => toHex(frame.payload))).toEqual(
      partialsOf(TIME, line).map(toHex),
    )
  })

  it('cuts a partial whose rest is only the line terminator', async () => {
    const line = encoder.encode(`${'b'.repeat(PARTIAL_MESSAGE_BYTES)}\r\n`)
    const frames = await split([concatBytes(partialsOf(TIME, line))])
    expect(texts(frames)).toEqual([`${TIME} ${'b'.repeat(PARTIAL_MESSAGE_BYTES)}`, `${TIME} \r\n`])
  })

  it('keeps a long message whole when no prefix follows its first 16 KiB', async () => {
    const message = `${TIME} ${'c'.repeat(PARTIAL_MESSAGE_BYTES)}x${LATER} tail\r\n`
    expect(texts(await split([message]))).toEqual([message])
  })

  it('keeps a message of exactly 16 KiB and a newline whole', async () => {
    const message = `${TIME} ${'d'.repeat(PARTIAL_MESSAGE_BYTES)}\n`
    expect(texts(await split([message, `${LATER} e\n`]))).toEqual([message, `${LATER} e\n`])
  })

  it('does not cut a message that does not start with a timestamp', async () => {
    const message = `${'f'.repeat(PARTIAL_MESSAGE_BYTES + 31)}${TIME} tail\n`
    expect(texts(await split([message]))).toEqual([message])
  })

  it('emits a 16 KiB partial as soon as the next partial starts, before the line ends', async () => {
    const stream = new RawLogStream()
    const writer = stream.writable.getWriter()
    const reader = stream.readable.getReader()
    void writer.write(encoder.encode(`${TIME} ${'g'.repeat(PARTIAL_MESSAGE_BYTES)}${TIME} `))
    const first = await reader.read()
    expect(first.value?.payload.length).toBe(31 + PARTIAL_MESSAGE_BYTES)
    void writer.write(encoder.encode('end\n'))
    void writer.close()
    expect(texts([(await reader.read()).value as LogFrame])).toEqual([`${TIME} end\n`])
    expect((await reader.read()).done).toBe(true)
  })

  it('gives back the engine messages of any TTY log however the bytes are chunked', async () => {
    const line = fc.record({
      text: fc.oneof(
        { weight: 5, arbitrary: fc.string({ unit: 'binary', maxLength: 20 }) },
        {
          weight: 1,
          arbitrary: fc.integer({ min: 16000, max: 40000 }).map((n) => 'aé€'.repeat(n / 3)),
        },
      ),
      second: fc.integer({ min: 0, max: 2 }),
    })
    const chunkSizes = fc.array(fc.integer({ min: 1, max: 20000 }), { minLength: 1, maxLength: 8 })
    await fc.assert(
      fc.asyncProperty(
        fc.array(line, { maxLength: 8 }),
        fc.boolean(),
        chunkSizes,
        async (lines, lastHasNewline, sizes) => {
          const messages = lines.flatMap(({ text, second }, i) => {
            const newline = i < lines.length - 1 || lastHasNewline ? '\r\n' : ''
            const bytes = encoder.encode(`${text.replaceAll('\n', ' ')}${newline}`)
            return bytes.length === 0
              ? []
              : partialsOf(`2026-11-29T03:40:0${second}.000000000Z`, bytes)
          })
          const frames = await split(chunksOf(concatBytes(messages), sizes))
          expect(frames.map((frame) => toHex(frame.payload))).toEqual(messages.map(toHex))
        },
      ),
      { numRuns: 100 },
    )
  })
})
