/**
 * @module The state store port: what instances of the gateway must share to be interchangeable
 * (rate-limit buckets, counted slots, quota exclusivity, stream-ticket claims), behind one
 * interface with two adapters: in memory (`memory.ts`, one process, the default) and Redis
 * (`redis.ts`, any number of processes).
 *
 * Answers are `MaybePromise`: the memory adapter answers at once, so the hot path of a request
 * (a token and a slot) takes no await and no promise there; the Redis adapter answers a promise.
 * A store that cannot be reached rejects with a 503 problem (`storeUnavailable`): limits are
 * never silently enforced per instance instead.
 */
import { ProblemError } from '../errors.ts'

export type MaybePromise<T> = T | Promise<T>

export interface Rates {
  /** Sustained requests per second. */
  perSecond: number
  /** Requests that may come at once after a quiet spell. */
  burst: number
}

/** Gives a held slot back; calling it again does nothing. */
export type Release = () => void

/** Why a request was not admitted: its bucket is empty, or every slot of its kind is held. */
export type Refusal =
  | { limit: 'rate'; retryAfterSeconds: number }
  | { limit: 'slots'; retryAfterSeconds?: undefined }

/**
 * Counted slots: how many of each key's slots are held at once, by kind. `streams` and `budget`
 * are the open event streams and requests in progress of a principal, `ticket` the one open
 * stream of a stream ticket, `quota` a principal's create in progress (one at a time).
 */
export type SlotKind = 'streams' | 'budget' | 'ticket' | 'quota'

/** Why a ticket opens nothing; `ok` with the release of its one open stream otherwise. */
export type TicketClaim =
  | { ok: true; release: Release }
  | { ok: false; refusal: 'unknown' | 'other-stream' | 'in-use' }

export interface StoreHealth {
  ok: boolean
  /** Why not, without secrets (a Redis URL's password is never in it). */
  reason?: string
}

export interface StateStore {
  /** `memory` shares nothing beyond this process; `redis` shares everything through Redis. */
  readonly kind: 'memory' | 'redis'
  /**
   * One step: takes a token of `key`'s bucket, then holds one of `max` slots of `kind` for
   * `key`. A request refused by its slots has still spent its token (as one process did).
   * Answers the slot's release, or the refusal.
   */
  admit(key: string, rates: Rates, kind: SlotKind, max: number): MaybePromise<Release | Refusal>
  /**
   * Holds one of `max` slots of `kind` for `key`, or answers undefined when all are held. A slot
   * held by an instance that dies is given back by itself within a lease (Redis: seconds).
   */
  acquire(kind: SlotKind, key: string, max: number): MaybePromise<Release | undefined>
  /** Runs `step` while no other step of `key` runs, in this process or (Redis) any other. */
  exclusive<T>(key: string, step: () => Promise<T>): Promise<T>
  /** Records an issued ticket until `expiresAt` (ms since the epoch), bound to `stream` or not. */
  recordTicket(id: string, stream: string | null, expiresAt: number): MaybePromise<void>
  /**
   * Opens `stream` with a recorded ticket: binds an unbound ticket to it, and holds the ticket's
   * one open stream. Refused when unknown (never recorded, expired, or forgotten), bound to
   * another stream, or holding an open stream already.
   */
  openTicket(id: string, stream: string): MaybePromise<TicketClaim>
  /** Whether the store answers now, and why not (for `/readyz`). */
  health(): Promise<StoreHealth>
  /** Stops renewing leases and closes what the store opened (not a client it was given). */
  close(): Promise<void>
}

/** Seconds a client is told to wait when the store does not answer. */
export const STORE_RETRY_AFTER_SECONDS = '5'

/** The problem of a request that needs the shared store while it cannot be reached. */
export function storeUnavailable(detail: string): ProblemError {
  return new ProblemError(503, 'store-unavailable', {
    detail,
    headers: { 'retry-after': STORE_RETRY_AFTER_SECONDS },
  })
}

/** The refusal, or undefined for an admitted request's release. */
export const isRefusal = (answer: Release | Refusal): answer is Refusal =>
  typeof answer !== 'function'
