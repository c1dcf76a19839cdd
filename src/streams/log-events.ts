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
import { EVENT_PREFIX, MESSAGE_END, TEXT_PREFIX, TIME_PREFIX } from './log-event-bytes.ts'
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
    this.#onLine = (stream, time, bytes, start, end) => {
      const id = eventId(time)
      if (id === undefined) return
      writeLogEvent(writer, stream, id, time, bytes, start, end)
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

  /** The chunk last taken has left: its memory is written over next (see `ByteWriter.reuse`). */
  reuse(chunk: Uint8Array): void {
    this.#writer.reuse(chunk)
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
  bytes: Uint8Array,
  start: number,
  end: number,
): void {
  if (!isPrintableAscii(id)) {
    throw new SyntaxError('Cannot encode server-sent event: id must be printable ASCII')
  }
  writer.write(EVENT_PREFIX[stream])
  writer.writeAscii(id)
  writer.write(TIME_PREFIX)
  writer.writeAscii(time)
  writer.write(TEXT_PREFIX)
  writer.writeJsonText(bytes, start, end)
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

/**
 * The loop of {@link pumpLogEvents}. Per chunk it awaits the read and nothing else: encoding is
 * synchronous, and the coalescing window is a timer that sends what waits when it passes during
 * a read. (It raced every read against the window before, in three async steps per chunk: on
 * 100-byte lines that was a fifth of the pipeline's time, bench phase `pipeline`.)
 */
class LogEventPump {
  readonly #reader: ReadableStreamDefaultReader<Uint8Array>
  readonly #encoder: ChunkEncoder
  readonly #send: (messages: Uint8Array) => Promise<boolean>
  readonly #coalesceMs: number
  readonly #coalesceBytes: number
  #lastSend = Number.NEGATIVE_INFINITY
  #finished = false
  // A read is pending: what the window's timer sends then is awaited before the next chunk
  #reading = false
  // The coalescing window that is open, if any: one timer per window rather than one per read
  #window: ReturnType<typeof setTimeout> | undefined
  // The send the window's timer started during a read, if any
  #windowSend: Promise<boolean> | undefined

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
    const reader = this.#reader
    for (;;) {
      let result: ReadResult
      this.#reading = true
      try {
        result = await reader.read()
      } catch (error) {
        // What waited goes before the failure is reported
        this.#reading = false
        if (await this.#windowSent()) await this.#flush()
        throw error
      }
      this.#reading = false
      // The client left while the read was pending (the read was cancelled then)
      if (this.#windowSend !== undefined && !(await this.#windowSent())) return false
      // Awaited only when it sent: most chunks only add to what waits
      const sent = this.#encode(result)
      if (sent !== true && !(await sent)) return false
      if (result.done) return true
    }
  }

  /** Stops reading: cancels the body unless it was read to its end. */
  async release(): Promise<void> {
    this.#closeWindow()
    if (!this.#finished) await this.#reader.cancel().catch(() => {})
    this.#reader.releaseLock()
  }

  /** Encodes a chunk (or the end) and sends when due; a failure is thrown after what preceded it is sent. */
  #encode({ done, value }: ReadResult): boolean | Promise<boolean> {
    let failure: { error: unknown } | undefined
    try {
      if (done) this.#encoder.end()
      else this.#encoder.write(value)
    } catch (error) {
      failure = { error }
    }
    this.#finished = done && failure === undefined
    const due =
      done ||
      failure !== undefined ||
      this.#encoder.pending >= this.#coalesceBytes ||
      Date.now() - this.#lastSend >= this.#coalesceMs
    if (!due) {
      this.#openWindow()
      return true
    }
    if (failure === undefined) return this.#flush()
    return this.#flush().then((open) => {
      if (open) throw failure.error
      return false
    })
  }

  /** Whether the client is still there after the window's send, if one went during the read. */
  async #windowSent(): Promise<boolean> {
    const sent = this.#windowSend
    if (sent === undefined) return true
    this.#windowSend = undefined
    return sent
  }

  /**
   * Opens the window the waiting messages are held in, at the first chunk that leaves them
   * waiting; it closes at `coalesceMs` after the last send.
   */
  #openWindow(): void {
    if (this.#window !== undefined || this.#encoder.pending === 0) return
    const left = this.#lastSend + this.#coalesceMs - Date.now()
    this.#window = setTimeout(this.#windowPassed, Math.max(0, left))
  }

  /**
   * Sends what waits when the window passes during a read (a quiet container); otherwise the
   * loop sends it after the chunk it is encoding. When the client left, the read is cancelled:
   * the loop then stops.
   */
  readonly #windowPassed = () => {
    this.#window = undefined
    if (!this.#reading) return
    const sent = this.#flush().then((open) => {
      if (!open) this.#reader.cancel().catch(() => {})
      return open
    })
    // Awaited by the loop once the read ends; a rejection is not unhandled meanwhile
    sent.catch(() => {})
    this.#windowSend = sent
  }

  #closeWindow(): void {
    if (this.#window !== undefined) clearTimeout(this.#window)
    this.#window = undefined
  }

  /** Sends what waits; false when the client left. */
  #flush(): Promise<boolean> {
    if (this.#encoder.pending === 0) return RESOLVED_TRUE
    this.#closeWindow()
    this.#lastSend = Date.now()
    return this.#send(this.#encoder.take())
  }
}

const RESOLVED_TRUE = Promise.resolve(true)
