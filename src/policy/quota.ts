/**
 * @module Quota reservations: the count of what a principal owns and the change it allows happen
 * as one step, so parallel requests cannot all pass the same count.
 *
 * Behind an interface: within one process a per-principal queue is enough (`MemoryStore` in
 * store/memory.ts); several gateway processes share one through Redis (`RedisStore`).
 */

export interface QuotaReservations {
  /**
   * Runs `step` (check the quota, then make the change) while no other step of the same `key`
   * runs; steps of different keys never wait for each other.
   */
  exclusive<T>(key: string, step: () => Promise<T>): Promise<T>
}
