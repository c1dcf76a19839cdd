/**
 * @module Stream tickets: short-lived, single-use credentials for `EventSource` clients.
 *
 * Browsers' `EventSource` cannot send an Authorization header, and a long-lived token must never
 * travel in a URL (it ends up in logs and histories). A ticket is bound to the principal that
 * asked for it (and may narrow its scopes), lives at most a minute, and works once.
 */
import type { Principal, Scope } from './principal.ts'
import { hashToken } from './tokens.ts'

export const TICKET_PREFIX = 'dgk_'
export const MAX_TICKET_TTL_MS = 60_000

export interface IssuedTicket {
  ticket: string
  expiresAt: Date
  scopes: Scope[]
}

export interface TicketStoreOptions {
  ttlMs?: number
  /** Outstanding tickets held at most; the oldest are forgotten first. */
  capacity?: number
  now?: () => number
}

export class TicketStore {
  readonly #tickets = new Map<string, { principal: Principal; expires: number }>()
  readonly #ttlMs: number
  readonly #capacity: number
  readonly #now: () => number

  constructor(options: TicketStoreOptions = {}) {
    this.#ttlMs = Math.min(options.ttlMs ?? 30_000, MAX_TICKET_TTL_MS)
    this.#capacity = options.capacity ?? 10_000
    this.#now = options.now ?? Date.now
  }

  /** Issues a ticket for `principal`, with `scopes` (a subset of its own) or all of them. */
  async issue(principal: Principal, scopes?: readonly Scope[]): Promise<IssuedTicket> {
    this.#sweep()
    const granted = scopes ? [...new Set(scopes)] : [...principal.scopes]
    const random = crypto.getRandomValues(new Uint8Array(32))
    const ticket =
      TICKET_PREFIX + Array.from(random, (b) => b.toString(16).padStart(2, '0')).join('')
    const expires = this.#now() + this.#ttlMs
    const bound: Principal = { ...principal, scopes: new Set(granted) }
    this.#tickets.set(await hashToken(ticket), { principal: bound, expires })
    while (this.#tickets.size > this.#capacity) {
      const oldest = this.#tickets.keys().next().value
      if (oldest === undefined) break
      this.#tickets.delete(oldest)
    }
    return { ticket, expiresAt: new Date(expires), scopes: granted }
  }

  /** The ticket's principal, once: a ticket redeemed, expired or unknown answers undefined. */
  async redeem(ticket: string): Promise<Principal | undefined> {
    const key = await hashToken(ticket)
    const entry = this.#tickets.get(key)
    this.#tickets.delete(key)
    if (!entry || entry.expires <= this.#now()) return undefined
    return entry.principal
  }

  get size(): number {
    return this.#tickets.size
  }

  #sweep() {
    const now = this.#now()
    for (const [key, entry] of this.#tickets) if (entry.expires <= now) this.#tickets.delete(key)
  }
}
