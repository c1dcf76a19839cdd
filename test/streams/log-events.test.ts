import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { concatBytes, DemuxStream, type LogFrame } from '../../src/streams/demux.ts'
import { type LogLine, LogLineStream, LogStreamError } from '../../src/streams/lines.ts'
import { LogEventEncoder, pumpLogEvents } from '../../src/streams/log-events.ts'
import { RawLogStream } from '../../src/streams/raw.ts'
import { encodeSse } from '../../src/streams/sse.ts'
import { PARTIAL_MESSAGE_BYTES } from '../../src/streams/timestamp.ts'
import { collect, readableOf } from '../support/streams.ts'

const encoder = new TextEncoder()
const decoder = new TextDecoder()
const T1 = '2026-11-29T03:40:53.902667431Z'
const T2 = '2026-11-29T03:40:54.000000000Z'
const STREAM_IDS = { stdin: 0, stdout: 1, stderr: 2, system: 3 } as const

function frame(stream: LogFrame['stream'], payload: string | Uint8Array): Uint8Array {
  const bytes = typeof payload === 'string' ? encoder.encode(payload) : payload
  const header = new Uint8Array(8)
  header[0] = STREAM_IDS[stream]
  new DataView(header.buffer).setUint32(4, bytes.length)
  return concatBytes([header, bytes])
}

const stamped = (time: string, content: Uint8Array) =>
  concatBytes([encoder.encode(`${time} `), content])

/** Ids as the route gives them, in miniature: a count per line, every third line left out. */
function countingIds() {
  let count = 0
  return (time: string) => {
    count += 1
    return count % 3 === 0 ? undefined : `${time}/${count}`
  }
}

/** The route's old path: Web-stream stages, then one encodeSse per line. */
async function viaLineObjects(
  chunks: Uint8Array[],
  tty: boolean,
  maxLineBytes: number | undefined,
): Promise<string> {
  const frames = readableOf(chunks).pipeThrough(tty ? new RawLogStream() : new DemuxStream())
  const lines: LogLine[] = await collect(frames.pipeThrough(new LogLineStream({ maxLineBytes })))
  const eventId = countingIds()
  let text = ''
  for (const line of lines) {
    const id = eventId(line.time)
    if (id === undefined) continue
    const data = JSON.stringify({ time: line.time, text: line.text })
    text += encodeSse({ event: line.stream, id, data })
  }
  return text
}

function viaEncoder(chunks: Uint8Array[], tty: boolean, maxLineBytes: number | undefined) {
  const events = new LogEventEncoder({ tty, maxLineBytes, eventId: countingIds() })
  const batches: Uint8Array[] = []
  for (const chunk of chunks) {
    events.write(chunk)
    batches.push(events.take())
  }
  events.end()
  batches.push(events.take())
  return batches
}

function cutAt(bytes: Uint8Array, positions: readonly number[]): Uint8Array[] {
  const cuts = positions.map((position) => position % (bytes.length + 1)).sort((a, b) => a - b)
  return [...cuts, bytes.length].map((end, i) => bytes.subarray(cuts[i - 1] ?? 0, end))
}

// Line contents as bytes: text of any code point, raw bytes (invalid UTF-8, controls, quotes),
// and long lines that the engine cuts into 16 KiB partials
const content = fc.oneof(
  {
    weight: 6,
    arbitrary: fc.string({ unit: 'binary', maxLength: 24 }).map((s) => encoder.encode(s)),
  },
  { weight: 4, arbitrary: fc.uint8Array({ maxLength: 24 }) },
  {
    weight: 1,
    arbitrary: fc
      .tuple(fc.uint8Array({ minLength: 1, maxLength: 5 }), fc.integer({ min: 16000, max: 40000 }))
      .map(([unit, length]) => {
        const bytes = new Uint8Array(length)
        for (let i = 0; i < length; i++) bytes[i] = unit[i % unit.length] ?? 0
        return bytes
      }),
  },
)
const message = fc.record({
  stream: fc.constantFrom('stdout', 'stderr', 'stdin'),
  second: fc.integer({ min: 0, max: 2 }),
  content,
  terminator: fc.constantFrom('', '\n', '\r\n'),
})
type Message = typeof message extends fc.Arbitrary<infer T> ? T : never

/** The engine's partials for one message, each with its own copy of the prefix. */
function partials({ second, content: bytes, terminator }: Message): Uint8Array[] {
  const time = `2026-11-29T03:40:0${second}.000000000Z`
  const all = concatBytes([bytes, encoder.encode(terminator)])
  const cut: Uint8Array[] = []
  for (let offset = 0; offset < all.length; offset += PARTIAL_MESSAGE_BYTES) {
    cut.push(stamped(time, all.subarray(offset, offset + PARTIAL_MESSAGE_BYTES)))
  }
  return cut
}

const limits = fc.option(fc.integer({ min: 4, max: 64 }), { nil: undefined })
const cutPositions = fc.array(fc.nat(), { maxLength: 30 })

describe('LogEventEncoder', () => {
  it('writes byte for byte the events of the line objects, for any multiplexed log and chunking', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(message, { maxLength: 10 }),
        limits,
        cutPositions,
        async (messages, maxLineBytes, positions) => {
          const wire = concatBytes(
            messages.flatMap((m) => partials(m).map((payload) => frame(m.stream, payload))),
          )
          const chunks = cutAt(wire, positions)
          const batches = viaEncoder(chunks, false, maxLineBytes)
          expect(decoder.decode(concatBytes(batches))).toBe(
            await viaLineObjects(chunks, false, maxLineBytes),
          )
        },
      ),
      { numRuns: 300 },
    )
  })

  it('writes byte for byte the events of the line objects, for any TTY log and chunking', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(message, { maxLength: 10 }),
        limits,
        cutPositions,
        async (messages, maxLineBytes, positions) => {
          // The raw stream is the messages glued together; a line break ends a message there
          const wire = concatBytes(
            messages
              .map((m) => ({ ...m, content: m.content.map((b) => (b === 0x0a ? 0x20 : b)) }))
              .flatMap(partials),
          )
          const chunks = cutAt(wire, positions)
          const batches = viaEncoder(chunks, true, maxLineBytes)
          expect(decoder.decode(concatBytes(batches))).toBe(
            await viaLineObjects(chunks, true, maxLineBytes),
          )
        },
      ),
      { numRuns: 300 },
    )
  })

  it('writes byte for byte the events of the line objects for long plain lines in 16 KiB partials', async () => {
    // Long plain runs (where the escaping scans 64 bytes at a time) with a few changes anywhere:
    // a line over several partials, a character split between two, embedded line breaks (a
    // frame of many lines), quotes, controls, a broken sequence; one frame per chunk, as the
    // engine sends them, or cut anywhere
    const change = fc.constantFrom(
      [0x22],
      [0x5c],
      [0x0a],
      [0x0d],
      [0x01],
      [0xc3, 0xa9],
      [0xe6, 0x97, 0xa5],
      [0xf0, 0x9f, 0x93, 0x9c],
      [0xe2, 0x82],
      [0xff],
    )
    const longLine = fc
      .tuple(
        fc.integer({ min: 1_000, max: 40_000 }),
        fc.array(fc.tuple(fc.nat(), change), { maxLength: 6 }),
      )
      .map(([length, changes]) => {
        const bytes = Array.from({ length }, () => 0x79)
        // From the end backwards, so that each change lands where it was drawn
        for (const [at, change] of changes.sort((a, b) => b[0] - a[0])) {
          bytes.splice(at % (length + 1), 0, ...change)
        }
        return Uint8Array.from(bytes)
      })
    await fc.assert(
      fc.asyncProperty(
        fc.array(
          fc.record({
            stream: fc.constantFrom('stdout', 'stderr'),
            second: fc.integer({ min: 0, max: 2 }),
            content: longLine,
            terminator: fc.constantFrom('\n', '\n', ''),
          }),
          { minLength: 1, maxLength: 5 },
        ),
        fc.option(cutPositions, { nil: undefined }),
        async (messages, positions) => {
          const frames = messages.flatMap((m) =>
            partials(m).map((payload) => frame(m.stream, payload)),
          )
          const chunks = positions === undefined ? frames : cutAt(concatBytes(frames), positions)
          const batches = viaEncoder(chunks, false, undefined)
          expect(decoder.decode(concatBytes(batches))).toBe(
            await viaLineObjects(chunks, false, undefined),
          )
        },
      ),
      { seed: 20261204, numRuns: 100 },
    )
  })

  it('batches the lines of one chunk into one chunk of whole messages', () => {
    const chunk = concatBytes([
      frame('stdout', stamped(T1, encoder.encode('one\n'))),
      frame('stderr', stamped(T1, encoder.encode('two "quoted"\n'))),
      frame('stdout', stamped(T2, encoder.encode('thr'))),
    ])
    const events = new LogEventEncoder({ tty: false, eventId: (time) => `${time}.id` })
    events.write(chunk)
    expect(decoder.decode(events.take())).toBe(
      `event: stdout\nid: ${T1}.id\ndata: {"time":"${T1}","text":"one"}\n\n` +
        `event: stderr\nid: ${T1}.id\ndata: {"time":"${T1}","text":"two \\"quoted\\""}\n\n`,
    )
    events.write(frame('stdout', stamped(T2, encoder.encode('ee'))))
    expect(events.take()).toHaveLength(0)
    events.end()
    expect(decoder.decode(events.take())).toBe(
      `event: stdout\nid: ${T2}.id\ndata: {"time":"${T2}","text":"three"}\n\n`,
    )
  })

  it('keeps the messages before an engine error in the same chunk, then throws it', () => {
    const chunk = concatBytes([
      frame('stdout', stamped(T1, encoder.encode('before\n'))),
      frame('system', 'Error grabbing logs: broken\n'),
      frame('stdout', stamped(T1, encoder.encode('after\n'))),
    ])
    const events = new LogEventEncoder({ tty: false, eventId: () => 'x' })
    expect(() => events.write(chunk)).toThrow(LogStreamError)
    expect(decoder.decode(events.take())).toContain('"text":"before"')
  })

  it('throws at the end on a body cut inside a frame', () => {
    const events = new LogEventEncoder({ tty: false, eventId: () => 'x' })
    events.write(frame('stdout', stamped(T1, encoder.encode('cut\n'))).subarray(0, 20))
    expect(() => events.end()).toThrow(SyntaxError)
  })

  it('refuses an id that would break the message, before writing any of it', () => {
    const events = new LogEventEncoder({ tty: false, eventId: () => 'a\nb' })
    expect(() => events.write(frame('stdout', stamped(T1, encoder.encode('x\n'))))).toThrow(
      SyntaxError,
    )
    expect(events.take()).toHaveLength(0)
  })
})

/** A body that records whether it was cancelled. */
function recordingBody(chunks: Uint8Array[]) {
  const state = { cancelled: false }
  let next = 0
  const body = new ReadableStream<Uint8Array>({
    pull(controller) {
      const chunk = chunks[next++]
      if (chunk === undefined) controller.close()
      else controller.enqueue(chunk)
    },
    cancel() {
      state.cancelled = true
    },
  })
  return { body, state }
}

const lineFrame = (text: string) => frame('stdout', stamped(T1, encoder.encode(`${text}\n`)))

/** A body fed by the test: `push` a chunk, `fail` it, `end` it. */
function controlledBody() {
  let controller!: ReadableStreamDefaultController<Uint8Array>
  const body = new ReadableStream<Uint8Array>({
    start(c) {
      controller = c
    },
  })
  return {
    body,
    push: (chunk: Uint8Array) => controller.enqueue(chunk),
    fail: (error: Error) => controller.error(error),
    end: () => controller.close(),
  }
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))
const messageCount = (batch: string) => batch.split('\n\n').length - 1

describe('pumpLogEvents', () => {
  it('sends the first lines at once, and coalesces the lines that follow within the window', async () => {
    const upstream = controlledBody()
    const sent: { at: number; lines: number }[] = []
    const t0 = Date.now()
    const events = new LogEventEncoder({ tty: false, eventId: () => 'i' })
    const pumped = pumpLogEvents(
      upstream.body,
      events,
      async (messages) => {
        sent.push({ at: Date.now() - t0, lines: messageCount(decoder.decode(messages)) })
        return true
      },
      { coalesceMs: 40 },
    )
    upstream.push(lineFrame('first'))
    await sleep(5)
    expect(sent.map((s) => s.lines)).toEqual([1])
    for (const text of ['a', 'b', 'c']) upstream.push(lineFrame(text))
    await sleep(5)
    // Still inside the window: nothing more went, although the body stays quiet
    expect(sent.map((s) => s.lines)).toEqual([1])
    await sleep(60)
    expect(sent.map((s) => s.lines)).toEqual([1, 3])
    expect(sent[1]!.at).toBeGreaterThanOrEqual(35)
    upstream.end()
    expect(await pumped).toBe(true)
  })

  it('holds the lines of every read within one window, whenever they come in it', async () => {
    const upstream = controlledBody()
    const sent: number[] = []
    const events = new LogEventEncoder({ tty: false, eventId: () => 'i' })
    const pumped = pumpLogEvents(
      upstream.body,
      events,
      async (messages) => {
        sent.push(messageCount(decoder.decode(messages)))
        return true
      },
      { coalesceMs: 400 },
    )
    upstream.push(lineFrame('first'))
    await sleep(5)
    // Each a read of its own, spread over the window: none of them starts a window anew
    for (const text of ['a', 'b', 'c', 'd']) {
      upstream.push(lineFrame(text))
      await sleep(10)
    }
    expect(sent).toEqual([1])
    await sleep(450)
    expect(sent).toEqual([1, 4])
    upstream.end()
    expect(await pumped).toBe(true)
  })

  it('sends every chunk at once with a window of 0', async () => {
    const { body } = recordingBody([lineFrame('a'), lineFrame('b'), lineFrame('c')])
    let sends = 0
    const events = new LogEventEncoder({ tty: false, eventId: () => 'i' })
    await pumpLogEvents(
      body,
      events,
      async () => {
        sends += 1
        return true
      },
      { coalesceMs: 0 },
    )
    expect(sends).toBe(3)
  })

  it('sends what waits once it exceeds coalesceBytes, window or not', async () => {
    const { body } = recordingBody([lineFrame('a'), lineFrame('b'), lineFrame('c')])
    const sent: number[] = []
    const events = new LogEventEncoder({ tty: false, eventId: () => 'i' })
    await pumpLogEvents(
      body,
      events,
      async (messages) => {
        sent.push(messageCount(decoder.decode(messages)))
        return true
      },
      { coalesceMs: 60_000, coalesceBytes: 1 },
    )
    expect(sent).toEqual([1, 1, 1])
  })

  it('sends the lines that waited before a failed read is reported', async () => {
    const upstream = controlledBody()
    const sent: string[] = []
    const events = new LogEventEncoder({ tty: false, eventId: () => 'i' })
    const pumped = pumpLogEvents(
      upstream.body,
      events,
      async (messages) => {
        sent.push(decoder.decode(messages))
        return true
      },
      { coalesceMs: 60_000 },
    )
    upstream.push(lineFrame('first'))
    upstream.push(lineFrame('waiting'))
    await sleep(5)
    upstream.fail(new TypeError('terminated'))
    await expect(pumped).rejects.toThrow('terminated')
    expect(sent.join('')).toContain('"text":"waiting"')
  })

  it('sends one batch per chunk that completed lines, and answers true at the end', async () => {
    const half = lineFrame('c')
    const { body, state } = recordingBody([
      concatBytes([lineFrame('a'), lineFrame('b')]),
      half.subarray(0, 10),
      half.subarray(10),
    ])
    const sent: string[] = []
    const events = new LogEventEncoder({ tty: false, eventId: () => 'i' })
    const ended = await pumpLogEvents(
      body,
      events,
      async (messages) => {
        sent.push(decoder.decode(messages))
        return true
      },
      { coalesceMs: 0 },
    )
    expect(ended).toBe(true)
    expect(sent.map(messageCount)).toEqual([2, 1])
    expect(state.cancelled).toBe(false)
  })

  it('stops and cancels the body as soon as send answers false', async () => {
    const { body, state } = recordingBody([lineFrame('a'), lineFrame('b'), lineFrame('c')])
    let sends = 0
    const events = new LogEventEncoder({ tty: false, eventId: () => 'i' })
    const ended = await pumpLogEvents(body, events, async () => {
      sends += 1
      return false
    })
    expect(ended).toBe(false)
    expect(sends).toBe(1)
    expect(state.cancelled).toBe(true)
  })

  it('stops and cancels the body when the send at the end of a window, during a read, answers false', async () => {
    let cancelled = false
    let controller!: ReadableStreamDefaultController<Uint8Array>
    const body = new ReadableStream<Uint8Array>({
      start: (c) => {
        controller = c
      },
      cancel: () => {
        cancelled = true
      },
    })
    const sent: number[] = []
    const events = new LogEventEncoder({ tty: false, eventId: () => 'i' })
    const pumped = pumpLogEvents(
      body,
      events,
      async (messages) => {
        sent.push(messageCount(decoder.decode(messages)))
        // The client is gone by the second send
        return sent.length === 1
      },
      { coalesceMs: 30 },
    )
    controller.enqueue(lineFrame('first'))
    controller.enqueue(lineFrame('waits'))
    // The body stays quiet: the pump is reading when the window passes
    expect(await pumped).toBe(false)
    expect(sent).toEqual([1, 1])
    expect(cancelled).toBe(true)
  })

  it('sends the lines before a failure, then throws it and cancels the body', async () => {
    const { body, state } = recordingBody([
      concatBytes([lineFrame('a'), frame('system', 'Error grabbing logs: gone\n')]),
      lineFrame('never'),
    ])
    const sent: string[] = []
    const events = new LogEventEncoder({ tty: false, eventId: () => 'i' })
    await expect(
      pumpLogEvents(body, events, async (messages) => {
        sent.push(decoder.decode(messages))
        return true
      }),
    ).rejects.toThrow(LogStreamError)
    expect(sent).toHaveLength(1)
    expect(sent[0]).toContain('"text":"a"')
    expect(state.cancelled).toBe(true)
  })
})
