import { describe, expect, it } from 'vitest'
import { type Redemption, TicketStore } from '../../src/auth/tickets.ts'
import { DEFAULT_POLICY } from '../../src/domain/policy.ts'
import type { Principal } from '../../src/domain/principal.ts'

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
