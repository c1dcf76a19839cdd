import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import {
  concatBytes,
  DemuxStream,
  FrameDecoder,
  type LogFrame,
  MAX_FRAME_BYTES,
} from '../../src/streams/demux.ts'
import { collect, readableOf } from '../support/streams.ts'

const encoder = new TextEncoder()
const STREAM_IDS = { stdin: 0, stdout: 1, stderr: 2, system: 3 } as const

function frameHeader(id: number, size: number): Uint8Array {
  const header = new Uint8Array(8)
  header[0] = id
  new DataView(header.buffer).setUint32(4, size)
  return header
}

function encodeFrame(frame: LogFrame): Uint8Array {
  return concatBytes([frameHeader(STREAM_IDS[frame.stream], frame.payload.length), frame.payload])
}

function frame(stream: LogFrame['stream'], text: string): LogFrame {
  return { stream, payload: encoder.encode(text) }
}

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

function demux(chunks: readonly Uint8Array[]): Promise<LogFrame[]> {
  return collect(readableOf(chunks).pipeThrough(new DemuxStream()))
}

// Frames as comparable values: a payload view and a fresh copy of the same bytes are equal
function comparable(frames: readonly LogFrame[]): string[] {
  return frames.map(({ stream, payload }) => `${stream}:${toHex(payload)}`)
}

function toHex(bytes: Uint8Array): string {
  return Array.from(bytes, (byte) => byte.toString(16).padStart(2, '0')).join('')
}

describe('DemuxStream', () => {
  it('decodes frames of every stream id', async () => {
    const frames = [
      frame('stdin', 'in\n'),
      frame('stdout', 'out1\n'),
      frame('stderr', 'err1\n'),
      frame('system', 'Error grabbing logs: boom\n'),
    ]
    const decoded = await demux([concatBytes(frames.map(encodeFrame))])
    expect(comparable(decoded)).toEqual(comparable(frames))
  })

  it('decodes the bytes the engine sent for two log lines', async () => {
    const wire = Uint8Array.from([
      ...[1, 0, 0, 0, 0, 0, 0, 5, ...encoder.encode('out1\n')],
      ...[2, 0, 0, 0, 0, 0, 0, 5, ...encoder.encode('err1\n')],
    ])
    expect(comparable(await demux([wire]))).toEqual(
      comparable([frame('stdout', 'out1\n'), frame('stderr', 'err1\n')]),
    )
  })

  it('splits a frame header across chunks', async () => {
    const wire = encodeFrame(frame('stdout', 'hello\n'))
    for (let cut = 1; cut < 8; cut++) {
      const decoded = await demux([wire.subarray(0, cut), wire.subarray(cut)])
      expect(comparable(decoded)).toEqual(comparable([frame('stdout', 'hello\n')]))
    }
  })

  it('joins a payload split across many chunks', async () => {
    const frames = [frame('stderr', 'a payload spread thin'), frame('stdout', 'next')]
    const decoded = await demux(chunksOf(concatBytes(frames.map(encodeFrame)), [3, 1, 5]))
    expect(comparable(decoded)).toEqual(comparable(frames))
  })

  it('decodes a stream fed one byte at a time', async () => {
    const frames = [frame('stdout', 'one\n'), frame('stderr', 'two\n'), frame('stdout', 'three')]
    const decoded = await demux(chunksOf(concatBytes(frames.map(encodeFrame)), [1]))
    expect(comparable(decoded)).toEqual(comparable(frames))
  })

  it('decodes many frames from one chunk as views without copying', async () => {
    const wire = concatBytes([frame('stdout', 'a'), frame('stderr', 'bb')].map(encodeFrame))
    const [first, second] = await demux([wire])
    expect(first?.payload.buffer).toBe(wire.buffer)
    expect(second?.payload.byteOffset).toBe(wire.byteOffset + 8 + 1 + 8)
  })

  it('drops zero-size frames', async () => {
    const wire = concatBytes([
      frameHeader(1, 0),
      encodeFrame(frame('stderr', 'x')),
      frameHeader(2, 0),
    ])
    expect(comparable(await demux(chunksOf(wire, [1])))).toEqual(comparable([frame('stderr', 'x')]))
  })

  it('decodes nothing from an empty stream', async () => {
    expect(await demux([])).toEqual([])
    expect(await demux([new Uint8Array()])).toEqual([])
  })

  it('reads the size as unsigned big-endian', async () => {
    const payload = new Uint8Array(0x01_02_03)
    const decoded = await demux([frameHeader(1, payload.length), payload])
    expect(decoded[0]?.payload.length).toBe(0x01_02_03)
  })

  it('errors on an unknown stream id', async () => {
    const wire = concatBytes([
      encodeFrame(frame('stdout', 'ok')),
      frameHeader(4, 1),
      Uint8Array.of(0),
    ])
    const result = demux([wire])
    await expect(result).rejects.toThrow(SyntaxError)
    await expect(result).rejects.toThrow('Cannot decode multiplexed stream: unknown stream id 4')
  })

  it('errors when header bytes 1 to 3 are not zero', async () => {
    const header = frameHeader(1, 1)
    header[2] = 7
    await expect(demux(chunksOf(header, [1]))).rejects.toThrow(
      new SyntaxError(
        'Cannot decode multiplexed stream: header bytes 1-3 must be zero: current value is 00 07 00',
      ),
    )
  })

  it('errors on a header that claims more than a frame can hold, before buffering it', async () => {
    const wire = concatBytes([encodeFrame(frame('stdout', 'ok')), frameHeader(1, 0xff_ff_ff_ff)])
    await expect(demux([wire, new Uint8Array(1024)])).rejects.toThrow(
      new SyntaxError(
        `Cannot decode multiplexed stream: a frame of 4294967295 bytes (at most ${MAX_FRAME_BYTES})`,
      ),
    )
    const largest = new Uint8Array(MAX_FRAME_BYTES)
    const decoded = await demux([frameHeader(2, largest.length), ...chunksOf(largest, [65_536])])
    expect(decoded.map((f) => [f.stream, f.payload.length])).toEqual([['stderr', MAX_FRAME_BYTES]])
  })

  it('errors on bytes that are not a multiplexed stream', async () => {
    await expect(demux([encoder.encode('2026-11-29T03:40:53.902667431Z out1\n')])).rejects.toThrow(
      SyntaxError,
    )
  })

  it('errors on a truncated payload with the count of trailing bytes', async () => {
    const wire = encodeFrame(frame('stdout', 'truncated'))
    await expect(demux([wire.subarray(0, 12)])).rejects.toThrow(
      new SyntaxError('Cannot decode multiplexed stream: 12 trailing bytes'),
    )
  })

  it('errors on a truncated header with the count of trailing bytes', async () => {
    const wire = concatBytes([encodeFrame(frame('stdout', 'ok')), frameHeader(1, 3).subarray(0, 5)])
    await expect(demux(chunksOf(wire, [2]))).rejects.toThrow(
      new SyntaxError('Cannot decode multiplexed stream: 5 trailing bytes'),
    )
  })

  it('decodes any frames however the bytes are chunked', async () => {
    const anyFrame = fc.record({
      stream: fc.constantFrom('stdin', 'stdout', 'stderr', 'system'),
      payload: fc.uint8Array({ maxLength: 40 }),
    })
    const chunkSizes = fc.oneof(
      fc.constant([1]),
      fc.array(fc.integer({ min: 1, max: 24 }), { minLength: 1, maxLength: 8 }),
      fc.array(fc.integer({ min: 1, max: 400 }), { minLength: 1, maxLength: 8 }),
    )
    await fc.assert(
      fc.asyncProperty(fc.array(anyFrame, { maxLength: 12 }), chunkSizes, async (frames, sizes) => {
        const wire = concatBytes(frames.map(encodeFrame))
        const decoded = await demux(chunksOf(wire, sizes))
        const expected = frames.filter((frame) => frame.payload.length > 0)
        expect(comparable(decoded)).toEqual(comparable(expected))
      }),
      { numRuns: 100 },
    )
  })
})

describe('FrameDecoder with pieces', () => {
  it('hands out each frame as the pieces the chunks hold, views of them, never joined', () => {
    const anyFrame = fc.record({
      stream: fc.constantFrom('stdin', 'stdout', 'stderr', 'system'),
      payload: fc.uint8Array({ minLength: 1, maxLength: 40 }),
    })
    const chunkSizes = fc.array(fc.integer({ min: 1, max: 60 }), { minLength: 1, maxLength: 8 })
    fc.assert(
      fc.property(fc.array(anyFrame, { maxLength: 12 }), chunkSizes, (frames, sizes) => {
        const decoder = new FrameDecoder({ pieces: true })
        const pieces: LogFrame[] = []
        const chunks = chunksOf(concatBytes(frames.map(encodeFrame)), sizes)
        for (const chunk of chunks) {
          decoder.push(chunk, (piece) => {
            // A view of the chunk it came in
            expect(piece.payload.buffer).toBe(chunk.buffer)
            expect(piece.payload.length).toBeGreaterThan(0)
            pieces.push(piece)
          })
        }
        decoder.finish()
        // Joined again, piece by piece in order, they are the frames
        const joined: LogFrame[] = []
        let at = 0
        for (const frame of frames) {
          const parts: Uint8Array[] = []
          let length = 0
          while (length < frame.payload.length) {
            const piece = pieces[at++]!
            expect(piece.stream).toBe(frame.stream)
            parts.push(piece.payload)
            length += piece.payload.length
          }
          joined.push({ stream: frame.stream, payload: concatBytes(parts) })
        }
        expect(at).toBe(pieces.length)
        expect(comparable(joined)).toEqual(comparable(frames))
        // Only a frame split between chunks comes in more than one piece
        expect(pieces.length).toBeLessThanOrEqual(frames.length + Math.max(0, chunks.length - 1))
      }),
      { numRuns: 200 },
    )
  })

  it('still refuses a stream that ends inside a frame', () => {
    const decoder = new FrameDecoder({ pieces: true })
    decoder.push(encodeFrame(frame('stdout', 'hello')).subarray(0, 10), () => {})
    expect(() => decoder.finish()).toThrow(
      new SyntaxError('Cannot decode multiplexed stream: 10 trailing bytes'),
    )
  })
})
