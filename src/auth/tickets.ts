/**
 * @module Stream tickets: short-lived credentials for `EventSource` clients, which any instance
 * of the gateway redeems.
 *
 * Browsers' `EventSource` cannot send an Authorization header, and a long-lived token must never
 * travel in a URL (it ends up in logs and histories). A ticket is bound to the principal that
 * asked for it (and may narrow its scopes) and to one stream route (the one asked for, or else
 * the first it opens), lives at most a minute, and holds at most one open stream at a time: while
 * it lives, the stream it opened may be opened again once it has ended, which is what
 * `EventSource` does after a drop (with `Last-Event-ID`). The credential that asked for it is
 * judged again at each open.
 *
 * A ticket is a signed token: `dgk_<payload>.<HMAC-SHA-256>` (WebCrypto), the payload naming a
 * random id, the principal's id and kind, its (narrowed) scopes, the stream it is bound to, and
 * the expiry. The key is `DOCKGATE_SECRET`, shared by the instances; without it, a random key of
 * this process (one instance: tickets of another process are forged to it). What the signature
 * cannot say lives in the state store under the ticket's id: that it was issued and not forgotten
 * (an outstanding ticket is recorded until it expires), the stream an unbound ticket bound at its
 * first open, and its one open stream (a lease: an instance that dies holding it frees it within
 * the store's lease time). So a ticket issued on one instance opens a stream on any other.
 *
 * Judged again where it is redeemed: on the instance that issued it, by the credential that asked
 * for it (exactly as a request with that credential would be). On another instance, which never
 * saw that credential, by the principal's id (`rejudge`, from the authenticator every instance
 * loads from the same config): a config token or `DOCKGATE_TOKEN` that is gone, or holds other
 * scopes now, counts as such there too, and so does one rotated under the same name: the ticket
 * carries a fingerprint of the credential (`Principal.fingerprint`), which must still be the one
 * accepted. A JWT cannot be verified again without the JWT, which the ticket does not carry:
 * elsewhere a JWT principal counts as accepted when the ticket was issued (its JWT was verified
 * then, at most a minute before), with its policy from the config now (`principals.<sub>`),
 * while its issuer is configured and the key that verified it (the shared secret, or a JWKS key
 * by its `kid`) is still trusted.
 */

import { DEFAULT_POLICY } from '../domain/policy.ts'
import type { Credential, Principal, Scope } from '../domain/principal.ts'
import { SCOPES } from '../domain/principal.ts'
import { MemoryStore } from '../store/memory.ts'
import type { StateStore } from '../store/port.ts'

const TICKET_PREFIX = 'dgk_'
export const TICKET_TTL_MS = 60_000
/** A ticket longer than this is not one (a JWT principal's id is the longest part). */
export const TICKET_MAX_LENGTH = 2048

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
   * Re-checks the credential that asked for the ticket (each time it opens a stream on this
   * instance): the principal it is now, or undefined once it is no longer accepted (revoked).
   */
  recheck?: Credential | undefined
}

/** What a ticket says of its principal: enough for another instance to judge it again. */
export interface TicketPrincipal {
  id: string
  kind: Principal['kind']
  scopes: ReadonlySet<Scope>
  /** Which credential of that id asked for it (`Principal.fingerprint`), when the ticket says. */
  fingerprint?: string | undefined
}

export interface TicketStoreOptions {
  /** Lifetime of a ticket; at most (and by default) a minute. */
  ttlMs?: number
  /** Outstanding tickets held at most (memory store); the oldest are forgotten first. */
  capacity?: number
  now?: () => number
  /** Where issued tickets and their open streams are recorded; this process's memory unless given. */
  store?: StateStore
  /** The signing key (`DOCKGATE_SECRET`); a random key of this process unless given. */
  secret?: string | undefined
  /**
   * The principal now of a ticket issued on another instance (whose credential this one never
   * saw), judged by its id; undefined once it is no longer accepted. Without it such tickets
   * open nothing.
   */
  rejudge?: (issued: TicketPrincipal) => Promise<Principal | undefined>
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

/** The signed payload: short keys, for a short URL. */
interface Payload {
  /** Random id: the ticket's key in the store. */
  i: string
  /** Principal id and kind. */
  p: string
  k: Principal['kind']
  /** Scopes, as a bit set over SCOPES. */
  s: number
  /** Bound stream, or null. */
  r: string | null
  /** Expiry, ms since the epoch. */
  e: number
  /** The principal's `fingerprint` (absent in tickets of instances from before it). */
  c?: string
}

const KINDS: readonly Principal['kind'][] = ['token', 'env-token', 'jwt']
const UNKNOWN = { ok: false, refusal: 'unknown' } as const

export class TicketStore {
  /** Principals and credentials of the tickets issued here, for the issuing instance's rechecks. */
  readonly #issued = new Map<
    string,
    { principal: Principal; recheck: Credential | undefined; expires: number }
  >()
  readonly #ttlMs: number
  readonly #capacity: number
  readonly #now: () => number
  readonly #store: StateStore
  readonly #secret: string | undefined
  #key: Promise<CryptoKey> | undefined
  readonly #rejudge: TicketStoreOptions['rejudge']

  constructor(options: TicketStoreOptions = {}) {
    this.#ttlMs = Math.min(options.ttlMs ?? TICKET_TTL_MS, TICKET_TTL_MS)
    this.#capacity = options.capacity ?? 10_000
    this.#now = options.now ?? Date.now
    this.#store =
      options.store ?? new MemoryStore({ now: this.#now, ticketCapacity: this.#capacity })
    this.#rejudge = options.rejudge
    this.#secret = options.secret || undefined
  }

  /**
   * The HMAC key (of `DOCKGATE_SECRET`, or random), made on the first ticket issued or verified:
   * touching `crypto` loads Node's Web Crypto (about 3 % of a cold start's CPU, bench `cold`),
   * which building the app does not otherwise need.
   */
  #hmacKey(): Promise<CryptoKey> {
    this.#key ??= crypto.subtle.importKey(
      'raw',
      this.#secret
        ? new TextEncoder().encode(this.#secret)
        : crypto.getRandomValues(new Uint8Array(32)),
      { name: 'HMAC', hash: 'SHA-256' },
      false,
      ['sign', 'verify'],
    )
    return this.#key
  }

  /** Issues a ticket for `principal`, with `scopes` (a subset of its own) or all of them. */
  async issue(principal: Principal, request: TicketRequest = {}): Promise<IssuedTicket> {
    const granted = request.scopes ? [...new Set(request.scopes)] : [...principal.scopes]
    const expires = this.#now() + this.#ttlMs
    const payload: Payload = {
      i: toBase64Url(crypto.getRandomValues(new Uint8Array(16))),
      p: principal.id,
      k: principal.kind,
      s: scopeBits(granted),
      r: request.stream ?? null,
      e: expires,
      ...(principal.fingerprint === undefined ? {} : { c: principal.fingerprint }),
    }
    const body = toBase64Url(new TextEncoder().encode(JSON.stringify(payload)))
    const signature = await crypto.subtle.sign('HMAC', await this.#hmacKey(), bytesOf(body))
    await this.#store.recordTicket(payload.i, payload.r, expires)
    this.#remember(payload.i, {
      principal: { ...principal, scopes: new Set(granted) },
      recheck: request.recheck,
      expires,
    })
    return {
      ticket: `${TICKET_PREFIX}${body}.${toBase64Url(new Uint8Array(signature))}`,
      expiresAt: new Date(expires),
      scopes: granted,
      stream: request.stream ?? null,
    }
  }

  /**
   * Opens `stream` with the ticket: refused when it is forged, unknown or expired, bound to
   * another stream, or holds an open stream already. The first stream opened binds an unbound
   * ticket.
   */
  async redeem(ticket: string, stream: string): Promise<Redemption> {
    const payload = await this.#verify(ticket)
    if (!payload || payload.e <= this.#now()) return UNKNOWN
    if (payload.r !== null && payload.r !== stream) return { ok: false, refusal: 'other-stream' }
    const local = this.#issued.get(payload.i)
    if (!local && !this.#rejudge) return UNKNOWN
    const claim = await this.#store.openTicket(payload.i, stream)
    if (!claim.ok) return claim
    if (local) {
      return {
        ok: true,
        principal: local.principal,
        recheck: local.recheck,
        release: claim.release,
      }
    }
    const issued: TicketPrincipal = {
      id: payload.p,
      kind: payload.k,
      scopes: scopesOf(payload.s),
      fingerprint: payload.c,
    }
    const rejudge = this.#rejudge!
    return {
      ok: true,
      principal: { ...issued, policy: DEFAULT_POLICY },
      recheck: () => rejudge(issued),
      release: claim.release,
    }
  }

  /** Tickets issued here and still remembered (their credentials, for rechecks). */
  get size(): number {
    return this.#issued.size
  }

  #remember(
    id: string,
    entry: { principal: Principal; recheck: Credential | undefined; expires: number },
  ) {
    const now = this.#now()
    for (const [key, old] of this.#issued) if (old.expires <= now) this.#issued.delete(key)
    this.#issued.set(id, entry)
    while (this.#issued.size > this.#capacity) {
      const oldest = this.#issued.keys().next().value
      if (oldest === undefined) break
      this.#issued.delete(oldest)
    }
  }

  /** The payload of a ticket this key signed, or undefined (malformed, forged). */
  async #verify(ticket: string): Promise<Payload | undefined> {
    if (!ticket.startsWith(TICKET_PREFIX) || ticket.length > TICKET_MAX_LENGTH) return undefined
    const [body, signature, extra] = ticket.slice(TICKET_PREFIX.length).split('.')
    if (!body || !signature || extra !== undefined) return undefined
    const mac = fromBase64Url(signature)
    if (!mac) return undefined
    // verify compares in constant time.
    const valid = await crypto.subtle.verify('HMAC', await this.#hmacKey(), mac, bytesOf(body))
    if (!valid) return undefined
    try {
      const bytes = fromBase64Url(body)
      const payload: unknown = bytes && JSON.parse(new TextDecoder().decode(bytes))
      return isPayload(payload) ? payload : undefined
    } catch {
      return undefined
    }
  }
}

function isPayload(value: unknown): value is Payload {
  if (!value || typeof value !== 'object') return false
  const p = value as Record<string, unknown>
  return (
    typeof p.i === 'string' &&
    typeof p.p === 'string' &&
    KINDS.includes(p.k as Principal['kind']) &&
    typeof p.s === 'number' &&
    (p.r === null || typeof p.r === 'string') &&
    typeof p.e === 'number' &&
    (p.c === undefined || typeof p.c === 'string')
  )
}

const scopeBits = (scopes: readonly Scope[]) =>
  scopes.reduce((bits, scope) => bits | (1 << SCOPES.indexOf(scope)), 0)

const scopesOf = (bits: number) => new Set(SCOPES.filter((_, index) => (bits & (1 << index)) !== 0))

const bytesOf = (text: string) => new TextEncoder().encode(text)

function toBase64Url(bytes: Uint8Array): string {
  let binary = ''
  for (const byte of bytes) binary += String.fromCharCode(byte)
  return btoa(binary).replaceAll('+', '-').replaceAll('/', '_').replace(/=+$/, '')
}

function fromBase64Url(text: string): Uint8Array<ArrayBuffer> | undefined {
  if (!/^[A-Za-z0-9_-]*$/.test(text)) return undefined
  try {
    const binary = atob(text.replaceAll('-', '+').replaceAll('_', '/'))
    return Uint8Array.from(binary, (c) => c.charCodeAt(0))
  } catch {
    return undefined
  }
}
