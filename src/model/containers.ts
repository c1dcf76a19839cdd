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
 *   answers: typically a few milliseconds, bounded by the engine's event delivery.
 */
import { labelMatches } from '../domain/policy.ts'
import type { EngineClient } from '../engine/client.ts'
import { containerPath, mapConcurrently } from '../engine/containers.ts'
import { EngineContainerInspect, EngineContainerList, parseEngine } from '../engine/types.ts'
import { ProblemError } from '../errors.ts'
import type { EventHub, Subscription } from '../events/hub.ts'
import { NewestFirst } from './newest-first.ts'

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

  /** Resolves once no re-inspection is under way (for tests that wait for the model to settle). */
  async idle(): Promise<void> {
    while (this.#inflight.size > 0) await Promise.all(this.#inflight.values())
  }

  async #follow(): Promise<void> {
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
      this.#refresh(item.event.actor.id)
    }
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
  async #inspect(id: string): Promise<EngineContainerInspect | undefined> {
    try {
      const raw = await this.#engine.json('GET', containerPath(id, '/json'))
      return parseEngine(EngineContainerInspect, raw, 'container')
    } catch (error) {
      if (error instanceof ProblemError && error.status === 404) return undefined
      throw error
    }
  }
}
