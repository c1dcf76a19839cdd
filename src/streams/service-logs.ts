/**
 * @module A Swarm service's log body (`/services/{id}/logs?timestamps=1&details=1`) as lines
 * that say their task and node, and as server-sent events.
 *
 * Each message is `<timestamp> <details> <text>`: the details are the engine's log attributes,
 * `com.docker.swarm.node.id=…,com.docker.swarm.service.id=…,com.docker.swarm.task.id=…` (keys
 * and values URL-query-escaped, comma-separated; verified on 20.10). Tasks' messages interleave,
 * and a long line's 16 KiB partials come as messages of their own with the first one's
 * timestamp, so lines are assembled per task: one {@link LineAssembler} each.
 */
import { ByteWriter } from './byte-writer.ts'
import { FrameDecoder, type LogFrame } from './demux.ts'
import { LineAssembler, type LogLine, LogStreamError } from './lines.ts'
import {
  asciiBytes,
  EVENT_PREFIX,
  MESSAGE_END,
  TEXT_PREFIX,
  TIME_PREFIX,
} from './log-event-bytes.ts'
import { MessageSplitter } from './raw.ts'
import { readTimestampPrefix, TIMESTAMP_PREFIX_BYTES } from './timestamp.ts'

/** Receives each line's text bytes (a view: use them before the next chunk is written). */
export type ServiceLineSink = (
  stream: LogLine['stream'],
  time: string,
  task: string,
  node: string,
  text: Uint8Array,
) => void

const SPACE = 0x20
const TASK_KEY = 'com.docker.swarm.task.id'
const NODE_KEY = 'com.docker.swarm.node.id'
const ascii = new TextDecoder()

interface Origin {
  task: string
  node: string
}

export class ServiceLogSplitter {
  readonly #frames: FrameDecoder | MessageSplitter
  readonly #maxLineBytes: number | undefined
  readonly #assemblers = new Map<string, { assembler: LineAssembler; node: string }>()
  readonly #onFrame: (frame: LogFrame) => void
  readonly #sink: ServiceLineSink
  // The details of consecutive messages are mostly the same few strings: parsed once each
  readonly #origins = new Map<string, Origin>()
  #messages = 0

  constructor(options: { tty: boolean; maxLineBytes?: number; onLine: ServiceLineSink }) {
    this.#frames = options.tty ? new MessageSplitter() : new FrameDecoder()
    this.#maxLineBytes = options.maxLineBytes
    this.#sink = options.onLine
    this.#onFrame = (frame) => this.#frame(frame)
  }

  write(chunk: Uint8Array): void {
    this.#frames.push(chunk, this.#onFrame)
  }

  end(): void {
    if (this.#frames instanceof MessageSplitter) this.#frames.finish(this.#onFrame)
    else this.#frames.finish()
    for (const [task, { assembler, node }] of this.#assemblers) {
      assembler.finish((stream, time, bytes, start, end) =>
        this.#sink(stream, time, task, node, bytes.subarray(start, end)),
      )
    }
  }

  /** The engine's log messages read so far. */
  get messages(): number {
    return this.#messages
  }

  #frame(frame: LogFrame): void {
    this.#messages++
    const payload = frame.payload
    if (frame.stream === 'system') throw new LogStreamError(ascii.decode(payload))
    if (readTimestampPrefix(payload) === undefined) {
      throw new SyntaxError('Cannot parse log message: missing timestamp')
    }
    const detailsEnd = payload.indexOf(SPACE, TIMESTAMP_PREFIX_BYTES)
    if (detailsEnd === -1) throw new SyntaxError('Cannot parse service log message: no details')
    const origin = this.#origin(payload.subarray(TIMESTAMP_PREFIX_BYTES, detailsEnd))
    let entry = this.#assemblers.get(origin.task)
    if (entry === undefined) {
      entry = { assembler: new LineAssembler(this.#maxLineBytes), node: origin.node }
      this.#assemblers.set(origin.task, entry)
    }
    // The assembler reads `<timestamp> <text>`: the timestamp is copied over the end of the
    // details, which are parsed already, so the text is not copied (the payload is this
    // splitter's own: a view of the engine's chunk, read by nothing else).
    const textStart = detailsEnd + 1
    let view: Uint8Array
    if (textStart - TIMESTAMP_PREFIX_BYTES >= TIMESTAMP_PREFIX_BYTES) {
      payload.copyWithin(textStart - TIMESTAMP_PREFIX_BYTES, 0, TIMESTAMP_PREFIX_BYTES)
      view = payload.subarray(textStart - TIMESTAMP_PREFIX_BYTES)
    } else {
      view = new Uint8Array(TIMESTAMP_PREFIX_BYTES + payload.length - textStart)
      view.set(payload.subarray(0, TIMESTAMP_PREFIX_BYTES))
      view.set(payload.subarray(textStart), TIMESTAMP_PREFIX_BYTES)
    }
    const { task, node } = origin
    entry.assembler.push(
      { stream: frame.stream, payload: view },
      (stream, lineTime, bytes, start, end) =>
        this.#sink(stream, lineTime, task, node, bytes.subarray(start, end)),
    )
  }

  #origin(details: Uint8Array): Origin {
    const text = ascii.decode(details)
    let origin = this.#origins.get(text)
    if (origin !== undefined) return origin
    const attributes = new URLSearchParams(text.replaceAll(',', '&'))
    origin = { task: attributes.get(TASK_KEY) ?? '', node: attributes.get(NODE_KEY) ?? '' }
    if (this.#origins.size > 1_000) this.#origins.clear()
    this.#origins.set(text, origin)
    return origin
  }
}

const TASK_PREFIX = asciiBytes('","task":"')
const NODE_PREFIX = asciiBytes('","node":"')
const ID = /^[\x21-\x7e]+$/
const SAFE_ID = /^[a-z0-9]*$/

/**
 * A service log body as event-stream messages: `event: stdout|stderr`, `id:` what `eventId`
 * answers (undefined leaves the line out), `data: {"time","task","node","text"}`.
 */
export class ServiceLogEventEncoder {
  readonly #splitter: ServiceLogSplitter
  readonly #writer = new ByteWriter()

  constructor(options: {
    tty: boolean
    maxLineBytes?: number
    eventId: (task: string, stream: LogLine['stream'], time: string) => string | undefined
  }) {
    const writer = this.#writer
    this.#splitter = new ServiceLogSplitter({
      tty: options.tty,
      ...(options.maxLineBytes === undefined ? {} : { maxLineBytes: options.maxLineBytes }),
      onLine: (stream, time, task, node, text) => {
        const id = options.eventId(task, stream, time)
        if (id === undefined) return
        if (!ID.test(id) || !SAFE_ID.test(task) || !SAFE_ID.test(node)) {
          throw new SyntaxError('Cannot encode server-sent event: unexpected id, task or node')
        }
        writer.write(EVENT_PREFIX[stream])
        writer.writeAscii(id)
        writer.write(TIME_PREFIX)
        writer.writeAscii(time)
        writer.write(TASK_PREFIX)
        writer.writeAscii(task)
        writer.write(NODE_PREFIX)
        writer.writeAscii(node)
        writer.write(TEXT_PREFIX)
        writer.writeJsonText(text)
        writer.write(MESSAGE_END)
      },
    })
  }

  write(chunk: Uint8Array): void {
    const bytes =
      chunk.constructor === Uint8Array
        ? chunk
        : new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength)
    this.#splitter.write(bytes)
  }

  end(): void {
    this.#splitter.end()
  }

  take(): Uint8Array {
    return this.#writer.take()
  }

  /** The chunk last taken has left: its memory is written over next (see `ByteWriter.reuse`). */
  reuse(chunk: Uint8Array): void {
    this.#writer.reuse(chunk)
  }

  get pending(): number {
    return this.#writer.length
  }
}
