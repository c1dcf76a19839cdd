/**
 * @module A log body straight to server-sent events, one batch of messages per chunk read.
 *
 * The log-stream route sends every line as `event: stdout|stderr`, `id: <cursor>` and
 * `data: {"time","text"}`. Handing each line through a chain of Web streams costs promise hops
 * and one write per line, and decoding it to a string only to encode it again costs more than
 * the rest. Here each chunk of the engine's body is demultiplexed, assembled into lines and
 * encoded as event-stream bytes in one synchronous step, and the messages it completes leave
 * together: one chunk, one write.
 */

import { ByteWriter } from './byte-writer.ts'
import { FrameDecoder, type FrameSink } from './demux.ts'
import { LineAssembler, type LineBytesSink, type LogLine } from './lines.ts'
import { MessageSplitter } from './raw.ts'

export interface LogEventEncoderOptions {
  /** The body is a TTY container's raw log ({@link RawLogStream}), not multiplexed. */
  tty: boolean
  /** As in {@link LogLineStreamOptions}. */
  maxLineBytes?: number
  /**
   * The event id for the next line, given its timestamp; called once per line, in order.
   * `undefined` leaves the line out (it was delivered before). Printable ASCII only.
   */
  eventId: (time: string) => string | undefined
}

const ascii = (text: string) => Uint8Array.from(text, (char) => char.charCodeAt(0))
// Every message is these bytes around the id, the time and the line's JSON text
const EVENT_PREFIX: Record<LogLine['stream'], Uint8Array> = {
  stdout: ascii('event: stdout\nid: '),
  stderr: ascii('event: stderr\nid: '),
}
const DATA_PREFIX = ascii('\ndata: {"time":"')
const TEXT_PREFIX = ascii('","text":"')
const MESSAGE_END = ascii('"}\n\n')

/**
 * Turns a log body requested with `timestamps=1` into event-stream messages, byte for byte what
 * `encodeSse({ event: stream, id, data: JSON.stringify({ time, text }) })` gives for each
 * {@link LogLine} of `LogLineStream` (same lines, same pieces, same U+FFFD), in one batch per
 * chunk.
 *
 * @example
 * ```ts
 * const encoder = new LogEventEncoder({ tty: false, eventId: (time) => nextId(time) })
 * encoder.write(chunk) // may throw, after the messages before the failure were written
 * const messages = encoder.take() // whole messages; empty when the chunk completed no line
 * ```
 */
export class LogEventEncoder {
  readonly #frames: FrameDecoder | MessageSplitter
  readonly #lines: LineAssembler
  readonly #writer = new ByteWriter()
  readonly #onFrame: FrameSink
  readonly #onLine: LineBytesSink
  #messages = 0

  constructor(options: LogEventEncoderOptions) {
    this.#frames = options.tty ? new MessageSplitter() : new FrameDecoder()
    this.#lines = new LineAssembler(options.maxLineBytes)
    const { eventId } = options
    const writer = this.#writer
    // Built once: the per-frame and per-line calls allocate nothing of their own
    this.#onLine = (stream, time, text) => {
      const id = eventId(time)
      if (id === undefined) return
      writeLogEvent(writer, stream, id, time, text)
    }
    this.#onFrame = (frame) => {
      this.#messages++
      this.#lines.push(frame, this.#onLine)
    }
  }

  /**
   * Encodes the lines a chunk completes. Throws as `DemuxStream`/`RawLogStream` and
   * `LogLineStream` error, after writing the messages of the lines completed before the failure.
   */
  write(chunk: Uint8Array): void {
    // A plain view: the many subarrays taken of it below are cheaper than those of a subclass
    // such as Node's Buffer (what undici hands out), which construct through its species
    const bytes =
      chunk.constructor === Uint8Array
        ? chunk
        : new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength)
    this.#frames.push(bytes, this.#onFrame)
  }

  /** The body ended: encodes what is still pending (a last line without newline). */
  end(): void {
    if (this.#frames instanceof MessageSplitter) this.#frames.finish(this.#onFrame)
    else this.#frames.finish()
    this.#lines.finish(this.#onLine)
  }

  /** The messages written since the last take, as one chunk (empty if none). */
  take(): Uint8Array {
    return this.#writer.take()
  }

  /**
   * The engine's log messages read so far: frames, of which a long line has several (its 16 KiB
   * partials). As many as `tail=N` counts, for a multiplexed body.
   */
  get messages(): number {
    return this.#messages
  }

  /** Bytes of messages written and not taken yet. */
  get pending(): number {
    return this.#writer.length
  }
}

/** One whole message; the id is checked before anything is written, so a message is never cut. */
function writeLogEvent(
  writer: ByteWriter,
  stream: LogLine['stream'],
  id: string,
  time: string,
  text: Uint8Array,
): void {
  if (!isPrintableAscii(id)) {
    throw new SyntaxError('Cannot encode server-sent event: id must be printable ASCII')
  }
  writer.write(EVENT_PREFIX[stream])
  writer.writeAscii(id)
  writer.write(DATA_PREFIX)
  writer.writeAscii(time)
  writer.write(TEXT_PREFIX)
  writer.writeJsonText(text)
  writer.write(MESSAGE_END)
}

function isPrintableAscii(text: string): boolean {
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i)
    if (code < 0x20 || code > 0x7e) return false
  }
  return true
}

/** What {@link pumpLogEvents} drives: bytes in, whole event-stream messages out. */
export interface ChunkEncoder {
  write(chunk: Uint8Array): void
  end(): void
  take(): Uint8Array
  readonly pending: number
}

export interface PumpOptions {
  /**
   * While lines keep coming, messages wait until this many milliseconds have passed since the
   * last send, so that one send (one write to the client) carries many of them; the first
   * messages after a quiet spell go at once. Default 4; 0 sends every chunk's messages at once.
   */
  coalesceMs?: number
  /** Messages waiting beyond this many bytes go at once, window or not. Default 64 KiB. */
  coalesceBytes?: number
}

/**
 * Reads a log body to its end through an encoder and hands the messages to `send`. Answers
 * false as soon as `send` does (the client left). On a failure, sends the messages before it,
 * then throws it. The body is cancelled whenever the read stops early.
 *
 * The engine writes one HTTP chunk per log message and the gateway reads its socket whenever
 * something arrived, so a chunk is often a line or a few; sending each at once costs a write to
 * the client and a read of the engine per handful of lines, which is most of the CPU per line.
 * Waiting a few milliseconds between sends while lines keep coming lets a read take everything
 * buffered and a write carry it all (see {@link PumpOptions}); `send`'s own backpressure still
 * holds the read back when the client is slow.
 */
export async function pumpLogEvents(
  body: ReadableStream<Uint8Array>,
  encoder: ChunkEncoder,
  send: (messages: Uint8Array) => Promise<boolean>,
  options: PumpOptions = {},
): Promise<boolean> {
  const pump = new LogEventPump(body.getReader(), encoder, send, options)
  try {
    return await pump.run()
  } finally {
    await pump.release()
  }
}

type ReadResult = ReadableStreamReadResult<Uint8Array>

class LogEventPump {
  readonly #reader: ReadableStreamDefaultReader<Uint8Array>
  readonly #encoder: ChunkEncoder
  readonly #send: (messages: Uint8Array) => Promise<boolean>
  readonly #coalesceMs: number
  readonly #coalesceBytes: number
  #lastSend = Number.NEGATIVE_INFINITY
  #finished = false
  // The coalescing window that is open, if any: one timer per window rather than one per read
  #window: CoalescingWindow | undefined

  constructor(
    reader: ReadableStreamDefaultReader<Uint8Array>,
    encoder: ChunkEncoder,
    send: (messages: Uint8Array) => Promise<boolean>,
    options: PumpOptions,
  ) {
    this.#reader = reader
    this.#encoder = encoder
    this.#send = send
    this.#coalesceMs = options.coalesceMs ?? 4
    this.#coalesceBytes = options.coalesceBytes ?? 64 * 1024
  }

  async run(): Promise<boolean> {
    while (!this.#finished) {
      const result = await this.#nextChunk()
      if (result === CLIENT_LEFT) return false
      if (!(await this.#encode(result))) return false
    }
    return true
  }

  /** Stops reading: cancels the body unless it was read to its end. */
  async release(): Promise<void> {
    this.#closeWindow()
    if (!this.#finished) await this.#reader.cancel().catch(() => {})
    this.#reader.releaseLock()
  }

  /**
   * The next chunk. The read may take long (a quiet container), so messages waiting for their
   * window go when it closes; they also go before a failed read is reported.
   */
  async #nextChunk(): Promise<ReadResult | typeof CLIENT_LEFT> {
    const read = this.#reader.read()
    try {
      const window = this.#waiting() ? this.#openWindow() : undefined
      if (window) {
        const first = await Promise.race([read, window.closed])
        if (first !== IDLE) return first
      }
      if (this.#waiting() && !(await this.#flush())) {
        // Left unread: the body is cancelled next, or its request aborted (then it rejects)
        read.catch(() => {})
        return CLIENT_LEFT
      }
      return await read
    } catch (error) {
      await this.#flush()
      throw error
    }
  }

  /** Encodes a chunk (or the end) and sends when due; a failure is thrown after what preceded it is sent. */
  async #encode({ done, value }: ReadResult): Promise<boolean> {
    let failure: { error: unknown } | undefined
    try {
      if (done) this.#encoder.end()
      else this.#encoder.write(value)
    } catch (error) {
      failure = { error }
    }
    const due =
      done ||
      failure !== undefined ||
      this.#encoder.pending >= this.#coalesceBytes ||
      Date.now() - this.#lastSend >= this.#coalesceMs
    if (due && !(await this.#flush())) return false
    if (failure) throw failure.error
    this.#finished = done
    return true
  }

  #waiting(): boolean {
    return this.#encoder.pending > 0
  }

  /**
   * The window the waiting messages are held in, opened at the first read that finds them
   * waiting; none when it has passed already.
   */
  #openWindow(): CoalescingWindow | undefined {
    if (this.#window) return this.#window
    const left = this.#lastSend + this.#coalesceMs - Date.now()
    if (left <= 0) return undefined
    this.#window = coalescingWindow(left)
    return this.#window
  }

  #closeWindow(): void {
    if (this.#window) clearTimeout(this.#window.timer)
    this.#window = undefined
  }

  /** Sends what waits; false when the client left. */
  async #flush(): Promise<boolean> {
    if (!this.#waiting()) return true
    this.#closeWindow()
    this.#lastSend = Date.now()
    return this.#send(this.#encoder.take())
  }
}

const IDLE = Symbol('idle')
const CLIENT_LEFT = Symbol('client left')

interface CoalescingWindow {
  /** Resolves with IDLE when the window has passed. */
  readonly closed: Promise<typeof IDLE>
  readonly timer: ReturnType<typeof setTimeout>
}

/**
 * A window of `ms`. Reads race its `closed`: while lines keep coming, every read of the window
 * shares its one timer (a timer set and cleared per read cost more than encoding a short line).
 */
function coalescingWindow(ms: number): CoalescingWindow {
  let timer: ReturnType<typeof setTimeout> | undefined
  const closed = new Promise<typeof IDLE>((resolve) => {
    timer = setTimeout(() => resolve(IDLE), ms)
  })
  return { closed, timer: timer as ReturnType<typeof setTimeout> }
}
