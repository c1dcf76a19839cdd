/**
 * @module EventHub: one upstream `GET /events` per gateway process, fanned out to every
 * subscriber, with a replay ring far larger than the engine's 256 events (engine-api-facts §2.5).
 *
 * **One reader that never waits.** The upstream is read in its own loop; each event is curated,
 * put in the ring and pushed synchronously into each matching subscriber's bounded queue. A
 * subscriber whose queue is full gets `resync` (`overflow`) and is dropped; nobody else notices,
 * and the engine never sees a slow reader (it would drop events for one after 100 ms).
 *
 * **Woken in slices.** Subscribers are woken `wakeSliceSize` at a time, one slice per turn of
 * the event loop: the sockets of a slice are written before the next slice runs (so with 10,000
 * subscribers the first get an event at once), the upstream is read in between, and a subscriber
 * woken later takes everything that arrived meanwhile in one batch (`takeReady`), one write.
 *
 * **First connection (seed).** The hub asks the engine for its clock (`/info` `SystemTime`,
 * call it T), then opens `/events?since=0`: the engine replays its whole ring, then goes live,
 * with no gap in between (§2.4). The replayed events seed the hub's ring. Subscribers without a
 * resume point never see the replay: while it streams, events at or before T are hidden from them.
 *
 * **Coverage.** `coverageFrom` is a `timeNano` such that the hub holds every event with a later
 * `timeNano` (exclusive, so it is safe when events share a nanosecond). It starts at the first
 * event received after a (seed or gap) connection: older ones may have left the engine's ring,
 * and the engine never says so. It moves forward as the hub's ring evicts events. While no event
 * has been received since a seed or a gap, there is no coverage.
 *
 * **Reconnects.** When the upstream ends or fails (engine restart, network), the hub reconnects
 * with exponential backoff (100 ms doubling to 5 s, ±50 % jitter) and `since` = the last
 * `timeNano` minus 100 ms (the engine's replay stops at the first event older than `since`, and
 * concurrent events can be published slightly out of order). The replay starts with events the
 * hub already has; those are dropped by key (`timeNano`, type, full action, actor id). The
 * reconnect is **proven continuous** when that replay contains the last event the hub received:
 * the engine's ring still holds it, so it holds everything after it. It is a **gap** when an
 * unknown event arrives before that proof (the engine's ring rotated past our last event, or the
 * engine restarted), or when a bounded probe (the same `since`, `until` = the last `timeNano`)
 * shows that the engine no longer has that event (a restart with no event since). On a gap every
 * subscriber gets `resync` (`gap`) and coverage restarts. A connection that ends before any
 * event was ever received cannot be continued provably either: that is a gap too. Subscribers
 * stay open while the hub is disconnected.
 *
 * **Resume.** `lastEventId` (a `timeNano`) replays the held events after it; `since` (engine
 * time) those at or after it. A point the coverage does not reach gets `resync` (`gap`) first,
 * then live events only: a client that lost events rebuilds its state from a listing and needs
 * no stale events after that. Replays are read lazily from the ring, so they need no queue room;
 * when the ring is about to evict an event a replaying subscriber has not read, what it has left
 * moves into its queue (and overflows it if that is more than the queue holds). Right after a
 * seed or a gap, a resume waits until the first event settles the coverage, or `settleMs` after
 * the connection when the engine stays silent (then it is a gap: the engine's ring was empty).
 * Ids are positions: a resume after an id the ring holds continues after that very event, even
 * if the engine delivered a later one with an earlier `timeNano` (concurrent events can be
 * published out of order). Several events sharing one `timeNano` share one id; a resume at it
 * continues after the first of them (a repeat is possible there, a loss is not).
 *
 * Web standards only: no `node:*`, timers are unref'ed where the runtime can.
 */
import type { EngineClient } from '../engine/client.ts'
import { toEngineTime } from '../engine/time.ts'
import { ProblemError } from '../errors.ts'
import { type NdjsonRecord, NdjsonStream } from '../streams/ndjson.ts'
import {
  type EngineEvent,
  type EventFilter,
  fromEngineTime,
  matchesFilter,
  type ParsedEvent,
  parseEngineEvent,
  toEngineSince,
} from './event.ts'

export type ResyncReason = 'gap' | 'overflow'

export type SubscriptionItem =
  | { kind: 'event'; event: EngineEvent }
  | { kind: 'resync'; reason: ResyncReason }

export interface SubscribeOptions {
  filter?: EventFilter
  /** Engine time `seconds.nanoseconds`: replay the held events from this time on (inclusive). */
  since?: string
  /** The `timeNano` of the last event the client received: replay the held events after it. */
  lastEventId?: string
  /** Most undelivered events before the subscriber is dropped; the hub's default otherwise. */
  queueLimit?: number
}

export interface Subscription {
  /**
   * The next item, waiting for one if need be; undefined once the subscription is over (closed,
   * dropped after `resync` `overflow`, or the hub closed). One caller at a time.
   */
  next(): Promise<SubscriptionItem | undefined>
  /**
   * The items ready now, without waiting (at most `max`, default 256; `[]` when none): a client
   * that fell behind gets what it missed in one write. Undefined once the subscription is over.
   */
  takeReady(max?: number): SubscriptionItem[] | undefined
  /**
   * Resolves once {@link takeReady} may have something to answer (items, or the end); it may
   * also resolve early (a wake-up the items were already taken for), so check again.
   */
  whenReady(): Promise<void>
  /**
   * Calls `listener` whenever {@link takeReady} may have something new to answer (items, or the
   * end), synchronously, on the hub's turn: a fan-out to 10,000 subscribers then costs no
   * promise per subscriber. It may be called again while it runs, and early (check again). One
   * listener per subscription; it replaces what {@link whenReady} waits for.
   */
  onReady(listener: () => void): void
  /** Leaves the hub; a pending `next()` answers undefined. Safe to call twice. */
  close(): void
  [Symbol.asyncIterator](): AsyncIterator<SubscriptionItem, undefined>
}

export interface EventHubOptions {
  /** Events kept for replay (default 10 000). */
  ringSize?: number
  /** Default bound of a subscriber's queue (default 1 000). */
  queueLimit?: number
  /** First reconnection delay (default 100 ms); it doubles per failed attempt. */
  backoffInitialMs?: number
  /** Longest reconnection delay (default 5 000 ms). */
  backoffMaxMs?: number
  /** How long a silent engine may take to replay its ring after a connection (default 1 000 ms). */
  settleMs?: number
  /**
   * Subscribers woken per turn of the event loop when an event fans out (default 500). Between
   * turns the sockets of those woken are written and the upstream is read again, so the first
   * subscribers get an event early and the later ones get what arrived meanwhile in one write.
   */
  wakeSliceSize?: number
  /** Unexpected errors (bugs), never engine failures: the engine client reports those. */
  logError?: (message: string, error: unknown) => void
}

export interface EventHubStats {
  upstreamConnected: boolean
  /** Upstream `/events` streams requested so far, failed attempts included (probes are not). */
  upstreamConnections: number
  /** Open subscriptions, including those waiting for the coverage to settle. */
  subscribers: number
  /** Events in the replay ring. */
  ringSize: number
  /** The hub holds every event with a later `timeNano`; null while there is no coverage. */
  coverageFrom: string | null
  /** Engine lines skipped: not JSON objects of the expected shape, or of an unknown type. */
  malformed: number
}

export const DEFAULT_RING_SIZE = 10_000
export const DEFAULT_QUEUE_LIMIT = 1_000
export const DEFAULT_WAKE_SLICE_SIZE = 500
const DEFAULT_BATCH = 256
/**
 * A reconnect asks for events from this long before the last one received. The engine scans its
 * ring backwards and stops at the first event older than `since`, and concurrent events can be
 * published slightly out of `timeNano` order: asking from exactly the last `timeNano` could hide
 * it (and what follows) behind such an event.
 */
const RESUME_MARGIN_NS = 100_000_000n
/** Dedupe keys remembered for reconnect replays, which start shortly before the last event. */
const RECENT_KEYS = 4_096

interface Entry extends ParsedEvent {
  seq: number
}

type ResumePoint = { after: bigint; id: string } | { from: bigint }

export class EventHub {
  readonly #engine: EngineClient
  readonly #ring: Ring
  readonly #queueLimit: number
  readonly #backoffInitialMs: number
  readonly #backoffMaxMs: number
  readonly #settleMs: number
  readonly #wakeSliceSize: number
  readonly #logError: (message: string, error: unknown) => void

  /** Subscribers that receive events (pushed, or read from the ring while catching up). */
  readonly #subscribers = new Set<Subscriber>()
  /** Subscribers with a resume point, waiting for the coverage to settle. */
  readonly #pending = new Set<Subscriber>()
  /** Dedupe keys of the latest events, oldest first. */
  readonly #recent = new Set<string>()
  /** Subscribers with pushed events that are not woken yet, in the order they got them. */
  #toWake: Subscriber[] = []
  #waking = false

  #started = false
  #closed = false
  #connected = false
  #connecting = false
  #connections = 0
  #malformed = 0
  #lastFailure: unknown
  #readyWaiters: { resolve: () => void; reject: (error: unknown) => void }[] = []
  #abort: AbortController | undefined
  /**
   * The upstream body being read. Closing cancels it directly: an abort signal does not always
   * reach the transport (Node's `Request` follows its signal through a weak reference, so after
   * a garbage collection the abort is lost; see nodejs/undici#1926).
   */
  #reader: ReadableStreamDefaultReader<NdjsonRecord> | undefined
  #sleep: { timer: ReturnType<typeof setTimeout>; wake: () => void } | undefined
  #settleTimer: ReturnType<typeof setTimeout> | undefined

  #coverage: bigint | undefined
  /** Whether a resume point can be judged now (a first event came, or the engine stayed silent). */
  #settled = false
  /** During the seed replay: events at or before this engine time are history, not news. */
  #seedBoundary: bigint | undefined
  /** The last event received: where a reconnect resumes. */
  #last: Entry | undefined
  /** The key whose replay proves the current reconnect continuous, until it is seen. */
  #verify: string | undefined

  constructor(engine: EngineClient, options: EventHubOptions = {}) {
    this.#engine = engine
    this.#ring = new Ring(positiveInteger(options.ringSize ?? DEFAULT_RING_SIZE, 'ringSize'))
    this.#queueLimit = positiveInteger(options.queueLimit ?? DEFAULT_QUEUE_LIMIT, 'queueLimit')
    this.#backoffInitialMs = options.backoffInitialMs ?? 100
    this.#backoffMaxMs = options.backoffMaxMs ?? 5_000
    this.#settleMs = options.settleMs ?? 1_000
    this.#wakeSliceSize = positiveInteger(
      options.wakeSliceSize ?? DEFAULT_WAKE_SLICE_SIZE,
      'wakeSliceSize',
    )
    this.#logError = options.logError ?? ((message, error) => console.error(message, error))
  }

  /** Opens the upstream (once); the hub keeps it open until `close()`, subscribers or not. */
  start(): void {
    if (this.#started || this.#closed) return
    this.#started = true
    this.#connecting = true
    void this.#run()
  }

  /**
   * Resolves once the upstream is connected. Rejects with the engine's problem when the current
   * attempt fails or the hub is waiting to retry after one, so a new client learns at once that
   * the engine is unreachable; open subscriptions are not affected.
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

  subscribe(options: SubscribeOptions = {}): Subscription {
    const subscriber = new Subscriber(this, options.filter ?? {}, options.queueLimit)
    if (this.#closed) {
      subscriber.end()
      return subscriber
    }
    this.start()
    const point = resumePoint(options)
    if (point === undefined) {
      this.#subscribers.add(subscriber)
    } else if (this.#coverage !== undefined) {
      this.#resolve(subscriber, point)
    } else if (this.#settled) {
      this.#subscribers.add(subscriber)
      subscriber.push({ kind: 'resync', reason: 'gap' })
    } else {
      subscriber.resume = point
      this.#pending.add(subscriber)
    }
    return subscriber
  }

  /** Whether the upstream `/events` stream is connected now. */
  get connected(): boolean {
    return this.#connected
  }

  stats(): EventHubStats {
    return {
      upstreamConnected: this.#connected,
      upstreamConnections: this.#connections,
      subscribers: this.#subscribers.size + this.#pending.size,
      ringSize: this.#ring.size,
      coverageFrom: this.#coverage?.toString() ?? null,
      malformed: this.#malformed,
    }
  }

  /** Stops the upstream and ends every subscription. */
  close(): void {
    if (this.#closed) return
    this.#closed = true
    this.#connected = false
    const reason = new DOMException('The event hub closed', 'AbortError')
    this.#abort?.abort(reason)
    this.#reader?.cancel(reason).catch(() => {})
    this.#sleep?.wake()
    clearTimeout(this.#settleTimer)
    for (const subscriber of [...this.#subscribers, ...this.#pending]) subscriber.end()
    this.#subscribers.clear()
    this.#pending.clear()
    this.#settleReady(closedProblem())
  }

  // --- for subscribers (internal) --------------------------------------------------------------

  /** @internal Called by a subscriber that leaves or overflows. */
  remove(subscriber: Subscriber): void {
    this.#subscribers.delete(subscriber)
    this.#pending.delete(subscriber)
  }

  /** @internal The default bound of a subscriber's queue. */
  get queueLimit(): number {
    return this.#queueLimit
  }

  /**
   * @internal The next event a catching-up subscriber accepts, read from the ring; undefined
   * once it has caught up (it then receives pushed events) or fell out of the ring (overflow).
   */
  catchUp(subscriber: Subscriber): Entry | undefined {
    for (;;) {
      const cursor = subscriber.cursor
      if (cursor === undefined) return undefined
      if (cursor < this.#ring.firstSeq) {
        subscriber.overflow()
        return undefined
      }
      const entry = this.#ring.at(cursor)
      if (entry === undefined) {
        subscriber.cursor = undefined
        return undefined
      }
      subscriber.cursor = cursor + 1
      if (subscriber.accepts(entry, undefined)) return entry
    }
  }

  /** A subscriber with a resume point, now that the coverage is known. */
  #resolve(subscriber: Subscriber, point: ResumePoint): void {
    this.#pending.delete(subscriber)
    subscriber.resume = undefined
    if (subscriber.isDone) return
    this.#subscribers.add(subscriber)
    const coverage = this.#coverage
    const covered =
      coverage !== undefined && ('after' in point ? point.after >= coverage : point.from > coverage)
    if (!covered) {
      subscriber.push({ kind: 'resync', reason: 'gap' })
      return
    }
    subscriber.live = false
    const seq = 'after' in point ? this.#ring.seqOf(point.id) : undefined
    if (seq !== undefined && seq + 1 < this.#ring.nextSeq) {
      subscriber.cursor = seq + 1
    } else if (seq !== undefined) {
      // Nothing to replay: events are pushed to it from now on (the one at the point excluded).
      subscriber.skipThrough = 'after' in point ? point.after : undefined
    } else {
      // Not held (older, or not yet replayed by the engine): skip to the first later event.
      subscriber.cursor = this.#ring.firstSeq
      subscriber.skipThrough = 'after' in point ? point.after : point.from - 1n
    }
    subscriber.wake()
  }

  #resolvePending(): void {
    for (const subscriber of [...this.#pending]) {
      this.#resolve(subscriber, subscriber.resume ?? { from: 0n })
    }
  }

  // --- upstream --------------------------------------------------------------------------------

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
      const base = Math.min(this.#backoffMaxMs, this.#backoffInitialMs * 2 ** attempt)
      attempt = Math.min(attempt + 1, 30)
      await this.#pause(base * (0.5 + Math.random() / 2))
    }
  }

  /**
   * One upstream connection, until it ends. Answers whether it got as far as the stream;
   * throws when it did not, with the engine's problem.
   */
  async #connect(onOpen: () => void): Promise<boolean> {
    const abort = new AbortController()
    this.#abort = abort
    const signal = abort.signal
    const resume = this.#last
    let boundary: bigint | undefined
    if (resume === undefined) {
      this.#settled = false
      boundary = await this.#engineTime(signal)
    }
    this.#connections++
    const response = await this.#engine.request('GET', '/events', {
      query: { since: resume ? toEngineSince(resumeSince(resume.nano)) : '0' },
      signal,
      timeoutMs: 0,
      // Without `until`, the engine holds it until something happens
      held: true,
    })
    if (this.#closed) {
      await response.body?.cancel().catch(() => {})
      return true
    }
    this.#connected = true
    this.#connecting = false
    this.#lastFailure = undefined
    onOpen()
    if (resume) {
      this.#verify = resume.key
      void this.#probe(resume, signal)
    } else {
      this.#seedBoundary = boundary
      this.#settled = false
      clearTimeout(this.#settleTimer)
      this.#settleTimer = unrefTimer(setTimeout(() => this.#settle(), this.#settleMs))
    }
    this.#settleReady(undefined)
    await this.#read(response, signal)
    // Nothing received on this connection nor before: nothing can prove the next one continuous.
    if (this.#last === undefined && !this.#closed) this.#gap(undefined)
    return true
  }

  async #read(response: Response, signal: AbortSignal): Promise<void> {
    if (!response.body) return
    const reader = response.body.pipeThrough(new NdjsonStream()).getReader()
    this.#reader = reader
    try {
      for (;;) {
        const { done, value } = await reader.read()
        if (done) return
        try {
          this.#ingest(parseEngineEvent(value))
        } catch (error) {
          this.#logError('The event hub failed on an engine event', error)
        }
      }
    } catch (error) {
      // A broken or undecodable stream: reconnect from the last event, which loses nothing.
      if (!signal.aborted) this.#lastFailure = error
    } finally {
      this.#reader = undefined
      reader.cancel().catch(() => {})
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
   * with nothing since), it is a gap now rather than at the next event. A positive answer proves
   * nothing (the stream decides); a failure leaves it to the stream.
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
    if (!found && !signal.aborted && this.#verify === last.key) {
      this.#verify = undefined
      this.#gap(undefined)
      this.#settle()
    }
  }

  #ingest(parsed: ParsedEvent | undefined): void {
    if (parsed === undefined) {
      this.#malformed++
      return
    }
    if (this.#recent.has(parsed.key)) {
      // A replayed event the hub has; the last one received proves the reconnect continuous.
      if (parsed.key === this.#verify) this.#verify = undefined
      return
    }
    if (this.#verify !== undefined) {
      this.#verify = undefined
      this.#gap(parsed.nano)
    }
    if (this.#coverage === undefined) this.#coverage = parsed.nano
    if (this.#ring.full) {
      // A subscriber still replaying the oldest event takes what it has left into its queue.
      for (const subscriber of this.#subscribers) {
        if (subscriber.cursor !== undefined && subscriber.cursor <= this.#ring.firstSeq) {
          this.#drain(subscriber)
        }
      }
    }
    const { entry, evicted } = this.#ring.push(parsed)
    if (evicted && evicted.nano > (this.#coverage ?? evicted.nano - 1n)) {
      this.#coverage = evicted.nano
    }
    this.#remember(parsed.key)
    this.#last = entry
    if (!this.#settled || this.#pending.size > 0) {
      this.#settled = true
      clearTimeout(this.#settleTimer)
      this.#resolvePending()
    }
    const boundary = this.#seedBoundary
    // One item and one filter verdict per distinct filter for everyone: many subscribers (the
    // same dashboard, open many times) ask with the same filter.
    const item: SubscriptionItem = { kind: 'event', event: entry.event }
    const verdicts = new Map<string, boolean>()
    for (const subscriber of this.#subscribers) {
      if (subscriber.cursor !== undefined) {
        if (subscriber.cursor < this.#ring.firstSeq) subscriber.overflow()
        continue
      }
      if (subscriber.accepts(entry, boundary, verdicts)) {
        subscriber.push(item, false)
        this.#scheduleWake(subscriber)
      }
    }
    if (boundary !== undefined && entry.nano > boundary) this.#seedBoundary = undefined
  }

  #scheduleWake(subscriber: Subscriber): void {
    if (subscriber.wakeScheduled) return
    subscriber.wakeScheduled = true
    this.#toWake.push(subscriber)
    if (this.#waking) return
    this.#waking = true
    nextTurn(() => this.#wakeSlice())
  }

  /** Wakes the next slice of subscribers; the rest wait for the next turn of the event loop. */
  #wakeSlice(): void {
    const slice = this.#toWake.splice(0, this.#wakeSliceSize)
    for (const subscriber of slice) {
      subscriber.wakeScheduled = false
      subscriber.wake()
    }
    if (this.#toWake.length > 0) nextTurn(() => this.#wakeSlice())
    else this.#waking = false
  }

  /** Events may have been lost: every subscriber is told, and coverage restarts at `from`. */
  #gap(from: bigint | undefined): void {
    this.#coverage = from
    this.#seedBoundary = undefined
    for (const subscriber of this.#subscribers) {
      // A subscriber still reading the ring gets what it has not read first.
      this.#drain(subscriber)
      subscriber.skipThrough = undefined
      subscriber.live = true
      subscriber.push({ kind: 'resync', reason: 'gap' })
    }
  }

  /** Moves what a replaying subscriber has left to read in the ring into its queue. */
  #drain(subscriber: Subscriber): void {
    for (let entry = this.catchUp(subscriber); entry; entry = this.catchUp(subscriber)) {
      subscriber.push({ kind: 'event', event: entry.event })
    }
    subscriber.cursor = undefined
  }

  /** The engine had its chance to replay: resume points still uncovered are gaps. */
  #settle(): void {
    this.#settled = true
    if (this.#coverage === undefined) {
      for (const subscriber of [...this.#pending]) {
        this.#pending.delete(subscriber)
        subscriber.resume = undefined
        this.#subscribers.add(subscriber)
        subscriber.push({ kind: 'resync', reason: 'gap' })
      }
    } else {
      this.#resolvePending()
    }
  }

  #remember(key: string): void {
    this.#recent.add(key)
    if (this.#recent.size > RECENT_KEYS) {
      const oldest = this.#recent.values().next()
      if (!oldest.done) this.#recent.delete(oldest.value)
    }
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

/** One subscription: a bounded queue of pushed items, or a cursor into the ring while replaying. */
class Subscriber implements Subscription {
  readonly #hub: EventHub
  readonly #filter: EventFilter
  /** Equal for equal filters (they are built the same way from a query). */
  readonly #filterKey: string
  readonly #limit: number
  #items: (SubscriptionItem | undefined)[] = []
  #head = 0
  #events = 0
  #done = false
  #waiter: (() => void) | undefined
  #listener: (() => void) | undefined

  /** Where a pending subscriber resumes, until the coverage is known. */
  resume: ResumePoint | undefined
  /** The next ring sequence number to read while replaying; undefined once events are pushed. */
  cursor: number | undefined
  /** Events at or before this time are skipped until a later one passes (the resume point). */
  skipThrough: bigint | undefined
  /** Without a resume point: the seed replay is history, not news. */
  live = true
  /** Waiting in the hub's wake queue. */
  wakeScheduled = false

  constructor(hub: EventHub, filter: EventFilter, limit: number | undefined) {
    this.#hub = hub
    this.#filter = filter
    this.#filterKey = JSON.stringify(filter)
    this.#limit = positiveInteger(limit ?? hub.queueLimit, 'queueLimit')
  }

  get isDone(): boolean {
    return this.#done
  }

  /** With `verdicts`, the filter is judged once per distinct filter and entry. */
  accepts(
    entry: Entry,
    seedBoundary: bigint | undefined,
    verdicts?: Map<string, boolean>,
  ): boolean {
    if (this.live && seedBoundary !== undefined && entry.nano <= seedBoundary) return false
    if (this.skipThrough !== undefined) {
      if (entry.nano <= this.skipThrough) return false
      this.skipThrough = undefined
    }
    let verdict = verdicts?.get(this.#filterKey)
    if (verdict === undefined) {
      verdict = matchesFilter(entry.event, this.#filter)
      verdicts?.set(this.#filterKey, verdict)
    }
    return verdict
  }

  /**
   * Queues an item; an event beyond the limit turns into `resync` `overflow` and the end. With
   * `wake` false the hub wakes the reader later (see `wakeSliceSize`), unless the queue is half
   * full: a reader must never overflow only because the hub had not woken it yet.
   */
  push(item: SubscriptionItem, wake = true): void {
    if (this.#done) return
    if (item.kind === 'event') {
      if (this.#events >= this.#limit) {
        this.overflow()
        return
      }
      this.#events++
    }
    this.#items.push(item)
    if (wake || this.#events * 2 >= this.#limit) this.wake()
  }

  overflow(): void {
    if (this.#done) return
    this.#items.push({ kind: 'resync', reason: 'overflow' })
    this.cursor = undefined
    this.#finish()
  }

  /** Ends at once, dropping what is queued (the hub closed). */
  end(): void {
    this.#items = []
    this.#head = 0
    this.#finish()
  }

  wake(): void {
    if (this.#listener) {
      this.#listener()
      return
    }
    const waiter = this.#waiter
    this.#waiter = undefined
    waiter?.()
  }

  onReady(listener: () => void): void {
    this.#listener = listener
  }

  async next(): Promise<SubscriptionItem | undefined> {
    for (;;) {
      const item = this.#ready()
      if (item !== undefined) return item
      if (this.#done) return undefined
      await this.whenReady()
    }
  }

  takeReady(max = DEFAULT_BATCH): SubscriptionItem[] | undefined {
    const batch: SubscriptionItem[] = []
    while (batch.length < max) {
      const item = this.#ready()
      if (item === undefined) break
      batch.push(item)
    }
    return batch.length === 0 && this.#done ? undefined : batch
  }

  whenReady(): Promise<void> {
    if (this.#done || this.#head < this.#items.length || this.cursor !== undefined) {
      return RESOLVED
    }
    return new Promise<void>((resolve) => {
      this.#waiter = resolve
    })
  }

  /** The next item if one is ready now, without waiting. */
  #ready(): SubscriptionItem | undefined {
    if (this.#head < this.#items.length) return this.#shift()
    if (this.cursor === undefined || this.#done) return undefined
    const entry = this.#hub.catchUp(this)
    return entry ? { kind: 'event', event: entry.event } : this.#ready()
  }

  close(): void {
    this.end()
  }

  [Symbol.asyncIterator](): AsyncIterator<SubscriptionItem, undefined> {
    return {
      next: async () => {
        const value = await this.next()
        return value === undefined ? { done: true, value: undefined } : { done: false, value }
      },
      return: async () => {
        this.close()
        return { done: true, value: undefined }
      },
    }
  }

  #shift(): SubscriptionItem | undefined {
    const item = this.#items[this.#head]
    this.#items[this.#head] = undefined
    this.#head++
    if (item?.kind === 'event') this.#events--
    if (this.#head === this.#items.length) {
      this.#items = []
      this.#head = 0
    } else if (this.#head >= 1024 && this.#head * 2 >= this.#items.length) {
      this.#items = this.#items.slice(this.#head)
      this.#head = 0
    }
    return item
  }

  #finish(): void {
    this.#done = true
    this.#hub.remove(this)
    this.wake()
  }
}

const RESOLVED = Promise.resolve()

/** The replay ring: events by sequence number, oldest evicted first. */
class Ring {
  readonly #slots: (Entry | undefined)[]
  /** `timeNano` → the sequence number of the first held event with it. */
  readonly #byTime = new Map<string, number>()
  #firstSeq = 0
  #nextSeq = 0

  constructor(capacity: number) {
    this.#slots = new Array<Entry | undefined>(capacity)
  }

  get size(): number {
    return this.#nextSeq - this.#firstSeq
  }

  get firstSeq(): number {
    return this.#firstSeq
  }

  get nextSeq(): number {
    return this.#nextSeq
  }

  get full(): boolean {
    return this.size === this.#slots.length
  }

  at(seq: number): Entry | undefined {
    if (seq < this.#firstSeq || seq >= this.#nextSeq) return undefined
    return this.#slots[seq % this.#slots.length]
  }

  seqOf(timeNano: string): number | undefined {
    return this.#byTime.get(timeNano)
  }

  push(parsed: ParsedEvent): { entry: Entry; evicted: Entry | undefined } {
    const capacity = this.#slots.length
    let evicted: Entry | undefined
    if (this.size === capacity) {
      evicted = this.at(this.#firstSeq)
      this.#firstSeq++
      if (evicted && this.#byTime.get(evicted.event.timeNano) === evicted.seq) {
        const next = this.at(evicted.seq + 1)
        if (next && next.event.timeNano === evicted.event.timeNano) {
          this.#byTime.set(next.event.timeNano, next.seq)
        } else {
          this.#byTime.delete(evicted.event.timeNano)
        }
      }
    }
    const entry: Entry = { ...parsed, seq: this.#nextSeq }
    this.#slots[entry.seq % capacity] = entry
    this.#nextSeq++
    if (!this.#byTime.has(entry.event.timeNano)) this.#byTime.set(entry.event.timeNano, entry.seq)
    return { entry, evicted }
  }
}

function resumePoint(options: SubscribeOptions): ResumePoint | undefined {
  if (options.lastEventId !== undefined && /^\d{1,20}$/.test(options.lastEventId)) {
    const after = BigInt(options.lastEventId)
    return { after, id: after.toString() }
  }
  if (options.since !== undefined) {
    const from = fromEngineTime(options.since)
    if (from !== undefined) return { from }
  }
  return undefined
}

function resumeSince(nano: bigint): bigint {
  return nano > RESUME_MARGIN_NS ? nano - RESUME_MARGIN_NS : 0n
}

function positiveInteger(value: number, name: string): number {
  if (!Number.isSafeInteger(value) || value < 1) {
    throw new RangeError(`Cannot create the event hub: ${name} must be a positive integer`)
  }
  return value
}

function closedProblem(): ProblemError {
  return new ProblemError(503, 'engine-unavailable', {
    detail: 'The gateway is shutting down',
    headers: { 'retry-after': '5' },
  })
}

/**
 * Runs `callback` on a later turn of the event loop, after pending I/O: `setImmediate` where the
 * runtime has it (Node, Deno), else a zero timeout.
 */
function nextTurn(callback: () => void): void {
  const immediate = (globalThis as { setImmediate?: (callback: () => void) => unknown })
    .setImmediate
  if (immediate) immediate(callback)
  else setTimeout(callback, 0)
}

function unrefTimer<T>(timer: T): T {
  ;(timer as { unref?: () => void }).unref?.()
  return timer
}
