/**
 * @module A server-sent events response that a producer writes into, with backpressure,
 * heartbeats, a final event on shutdown and an abort signal for when the client leaves.
 *
 * Built on a plain `ReadableStream` rather than Hono's `streamSSE`: that one writes the thrown
 * error's message to the client and swallows write errors (engine-api-facts §8.1); here the
 * producer learns at once that the client left (`sink.signal`) and errors become problems.
 */
import { DEFAULT_SETTINGS, type GatewaySettings } from '../config.ts'
import { type ProblemBody, type ProblemError, problemBody } from '../errors.ts'
import { reportsEnd } from '../streams/on-end.ts'
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
}

type TakeOver = (writer: EventStreamWriter) => Promise<void>
const takeOvers = new WeakMap<ReadableStream<Uint8Array>, TakeOver>()

/**
 * For a body of {@link sseResponse}: the function that hands the stream to a writer (what was
 * queued goes first, in order; from then on every message is written to it directly). The body
 * must not be read otherwise. Undefined for any other body.
 */
export function eventStreamTakeOver(body: ReadableStream<Uint8Array>): TakeOver | undefined {
  return takeOvers.get(body)
}

const enders = new WeakMap<ReadableStream<Uint8Array>, (message: SseMessage) => void>()

/**
 * Ends an event stream of {@link sseResponse} from outside its producer (its credential was
 * revoked): `message` is its last event. False when `body` is not such a stream.
 */
export function endEventStream(body: ReadableStream<Uint8Array>, message: SseMessage): boolean {
  const end = enders.get(body)
  end?.(message)
  return end !== undefined
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
  const encoder = new TextEncoder()
  const stop = new AbortController()
  const bufferedBytes = settings.bufferedBytes ?? DEFAULT_SETTINGS.sseBufferBytes
  let controller!: ReadableStreamDefaultController<Uint8Array>
  /** Set once a runtime adapter took the stream over; until then bytes go to the body's queue. */
  let writer: EventStreamWriter | undefined
  let writerFull = false
  let closed = false
  let lastWrite = Date.now()
  let wakeWriter: (() => void) | undefined
  let stopListening = () => {}
  const endListeners: (() => void)[] = []
  const ended = () => {
    for (const listener of endListeners.splice(0)) listener()
  }

  const hasRoom = () => (writer ? !writerFull : (controller.desiredSize ?? 0) > 0)
  const enqueueBytes = (chunk: Uint8Array) => {
    if (closed) return
    if (writer) writerFull = !writer.write(chunk)
    else controller.enqueue(chunk)
    lastWrite = Date.now()
  }
  const enqueue = (message: SseMessage) => enqueueBytes(encoder.encode(encodeSse(message)))
  /** Ends the stream once: the producer's signal aborts with `reason`, then the output ends. */
  const finish = (reason: DOMException, endOutput: () => void) => {
    if (closed) return
    closed = true
    clearTimeout(heartbeat)
    stopListening()
    stop.abort(reason)
    wakeWriter?.()
    endOutput()
    ended()
  }
  const closeQueue = () => {
    try {
      controller.close()
    } catch {
      // Already cancelled by the client.
    }
  }
  const close = () => finish(STREAM_ENDED, () => (writer ? writer.end() : closeQueue()))
  /** The client left: stop the producer and with it every upstream call it made. */
  const abandon = () =>
    finish(CLIENT_LEFT, () => {
      // Ends a takeover that is still moving the queue to its writer.
      if (!writer) closeQueue()
    })
  const endWith = (message: SseMessage) => {
    enqueue(message)
    close()
  }
  const onShutdown = () =>
    endWith({ event: 'shutdown', data: JSON.stringify({ reason: 'The gateway is shutting down' }) })

  const body = new ReadableStream<Uint8Array>(
    {
      start(c) {
        controller = c
      },
      pull() {
        wakeWriter?.()
      },
      cancel: abandon,
    },
    new ByteLengthQueuingStrategy({ highWaterMark: bufferedBytes }),
  )

  // Ends when the producer is done (what it sent may still be in the buffer) or the client left.
  reportsEnd(body, (listener) => (closed ? listener() : endListeners.push(listener)))
  enders.set(body, endWith)

  takeOvers.set(body, async (target) => {
    takeOvers.delete(body)
    target.onClose(abandon)
    let drained: (() => void) | undefined
    target.onDrain(() => {
      writerFull = false
      drained?.()
      wakeWriter?.()
    })
    const reader = body.getReader()
    // What is queued goes first; the producer may keep queueing meanwhile.
    while ((controller.desiredSize ?? 0) < bufferedBytes) {
      const { done, value } = await reader.read()
      if (done) return target.end()
      if (!target.write(value)) await new Promise<void>((resolve) => (drained = resolve))
    }
    if (closed) return target.end()
    writer = target
  })

  // One timer a stream, due when a heartbeat may be, not one firing every second to look: with
  // 10,000 idle streams the gateway used 3.9-5.6 % of a core that way, 0.9-3.7 % this way
  let heartbeat: ReturnType<typeof setTimeout> | undefined
  const armHeartbeat = (ms: number) => {
    heartbeat = setTimeout(beat, Math.max(10, ms))
    ;(heartbeat as { unref?: () => void }).unref?.()
  }
  const beat = () => {
    if (closed) return
    const quiet = Date.now() - lastWrite
    if (quiet < settings.heartbeatMs) return armHeartbeat(settings.heartbeatMs - quiet)
    // A client that stopped reading gets no heartbeats piled on top of its backlog.
    if (hasRoom()) enqueue({ comment: 'heartbeat' })
    armHeartbeat(settings.heartbeatMs)
  }
  armHeartbeat(settings.heartbeatMs)

  /** Resolves once the client has room again, or with false once the stream is over. */
  const roomForMore = async () => {
    while (!closed && !hasRoom()) {
      await new Promise<void>((resolve) => {
        wakeWriter = resolve
      })
      wakeWriter = undefined
    }
    return !closed
  }
  const writeEncoded = (chunk: Uint8Array) => {
    if (closed) return false
    enqueueBytes(chunk)
    return hasRoom()
  }
  const sink: SseSink = {
    signal: stop.signal,
    send(message) {
      if (closed) return RESOLVED_FALSE
      enqueue(message)
      return roomForMore()
    },
    // The common case allocates nothing: one fan-out may call this 10,000 times in a row.
    sendEncoded: (chunk) => (writeEncoded(chunk) ? RESOLVED_TRUE : roomForMore()),
    writeEncoded,
    whenWritable: roomForMore,
  }

  if (settings.shutdown?.aborted) {
    queueMicrotask(onShutdown)
  } else {
    if (settings.shutdown) stopListening = onAbort(settings.shutdown, onShutdown)
    enqueue({ retry: settings.retryMs, comment: 'stream open' })
    produce(sink).then(close, (error: unknown) => {
      if (!closed) {
        const problem: ProblemBody = problemBody(toProblem(error), instance)
        enqueue({ event: 'problem', data: JSON.stringify(problem) })
      }
      close()
    })
  }

  return new Response(body, { status: 200, headers: SSE_HEADERS })
}
