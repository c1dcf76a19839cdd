/**
 * @module Per-principal request rate (token buckets) and concurrent stream limits.
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

/** One token bucket per key; a request takes a token, tokens refill at `perSecond`. */
export class TokenBuckets {
  readonly #buckets = new Map<string, { tokens: number; at: number }>()
  readonly #options: Required<RateLimitOptions>

  constructor(options: RateLimitOptions) {
    this.#options = { now: Date.now, capacity: 10_000, ...options }
  }

  /** Takes a token; when none is left, answers how many seconds until one is. */
  take(key: string): { ok: true } | { ok: false; retryAfterSeconds: number } {
    const { perSecond, burst, now } = this.#options
    const at = now()
    const bucket = this.#buckets.get(key) ?? { tokens: burst, at }
    bucket.tokens = Math.min(burst, bucket.tokens + ((at - bucket.at) / 1000) * perSecond)
    bucket.at = at
    this.#buckets.delete(key)
    this.#buckets.set(key, bucket)
    this.#forgetOldest()
    if (bucket.tokens >= 1) {
      bucket.tokens -= 1
      return { ok: true }
    }
    return { ok: false, retryAfterSeconds: Math.max(1, Math.ceil((1 - bucket.tokens) / perSecond)) }
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

/** Counts open streams per key against a maximum. */
export class StreamSlots {
  readonly #open = new Map<string, number>()
  readonly #max: number

  constructor(max: number) {
    this.#max = max
  }

  acquire(key: string): boolean {
    const open = this.#open.get(key) ?? 0
    if (open >= this.#max) return false
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
