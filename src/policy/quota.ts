/**
 * @module Quota reservations: the count of what a principal owns and the change it allows happen
 * as one step, so parallel requests cannot all pass the same count.
 *
 * Behind an interface: within one process a per-principal queue is enough; several gateway
 * processes in front of one engine need a shared store, which can take this place.
 */

export interface QuotaReservations {
  /**
   * Runs `step` (check the quota, then make the change) while no other step of the same `key`
   * runs; steps of different keys never wait for each other.
   */
  exclusive<T>(key: string, step: () => Promise<T>): Promise<T>
}

/** One queue per key in this process; a key's queue is forgotten once it is empty. */
export class LocalQuotaReservations implements QuotaReservations {
  /** The promise that settles when the last queued step of a key is over. */
  readonly #tails = new Map<string, Promise<void>>()

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

  /** Keys with a step running or queued (for tests). */
  get busyKeys(): number {
    return this.#tails.size
  }
}
