/**
 * Several gateways in front of one engine, sharing one Redis (a key prefix of their own) and one
 * DOCKGATE_SECRET: any of them redeems a ticket another issued, and the limits and the quota hold
 * across them, not per instance.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { direct, engineContainerIds, testEngineEnv } from '../support/engine.ts'
import { type TestGateway, testGateway, uniqueName } from '../support/gateway.ts'
import { TEST_LABEL, TEST_RUN } from '../support/labels.ts'
import { randomPrefix, testRedisStore } from '../support/store.ts'

const SECRET = 'instances-test-secret-0123456789'
const WORKER = ['containers:read', 'containers:write', 'events:read'] as const

/** Three gateways on one Redis prefix; each test file's prefix is its own. */
async function cluster(settings: Parameters<typeof testGateway>[0] = {}, count = 3) {
  const prefix = randomPrefix()
  return Promise.all(
    Array.from({ length: count }, () =>
      testGateway({ ...settings, store: testRedisStore({ prefix }), ticketSecret: SECRET }),
    ),
  )
}

const issue = (gw: TestGateway, body: unknown) =>
  gw.json('/v1/stream-tickets', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  })

describe('stream tickets across instances', () => {
  let a: TestGateway
  let b: TestGateway

  beforeAll(async () => {
    ;[a, b] = (await cluster({}, 2)) as [TestGateway, TestGateway]
  })

  it('a ticket issued on A opens its stream on B; A refuses it while B holds it', async () => {
    const { status, body } = await issue(a, { scopes: ['events:read'] })
    expect(status).toBe(201)
    const url = `/v1/events?ticket=${body.ticket}`
    const onB = await b.call(url, { role: null })
    expect(onB.status).toBe(200)
    const onA = await a.json(url, { role: null })
    expect(onA.status).toBe(401)
    expect(onA.response.headers.get('content-type')).toBe('application/problem+json')
    expect(onA.body.detail).toMatch(/one at a time/)
    await onB.body?.cancel()
    // Its stream on B ended: A opens it now (the release reaches Redis in a moment).
    await expect
      .poll(async () => {
        const again = await a.call(url, { role: null })
        await again.body?.cancel()
        return again.status
      })
      .toBe(200)
  })

  it('binds on B the stream an unbound ticket first opened, wherever it opens next', async () => {
    const { body } = await issue(a, { scopes: ['events:read', 'containers:read'] })
    const first = await b.call(`/v1/events?ticket=${body.ticket}`, { role: null })
    expect(first.status).toBe(200)
    await first.body?.cancel()
    const other = await a.json(`/v1/containers/nope/logs/stream?ticket=${body.ticket}`, {
      role: null,
    })
    expect(other.status).toBe(401)
    expect(other.body.detail).toMatch(/bound to another stream/)
  })

  it('refuses a forged ticket, one signed with another secret, and one for another stream', async () => {
    const { body } = await issue(a, { scopes: ['events:read'], stream: '/v1/events' })
    const [payload, mac] = (body.ticket as string).split('.') as [string, string]
    const flipped = `${payload}.${mac.startsWith('A') ? 'B' : 'A'}${mac.slice(1)}`
    // The payload of another principal with the original signature.
    const widened = `${payload.slice(0, -2)}xx.${mac}`
    const [stranger] = await cluster({ ticketSecret: 'another-secret-0123456789abcdef' }, 1)
    const foreign = (await issue(stranger!, { scopes: ['events:read'] })).body.ticket as string
    for (const ticket of [flipped, widened, foreign, `${body.ticket}x`]) {
      const answer = await b.json(`/v1/events?ticket=${encodeURIComponent(ticket)}`, { role: null })
      expect(answer.status).toBe(401)
      expect(answer.body.detail).toBe('The stream ticket is unknown or expired')
    }
    const elsewhere = await b.json(`/v1/containers/x/stats/stream?ticket=${body.ticket}`, {
      role: null,
    })
    expect(elsewhere.status).toBe(401)
    expect(elsewhere.body.detail).toMatch(/bound to another stream/)
  })
})

describe('limits across instances', () => {
  it('the rate limit holds across them: the burst is not multiplied', async () => {
    // A token every 10 s: none comes back while the 30 requests run, however slow the machine.
    const gateways = await cluster({ settings: { rateLimitBurst: 10, rateLimitPerSecond: 0.1 } })
    const answers = await Promise.all(
      Array.from({ length: 30 }, (_, i) =>
        gateways[i % 3]!.call('/v1/stream-tickets', { method: 'POST', role: 'reader' }),
      ),
    )
    const statuses = answers.map((answer) => answer.status)
    // The burst of one instance, not of three.
    expect(statuses.filter((status) => status === 201)).toHaveLength(10)
    expect(statuses.filter((status) => status === 429)).toHaveLength(20)
    const limited = answers.find((answer) => answer.status === 429)!
    expect(limited.headers.get('content-type')).toBe('application/problem+json')
    expect(Number(limited.headers.get('retry-after'))).toBeGreaterThanOrEqual(1)
  })

  it('the open-stream cap holds across them', async () => {
    const gateways = await cluster({ settings: { maxStreamsPerPrincipal: 2 } })
    const [first, second] = await Promise.all(
      gateways.slice(0, 2).map((gw) => gw.call('/v1/events', { role: 'nobody' })),
    )
    expect([first!.status, second!.status]).toEqual([200, 200])
    const third = await gateways[2]!.json('/v1/events', { role: 'nobody' })
    expect(third.status).toBe(429)
    expect(third.body.detail).toMatch(/2 open event streams/)
    await first!.body?.cancel()
    await expect
      .poll(async () => {
        const again = await gateways[2]!.call('/v1/events', { role: 'nobody' })
        await again.body?.cancel()
        return again.status
      })
      .toBe(200)
    await second!.body?.cancel()
  })

  it('the engine budget holds across them', async () => {
    const gateways = await cluster({ settings: { engineCallsPerPrincipal: 1 } }, 2)
    const probe = uniqueName('budget')
    const { status, body } = await gateways[0]!.json('/v1/containers?start=true', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        image: testEngineEnv().image,
        name: probe,
        cmd: ['sleep', '2'],
        labels: { [TEST_LABEL]: TEST_RUN },
      }),
    })
    expect(status).toBe(201)
    try {
      const waiting = gateways[0]!.call(`/v1/containers/${body.id}/wait`, { method: 'POST' })
      await new Promise((resolve) => setTimeout(resolve, 300))
      const meanwhile = await gateways[1]!.json('/v1/containers', {})
      expect(meanwhile.status).toBe(429)
      expect(meanwhile.body.detail).toMatch(/1 requests in progress/)
      expect((await waiting).status).toBe(200)
    } finally {
      await direct(`/containers/${body.id}?force=true`, { method: 'DELETE' })
    }
  })
})

describe('the container quota across instances', () => {
  let gateways: TestGateway[]
  const probe = uniqueName('spread')

  beforeAll(async () => {
    gateways = await cluster({
      clients: { racer: { scopes: [...WORKER], policy: { images: ['*'], maxContainers: 3 } } },
    })
  })

  afterAll(async () => {
    for (const id of await engineContainerIds(`probe=${probe}`)) {
      await direct(`/containers/${id}?force=true`, { method: 'DELETE' })
    }
  })

  it('9 creates spread over 3 instances in parallel, a quota of 3: exactly 3 on the engine', async () => {
    const answers = await Promise.all(
      Array.from({ length: 9 }, (_, i) =>
        gateways[i % 3]!.json('/v1/containers', {
          method: 'POST',
          role: 'racer',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({
            image: testEngineEnv().image,
            name: uniqueName('spread'),
            cmd: ['true'],
            labels: { [TEST_LABEL]: TEST_RUN, probe },
          }),
        }),
      ),
    )
    const created = answers.filter((answer) => answer.status === 201)
    expect(created).toHaveLength(3)
    expect(answers.filter((answer) => answer.status === 403)).toHaveLength(6)
    expect(await engineContainerIds(`probe=${probe}`)).toEqual(
      created.map((answer) => answer.body.id).sort(),
    )
  })
})
