/**
 * @module A read model of the engine's containers, kept current by the shared events stream.
 *
 * Listing containers costs the engine real CPU (about 1 ms per call with 20 containers) and
 * dashboards poll it. The model is built from one list, then every container event re-inspects
 * that one container. Reads are answered from memory.
 *
 * Consistency:
 * - read-your-writes: routes put what they changed into the model before they answer;
 * - a gap in the events (an upstream reconnect that cannot prove continuity, or the model's
 *   queue overflowing) rebuilds the whole model from the engine;
 * - otherwise a change made around the gateway shows after its event arrives and one inspect
 *   answers: typically a few milliseconds, bounded by the engine's event delivery;
 * - across instances (`positions.ts`): a read that asks for a position is answered from memory
 *   once {@link ContainerModel.caughtUp} proves the model has taken in every engine event up to
 *   it: the engine's own events up to that time (one bounded `/events` call) are all among those
 *   received, and their re-inspections are done.
 */
import { labelMatches } from '../domain/policy.ts'
import type { EngineClient } from '../engine/client.ts'
import { inspectContainerIfAny, mapConcurrently } from '../engine/containers.ts'
import { type EngineContainerInspect, EngineContainerList, parseEngine } from '../engine/types.ts'
import { type EngineEvent, parseEngineEvent, toEngineSince } from '../events/event.ts'
import type { EventHub, Subscription } from '../events/hub.ts'
import { RecentKeys } from '../events/ring.ts'
import { NdjsonStream } from '../streams/ndjson.ts'
import { NewestFirst } from './newest-first.ts'
import { writePosition } from './positions.ts'

export interface ModelFilters {
  all?: boolean | undefined
  label?: readonly string[]
  status?: string | undefined
  name?: string | undefined
  limit?: number | undefined
}

/** The model's own queue in the hub: far above any burst; past it, the model rebuilds. */
const QUEUE_LIMIT = 100_000
const LOAD_CONCURRENCY = 4
/** How long a read waits for the model to catch up with a position before it asks the engine. */
const CATCH_UP_MS = 250
/** Concurrent events can be published slightly out of `timeNano` order (see `events/upstream.ts`). */
const MARGIN_NS = 100_000_000n
/** Positions this instance answered itself, remembered: its own writes are in the model. */
const ISSUED = 1_024

/** What tells two container events apart (curated, as the model receives them). */
const eventKey = (e: EngineEvent) => `${e.timeNano}\0${e.action}\0${e.actor.id}`

export class ContainerModel {
  readonly #engine: EngineClient
  readonly #hub: EventHub
  readonly #logError: (message: string, error: unknown) => void
  readonly #containers = new NewestFirst()
  readonly #inflight = new Map<string, Promise<void>>()
  readonly #dirty = new Set<string>()
  /** Containers put, removed or re-inspected while a load runs: newer than its snapshot. */
  readonly #touchedDuringLoad = new Set<string>()
  #loading = false
  #ready: Promise<void> | undefined
  #loaded = false
  #closed = false
  #subscription: Subscription | undefined
  /** Keys of the events taken in lately, the newest one's time, and who waits for the next. */
  readonly #received = new RecentKeys()
  #newestReceived: bigint | undefined
  #progress: (() => void)[] = []
  /** When the model began following the engine (the gateway's clock, in ns). */
  #followingSince: bigint | undefined
  /** The model holds every engine event up to this position. */
  #provenThrough = 0n
  readonly #issued = new Set<bigint>()
  #proof: { position: bigint; result: Promise<boolean> } | undefined

  constructor(
    engine: EngineClient,
    hub: EventHub,
    logError: (message: string, error: unknown) => void = () => {},
  ) {
    this.#engine = engine
    this.#hub = hub
    this.#logError = logError
  }

  /** Starts following the engine; resolves once the first full load is in. */
  start(): Promise<void> {
    this.#ready ??= this.#follow()
    return this.#ready
  }

  /**
   * Whether reads can be answered from memory: loaded, not rebuilding, and following the engine.
   * While the events stream is down (the engine went away) nothing keeps the model current, so
   * routes ask the engine, which answers as it can (503 while it is unreachable).
   */
  get ready(): boolean {
    return this.#loaded && !this.#closed && this.#hub.connected
  }

  /**
   * Changes whenever a container changes in the model (put, re-inspected, removed, reloaded):
   * an answer derived from {@link list} at one version is the answer until it changes.
   */
  get version(): number {
    return this.#containers.version
  }

  close(): void {
    this.#closed = true
    this.#loaded = false
    this.#subscription?.close()
  }

  /**
   * Containers matching the filters, newest first, as the engine's list would give them; with
   * `visible`, only those it keeps, before `limit` counts.
   */
  list(
    filters: ModelFilters,
    visible?: (labels: Readonly<Record<string, string>>) => boolean,
  ): EngineContainerInspect[] {
    const everyState = filters.all || filters.status !== undefined || filters.limit !== undefined
    const name = filters.name === undefined ? undefined : new RegExp(filters.name)
    const selectors = filters.label ?? []
    const limit = filters.limit ?? Number.POSITIVE_INFINITY
    const matches: EngineContainerInspect[] = []
    for (const c of this.#containers.newestFirst) {
      if (matches.length >= limit) break
      if (!everyState && !c.State.Running) continue
      if (filters.status !== undefined && c.State.Status !== filters.status) continue
      if (name && !name.test(c.Name)) continue
      const labels = c.Config.Labels ?? {}
      if (visible && !visible(labels)) continue
      if (selectors.every((selector) => labelMatches(labels, selector))) matches.push(c)
    }
    return matches
  }

  /**
   * A container by full id or name, as the engine resolves them; else undefined. An id prefix is
   * left to the engine: a container created straight on the engine a moment ago, which the model
   * has not learnt of yet, may make it ambiguous, and then the engine refuses it. Answering from
   * the model would name the one it knows, and an action would hit that one.
   */
  get(ref: string): EngineContainerInspect | undefined {
    return this.byId(ref) ?? this.byName(ref)
  }

  /** A container by its full id. */
  byId(id: string): EngineContainerInspect | undefined {
    return this.#containers.get(id)
  }

  /** Newest first: while a rename's event is on its way, the name's new holder is the newer one. */
  byName(name: string): EngineContainerInspect | undefined {
    for (const c of this.#containers.newestFirst) if (c.Name === `/${name}`) return c
    return undefined
  }

  /** Read-your-writes: what a route just learnt from the engine. */
  put(inspect: EngineContainerInspect): void {
    this.#set(inspect)
  }

  remove(id: string): void {
    this.#touch(id)
    this.#containers.delete(id)
  }

  #set(inspect: EngineContainerInspect): void {
    this.#touch(inspect.Id)
    this.#containers.set(inspect)
  }

  #touch(id: string): void {
    if (this.#loading) this.#touchedDuringLoad.add(id)
  }

  /**
   * The position of a write this instance just put into the model (see `positions.ts`): a read
   * here that asks for it needs no proof.
   */
  stamp(): bigint {
    const position = writePosition(this.#newestReceived)
    this.#issued.add(position)
    if (this.#issued.size > ISSUED) this.#issued.delete(this.#issued.values().next().value!)
    return position
  }

  /**
   * Whether the model holds every engine event up to `position` (and their re-inspections);
   * proving it may take one bounded engine call and a short wait. False: ask the engine.
   */
  caughtUp(position: bigint): Promise<boolean> {
    if (!this.ready) return Promise.resolve(false)
    if (position <= this.#provenThrough || this.#issued.has(position)) return Promise.resolve(true)
    const running = this.#proof
    if (running && running.position >= position) return running.result
    const result = this.#prove(position).catch((error: unknown) => {
      this.#logError('container model: catching up failed', error)
      return false
    })
    this.#proof = { position, result }
    void result.then(() => {
      if (this.#proof?.result === result) this.#proof = undefined
    })
    return result
  }

  async #prove(position: bigint): Promise<boolean> {
    const deadline = Date.now() + CATCH_UP_MS
    const newest = this.#newestReceived
    // Events come in the engine's order, give or take the margin: one taken in well after the
    // position says every event up to it was; only their re-inspections may be under way.
    if (newest === undefined || newest <= position + MARGIN_NS) {
      if (!(await this.#allReceived(position, deadline))) return false
    }
    const idle = await Promise.race([this.idle().then(() => true), sleepUntil(deadline)])
    if (!idle || !this.ready) return false
    if (position > this.#provenThrough) this.#provenThrough = position
    return true
  }

  /** Whether every container event the engine has up to `position` has been taken in. */
  async #allReceived(position: bigint, deadline: number): Promise<boolean> {
    let from = this.#newestReceived ?? this.#followingSince ?? position
    if (from > position) from = position
    const since = from > MARGIN_NS ? from - MARGIN_NS : 0n
    const response = await this.#engine.request('GET', '/events', {
      query: {
        since: toEngineSince(since),
        until: toEngineSince(position),
        filters: JSON.stringify({ type: ['container'] }),
      },
      timeoutMs: 2_000,
    })
    const keys: string[] = []
    const reader = response.body?.pipeThrough(new NdjsonStream()).getReader()
    for (;;) {
      const result = await reader?.read()
      if (!result || result.done) break
      const parsed = parseEngineEvent(result.value)
      if (parsed) keys.push(eventKey(parsed.event))
    }
    for (const key of keys) {
      while (!this.#received.has(key)) {
        if (!(await this.#nextProgress(deadline))) return false
      }
    }
    return true
  }

  /** Resolves true when the model takes in its next event, false at `deadline`. */
  #nextProgress(deadline: number): Promise<boolean> {
    return Promise.race([
      new Promise<boolean>((resolve) => this.#progress.push(() => resolve(true))),
      sleepUntil(deadline),
    ])
  }

  /** Resolves once no re-inspection is under way (for tests that wait for the model to settle). */
  async idle(): Promise<void> {
    while (this.#inflight.size > 0) await Promise.all(this.#inflight.values())
  }

  async #follow(): Promise<void> {
    this.#followingSince ??= BigInt(Date.now()) * 1_000_000n
    // Subscribe before listing, so nothing that happens during the load is missed.
    const subscription = this.#hub.subscribe({
      filter: { type: ['container'] },
      queueLimit: QUEUE_LIMIT,
    })
    this.#subscription = subscription
    for (let delay = 200; !this.#closed; delay = Math.min(delay * 2, 5_000)) {
      try {
        await this.#load()
        break
      } catch (error) {
        // The engine may not be there yet: until it is, routes ask it directly.
        if (delay === 200) this.#logError('container model could not load; retrying', error)
        await new Promise((resolve) => setTimeout(resolve, delay))
      }
    }
    if (!this.#closed) void this.#consume(subscription)
  }

  /**
   * Replaces the model with the engine's list. What routes put or removed meanwhile (and what
   * events re-inspected) is newer than the list and stays: a container created through the
   * gateway while the model loads is there when it first answers from memory.
   */
  async #load(): Promise<void> {
    this.#loaded = false
    this.#loading = true
    this.#touchedDuringLoad.clear()
    try {
      const list = parseEngine(
        EngineContainerList,
        await this.#engine.json('GET', '/containers/json', { query: { all: 1 } }),
        'container list',
      )
      const fresh = new Map<string, EngineContainerInspect>()
      // A few at a time: a host with a thousand containers must not starve the routes' own calls.
      await mapConcurrently(list, LOAD_CONCURRENCY, async ({ Id }) => {
        const inspect = await this.#inspect(Id)
        if (inspect) fresh.set(inspect.Id, inspect)
      })
      const touched = this.#touchedDuringLoad
      for (const id of this.#containers.ids()) {
        if (!fresh.has(id) && !touched.has(id)) this.#containers.delete(id)
      }
      for (const [id, inspect] of fresh) if (!touched.has(id)) this.#containers.set(inspect)
      this.#loaded = true
    } finally {
      this.#loading = false
      this.#touchedDuringLoad.clear()
    }
  }

  async #consume(subscription: Subscription): Promise<void> {
    for (;;) {
      const item = await subscription.next()
      // The hub ends a subscription only when it closes (overflow comes as `resync` first).
      if (item === undefined || this.#closed) return this.close()
      if (item.kind === 'resync') {
        if (item.reason === 'overflow') return void this.#rebuild()
        await this.#reload()
        continue
      }
      if (!changesNothingShown(item.event) && !this.#renamed(item.event)) {
        this.#refresh(item.event.actor.id)
      }
      this.#taken(item.event)
    }
  }

  /** An event taken in (its re-inspection under way): a proof waiting for it goes on. */
  #taken(event: EngineEvent): void {
    this.#received.add(eventKey(event))
    const nano = BigInt(event.timeNano)
    if (this.#newestReceived === undefined || nano > this.#newestReceived) {
      this.#newestReceived = nano
    }
    const waiting = this.#progress
    this.#progress = []
    for (const wake of waiting) wake()
  }

  /** The model fell behind and was dropped: subscribe anew and reload. */
  async #rebuild(): Promise<void> {
    this.#loaded = false
    this.#subscription?.close()
    this.#ready = this.#follow()
    await this.#ready
  }

  async #reload(): Promise<void> {
    try {
      await this.#load()
    } catch (error) {
      this.#logError('container model reload failed', error)
    }
  }

  /**
   * A rename applied from its event alone, when that is exact: a rename changes the container's
   * `Name` and nothing else the inspect holds, save the aliases of its own legacy links
   * (docs/engine-notes.md#container-rename), and its event names the new name and the old one.
   * Applied only to a container the model holds at the event's old name, with no inspection
   * under way or owed (one started before the rename would put the old name back) and no load
   * running; else, and for a label that could stand in for `oldName`, it is re-inspected as any
   * other event. This spares the engine call, its answer's parse and most of the model's CPU for
   * the event: bench/README.md, "One subscriber's latency, fourth look".
   */
  #renamed(event: EngineEvent): boolean {
    if (event.action !== 'rename' || this.#loading || !this.#loaded) return false
    const { id, attributes } = event.actor
    const name = attributes.name
    const known = this.#containers.get(id)
    if (!name || !known || known.Name !== attributes.oldName) return false
    if (this.#inflight.has(id)) return false
    if (known.Config.Labels?.oldName !== undefined || hasLinks(known)) return false
    this.#set({ ...known, Name: `/${name}` })
    return true
  }

  /** Re-inspects one container; one inspection per container at a time, repeated if it changed meanwhile. */
  #refresh(id: string): void {
    if (this.#inflight.has(id)) {
      this.#dirty.add(id)
      return
    }
    const run = async () => {
      do {
        this.#dirty.delete(id)
        const inspect = await this.#inspect(id).catch((error: unknown) => {
          this.#logError('container model refresh failed', error)
          return null
        })
        if (inspect) this.#set(inspect)
        else if (inspect === undefined) this.remove(id)
      } while (this.#dirty.has(id) && !this.#closed)
      this.#inflight.delete(id)
    }
    this.#inflight.set(id, run())
  }

  /** The container, or undefined when the engine has no such container (any more). */
  #inspect(id: string): Promise<EngineContainerInspect | undefined> {
    return inspectContainerIfAny(this.#engine, id)
  }
}

/**
 * Container actions after which nothing the gateway shows of a container (its summary and detail
 * views, its labels for ownership) can differ: an exec's or an attach's life, a resize, a signal
 * (a process it ends comes as the container's own `die`), a copy, an export, a commit. Their
 * events are taken (as proof for a position) without a re-inspection. A health check is an exec:
 * three events a probe, each of which cost an inspect of the container and its parse. What they
 * do change (`ExecIDs`, `State.Health`) is in no view and read by nothing.
 */
const NOTHING_SHOWN_CHANGES = new Set([
  'attach',
  'detach',
  'resize',
  'kill',
  'copy',
  'archive-path',
  'extract-to-dir',
  'export',
  'commit',
  'top',
  'exec_create',
  'exec_start',
  'exec_detach',
  'exec_die',
])

const changesNothingShown = (event: EngineEvent) => NOTHING_SHOWN_CHANGES.has(event.action)

/** Legacy links name their container's own name in their aliases (`/target:/name/alias`). */
function hasLinks(inspect: EngineContainerInspect): boolean {
  const links: unknown = inspect.HostConfig.Links
  return Array.isArray(links) && links.length > 0
}

/** Resolves false at `deadline` (a `Date.now()` time). */
function sleepUntil(deadline: number): Promise<false> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(false), Math.max(0, deadline - Date.now()))
    ;(timer as { unref?: () => void }).unref?.()
  })
}
