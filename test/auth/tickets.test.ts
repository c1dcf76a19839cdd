import { describe, expect, it } from 'vitest'
import type { Principal } from '../../src/auth/principal.ts'
import { TicketStore } from '../../src/auth/tickets.ts'
import { DEFAULT_POLICY } from '../../src/policy/policy.ts'

const alice: Principal = {
  id: 'alice',
  kind: 'token',
  scopes: new Set(['logs:read', 'events:read']),
  policy: DEFAULT_POLICY,
}

describe('TicketStore', () => {
  it('redeems a ticket once, for the principal it was issued to', async () => {
    const store = new TicketStore()
    const { ticket, scopes } = await store.issue(alice)
    expect(ticket).toMatch(/^dgk_[0-9a-f]{64}$/)
    expect(scopes.sort()).toEqual(['events:read', 'logs:read'])
    expect(await store.redeem(ticket)).toMatchObject({ id: 'alice' })
    expect(await store.redeem(ticket)).toBeUndefined()
  })

  it('narrows scopes when asked', async () => {
    const store = new TicketStore()
    const { ticket } = await store.issue(alice, ['logs:read'])
    expect([...((await store.redeem(ticket))?.scopes ?? [])]).toEqual(['logs:read'])
  })

  it('expires tickets, and never lives longer than a minute', async () => {
    let now = 1_000
    const store = new TicketStore({ ttlMs: 10 * 60_000, now: () => now })
    const { ticket, expiresAt } = await store.issue(alice)
    expect(expiresAt.getTime()).toBe(61_000)
    now = 61_000
    expect(await store.redeem(ticket)).toBeUndefined()
  })

  it('holds a bounded number of outstanding tickets, forgetting the oldest', async () => {
    const store = new TicketStore({ capacity: 2 })
    const first = await store.issue(alice)
    await store.issue(alice)
    const third = await store.issue(alice)
    expect(store.size).toBe(2)
    expect(await store.redeem(first.ticket)).toBeUndefined()
    expect(await store.redeem(third.ticket)).toBeDefined()
  })

  it('knows nothing of an unknown ticket', async () => {
    expect(await new TicketStore().redeem('dgk_nope')).toBeUndefined()
  })
})
