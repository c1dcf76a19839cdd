import { describe, expect, it } from 'vitest'
import { type Redemption, TicketStore } from '../../src/auth/tickets.ts'
import { DEFAULT_POLICY } from '../../src/domain/policy.ts'
import type { Principal } from '../../src/domain/principal.ts'
import { MemoryStore } from '../../src/store/memory.ts'

const alice: Principal = {
  id: 'alice',
  kind: 'token',
  scopes: new Set(['logs:read', 'events:read']),
  policy: DEFAULT_POLICY,
}

const LOGS = '/v1/containers/web/logs/stream'
const EVENTS = '/v1/events'

const opened = (redemption: Redemption) => {
  if (!redemption.ok) throw new Error(`refused: ${redemption.refusal}`)
  return redemption
}

describe('TicketStore', () => {
  it('opens one stream at a time, for the principal it was issued to', async () => {
    const store = new TicketStore()
    const { ticket, scopes } = await store.issue(alice)
    // Signed: a base64url payload and its HMAC-SHA-256 (43 characters).
    expect(ticket).toMatch(/^dgk_[A-Za-z0-9_-]+\.[A-Za-z0-9_-]{43}$/)
    expect(scopes.sort()).toEqual(['events:read', 'logs:read'])
    const first = opened(await store.redeem(ticket, LOGS))
    expect(first.principal).toMatchObject({ id: 'alice' })
    expect(await store.redeem(ticket, LOGS)).toEqual({ ok: false, refusal: 'in-use' })
    first.release()
    // Its stream ended (a dropped connection): the same stream opens again, as EventSource does.
    expect(opened(await store.redeem(ticket, LOGS)).principal.id).toBe('alice')
  })

  it('is bound to the first stream it opens, or to the one it was issued for', async () => {
    const store = new TicketStore()
    const unbound = await store.issue(alice)
    expect(unbound.stream).toBeNull()
    opened(await store.redeem(unbound.ticket, LOGS)).release()
    expect(await store.redeem(unbound.ticket, EVENTS)).toEqual({
      ok: false,
      refusal: 'other-stream',
    })
    const bound = await store.issue(alice, { stream: EVENTS })
    expect(bound.stream).toBe(EVENTS)
    expect(await store.redeem(bound.ticket, LOGS)).toEqual({ ok: false, refusal: 'other-stream' })
    expect((await store.redeem(bound.ticket, EVENTS)).ok).toBe(true)
  })

  it('narrows scopes when asked', async () => {
    const store = new TicketStore()
    const { ticket } = await store.issue(alice, { scopes: ['logs:read'] })
    expect([...opened(await store.redeem(ticket, LOGS)).principal.scopes]).toEqual(['logs:read'])
  })

  it('lives 60 seconds, never longer', async () => {
    let now = 1_000
    const store = new TicketStore({ ttlMs: 10 * 60_000, now: () => now })
    const { ticket, expiresAt } = await store.issue(alice)
    expect(expiresAt.getTime()).toBe(61_000)
    const defaults = new TicketStore({ now: () => now })
    expect((await defaults.issue(alice)).expiresAt.getTime()).toBe(61_000)
    now = 60_999
    opened(await store.redeem(ticket, LOGS)).release()
    now = 61_000
    expect(await store.redeem(ticket, LOGS)).toEqual({ ok: false, refusal: 'unknown' })
  })

  it('holds a bounded number of outstanding tickets, forgetting the oldest', async () => {
    const store = new TicketStore({ capacity: 2 })
    const first = await store.issue(alice)
    await store.issue(alice)
    const third = await store.issue(alice)
    expect(store.size).toBe(2)
    expect((await store.redeem(first.ticket, LOGS)).ok).toBe(false)
    expect((await store.redeem(third.ticket, LOGS)).ok).toBe(true)
  })

  it('knows nothing of an unknown ticket', async () => {
    expect(await new TicketStore().redeem('dgk_nope', LOGS)).toEqual({
      ok: false,
      refusal: 'unknown',
    })
  })
})

describe('TicketStore across instances', () => {
  const SECRET = 'tickets-test-secret-0123456789ab'
  const bob: Principal = { ...alice, id: 'bob' }

  /** Two instances' ticket stores on one state store and one secret; B judges by principal id. */
  const instances = (
    rejudge = async (issued: { id: string }) => (issued.id === 'alice' ? alice : undefined),
  ) => {
    const shared = new MemoryStore()
    return [
      new TicketStore({ store: shared, secret: SECRET }),
      new TicketStore({ store: shared, secret: SECRET, rejudge }),
    ] as const
  }

  it('a ticket issued on A opens on B, judged there by its principal id, narrowed as issued', async () => {
    const [a, b] = instances()
    const { ticket } = await a.issue(alice, { scopes: ['logs:read'] })
    const onB = opened(await b.redeem(ticket, LOGS))
    expect(onB.principal.id).toBe('alice')
    expect([...onB.principal.scopes]).toEqual(['logs:read'])
    expect(await onB.recheck?.()).toBe(alice)
    expect(await a.redeem(ticket, LOGS)).toEqual({ ok: false, refusal: 'in-use' })
    onB.release()
    opened(await a.redeem(ticket, LOGS))
  })

  it('a principal no longer accepted is so on B too', async () => {
    const [a, b] = instances()
    const { ticket } = await a.issue(bob)
    expect(await opened(await b.redeem(ticket, LOGS)).recheck?.()).toBeUndefined()
  })

  it('refuses tickets of another secret, forged ones, and expired ones on another instance', async () => {
    const [a, b] = instances()
    const stranger = new TicketStore({
      store: new MemoryStore(),
      secret: 'another-secret-0123456789abcdef',
    })
    const foreign = await stranger.issue(alice)
    expect(await b.redeem(foreign.ticket, LOGS)).toEqual({ ok: false, refusal: 'unknown' })
    const { ticket } = await a.issue(alice)
    const [payload, mac] = ticket.split('.') as [string, string]
    // The payload re-encoded with another stream (or principal) no longer matches its signature.
    const decoded = JSON.parse(atob(payload.slice(4).replaceAll('-', '+').replaceAll('_', '/')))
    const rebound = btoa(JSON.stringify({ ...decoded, p: 'admin' })).replace(/=+$/, '')
    expect(await b.redeem(`dgk_${rebound}.${mac}`, LOGS)).toEqual({ ok: false, refusal: 'unknown' })
    const later = new TicketStore({
      store: new MemoryStore(),
      secret: SECRET,
      rejudge: async () => alice,
      now: () => Date.now() + 60_001,
    })
    expect(await later.redeem(ticket, LOGS)).toEqual({ ok: false, refusal: 'unknown' })
  })

  it('without a way to judge another instance’s principal, its tickets open nothing', async () => {
    const shared = new MemoryStore()
    const a = new TicketStore({ store: shared, secret: SECRET })
    const b = new TicketStore({ store: shared, secret: SECRET })
    const { ticket } = await a.issue(alice)
    expect(await b.redeem(ticket, LOGS)).toEqual({ ok: false, refusal: 'unknown' })
  })
})
