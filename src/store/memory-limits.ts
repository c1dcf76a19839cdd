/**
 * @module Per-key request rate (token buckets) and counted slots, in this process: what the
 * memory state store (`memory.ts`) keeps.
 */

export interface RateLimitOptions {
  /** Sustained requests per second. */
  perSecond: number
  /** Requests that may come at once after a quiet spell. */
  burst: number
  now?: () => number
  /** Principals tracked at most; idle full buckets are forgotten first. */
  capacity?: number
}

/** Answered when a token was taken: one object for every such answer. */
const TAKEN = { ok: true } as const

/** One token bucket per key; a request takes a token, tokens refill at `perSecond`. */
export class TokenBuckets {
  readonly #buckets = new Map<string, { tokens: number; at: number }>()
  readonly #options: Required<RateLimitOptions>
  /** The key of the most recently used bucket: it is last in the map already. */
  #latest: string | undefined

  constructor(options: RateLimitOptions) {
    this.#options = { now: Date.now, capacity: 10_000, ...options }
  }

  /** New rates from now on (a config reload); buckets keep their tokens, up to the new burst. */
  configure(rates: { perSecond: number; burst: number }): void {
    this.#options.perSecond = rates.perSecond
    this.#options.burst = rates.burst
  }

  /** Takes a token; when none is left, answers how many seconds until one is. */
  take(key: string): { ok: true } | { ok: false; retryAfterSeconds: number } {
    const { perSecond, burst, now } = this.#options
    const at = now()
    let bucket = this.#buckets.get(key)
    if (!bucket) {
      bucket = { tokens: burst, at }
      this.#markUsed(key, bucket)
    } else {
      bucket.tokens = Math.min(burst, bucket.tokens + ((at - bucket.at) / 1000) * perSecond)
      bucket.at = at
      if (key !== this.#latest) this.#markUsed(key, bucket)
    }
    if (bucket.tokens >= 1) {
      bucket.tokens -= 1
      return TAKEN
    }
    return { ok: false, retryAfterSeconds: Math.max(1, Math.ceil((1 - bucket.tokens) / perSecond)) }
  }

  /** Moves the bucket to the end of the map, so that map order is least recently used first. */
  #markUsed(key: string, bucket: { tokens: number; at: number }) {
    this.#buckets.delete(key)
    this.#buckets.set(key, bucket)
    this.#latest = key
    this.#forgetOldest()
  }

  #forgetOldest() {
    // Map order is least recently used first: the oldest entries are the idlest.
    while (this.#buckets.size > this.#options.capacity) {
      const oldest = this.#buckets.keys().next().value
      if (oldest === undefined) return
      this.#buckets.delete(oldest)
    }
  }
}

/** Counts what each key holds at once (open streams, requests in progress) against a maximum. */
export class StreamSlots {
  readonly #open = new Map<string, number>()
  /** Streams one key may hold; lowering it (a config reload) closes none, refuses new ones. */
  max: number

  constructor(max: number) {
    this.max = max
  }

  acquire(key: string): boolean {
    const open = this.#open.get(key) ?? 0
    if (open >= this.max) return false
    this.#open.set(key, open + 1)
    return true
  }

  release(key: string): void {
    const open = (this.#open.get(key) ?? 1) - 1
    if (open <= 0) this.#open.delete(key)
    else this.#open.set(key, open)
  }

  openFor(key: string): number {
    return this.#open.get(key) ?? 0
  }
}
