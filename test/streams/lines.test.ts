import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { concatBytes, DemuxStream, type LogFrame } from '../../src/streams/demux.ts'
import {
  type LogLine,
  LogLineStream,
  type LogLineStreamOptions,
  LogStreamError,
} from '../../src/streams/lines.ts'
import { RawLogStream } from '../../src/streams/raw.ts'
import { PARTIAL_MESSAGE_BYTES } from '../../src/streams/timestamp.ts'
import { collect, readableOf } from '../support/streams.ts'

const encoder = new TextEncoder()
const T1 = '2026-11-29T03:40:53.902667431Z'
const T2 = '2026-11-29T03:40:54.000000000Z'

/** A frame as the engine sends it with `timestamps=1`. */
function stamped(stream: LogFrame['stream'], time: string, content: string | Uint8Array): LogFrame {
  const bytes = typeof content === 'string' ? encoder.encode(content) : content
  return { stream, payload: concatBytes([encoder.encode(`${time} `), bytes]) }
}

function assemble(frames: readonly LogFrame[], options?: LogLineStreamOptions): Promise<LogLine[]> {
  return collect(readableOf(frames).pipeThrough(new LogLineStream(options)))
}

describe('LogLineStream', () => {
  it('emits a line per frame that ends in a newline', async () => {
    const lines = await assemble([stamped('stdout', T1, 'out1\n'), stamped('stderr', T2, 'err1\n')])
    expect(lines).toEqual([
      { stream: 'stdout', time: T1, text: 'out1' },
      { stream: 'stderr', time: T2, text: 'err1' },
    ])
  })

  it('joins partials with the same timestamp and drops their prefixes', async () => {
    const lines = await assemble([
      stamped('stdout', T1, 'aaa'),
      stamped('stdout', T1, 'bbb'),
      stamped('stdout', T1, 'ccc\n'),
    ])
    expect(lines).toEqual([{ stream: 'stdout', time: T1, text: 'aaabbbccc' }])
  })

  it('emits a partial as its own line when the next frame of its stream has another timestamp', async () => {
    const lines = await assemble([
      stamped('stdout', T1, 'no newline'),
      stamped('stdout', T2, 'x\n'),
    ])
    expect(lines).toEqual([
      { stream: 'stdout', time: T1, text: 'no newline' },
      { stream: 'stdout', time: T2, text: 'x' },
    ])
  })

  it('assembles lines per stream when stdout and stderr frames interleave', async () => {
    const lines = await assemble([
      stamped('stdout', T1, 'out-'),
      stamped('stderr', T1, 'err-'),
      stamped('stderr', T1, 'end\n'),
      stamped('stdout', T1, 'end\n'),
    ])
    expect(lines).toEqual([
      { stream: 'stderr', time: T1, text: 'err-end' },
      { stream: 'stdout', time: T1, text: 'out-end' },
    ])
  })

  it("emits a line of one stream after the other stream's earlier long line it came during", async () => {
    // A long stdout line: its last partial, stamped with its first one's time, comes after a
    // stderr line written meanwhile. In timestamp order, the engine's `since` order.
    const T3 = '2026-11-29T03:40:55.000000000Z'
    const lines = await assemble([
      stamped('stdout', T1, 'a'.repeat(PARTIAL_MESSAGE_BYTES)),
      stamped('stderr', T2, 'err\n'),
      stamped('stderr', T2, 'err again\n'),
      stamped('stdout', T1, 'aaa\n'),
      stamped('stderr', T3, 'later\n'),
    ])
    expect(
      lines.map((l) => [l.stream, l.time, l.text.length > 20 ? l.text.length : l.text]),
    ).toEqual([
      ['stdout', T1, PARTIAL_MESSAGE_BYTES + 3],
      ['stderr', T2, 'err'],
      ['stderr', T2, 'err again'],
      ['stderr', T3, 'later'],
    ])
  })

  it('emits the lines it held once the earlier line ends with the stream', async () => {
    const lines = await assemble([
      stamped('stdout', T1, 'a'.repeat(PARTIAL_MESSAGE_BYTES)),
      stamped('stderr', T2, 'err\n'),
    ])
    expect(lines.map((l) => l.text.slice(0, 3))).toEqual(['aaa', 'err'])
  })

  it('holds nothing behind a shorter partial: the end of its output, not a line going on', async () => {
    // A last message without newline (the rest of a run's output at its exit).
    const lines = await assemble([stamped('stdout', T1, 'partial'), stamped('stderr', T2, 'err\n')])
    expect(lines.map((l) => l.text)).toEqual(['err', 'partial'])
  })

  it('emits pending partials at the end of the stream in the order they started', async () => {
    const lines = await assemble([
      stamped('stderr', T1, 'err'),
      stamped('stdout', T2, 'out'),
      stamped('stderr', T1, ' more'),
    ])
    expect(lines).toEqual([
      { stream: 'stderr', time: T1, text: 'err more' },
      { stream: 'stdout', time: T2, text: 'out' },
    ])
  })

  it('treats stdin frames as stdout', async () => {
    const lines = await assemble([stamped('stdin', T1, 'typed '), stamped('stdout', T1, 'echo\n')])
    expect(lines).toEqual([{ stream: 'stdout', time: T1, text: 'typed echo' }])
  })

  it('keeps empty lines', async () => {
    const lines = await assemble([stamped('stdout', T1, '\n'), stamped('stdout', T1, '\r\n')])
    expect(lines.map((line) => line.text)).toEqual(['', ''])
  })

  it('strips the final newline and one carriage return before it', async () => {
    const lines = await assemble([
      stamped('stdout', T1, 'crlf\r\n'),
      stamped('stdout', T1, 'two\r\r\n'),
      stamped('stdout', T1, 'in\rside\n'),
      stamped('stdout', T1, 'no newline\r'),
    ])
    expect(lines.map((line) => line.text)).toEqual(['crlf', 'two\r', 'in\rside', 'no newline\r'])
  })

  it('strips a CRLF split across partials', async () => {
    const lines = await assemble([stamped('stdout', T1, 'tty\r'), stamped('stdout', T1, '\n')])
    expect(lines.map((line) => line.text)).toEqual(['tty'])
  })

  it('decodes a character split across partials intact', async () => {
    const euro = encoder.encode('€')
    const lines = await assemble([
      stamped('stdout', T1, concatBytes([encoder.encode('price '), euro.subarray(0, 1)])),
      stamped('stdout', T1, euro.subarray(1, 2)),
      stamped('stdout', T1, concatBytes([euro.subarray(2), encoder.encode('5\n')])),
    ])
    expect(lines.map((line) => line.text)).toEqual(['price €5'])
  })

  it('replaces invalid UTF-8 with U+FFFD', async () => {
    const lines = await assemble([stamped('stdout', T1, Uint8Array.of(0x61, 0xff, 0x62, 0x0a))])
    expect(lines.map((line) => line.text)).toEqual(['a\uFFFDb'])
  })

  it('keeps a leading byte order mark as part of the text', async () => {
    const lines = await assemble([stamped('stdout', T1, '\uFEFFbom\n')])
    expect(lines.map((line) => line.text)).toEqual(['\uFEFFbom'])
  })

  it('errors with a LogStreamError carrying the engine message on a system frame', async () => {
    const system = { stream: 'system', payload: encoder.encode('Error grabbing logs: boom\n') }
    const result = assemble([stamped('stdout', T1, 'ok\n'), system as LogFrame])
    await expect(result).rejects.toBeInstanceOf(LogStreamError)
    await expect(result).rejects.toThrow(/^Error grabbing logs: boom$/)
  })

  it('errors with a SyntaxError on a frame without timestamp prefix', async () => {
    const frame: LogFrame = { stream: 'stdout', payload: encoder.encode('out1\n') }
    await expect(assemble([frame])).rejects.toThrow(
      new SyntaxError('Cannot parse log message: missing timestamp'),
    )
  })

  it('assembles the 40 000-byte line and last line the engine sent', async () => {
    const wire = concatBytes([
      ...engineFrames('stdout', T1, `${'a'.repeat(40000)}\n`).map(encodeFrame),
      ...engineFrames('stdout', T2, 'nonewline').map(encodeFrame),
    ])
    const lines = await collect(
      readableOf(cutAt(wire, [5, 16000, 16430]))
        .pipeThrough(new DemuxStream())
        .pipeThrough(new LogLineStream()),
    )
    expect(lines).toEqual([
      { stream: 'stdout', time: T1, text: 'a'.repeat(40000) },
      { stream: 'stdout', time: T2, text: 'nonewline' },
    ])
  })

  describe('with maxLineBytes', () => {
    it('emits a longer line in pieces that all carry its time', async () => {
      const lines = await assemble([stamped('stdout', T1, 'abcdefghij\n')], { maxLineBytes: 4 })
      expect(lines).toEqual(
        ['abcd', 'efgh', 'ij'].map((text) => ({ stream: 'stdout', time: T1, text })),
      )
    })

    it('does not count the line terminator', async () => {
      const lines = await assemble([stamped('stdout', T1, 'abcd\r\n')], { maxLineBytes: 4 })
      expect(lines.map((line) => line.text)).toEqual(['abcd'])
    })

    it('cuts before a multi-byte character, not inside it', async () => {
      const lines = await assemble([stamped('stdout', T1, 'ab€cdefg\n')], { maxLineBytes: 4 })
      expect(lines.map((line) => line.text)).toEqual(['ab', '€c', 'defg'])
    })

    it('leaves no empty line when a CRLF is split across partials at the limit', async () => {
      const lines = await assemble([stamped('stdout', T1, 'abcd\r'), stamped('stdout', T1, '\n')], {
        maxLineBytes: 4,
      })
      expect(lines.map((line) => line.text)).toEqual(['abcd'])
    })

    it('emits pieces of a line while its partials keep coming', async () => {
      const stream = new LogLineStream({ maxLineBytes: 20000 })
      const writer = stream.writable.getWriter()
      const reader = stream.readable.getReader()
      void writer.write(stamped('stdout', T1, 'x'.repeat(PARTIAL_MESSAGE_BYTES)))
      void writer.write(stamped('stdout', T1, 'x'.repeat(PARTIAL_MESSAGE_BYTES)))
      const { value } = await reader.read()
      expect(value).toEqual({ stream: 'stdout', time: T1, text: 'x'.repeat(20000) })
      void writer.close()
      expect((await reader.read()).value?.text).toBe('x'.repeat(2 * PARTIAL_MESSAGE_BYTES - 20000))
    })

    it('splits any line into pieces within the limit that join back into it', async () => {
      await fc.assert(
        fc.asyncProperty(
          fc
            .string({ unit: 'binary', maxLength: 200 })
            .map((text) => text.replaceAll(/[\r\n]/g, ' ')),
          fc.constantFrom('', '\n', '\r\n'),
          fc.integer({ min: 4, max: 40 }),
          cutPositions,
          async (text, terminator, maxLineBytes, positions) => {
            const partials = cutAt(encoder.encode(text + terminator), positions)
            const frames = partials
              .filter((partial) => partial.length > 0)
              .map((partial) => stamped('stdout', T1, partial))
            const pieces = (await assemble(frames, { maxLineBytes })).map((line) => line.text)

            expect(pieces.join('')).toBe(text)
            for (const piece of pieces) {
              expect(encoder.encode(piece).length).toBeLessThanOrEqual(maxLineBytes)
            }
          },
        ),
        { numRuns: 100 },
      )
    })

    it('rejects a limit below one UTF-8 character', () => {
      expect(() => new LogLineStream({ maxLineBytes: 3 })).toThrow(RangeError)
      expect(() => new LogLineStream({ maxLineBytes: 1.5 })).toThrow(RangeError)
    })
  })
})

// ---- The engine's side, for the round-trip properties ----------------------------------------

interface SentLine {
  stream: 'stdout' | 'stderr'
  time: string
  text: string
  newline: boolean
}

const STREAM_IDS = { stdin: 0, stdout: 1, stderr: 2, system: 3 } as const

function encodeFrame(frame: LogFrame): Uint8Array {
  const header = new Uint8Array(8)
  header[0] = STREAM_IDS[frame.stream]
  new DataView(header.buffer).setUint32(4, frame.payload.length)
  return concatBytes([header, frame.payload])
}

/** The frames the json-file driver gives for one message: 16 KiB partials sharing a prefix. */
function engineFrames(stream: LogFrame['stream'], time: string, message: string): LogFrame[] {
  const bytes = encoder.encode(message)
  const frames: LogFrame[] = []
  for (let offset = 0; offset < bytes.length; offset += PARTIAL_MESSAGE_BYTES) {
    frames.push(stamped(stream, time, bytes.subarray(offset, offset + PARTIAL_MESSAGE_BYTES)))
  }
  return frames
}

/** Merges two frame lists, keeping each one's order, taking from the first where `picks` say so. */
function interleave<T>(first: T[], second: T[], picks: readonly boolean[]): T[] {
  const merged: T[] = []
  let i = 0
  let j = 0
  for (const pickFirst of picks) {
    const next = pickFirst ? first[i++] : second[j++]
    if (next !== undefined) merged.push(next)
  }
  return [...merged, ...first.slice(i), ...second.slice(j)]
}

function cutAt(bytes: Uint8Array, positions: readonly number[]): Uint8Array[] {
  const cuts = positions.map((position) => position % (bytes.length + 1)).sort((a, b) => a - b)
  return [...cuts, bytes.length].map((end, i) => bytes.subarray(cuts[i - 1] ?? 0, end))
}

function linesOf(lines: readonly (SentLine | LogLine)[], stream: LogLine['stream']) {
  return lines.filter((line) => line.stream === stream).map(({ time, text }) => ({ time, text }))
}

const shortText = fc.string({ unit: 'binary', maxLength: 24 })
// Long texts built from a repeated unit, so that 16 KiB partials cut through multi-byte characters
const longText = fc
  .tuple(
    fc.string({ unit: 'binary', minLength: 1, maxLength: 5 }),
    fc.integer({ min: 16000, max: 40000 }),
  )
  .map(([unit, length]) => unit.repeat(Math.ceil(length / unit.length)))
const lineText = fc
  .oneof({ weight: 12, arbitrary: shortText }, { weight: 1, arbitrary: longText })
  .map((text) => text.replaceAll('\n', ' '))

const sentLine = fc.record({
  stream: fc.constantFrom('stdout', 'stderr'),
  // Few distinct times, so that neighbouring messages often share one
  time: fc.integer({ min: 0, max: 2 }).map((second) => `2026-11-29T03:40:0${second}.000000000Z`),
  text: lineText,
  newline: fc.boolean(),
})

/** Only the last line of a stream may lack its newline, and the engine never logs nothing. */
function asLogged(lines: SentLine[]): SentLine[] {
  return lines.map((line, i) => {
    const isLastOfStream = !lines.slice(i + 1).some((later) => later.stream === line.stream)
    return { ...line, newline: line.newline || !isLastOfStream || line.text === '' }
  })
}

const cutPositions = fc.array(fc.nat(), { maxLength: 40 })

describe('DemuxStream and LogLineStream', () => {
  it('give back the lines of any multiplexed log however the bytes are chunked', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(sentLine, { maxLength: 12 }).map(asLogged),
        fc.array(fc.boolean(), { maxLength: 40 }),
        cutPositions,
        async (sent, picks, positions) => {
          const framesOf = (stream: LogLine['stream']) =>
            sent
              .filter((line) => line.stream === stream)
              .flatMap((line) =>
                engineFrames(stream, line.time, line.text + (line.newline ? '\n' : '')),
              )
          const frames = interleave(framesOf('stdout'), framesOf('stderr'), picks)
          const wire = concatBytes(frames.map(encodeFrame))

          const received = await collect(
            readableOf(cutAt(wire, positions))
              .pipeThrough(new DemuxStream())
              .pipeThrough(new LogLineStream()),
          )
          // Without a TTY a line's own `\r` before the `\n` looks like a CRLF ending
          const expected = sent.map((line) =>
            line.newline && line.text.endsWith('\r')
              ? { ...line, text: line.text.slice(0, -1) }
              : line,
          )
          expect(linesOf(received, 'stdout')).toEqual(linesOf(expected, 'stdout'))
          expect(linesOf(received, 'stderr')).toEqual(linesOf(expected, 'stderr'))
        },
      ),
      { numRuns: 100 },
    )
  })

  it('give back the lines of a multiplexed log fed one byte at a time', async () => {
    const frames = [
      ...engineFrames('stderr', T1, 'err €\n'),
      ...engineFrames('stdout', T1, 'out\n'),
      ...engineFrames('stdout', T2, 'last'),
    ]
    const wire = concatBytes(frames.map(encodeFrame))
    const oneByteChunks = Array.from(wire, (byte) => Uint8Array.of(byte))
    const lines = await collect(
      readableOf(oneByteChunks).pipeThrough(new DemuxStream()).pipeThrough(new LogLineStream()),
    )
    expect(lines).toEqual([
      { stream: 'stderr', time: T1, text: 'err €' },
      { stream: 'stdout', time: T1, text: 'out' },
      { stream: 'stdout', time: T2, text: 'last' },
    ])
  })
})

describe('RawLogStream and LogLineStream', () => {
  it('give back the lines of any TTY log however the bytes are chunked', async () => {
    const ttyLine = sentLine.map((line): SentLine => ({ ...line, stream: 'stdout' }))
    await fc.assert(
      fc.asyncProperty(
        fc.array(ttyLine, { maxLength: 12 }).map(asLogged),
        cutPositions,
        async (sent, positions) => {
          // A TTY turns `\n` into `\r\n`, and the raw stream glues the messages together
          const frames = sent.flatMap((line) =>
            engineFrames('stdout', line.time, line.text + (line.newline ? '\r\n' : '')),
          )
          const wire = concatBytes(frames.map((frame) => frame.payload))

          const received = await collect(
            readableOf(cutAt(wire, positions))
              .pipeThrough(new RawLogStream())
              .pipeThrough(new LogLineStream()),
          )
          expect(linesOf(received, 'stdout')).toEqual(linesOf(sent, 'stdout'))
          expect(received).toHaveLength(sent.length)
        },
      ),
      { numRuns: 100 },
    )
  })

  it('give back the lines of a TTY log fed one byte at a time', async () => {
    const wire = encoder.encode(`${T1} one €\r\n${T1} \r\n${T2} last\r`)
    const oneByteChunks = Array.from(wire, (byte) => Uint8Array.of(byte))
    const lines = await collect(
      readableOf(oneByteChunks).pipeThrough(new RawLogStream()).pipeThrough(new LogLineStream()),
    )
    expect(lines).toEqual([
      { stream: 'stdout', time: T1, text: 'one €' },
      { stream: 'stdout', time: T1, text: '' },
      { stream: 'stdout', time: T2, text: 'last\r' },
    ])
  })
})
