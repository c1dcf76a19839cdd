/**
 * @module The state store of one process: everything it shares stays in this process's memory,
 * and every answer but `exclusive` comes at once (no promise), as the hot path wants. The
 * default: one gateway needs nothing else. Nothing here survives a restart.
 */
import { StreamSlots, TokenBuckets } from './memory-limits.ts'
import type {
  Rates,
  Refusal,
  Release,
  SlotKind,
  StateStore,
  StoreHealth,
  TicketClaim,
} from './port.ts'

export interface MemoryStoreOptions {
  now?: () => number
  /** Outstanding tickets recorded at most; the oldest are forgotten first (and open nothing). */
  ticketCapacity?: number
}

/** The same refusal object for every request over its slots. */
const SLOTS_FULL: Refusal = { limit: 'slots' }
const HEALTHY: StoreHealth = { ok: true }

export class MemoryStore implements StateStore {
  readonly kind = 'memory'
  readonly #now: () => number
  readonly #ticketCapacity: number
  /** The rates the buckets were last configured with (a reload hands new ones). */
  #rates: Rates | undefined
  readonly #buckets: TokenBuckets
  readonly #slots: Record<SlotKind, StreamSlots>
  /** Recorded tickets: the stream each is bound to ('' until its first stream binds it). */
  readonly #tickets = new Map<string, { stream: string; expires: number }>()
  /** The promise that settles when the last queued step of a key is over. */
  readonly #tails = new Map<string, Promise<void>>()

  constructor(options: MemoryStoreOptions = {}) {
    this.#now = options.now ?? Date.now
    this.#ticketCapacity = options.ticketCapacity ?? 10_000
    this.#buckets = new TokenBuckets({ perSecond: 1, burst: 1, now: this.#now })
    this.#slots = {
      streams: new StreamSlots(0),
      budget: new StreamSlots(0),
      ticket: new StreamSlots(1),
      quota: new StreamSlots(1),
    }
  }

  admit(key: string, rates: Rates, kind: SlotKind, max: number): Release | Refusal {
    if (rates !== this.#rates) {
      this.#rates = rates
      this.#buckets.configure(rates)
    }
    const taken = this.#buckets.take(key)
    if (!taken.ok) return { limit: 'rate', retryAfterSeconds: taken.retryAfterSeconds }
    return this.acquire(kind, key, max) ?? SLOTS_FULL
  }

  acquire(kind: SlotKind, key: string, max: number): Release | undefined {
    const slots = this.#slots[kind]
    slots.max = max
    if (!slots.acquire(key)) return undefined
    let held = true
    return () => {
      if (!held) return
      held = false
      slots.release(key)
    }
  }

  /** One queue per key in this process; a key's queue is forgotten once it is empty. */
  async exclusive<T>(key: string, step: () => Promise<T>): Promise<T> {
    const previous = this.#tails.get(key)
    let done!: () => void
    const mine = new Promise<void>((resolve) => {
      done = resolve
    })
    const tail = previous ? previous.then(() => mine) : mine
    this.#tails.set(key, tail)
    if (previous) await previous
    try {
      return await step()
    } finally {
      done()
      if (this.#tails.get(key) === tail) this.#tails.delete(key)
    }
  }

  recordTicket(id: string, stream: string | null, expiresAt: number): void {
    const now = this.#now()
    for (const [key, entry] of this.#tickets) if (entry.expires <= now) this.#tickets.delete(key)
    this.#tickets.set(id, { stream: stream ?? '', expires: expiresAt })
    while (this.#tickets.size > this.#ticketCapacity) {
      const oldest = this.#tickets.keys().next().value
      if (oldest === undefined) break
      this.#tickets.delete(oldest)
    }
  }

  openTicket(id: string, stream: string): TicketClaim {
    const entry = this.#tickets.get(id)
    if (!entry || entry.expires <= this.#now()) return { ok: false, refusal: 'unknown' }
    if (entry.stream !== '' && entry.stream !== stream)
      return { ok: false, refusal: 'other-stream' }
    const release = this.acquire('ticket', id, 1)
    if (!release) return { ok: false, refusal: 'in-use' }
    entry.stream = stream
    return { ok: true, release }
  }

  /** Tickets recorded and not yet forgotten (for tests). */
  get tickets(): number {
    return this.#tickets.size
  }

  /** Keys with a step running or queued (for tests). */
  get busyKeys(): number {
    return this.#tails.size
  }

  health(): Promise<StoreHealth> {
    return Promise.resolve(HEALTHY)
  }

  close(): Promise<void> {
    return Promise.resolve()
  }
}
