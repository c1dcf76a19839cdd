import { describe, expect, it } from 'vitest'
import type { AuditEntry } from '../../src/domain/audit.ts'
import { StreamSlots, TokenBuckets } from '../../src/policy/limits.ts'
import { onBodyEnd } from '../../src/streams/on-end.ts'
import { direct, testEngineEnv } from '../support/engine.ts'
import { postJson, testGateway, uniqueName } from '../support/gateway.ts'
import { TEST_LABEL, TEST_RUN } from '../support/labels.ts'
import { readSse } from '../support/sse.ts'

describe('TokenBuckets', () => {
  it('allows a burst, then refills at the sustained rate', () => {
    let now = 0
    const buckets = new TokenBuckets({ perSecond: 2, burst: 3, now: () => now })
    expect([1, 2, 3].map(() => buckets.take('a').ok)).toEqual([true, true, true])
    expect(buckets.take('a')).toEqual({ ok: false, retryAfterSeconds: 1 })
    expect(buckets.take('b').ok).toBe(true)
    now = 500
    expect(buckets.take('a').ok).toBe(true)
    expect(buckets.take('a').ok).toBe(false)
  })

  it('forgets the idlest principals beyond its capacity', () => {
    const buckets = new TokenBuckets({ perSecond: 1, burst: 1, capacity: 2, now: () => 0 })
    buckets.take('a')
    buckets.take('b')
    buckets.take('c')
    expect(buckets.take('a').ok).toBe(true)
  })

  it('counts a principal that keeps calling as recently used', () => {
    const buckets = new TokenBuckets({ perSecond: 1, burst: 1, capacity: 2, now: () => 0 })
    buckets.take('a')
    buckets.take('b')
    buckets.take('a')
    buckets.take('a')
    buckets.take('c')
    // b was the idlest: forgotten, so it starts again with a full bucket; a is still empty.
    expect(buckets.take('a').ok).toBe(false)
    expect(buckets.take('b').ok).toBe(true)
  })
})

describe('StreamSlots and onBodyEnd', () => {
  it('counts open streams per key up to a maximum', () => {
    const slots = new StreamSlots(2)
    expect([slots.acquire('a'), slots.acquire('a'), slots.acquire('a')]).toEqual([
      true,
      true,
      false,
    ])
    slots.release('a')
    expect(slots.acquire('a')).toBe(true)
  })

  it('calls back once whether the body is read to the end or cancelled', async () => {
    let ends = 0
    const body = () =>
      new ReadableStream<Uint8Array>({
        start(c) {
          c.enqueue(new Uint8Array([1]))
          c.close()
        },
      })
    await new Response(onBodyEnd(body(), () => ends++)).arrayBuffer()
    await onBodyEnd(body(), () => ends++).cancel()
    expect(ends).toBe(2)
  })
})

describe('limits through the gateway', () => {
  it('answers 429 with Retry-After past the rate limit, and audits it', async () => {
    const audit: AuditEntry[] = []
    const gw = await testGateway({
      audit,
      // A token back every 10 s: four calls to the engine fit, however busy the machine (at 0.5 a
      // second, four that took over 2 s got one back, clean-clone CI ci49).
      settings: { rateLimitPerSecond: 0.1, rateLimitBurst: 3 },
    })
    const statuses = []
    for (let i = 0; i < 4; i++)
      statuses.push((await gw.json('/v1/images', { role: 'reader' })).status)
    expect(statuses).toEqual([200, 200, 200, 429])
    const { body, response } = await gw.json('/v1/images', { role: 'reader' })
    expect(body.type).toBe('urn:dockgate:problem:rate-limited')
    expect(Number(response.headers.get('retry-after'))).toBeGreaterThanOrEqual(1)
    expect((await gw.json('/v1/images', { role: 'admin' })).status).toBe(200)
    expect(audit).toContainEqual(
      expect.objectContaining({ principal: 'reader', reason: 'rate-limited', status: 429 }),
    )
  })

  it('holds a client to its engine budget while a wait runs, and gives it back when the wait ends', async () => {
    const audit: AuditEntry[] = []
    const gw = await testGateway({ audit, settings: { engineCallsPerPrincipal: 1 } })
    const { body } = await gw.json(
      '/v1/containers?start=true',
      postJson({
        image: testEngineEnv().image,
        name: uniqueName('budget'),
        cmd: ['sleep', '60'],
        labels: { [TEST_LABEL]: TEST_RUN },
      }),
    )
    const waiting = gw.json(`/v1/containers/${body.id}/wait`, { method: 'POST' })
    await new Promise((r) => setTimeout(r, 200))
    const refused = await gw.json('/v1/containers')
    expect(refused.status).toBe(429)
    expect(refused.response.headers.get('content-type')).toBe('application/problem+json')
    expect(Number(refused.response.headers.get('retry-after'))).toBeGreaterThanOrEqual(1)
    expect(refused.body.detail).toBe('This client already has 1 requests in progress')
    // Another client's budget is its own.
    expect((await gw.json('/v1/containers', { role: 'reader' })).status).toBe(200)
    // The wait ends when the container does; the budget is given back then.
    await direct(`/containers/${body.id}/kill`, { method: 'POST' })
    expect((await waiting).status).toBe(200)
    expect((await gw.json('/v1/containers')).status).toBe(200)
    expect(audit).toContainEqual(
      expect.objectContaining({ principal: 'admin', reason: 'rate-limited', status: 429 }),
    )
  })

  it('caps the event streams one client holds open, and frees the slot when one closes', async () => {
    const gw = await testGateway({ settings: { maxStreamsPerPrincipal: 1 } })
    const { body } = await gw.json(
      '/v1/containers?start=true',
      postJson({
        image: testEngineEnv().image,
        name: uniqueName('cap'),
        cmd: ['sleep', '30'],
        labels: { [TEST_LABEL]: TEST_RUN },
      }),
    )
    const first = readSse(await gw.call(`/v1/containers/${body.id}/logs/stream`))
    const second = await gw.json(`/v1/containers/${body.id}/logs/stream`)
    expect(second.status).toBe(429)
    expect(second.body.detail).toMatch(/1 open event streams/)
    await first.close()
    await expect
      .poll(async () => {
        const response = await gw.call(`/v1/containers/${body.id}/logs/stream`)
        await response.body?.cancel()
        return response.status
      })
      .toBe(200)
  })
})
