/**
 * @module The hub's upstream: the one engine `GET /events` stream, its reconnects and probes.
 *
 * **First connection (seed).** The upstream asks the engine for its clock (`/info`
 * `SystemTime`, call it T), then opens `/events?since=0`: the engine replays its whole ring, then
 * goes live, with no gap in between (docs/engine-notes.md#event-ring). The hub hides events at or before T
 * from subscribers without a resume point.
 *
 * **Reconnects.** When the stream ends or fails (engine restart, network), the upstream
 * reconnects with exponential backoff (100 ms doubling to 5 s, ±50 % jitter) and `since` = the
 * last `timeNano` minus 100 ms (the engine's replay stops at the first event older than `since`,
 * and concurrent events can be published slightly out of order). Whether the reconnect is
 * continuous is the hub's to judge; a bounded probe (the same `since`, `until` = the last
 * `timeNano`) tells it early when the engine no longer has the last event (a restart with no
 * event since).
 *
 * Web standards only: no `node:*`, timers are unref'ed where the runtime can.
 */
import type { EngineClient } from '../engine/client.ts'
import { toEngineTime } from '../engine/time.ts'
import { ProblemError } from '../errors.ts'
import { NdjsonDecoder, type NdjsonRecord, NdjsonStream } from '../streams/ndjson.ts'
import { PushedByteStream } from '../streams/pushed.ts'
import { fromEngineTime, type ParsedEvent, parseEngineEvent, toEngineSince } from './event.ts'
import type { Entry } from './ring.ts'

/** What the upstream tells the hub, in the order it happens on a connection. */
export interface UpstreamListener {
  /** The last event received: where a reconnect resumes; undefined for a seed. */
  last(): Entry | undefined
  /** A seed connection is about to be asked for (before the engine's clock is read). */
  seeding(): void
  /** The stream is open: a seed (`boundary` = the engine's time) or a reconnect after `resume`. */
  opened(resume: Entry | undefined, boundary: bigint | undefined): void
  /** One line of the stream: an event, or undefined when it is not one. */
  received(parsed: ParsedEvent | undefined): void
  /** Every line of the bytes read so far was received: what they brought can be delivered. */
  batchEnd(): void
  /** The stream ended (or failed) after it was open. */
  ended(): void
  /** The probe of a reconnect found that the engine no longer holds `last`. */
  lost(last: Entry): void
}

export interface UpstreamOptions {
  backoffInitialMs: number
  backoffMaxMs: number
  logError: (message: string, error: unknown) => void
}

/**
 * A reconnect asks for events from this long before the last one received. The engine scans its
 * ring backwards and stops at the first event older than `since`, and concurrent events can be
 * published slightly out of `timeNano` order: asking from exactly the last `timeNano` could hide
 * it (and what follows) behind such an event.
 */
const RESUME_MARGIN_NS = 100_000_000n

export class Upstream {
  readonly #engine: EngineClient
  readonly #listener: UpstreamListener
  readonly #options: UpstreamOptions

  #started = false
  #closed = false
  #connected = false
  #connecting = false
  #connections = 0
  #lastFailure: unknown
  #readyWaiters: { resolve: () => void; reject: (error: unknown) => void }[] = []
  #abort: AbortController | undefined
  /**
   * The body being read. Closing cancels it directly: an abort signal does not always reach the
   * transport (Node's `Request` follows its signal through a weak reference, so after a garbage
   * collection the abort is lost; see nodejs/undici#1926).
   */
  #reader: { cancel(reason?: unknown): void } | undefined
  #sleep: { timer: ReturnType<typeof setTimeout>; wake: () => void } | undefined

  constructor(engine: EngineClient, listener: UpstreamListener, options: UpstreamOptions) {
    this.#engine = engine
    this.#listener = listener
    this.#options = options
  }

  /** Whether the `/events` stream is connected now. */
  get connected(): boolean {
    return this.#connected
  }

  /** `/events` streams requested so far, failed attempts included (probes are not). */
  get connections(): number {
    return this.#connections
  }

  get closed(): boolean {
    return this.#closed
  }

  /** Connects (once), and keeps reconnecting until {@link close}. */
  start(): void {
    if (this.#started || this.#closed) return
    this.#started = true
    this.#connecting = true
    void this.#run()
  }

  /**
   * Resolves once connected. Rejects with the engine's problem when the current attempt fails or
   * a retry is waiting after one.
   */
  ready(signal?: AbortSignal): Promise<void> {
    this.start()
    if (this.#closed) return Promise.reject(closedProblem())
    if (this.#connected) return Promise.resolve()
    if (!this.#connecting) return Promise.reject(this.#failureProblem())
    return new Promise<void>((resolve, reject) => {
      const onAbort = () => reject(signal?.reason)
      if (signal?.aborted) return onAbort()
      signal?.addEventListener('abort', onAbort, { once: true })
      const done = () => signal?.removeEventListener('abort', onAbort)
      this.#readyWaiters.push({
        resolve: () => {
          done()
          resolve()
        },
        reject: (error) => {
          done()
          reject(error)
        },
      })
    })
  }

  close(): void {
    if (this.#closed) return
    this.#closed = true
    this.#connected = false
    const reason = new DOMException('The event hub closed', 'AbortError')
    this.#abort?.abort(reason)
    this.#reader?.cancel(reason)
    this.#sleep?.wake()
    this.#settleReady(closedProblem())
  }

  async #run(): Promise<void> {
    let attempt = 0
    while (!this.#closed) {
      this.#connecting = true
      let opened = false
      try {
        opened = await this.#connect(() => {
          attempt = 0
        })
      } catch (error) {
        if (this.#closed) break
        this.#lastFailure = error
      }
      this.#connected = false
      this.#connecting = false
      if (this.#closed) break
      if (!opened) this.#settleReady(this.#failureProblem())
      const { backoffInitialMs, backoffMaxMs } = this.#options
      const base = Math.min(backoffMaxMs, backoffInitialMs * 2 ** attempt)
      attempt = Math.min(attempt + 1, 30)
      await this.#pause(base * (0.5 + Math.random() / 2))
    }
  }

  /**
   * One connection, until it ends. Answers whether it got as far as the stream; throws when it
   * did not, with the engine's problem.
   */
  async #connect(onOpen: () => void): Promise<boolean> {
    const abort = new AbortController()
    this.#abort = abort
    const signal = abort.signal
    const resume = this.#listener.last()
    let boundary: bigint | undefined
    if (resume === undefined) {
      this.#listener.seeding()
      boundary = await this.#engineTime(signal)
    }
    this.#connections++
    const response = await this.#engine.request('GET', '/events', {
      query: { since: resume ? toEngineSince(resumeSince(resume.nano)) : '0' },
      signal,
      timeoutMs: 0,
      // Without `until`, the engine holds it until something happens.
      held: true,
      push: true,
    })
    if (this.#closed) {
      await response.body?.cancel().catch(() => {})
      return true
    }
    this.#connected = true
    this.#connecting = false
    this.#lastFailure = undefined
    onOpen()
    this.#listener.opened(resume, boundary)
    if (resume) void this.#probe(resume, signal)
    this.#settleReady(undefined)
    await this.#read(response, signal)
    if (!this.#closed) this.#listener.ended()
    return true
  }

  /**
   * Reads the stream's bytes and hands over each line as it completes, synchronously, then says
   * that the batch ended. Not through a line stream: its hop per line was a tenth of what the
   * gateway added to an event's latency (bench phase `latency`), and the end of a batch is when
   * the hub can wake subscribers with everything it brought. A body the transport pushes is
   * taken chunk by chunk in the transport's own read, with no promise in between.
   */
  async #read(response: Response, signal: AbortSignal): Promise<void> {
    const body = response.body
    if (!body) return
    const lines = new NdjsonDecoder()
    const receive = (record: NdjsonRecord) => {
      try {
        this.#listener.received(parseEngineEvent(record))
      } catch (error) {
        this.#options.logError('The event hub failed on an engine event', error)
      }
    }
    if (body instanceof PushedByteStream) {
      const pushed = this.#takePushed(body, lines, receive, signal)
      if (pushed) return pushed
    }
    const reader = body.getReader()
    this.#reader = { cancel: (reason) => void reader.cancel(reason).catch(() => {}) }
    try {
      for (;;) {
        const { done, value } = await reader.read()
        if (done) lines.finish(receive)
        else lines.push(value, receive)
        this.#batchEnd()
        if (done) return
      }
    } catch (error) {
      // A broken or undecodable stream: reconnect from the last event, which loses nothing.
      this.#batchEnd()
      if (!signal.aborted) this.#lastFailure = error
    } finally {
      this.#reader = undefined
      reader.cancel().catch(() => {})
    }
  }

  /**
   * Decodes each chunk as the transport reads it; resolves when the body ends, fails or is
   * cancelled (by {@link close}, or by a line that does not decode). Undefined when the body was
   * read already.
   */
  #takePushed(
    body: PushedByteStream,
    lines: NdjsonDecoder,
    receive: (record: NdjsonRecord) => void,
    signal: AbortSignal,
  ): Promise<void> | undefined {
    let over = false
    let done = () => {}
    let taken: { cancel(reason?: unknown): void } | undefined
    const stop = (error: unknown) => {
      if (over) return
      over = true
      // A broken or undecodable stream: reconnect from the last event, which loses nothing.
      if (error !== undefined && !signal.aborted) this.#lastFailure = error
      this.#batchEnd()
      this.#reader = undefined
      done()
    }
    taken = body.pushTo({
      chunk: (bytes) => {
        if (over) return
        try {
          lines.push(bytes, receive)
        } catch (error) {
          stop(error)
          taken?.cancel(error)
          return
        }
        this.#batchEnd()
      },
      end: (error) => {
        if (error === undefined) {
          try {
            lines.finish(receive)
          } catch (failure) {
            return stop(failure)
          }
        }
        stop(error)
      },
    })
    if (!taken) return undefined
    const cancel = taken.cancel
    // Over already (what the body held decided it): nothing more is wanted.
    if (over) cancel()
    else {
      this.#reader = {
        cancel: (reason) => {
          stop(undefined)
          cancel(reason)
        },
      }
    }
    return over
      ? Promise.resolve()
      : new Promise<void>((resolve) => {
          done = resolve
        })
  }

  #batchEnd(): void {
    try {
      this.#listener.batchEnd()
    } catch (error) {
      this.#options.logError('The event hub failed on an engine event', error)
    }
  }

  /** The engine's clock, so the seed replay can be told from news; the gateway's if unknown. */
  async #engineTime(signal: AbortSignal): Promise<bigint> {
    const info = await this.#engine.json('GET', '/info', { signal })
    const systemTime =
      info && typeof info === 'object' && 'SystemTime' in info ? info.SystemTime : undefined
    const engineTime = typeof systemTime === 'string' ? toEngineTime(systemTime) : undefined
    const nano = engineTime === undefined ? undefined : fromEngineTime(engineTime)
    return nano ?? BigInt(Date.now()) * 1_000_000n + 999_999n
  }

  /**
   * Settles a quiet reconnect: if the engine no longer holds the last event received (a restart
   * with nothing since), the hub learns it now rather than at the next event. A positive answer
   * proves nothing (the stream decides); a failure leaves it to the stream.
   */
  async #probe(last: Entry, signal: AbortSignal): Promise<void> {
    let found = false
    try {
      const response = await this.#engine.request('GET', '/events', {
        query: { since: toEngineSince(resumeSince(last.nano)), until: toEngineSince(last.nano) },
        signal,
        timeoutMs: 5_000,
      })
      const reader = response.body?.pipeThrough(new NdjsonStream()).getReader()
      for (;;) {
        const result = await reader?.read()
        if (!result || result.done) break
        if (parseEngineEvent(result.value)?.key === last.key) found = true
      }
    } catch {
      return
    }
    if (!found && !signal.aborted) this.#listener.lost(last)
  }

  #settleReady(error: unknown): void {
    const waiters = this.#readyWaiters
    this.#readyWaiters = []
    for (const waiter of waiters) {
      if (error === undefined) waiter.resolve()
      else waiter.reject(error)
    }
  }

  #failureProblem(): ProblemError {
    const failure = this.#lastFailure
    if (failure instanceof ProblemError) return failure
    return new ProblemError(503, 'engine-unavailable', {
      detail: 'The Docker Engine event stream cannot be reached',
      headers: { 'retry-after': '5' },
      cause: failure,
    })
  }

  #pause(ms: number): Promise<void> {
    return new Promise<void>((resolve) => {
      const wake = () => {
        clearTimeout(timer)
        this.#sleep = undefined
        resolve()
      }
      const timer = unrefTimer(setTimeout(wake, ms))
      this.#sleep = { timer, wake }
    })
  }
}

function closedProblem(): ProblemError {
  return new ProblemError(503, 'engine-unavailable', {
    detail: 'The gateway is shutting down',
    headers: { 'retry-after': '5' },
  })
}

function resumeSince(nano: bigint): bigint {
  return nano > RESUME_MARGIN_NS ? nano - RESUME_MARGIN_NS : 0n
}

export function unrefTimer<T>(timer: T): T {
  ;(timer as { unref?: () => void }).unref?.()
  return timer
}
