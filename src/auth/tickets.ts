/**
 * @module Stream tickets: short-lived credentials for `EventSource` clients.
 *
 * Browsers' `EventSource` cannot send an Authorization header, and a long-lived token must never
 * travel in a URL (it ends up in logs and histories). A ticket is bound to the principal that
 * asked for it (and may narrow its scopes) and to one stream route, lives at most a minute, and
 * holds at most one open stream at a time: while it lives, the stream it opened may be opened
 * again once it has ended, which is what `EventSource` does after a drop (with `Last-Event-ID`).
 */
import type { Credential, Principal, Scope } from '../domain/principal.ts'
import { hashToken } from './tokens.ts'

const TICKET_PREFIX = 'dgk_'
export const TICKET_TTL_MS = 60_000

export interface IssuedTicket {
  ticket: string
  expiresAt: Date
  scopes: Scope[]
  /** The stream path it opens; null until its first stream binds it. */
  stream: string | null
}

export interface TicketRequest {
  /** A subset of the principal's scopes; all of them unless given. */
  scopes?: readonly Scope[] | undefined
  /** The one stream path it may open; the first one it opens unless given. */
  stream?: string | undefined
  /**
   * Re-checks the credential that asked for the ticket (each time it opens a stream): the
   * principal it is now, or undefined once it is no longer accepted (revoked).
   */
  recheck?: Credential | undefined
}

export interface TicketStoreOptions {
  /** Lifetime of a ticket; at most (and by default) a minute. */
  ttlMs?: number
  /** Outstanding tickets held at most; the oldest are forgotten first. */
  capacity?: number
  now?: () => number
}

/** Why a ticket opens nothing: unknown or expired, bound to another stream, or its stream is open. */
export type TicketRefusal = 'unknown' | 'other-stream' | 'in-use'

export type Redemption =
  | {
      ok: true
      /** As issued: the scopes it was narrowed to. */
      principal: Principal
      recheck: Credential | undefined
      /** Call when the stream it opened has ended: the ticket may open it again while it lives. */
      release: () => void
    }
  | { ok: false; refusal: TicketRefusal }

interface Entry {
  principal: Principal
  recheck: Credential | undefined
  expires: number
  stream: string | undefined
  open: boolean
}

export class TicketStore {
  readonly #tickets = new Map<string, Entry>()
  readonly #ttlMs: number
  readonly #capacity: number
  readonly #now: () => number

  constructor(options: TicketStoreOptions = {}) {
    this.#ttlMs = Math.min(options.ttlMs ?? TICKET_TTL_MS, TICKET_TTL_MS)
    this.#capacity = options.capacity ?? 10_000
    this.#now = options.now ?? Date.now
  }

  /** Issues a ticket for `principal`, with `scopes` (a subset of its own) or all of them. */
  async issue(principal: Principal, request: TicketRequest = {}): Promise<IssuedTicket> {
    this.#sweep()
    const granted = request.scopes ? [...new Set(request.scopes)] : [...principal.scopes]
    const random = crypto.getRandomValues(new Uint8Array(32))
    const ticket =
      TICKET_PREFIX + Array.from(random, (b) => b.toString(16).padStart(2, '0')).join('')
    const expires = this.#now() + this.#ttlMs
    this.#tickets.set(await hashToken(ticket), {
      principal: { ...principal, scopes: new Set(granted) },
      recheck: request.recheck,
      expires,
      stream: request.stream,
      open: false,
    })
    while (this.#tickets.size > this.#capacity) {
      const oldest = this.#tickets.keys().next().value
      if (oldest === undefined) break
      this.#tickets.delete(oldest)
    }
    return {
      ticket,
      expiresAt: new Date(expires),
      scopes: granted,
      stream: request.stream ?? null,
    }
  }

  /**
   * Opens `stream` with the ticket: refused when it is unknown or expired, bound to another
   * stream, or holds an open stream already. The first stream opened binds an unbound ticket.
   */
  async redeem(ticket: string, stream: string): Promise<Redemption> {
    const entry = this.#tickets.get(await hashToken(ticket))
    if (!entry || entry.expires <= this.#now()) return { ok: false, refusal: 'unknown' }
    if (entry.stream !== undefined && entry.stream !== stream) {
      return { ok: false, refusal: 'other-stream' }
    }
    if (entry.open) return { ok: false, refusal: 'in-use' }
    entry.stream = stream
    entry.open = true
    let released = false
    const release = () => {
      if (released) return
      released = true
      entry.open = false
    }
    return { ok: true, principal: entry.principal, recheck: entry.recheck, release }
  }

  get size(): number {
    return this.#tickets.size
  }

  #sweep() {
    const now = this.#now()
    for (const [key, entry] of this.#tickets) if (entry.expires <= now) this.#tickets.delete(key)
  }
}
