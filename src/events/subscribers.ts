/**
 * @module The hub's subscribers: bounded queues, filters, wake-ups and overflow.
 *
 * **Pushed synchronously, never waited for.** Each event is pushed into each matching
 * subscriber's bounded queue; a subscriber whose queue is full gets `resync` (`overflow`) and is
 * dropped; nobody else notices.
 *
 * **Woken in slices.** Subscribers are woken `wakeSliceSize` at a time, one slice per turn of
 * the event loop: the sockets of a slice are written before the next slice runs (so with 10,000
 * subscribers the first get an event at once), the upstream is read in between, and a subscriber
 * woken later takes everything that arrived meanwhile in one batch (`takeReady`), one write. The
 * first slice of a fan-out does not wait for a turn: it is woken as soon as the upstream has
 * handed over the batch of bytes that brought the event (`wakeFirstSlice`), with every event of
 * that batch (the turn cost about 0.1 ms of an event's latency: bench phase `latency`).
 *
 * **Replays read the ring lazily**, so they need no queue room; when the ring is about to evict
 * an event a replaying subscriber has not read, what it has left moves into its queue (and
 * overflows it if that is more than the queue holds).
 */
import { nextTurn } from '../streams/next-turn.ts'
import { type EngineEvent, type EventFilter, matchesFilter, type ParsedEvent } from './event.ts'
import { type Entry, positiveInteger, type ResumePoint, type Ring } from './ring.ts'

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
}

const DEFAULT_BATCH = 256

/** The hub's subscribers: those receiving events, those waiting to resume, and their wake-ups. */
export class Subscribers {
  readonly #ring: Ring
  readonly #queueLimit: number
  readonly #wakeSliceSize: number
  /** Subscribers that receive events (pushed, or read from the ring while catching up). */
  readonly #live = new Set<Subscriber>()
  /** Subscribers with a resume point, waiting for the coverage to settle. */
  readonly #pending = new Set<Subscriber>()
  /**
   * The live subscribers still reading the ring (with a cursor), the only ones an eviction
   * concerns. Once the ring is full every event evicts one, and a pass over every live
   * subscriber for it would be a second pass per event beside the fan-out's, over subscribers
   * that are nearly all pushed to (bench/README.md, "10,000 subscribers in pairs").
   */
  readonly #reading = new Set<Subscriber>()
  /**
   * Subscribers with pushed events that are not woken yet, in the order they got them, from
   * {@link #toWakeHead} on: a slice moves the head instead of splicing 10,000 entries forward
   * (bench phase `events`).
   */
  #toWake: (Subscriber | undefined)[] = []
  #toWakeHead = 0
  /** A turn is scheduled to wake the next slice. */
  #waking = false
  /** No slice was woken yet since {@link #toWake} began to fill: the first may go early. */
  #firstSliceDue = false

  constructor(ring: Ring, queueLimit: number, wakeSliceSize: number) {
    this.#ring = ring
    this.#queueLimit = queueLimit
    this.#wakeSliceSize = wakeSliceSize
  }

  /** Open subscriptions, including those waiting for the coverage to settle. */
  get size(): number {
    return this.#live.size + this.#pending.size
  }

  get anyPending(): boolean {
    return this.#pending.size > 0
  }

  /** A subscriber, not yet receiving anything (see {@link add} and {@link addPending}). */
  create(filter: EventFilter, queueLimit: number | undefined): Subscriber {
    return new Subscriber(
      this,
      filter,
      positiveInteger(queueLimit ?? this.#queueLimit, 'queueLimit'),
    )
  }

  /** Receives events from now on; `gap` first when it asked for a point nobody can resume. */
  add(subscriber: Subscriber, gap = false): void {
    this.#live.add(subscriber)
    if (gap) subscriber.push({ kind: 'resync', reason: 'gap' })
  }

  /** Waits for the coverage to settle before it resumes at `point`. */
  addPending(subscriber: Subscriber, point: ResumePoint): void {
    subscriber.resume = point
    this.#pending.add(subscriber)
  }

  /**
   * Resumes from the shared ring: events pushed meanwhile are held back until {@link release}
   * hands over the shared replay.
   */
  addHeld(subscriber: Subscriber): void {
    subscriber.live = false
    subscriber.held = []
    this.#live.add(subscriber)
  }

  /**
   * The shared replay is in: it goes first (read from memory, needing no queue room), then the
   * events held meanwhile that it does not already hold, in order. A `gap` replay is `resync`
   * first, then the held events.
   */
  release(subscriber: Subscriber, replay: ParsedEvent[] | 'gap'): void {
    const held = subscriber.held ?? []
    subscriber.held = undefined
    if (subscriber.isDone) return
    if (replay === 'gap') {
      subscriber.push({ kind: 'resync', reason: 'gap' }, false)
    } else {
      subscriber.replayed = new Set(replay.map((p) => p.key))
      subscriber.replay(replay.filter((p) => subscriber.wants(p.event)).map((p) => p.event))
    }
    for (const entry of held) {
      if (entry === 'gap') subscriber.push({ kind: 'resync', reason: 'gap' }, false)
      else if (subscriber.unseen(entry.key))
        subscriber.push({ kind: 'event', event: entry.event }, false)
    }
    subscriber.wake()
  }

  /** A subscriber that leaves or overflows. */
  remove(subscriber: Subscriber): void {
    this.#live.delete(subscriber)
    this.#pending.delete(subscriber)
    this.#reading.delete(subscriber)
  }

  /** A subscriber with a resume point, now that the coverage is known. */
  resume(subscriber: Subscriber, point: ResumePoint, coverage: bigint | undefined): void {
    this.#pending.delete(subscriber)
    subscriber.resume = undefined
    if (subscriber.isDone) return
    const start = this.#ring.resumeStart(point, coverage)
    this.add(subscriber, start === 'gap')
    if (start === 'gap') return
    subscriber.live = false
    subscriber.cursor = start.cursor
    if (start.cursor !== undefined) this.#reading.add(subscriber)
    if (start.skipThrough !== undefined) subscriber.skipThrough = start.skipThrough
    subscriber.wake()
  }

  /** Every pending subscriber resumes, now that the coverage is known. */
  resumePending(coverage: bigint | undefined): void {
    for (const subscriber of [...this.#pending]) {
      this.resume(subscriber, subscriber.resume ?? { from: 0n }, coverage)
    }
  }

  /** The engine replayed nothing: no pending resume point is covered. */
  gapPending(): void {
    for (const subscriber of [...this.#pending]) {
      this.#pending.delete(subscriber)
      subscriber.resume = undefined
      this.add(subscriber, true)
    }
  }

  /**
   * The next event a catching-up subscriber accepts, read from the ring; undefined once it has
   * caught up (it then receives pushed events) or fell out of the ring (overflow).
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
        this.#stopReading(subscriber)
        return undefined
      }
      subscriber.cursor = cursor + 1
      if (subscriber.accepts(entry, undefined)) return entry
    }
  }

  /** Before the ring evicts its oldest event: who still has it to read takes what it has left. */
  beforeEviction(): void {
    for (const subscriber of this.#reading) {
      if (subscriber.cursor !== undefined && subscriber.cursor <= this.#ring.firstSeq) {
        this.#drain(subscriber)
      }
    }
  }

  /**
   * A new event in the ring, pushed to everyone it concerns (not those still reading the ring,
   * nor, during the seed replay, those without a resume point: `seedBoundary`).
   */
  fanOut(entry: Entry, seedBoundary: bigint | undefined): void {
    // One item and one filter verdict per distinct filter for everyone: many subscribers (the
    // same dashboard, open many times) ask with the same filter.
    const item: SubscriptionItem = { kind: 'event', event: entry.event }
    const verdicts = new Map<string, boolean>()
    for (const subscriber of this.#live) {
      if (subscriber.cursor !== undefined) {
        if (subscriber.cursor < this.#ring.firstSeq) subscriber.overflow()
        continue
      }
      if (subscriber.held !== undefined) {
        if (subscriber.accepts(entry, seedBoundary, verdicts)) subscriber.hold(entry)
        continue
      }
      if (subscriber.accepts(entry, seedBoundary, verdicts)) {
        subscriber.push(item, false)
        this.#scheduleWake(subscriber)
      }
    }
  }

  /** Events may have been lost: every subscriber is told, and goes on with live events. */
  gap(): void {
    for (const subscriber of this.#live) {
      if (subscriber.held !== undefined) {
        subscriber.held.push('gap')
        continue
      }
      // A subscriber still reading the ring gets what it has not read first.
      this.#drain(subscriber)
      subscriber.skipThrough = undefined
      subscriber.live = true
      subscriber.push({ kind: 'resync', reason: 'gap' })
    }
  }

  /** Ends every subscription (the hub closed). */
  endAll(): void {
    for (const subscriber of [...this.#live, ...this.#pending]) subscriber.end()
    this.#live.clear()
    this.#pending.clear()
    this.#reading.clear()
  }

  /** Moves what a replaying subscriber has left to read in the ring into its queue. */
  #drain(subscriber: Subscriber): void {
    for (let entry = this.catchUp(subscriber); entry; entry = this.catchUp(subscriber)) {
      subscriber.push({ kind: 'event', event: entry.event })
    }
    this.#stopReading(subscriber)
  }

  /** The subscriber reads the ring no more (to its end, or drained): from now on it is pushed to. */
  #stopReading(subscriber: Subscriber): void {
    subscriber.cursor = undefined
    this.#reading.delete(subscriber)
  }

  /**
   * Queues the subscriber's wake-up. A new fan-out's first slice waits for {@link wakeFirstSlice}
   * (the hub calls it after every batch the upstream hands over), not for a turn: a turn is asked
   * for only when slices remain after it, which spares the one subscriber's event a
   * `setImmediate` (17 µs of a fresh gateway's time per event, one every 5 ms).
   */
  #scheduleWake(subscriber: Subscriber): void {
    if (subscriber.wakeScheduled) return
    subscriber.wakeScheduled = true
    this.#toWake.push(subscriber)
    if (!this.#waking) this.#firstSliceDue = true
  }

  /**
   * The upstream handed over a batch: the first slice of a fan-out it started is woken now, and
   * a turn is asked for the slices after it. A fan-out already under way keeps its pace of one
   * slice per turn.
   */
  wakeFirstSlice(): void {
    if (!this.#firstSliceDue) return
    this.#wakeSlice()
    if (this.#toWakeHead < this.#toWake.length) {
      this.#waking = true
      nextTurn(() => this.#wakeTurn())
    }
  }

  /** A turn of the event loop: the next slice; the rest wait for the next turn. */
  #wakeTurn(): void {
    this.#wakeSlice()
    if (this.#toWakeHead < this.#toWake.length) nextTurn(() => this.#wakeTurn())
    else this.#waking = false
  }

  #wakeSlice(): void {
    this.#firstSliceDue = false
    const queue = this.#toWake
    const end = Math.min(queue.length, this.#toWakeHead + this.#wakeSliceSize)
    while (this.#toWakeHead < end) {
      const subscriber = queue[this.#toWakeHead]!
      queue[this.#toWakeHead++] = undefined
      subscriber.wakeScheduled = false
      subscriber.wake()
    }
    if (this.#toWakeHead === queue.length) {
      this.#toWake = []
      this.#toWakeHead = 0
    }
  }
}

/** One subscription: a bounded queue of pushed items, or a cursor into the ring while replaying. */
export class Subscriber implements Subscription {
  readonly #group: Subscribers
  readonly #filter: EventFilter
  /** Equal for equal filters (they are built the same way from a query). */
  readonly #filterKey: string
  readonly #limit: number
  #items: (SubscriptionItem | undefined)[] = []
  #head = 0
  /** The shared replay, delivered before {@link #items}; it needs no queue room. */
  #replay: EngineEvent[] = []
  #replayHead = 0
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
  /** Resuming from the shared ring: what is pushed meanwhile (`gap` for a resync), in order. */
  held: (Entry | 'gap')[] | undefined
  /**
   * The keys of the shared replay, until a pushed event is not among them: the replay may hold
   * events this instance has not received yet, which must not come twice.
   */
  replayed: Set<string> | undefined
  /** Without a resume point: the seed replay is history, not news. */
  live = true
  /** Waiting in the wake queue. */
  wakeScheduled = false

  constructor(group: Subscribers, filter: EventFilter, limit: number) {
    this.#group = group
    this.#filter = filter
    this.#filterKey = JSON.stringify(filter)
    this.#limit = limit
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
    if (!this.unseen(entry.key)) return false
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

  /** Whether the filter takes `event`. */
  wants(event: EngineEvent): boolean {
    return matchesFilter(event, this.#filter)
  }

  /** False for an event the shared replay held; the first that it did not ends the check. */
  unseen(key: string): boolean {
    if (this.replayed === undefined) return true
    if (this.replayed.has(key)) return false
    this.replayed = undefined
    return true
  }

  /** Holds a pushed event until the shared replay is in; past the queue's limit, overflow. */
  hold(entry: Entry): void {
    if (this.#done || this.held === undefined) return
    if (this.held.length >= this.#limit) this.overflow()
    else this.held.push(entry)
  }

  /** The shared replay, read before anything queued. */
  replay(events: EngineEvent[]): void {
    this.#replay = events
    this.#replayHead = 0
  }

  /**
   * Queues an item; an event beyond the limit turns into `resync` `overflow` and the end. With
   * `wake` false the reader is woken later (see `wakeSliceSize`), unless the queue is half
   * full: a reader must never overflow only because it had not been woken yet.
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
    this.held = undefined
    this.#finish()
  }

  /** Ends at once, dropping what is queued (the hub closed). */
  end(): void {
    this.#items = []
    this.#head = 0
    this.#replay = []
    this.held = undefined
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
    if (this.held !== undefined && !this.#done) {
      return new Promise<void>((resolve) => {
        this.#waiter = resolve
      })
    }
    if (
      this.#done ||
      this.#head < this.#items.length ||
      this.cursor !== undefined ||
      this.#replayHead < this.#replay.length
    ) {
      return RESOLVED
    }
    return new Promise<void>((resolve) => {
      this.#waiter = resolve
    })
  }

  /** The next item if one is ready now, without waiting. */
  #ready(): SubscriptionItem | undefined {
    if (this.held !== undefined) return undefined
    if (this.#replayHead < this.#replay.length) {
      const event = this.#replay[this.#replayHead++]!
      if (this.#replayHead === this.#replay.length) {
        this.#replay = []
        this.#replayHead = 0
      }
      return { kind: 'event', event }
    }
    if (this.#head < this.#items.length) return this.#shift()
    if (this.cursor === undefined || this.#done) return undefined
    const entry = this.#group.catchUp(this)
    return entry ? { kind: 'event', event: entry.event } : this.#ready()
  }

  close(): void {
    this.end()
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
    this.#group.remove(this)
    this.wake()
  }
}

const RESOLVED = Promise.resolve()
