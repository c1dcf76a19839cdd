/**
 * @module EventHub: one upstream `GET /events` per gateway process, fanned out to every
 * subscriber, with a replay ring far larger than the engine's 256 events (docs/engine-notes.md#event-ring).
 *
 * The hub composes three parts and owns what ties them together, the coverage:
 * - `upstream.ts`: the one engine stream, read in its own loop that never waits, its seed
 *   connection, reconnects and probes;
 * - `ring.ts`: the replay ring, and where a resume point starts in it;
 * - `subscribers.ts`: the bounded queues, filters, wake-ups in slices, and overflow.
 * Each event is curated, put in the ring and pushed synchronously into each matching
 * subscriber's queue: the engine never sees a slow reader (it would drop events for one after
 * 100 ms).
 *
 * **Seed.** Subscribers without a resume point never see the engine's replay of its ring on the
 * first connection: while it streams, events at or before the engine's clock are hidden from them.
 *
 * **Coverage.** `coverageFrom` is a `timeNano` such that the hub holds every event with a later
 * `timeNano` (exclusive, so it is safe when events share a nanosecond). It starts at the first
 * event received after a (seed or gap) connection: older ones may have left the engine's ring,
 * and the engine never says so. It moves forward as the hub's ring evicts events. While no event
 * has been received since a seed or a gap, there is no coverage.
 *
 * **Continuity.** A reconnect's replay starts with events the hub already has; those are dropped
 * by key (`timeNano`, type, full action, actor id). The reconnect is **proven continuous** when
 * that replay contains the last event the hub received: the engine's ring still holds it, so it
 * holds everything after it. It is a **gap** when an unknown event arrives before that proof (the
 * engine's ring rotated past our last event, or the engine restarted), or when the upstream's
 * probe shows that the engine no longer has that event. On a gap every subscriber gets `resync`
 * (`gap`) and coverage restarts. A connection that ends before any event was ever received cannot
 * be continued provably either: that is a gap too. Subscribers stay open while the hub is
 * disconnected.
 *
 * **Resume.** `lastEventId` (a `timeNano`) replays the held events after it; `since` (engine
 * time) those at or after it. A point the coverage does not reach gets `resync` (`gap`) first,
 * then live events only: a client that lost events rebuilds its state from a listing and needs
 * no stale events after that. Right after a seed or a gap, a resume waits until the first event
 * settles the coverage, or `settleMs` after the connection when the engine stays silent (then it
 * is a gap: the engine's ring was empty).
 *
 * **Shared ring** (`shared`, several instances: `shared.ts`). Each event received is also
 * appended to the shared ring, and every resume is served from it (a client may have read on
 * another instance, whose order of concurrent events only the shared ring knows): the subscriber's pushed events
 * are held back while this instance's appends are flushed and the shared events after the point
 * are read, then it gets those, then the held events the replay did not already hold. Each
 * instance still holds its one upstream.
 *
 * Web standards only: no `node:*`, timers are unref'ed where the runtime can.
 */
import type { EngineClient } from '../engine/client.ts'
import type { ParsedEvent } from './event.ts'
import {
  type Entry,
  positiveInteger,
  RecentKeys,
  type ResumePoint,
  Ring,
  resumePoint,
} from './ring.ts'
import type { SharedRing } from './shared.ts'
import {
  type SubscribeOptions,
  type Subscriber,
  Subscribers,
  type Subscription,
} from './subscribers.ts'
import { Upstream, unrefTimer } from './upstream.ts'

export type {
  ResyncReason,
  SubscribeOptions,
  Subscription,
  SubscriptionItem,
} from './subscribers.ts'

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
  /**
   * The replay ring shared with other instances (`shared.ts`); none: this instance's ring alone.
   */
  shared?: SharedRing
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
  /** Most events the replay ring holds (`ringSize` in the options). */
  ringCapacity: number
  /** The hub holds every event with a later `timeNano`; null while there is no coverage. */
  coverageFrom: string | null
  /** Engine lines skipped: not JSON objects of the expected shape, or of an unknown type. */
  malformed: number
}

export const DEFAULT_RING_SIZE = 10_000
export const DEFAULT_QUEUE_LIMIT = 1_000
export const DEFAULT_WAKE_SLICE_SIZE = 500
/** How far a resumed id may lie past the newest event and the gateway's clock: a minute. */
export const FUTURE_ID_TOLERANCE_NS = 60_000_000_000n

export class EventHub {
  readonly #ring: Ring
  readonly #subscribers: Subscribers
  readonly #upstream: Upstream
  readonly #settleMs: number
  readonly #recent = new RecentKeys()
  readonly #shared: SharedRing | undefined
  readonly #logError: (message: string, error: unknown) => void
  /** The key of the last event received on the current unbroken connection: the next's `prev`. */
  #sharedPrev: string | undefined

  #malformed = 0
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
    this.#ring = new Ring(positiveInteger(options.ringSize ?? DEFAULT_RING_SIZE, 'ringSize'))
    this.#subscribers = new Subscribers(
      this.#ring,
      positiveInteger(options.queueLimit ?? DEFAULT_QUEUE_LIMIT, 'queueLimit'),
      positiveInteger(options.wakeSliceSize ?? DEFAULT_WAKE_SLICE_SIZE, 'wakeSliceSize'),
    )
    this.#settleMs = options.settleMs ?? 1_000
    this.#shared = options.shared
    this.#logError = options.logError ?? ((message, error) => console.error(message, error))
    this.#upstream = new Upstream(
      engine,
      {
        last: () => this.#last,
        seeding: () => {
          this.#settled = false
        },
        opened: (resume, boundary) => this.#opened(resume, boundary),
        received: (parsed) => this.#ingest(parsed),
        batchEnd: () => this.#subscribers.wakeFirstSlice(),
        // Nothing received on this connection nor before: nothing can prove the next one continuous.
        ended: () => {
          if (this.#last === undefined) this.#gap(undefined)
        },
        lost: (last) => {
          if (this.#verify !== last.key) return
          this.#verify = undefined
          this.#gap(undefined)
          this.#settle()
        },
      },
      {
        backoffInitialMs: options.backoffInitialMs ?? 100,
        backoffMaxMs: options.backoffMaxMs ?? 5_000,
        logError: this.#logError,
      },
    )
  }

  /** Opens the upstream (once); the hub keeps it open until `close()`, subscribers or not. */
  start(): void {
    this.#upstream.start()
  }

  /**
   * Resolves once the upstream is connected. Rejects with the engine's problem when the current
   * attempt fails or the hub is waiting to retry after one, so a new client learns at once that
   * the engine is unreachable; open subscriptions are not affected.
   */
  ready(signal?: AbortSignal): Promise<void> {
    return this.#upstream.ready(signal)
  }

  subscribe(options: SubscribeOptions = {}): Subscription {
    const subscriber = this.#subscribers.create(options.filter ?? {}, options.queueLimit)
    if (this.#upstream.closed) {
      subscriber.end()
      return subscriber
    }
    this.start()
    const point = resumePoint(options)
    if (point === undefined) {
      this.#subscribers.add(subscriber)
    } else if (this.#fromTheFuture(point)) {
      // No event can have had that id yet (a Last-Event-ID of another engine, or one read before
      // the engine's clock stepped back): skipping every event up to it would be a silent gap.
      this.#subscribers.add(subscriber, true)
    } else if (this.#shared) {
      // Always the shared ring, even when this instance's covers the point: the client may have
      // read on another instance, which can have received concurrent events in another order
      // (README, "Several instances"), and only the shared ring knows both orders. It may repeat an
      // event then; it never skips one.
      this.#resumeShared(this.#shared, subscriber, point)
    } else if (this.#coverage !== undefined) {
      this.#subscribers.resume(subscriber, point, this.#coverage)
    } else if (this.#settled) {
      this.#subscribers.add(subscriber, true)
    } else {
      this.#subscribers.addPending(subscriber, point)
    }
    return subscriber
  }

  /**
   * The id (`timeNano`) of the last event the hub received, if any: a subscription opened now
   * without a resume point receives exactly the events after it (a merged stream's starting
   * point for this engine).
   */
  get lastEventId(): string | undefined {
    return this.#last?.nano.toString()
  }

  /** Whether the upstream `/events` stream is connected now. */
  get connected(): boolean {
    return this.#upstream.connected
  }

  stats(): EventHubStats {
    return {
      upstreamConnected: this.#upstream.connected,
      upstreamConnections: this.#upstream.connections,
      subscribers: this.#subscribers.size,
      ringSize: this.#ring.size,
      ringCapacity: this.#ring.capacity,
      coverageFrom: this.#coverage?.toString() ?? null,
      malformed: this.#malformed,
    }
  }

  /** Stops the upstream and ends every subscription. */
  close(): void {
    if (this.#upstream.closed) return
    this.#upstream.close()
    clearTimeout(this.#settleTimer)
    this.#subscribers.endAll()
  }

  /** Serves a resume point from the shared ring. */
  #resumeShared(shared: SharedRing, subscriber: Subscriber, point: ResumePoint): void {
    this.#subscribers.addHeld(subscriber)
    const replay = shared
      .flushed()
      .then(() => shared.replay(point))
      .catch((error: unknown): 'gap' => {
        this.#logError('shared events ring: replay failed', error)
        return 'gap'
      })
    void replay.then((events) => this.#subscribers.release(subscriber, events))
  }

  #opened(resume: Entry | undefined, boundary: bigint | undefined): void {
    if (resume) {
      this.#verify = resume.key
      return
    }
    this.#seedBoundary = boundary
    this.#sharedPrev = undefined
    this.#settled = false
    clearTimeout(this.#settleTimer)
    this.#settleTimer = unrefTimer(setTimeout(() => this.#settle(), this.#settleMs))
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
    if (this.#ring.full) this.#subscribers.beforeEviction()
    const { entry, evicted } = this.#ring.push(parsed)
    if (evicted && evicted.nano > (this.#coverage ?? evicted.nano - 1n)) {
      this.#coverage = evicted.nano
    }
    this.#recent.add(parsed.key)
    this.#shared?.append(parsed, this.#sharedPrev)
    this.#sharedPrev = parsed.key
    this.#last = entry
    if (!this.#settled || this.#subscribers.anyPending) {
      this.#settled = true
      clearTimeout(this.#settleTimer)
      this.#subscribers.resumePending(this.#coverage)
    }
    const boundary = this.#seedBoundary
    this.#subscribers.fanOut(entry, boundary)
    if (boundary !== undefined && entry.nano > boundary) this.#seedBoundary = undefined
  }

  /**
   * Whether a client's last event id lies later than any event there can be: more than
   * {@link FUTURE_ID_TOLERANCE_NS} past both the newest event received and the gateway's clock
   * (the engine stamps ids by its own, which may be somewhat ahead). A `since` is a time the
   * client asks for, and may lie ahead.
   */
  #fromTheFuture(point: ResumePoint): boolean {
    if (!('after' in point)) return false
    const now = BigInt(Date.now()) * 1_000_000n
    const newest = this.#last && this.#last.nano > now ? this.#last.nano : now
    return point.after > newest + FUTURE_ID_TOLERANCE_NS
  }

  /** Events may have been lost: every subscriber is told, and coverage restarts at `from`. */
  #gap(from: bigint | undefined): void {
    this.#coverage = from
    this.#seedBoundary = undefined
    this.#sharedPrev = undefined
    this.#subscribers.gap()
  }

  /** The engine had its chance to replay: resume points still uncovered are gaps. */
  #settle(): void {
    this.#settled = true
    if (this.#coverage === undefined) this.#subscribers.gapPending()
    else this.#subscribers.resumePending(this.#coverage)
  }
}
