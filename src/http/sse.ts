/**
 * @module A server-sent events response that a producer writes into, with backpressure,
 * heartbeats, a final event on shutdown and an abort signal for when the client leaves.
 *
 * Built on a plain `ReadableStream` rather than Hono's `streamSSE`: that one writes the thrown
 * error's message to the client and swallows write errors (docs/engine-notes.md#server-sent-events);
 * here the producer learns at once that the client left (`sink.signal`) and errors become problems.
 */
import { DEFAULT_SETTINGS, type GatewaySettings } from '../config.ts'
import { type ProblemBody, type ProblemError, problemBody } from '../errors.ts'
import { EndReportingStream } from '../streams/on-end.ts'
import { encodeSse, type SseMessage } from '../streams/sse.ts'
import { onAbort } from './abort-listeners.ts'

export interface SseSink {
  /**
   * Queues one message. Resolves once the client has room for more (backpressure), or with
   * false when the stream is over (the client left or the gateway shuts down).
   */
  send(message: SseMessage): Promise<boolean>
  /**
   * Queues bytes already encoded as event-stream text: whole messages only (each ending in its
   * blank line), e.g. a batch of them written at once. Resolves as {@link send} does.
   */
  sendEncoded(chunk: Uint8Array): Promise<boolean>
  /**
   * {@link sendEncoded} without a promise, for producers that write from callbacks: true while
   * the client has room for more; false when it has not (wait for {@link whenWritable}) or the
   * stream is over.
   */
  writeEncoded(chunk: Uint8Array): boolean
  /**
   * Whether every byte written so far has left for the client, and nothing keeps a chunk given
   * to {@link writeEncoded}: its memory may then be written over (see `ByteWriter.reuse`). False
   * where the runtime cannot tell.
   */
  wroteThrough(): boolean
  /** Resolves with true once the client has room for more, or with false once the stream is over. */
  whenWritable(): Promise<boolean>
  /** Aborts when the client leaves or the gateway shuts down: pass it to upstream calls. */
  readonly signal: AbortSignal
}

export interface SseSettings {
  /** A comment is sent after this many milliseconds without a message. */
  heartbeatMs: number
  /** The reconnection delay clients are told to use. */
  retryMs: number
  /** Aborts when the gateway shuts down: every stream then ends with `event: shutdown`. */
  shutdown?: AbortSignal | undefined
  /**
   * Bytes buffered for a slow client before `send` waits (default 64 KiB). Counted in bytes, not
   * messages: a chunk sent with `sendEncoded` may hold many messages.
   */
  bufferedBytes?: number
}

const RESOLVED_TRUE = Promise.resolve(true)
const RESOLVED_FALSE = Promise.resolve(false)
// Shared: each instance captures a stack trace, which is most of the cost of ending a stream.
const STREAM_ENDED = new DOMException('The event stream ended', 'AbortError')
const CLIENT_LEFT = new DOMException('The client left', 'AbortError')

export const SSE_HEADERS = {
  'content-type': 'text/event-stream; charset=utf-8',
  'cache-control': 'no-cache',
  'x-accel-buffering': 'no',
} as const

/** Why a stream ended, as the `problem` event says. */
export type ProblemMapper = (error: unknown) => ProblemError

/** What every streaming route needs from the app. */
export interface StreamDependencies {
  settings: GatewaySettings
  /** Aborts when the gateway shuts down. */
  shutdown: AbortSignal | undefined
  toProblem: ProblemMapper
}

/**
 * What HEAD on an event stream answers, once it has been authorised and validated as GET would
 * be: GET's status and headers, and nothing opened (no engine call, no subscription, no slot).
 */
export const eventStreamHead = (): Response =>
  new Response(null, { status: 200, headers: SSE_HEADERS })

/** The stream settings of a route, from the gateway's settings. */
export const sseSettings = (deps: StreamDependencies): SseSettings => ({
  heartbeatMs: deps.settings.heartbeatMs,
  retryMs: deps.settings.sseRetryMs,
  bufferedBytes: deps.settings.sseBufferBytes,
  shutdown: deps.shutdown,
})

/**
 * A byte sink a runtime adapter can hand an event stream to instead of reading its body: on Node,
 * the `ServerResponse` itself, which saves a read, an enqueue and a promise per write (what makes
 * a 10,000-subscriber fan-out slower than writing the sockets).
 */
export interface EventStreamWriter {
  /** Writes bytes; false once the client's buffer is full: wait for `onDrain` before more. */
  write(chunk: Uint8Array): boolean
  /** Ends the response. */
  end(): void
  /** Calls `listener` whenever the buffer has room again. */
  onDrain(listener: () => void): void
  /** Calls `listener` once when the connection is gone (the client left, or after `end`). */
  onClose(listener: () => void): void
  /**
   * Whether everything written has left (none of it is queued, no chunk is referenced any more);
   * a writer that cannot tell leaves it out.
   */
  wroteThrough?(): boolean
}

/**
 * For a body of {@link sseResponse}: the function that hands the stream to a writer (what was
 * queued goes first, in order; from then on every message is written to it directly). The body
 * must not be read otherwise. Undefined for any other body, or one already handed over.
 */
export function eventStreamTakeOver(
  body: ReadableStream<Uint8Array>,
): ((writer: EventStreamWriter) => Promise<void>) | undefined {
  if (!(body instanceof EventStreamBody) || !body.canTakeOver) return undefined
  return (writer) => body.takeOver(writer)
}

/**
 * Ends an event stream of {@link sseResponse} from outside its producer (its credential was
 * revoked): `message` is its last event. False when `body` is not such a stream.
 */
export function endEventStream(body: ReadableStream<Uint8Array>, message: SseMessage): boolean {
  if (!(body instanceof EventStreamBody)) return false
  body.endWith(message)
  return true
}

/**
 * Answers with an event stream and runs `produce` to fill it. When `produce` returns, the
 * stream ends; when it throws, the client gets `event: problem` with a problem body first (not
 * `error`: that name is `EventSource`'s own connection-error event, which a listener cannot tell apart).
 */
export function sseResponse(
  settings: SseSettings,
  toProblem: ProblemMapper,
  produce: (sink: SseSink) => Promise<void>,
  instance?: string,
): Response {
  const body = new EventStreamBody(settings)
  body.run(toProblem, produce, instance)
  return new Response(body, { status: 200, headers: SSE_HEADERS })
}

const encoder = new TextEncoder()

/**
 * The body of an event stream: bytes queued for the client (or, once a runtime adapter took it
 * over, written to its writer), heartbeats, and the end, however it comes. It tells listeners
 * given to `onEnd` when it ends (see {@link EndReportingStream}).
 */
class EventStreamBody extends EndReportingStream {
  readonly #controller: ReadableStreamDefaultController<Uint8Array>
  readonly #settings: SseSettings
  readonly #bufferedBytes: number
  readonly #stop = new AbortController()
  /** Set once a runtime adapter took the stream over; until then bytes go to the body's queue. */
  #writer: EventStreamWriter | undefined
  #writerFull = false
  #takenOver = false
  #closed = false
  #lastWrite = Date.now()
  #wakeWriter: (() => void) | undefined
  #stopListening = () => {}
  #endListeners: (() => void)[] = []
  #heartbeat: ReturnType<typeof setTimeout> | undefined

  constructor(settings: SseSettings) {
    const bufferedBytes = settings.bufferedBytes ?? DEFAULT_SETTINGS.sseBufferBytes
    let controller!: ReadableStreamDefaultController<Uint8Array>
    super(
      {
        start(c) {
          controller = c
        },
        pull: () => this.#wakeWriter?.(),
        cancel: () => this.#abandon(),
      },
      new ByteLengthQueuingStrategy({ highWaterMark: bufferedBytes }),
    )
    this.#controller = controller
    this.#settings = settings
    this.#bufferedBytes = bufferedBytes
  }

  /** Starts the stream: its first message, the heartbeat, the shutdown, and `produce`. */
  run(toProblem: ProblemMapper, produce: (sink: SseSink) => Promise<void>, instance?: string) {
    this.#armHeartbeat(this.#settings.heartbeatMs)
    const shutdown = this.#settings.shutdown
    if (shutdown?.aborted) {
      queueMicrotask(this.#onShutdown)
      return
    }
    if (shutdown) this.#stopListening = onAbort(shutdown, this.#onShutdown)
    this.#enqueue({ retry: this.#settings.retryMs, comment: 'stream open' })
    produce(this.#sink()).then(
      () => this.#close(),
      (error: unknown) => {
        if (!this.#closed) {
          const problem: ProblemBody = problemBody(toProblem(error), instance)
          this.#enqueue({ event: 'problem', data: JSON.stringify(problem) })
        }
        this.#close()
      },
    )
  }

  /** Ends when the producer is done (what it sent may still be in the buffer) or the client left. */
  override onEnd(listener: () => void): void {
    if (this.#closed) listener()
    else this.#endListeners.push(listener)
  }

  /** Ends the stream with `message` as its last event. */
  endWith(message: SseMessage): void {
    this.#enqueue(message)
    this.#close()
  }

  get canTakeOver(): boolean {
    return !this.#takenOver
  }

  /** Hands the stream to `target`: what is queued goes first, then every write goes to it. */
  async takeOver(target: EventStreamWriter): Promise<void> {
    this.#takenOver = true
    target.onClose(() => this.#abandon())
    let drained: (() => void) | undefined
    target.onDrain(() => {
      this.#writerFull = false
      drained?.()
      this.#wakeWriter?.()
    })
    const reader = this.getReader()
    // What is queued goes first; the producer may keep queueing meanwhile.
    while ((this.#controller.desiredSize ?? 0) < this.#bufferedBytes) {
      const { done, value } = await reader.read()
      if (done) return target.end()
      if (!target.write(value)) await new Promise<void>((resolve) => (drained = resolve))
    }
    if (this.#closed) return target.end()
    this.#writer = target
  }

  #sink(): SseSink {
    const writeEncoded = (chunk: Uint8Array) => {
      if (this.#closed) return false
      this.#enqueueBytes(chunk)
      return this.#hasRoom()
    }
    const roomForMore = () => this.#roomForMore()
    return {
      signal: this.#stop.signal,
      send: (message) => {
        if (this.#closed) return RESOLVED_FALSE
        this.#enqueue(message)
        return this.#roomForMore()
      },
      // The common case allocates nothing: one fan-out may call this 10,000 times in a row.
      sendEncoded: (chunk) => (writeEncoded(chunk) ? RESOLVED_TRUE : this.#roomForMore()),
      writeEncoded,
      wroteThrough: () => this.#writer?.wroteThrough?.() ?? false,
      whenWritable: roomForMore,
    }
  }

  #hasRoom(): boolean {
    return this.#writer ? !this.#writerFull : (this.#controller.desiredSize ?? 0) > 0
  }

  #enqueueBytes(chunk: Uint8Array): void {
    if (this.#closed) return
    if (this.#writer) this.#writerFull = !this.#writer.write(chunk)
    else this.#controller.enqueue(chunk)
    this.#lastWrite = Date.now()
  }

  #enqueue(message: SseMessage): void {
    this.#enqueueBytes(encoder.encode(encodeSse(message)))
  }

  /** Resolves once the client has room again, or with false once the stream is over. */
  async #roomForMore(): Promise<boolean> {
    while (!this.#closed && !this.#hasRoom()) {
      await new Promise<void>((resolve) => {
        this.#wakeWriter = resolve
      })
      this.#wakeWriter = undefined
    }
    return !this.#closed
  }

  /** Ends the stream once: the producer's signal aborts with `reason`, then the output ends. */
  #finish(reason: DOMException, endOutput: () => void): void {
    if (this.#closed) return
    this.#closed = true
    clearTimeout(this.#heartbeat)
    this.#stopListening()
    this.#stop.abort(reason)
    this.#wakeWriter?.()
    endOutput()
    for (const listener of this.#endListeners.splice(0)) listener()
  }

  #closeQueue(): void {
    try {
      this.#controller.close()
    } catch {
      // Already cancelled by the client.
    }
  }

  #close(): void {
    this.#finish(STREAM_ENDED, () => (this.#writer ? this.#writer.end() : this.#closeQueue()))
  }

  /** The client left: stop the producer and with it every upstream call it made. */
  #abandon(): void {
    this.#finish(CLIENT_LEFT, () => {
      // Ends a takeover that is still moving the queue to its writer.
      if (!this.#writer) this.#closeQueue()
    })
  }

  readonly #onShutdown = () =>
    this.endWith({
      event: 'shutdown',
      data: JSON.stringify({ reason: 'The gateway is shutting down' }),
    })

  // One timer a stream, due when a heartbeat may be, not one firing every second to look: with
  // 10,000 idle streams that costs a fraction of the CPU (bench/README.md, the heartbeat row)
  #armHeartbeat(ms: number): void {
    this.#heartbeat = setTimeout(() => this.#beat(), Math.max(10, ms))
    ;(this.#heartbeat as { unref?: () => void }).unref?.()
  }

  #beat(): void {
    if (this.#closed) return
    const heartbeatMs = this.#settings.heartbeatMs
    const quiet = Date.now() - this.#lastWrite
    if (quiet < heartbeatMs) {
      this.#armHeartbeat(heartbeatMs - quiet)
      return
    }
    // A client that stopped reading gets no heartbeats piled on top of its backlog.
    if (this.#hasRoom()) this.#enqueue({ comment: 'heartbeat' })
    this.#armHeartbeat(heartbeatMs)
  }
}
