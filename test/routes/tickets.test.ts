import { beforeAll, describe, expect, it } from 'vitest'
import { SwappableAuthenticator } from '../../src/auth/from-config.ts'
import { hashToken, TokenStore } from '../../src/auth/tokens.ts'
import { configReloads } from '../../src/config.ts'
import { MemoryStore } from '../../src/store/memory.ts'
import { testEngineEnv } from '../support/engine.ts'
import { postJson, type TestGateway, testGateway, tokenOf, uniqueName } from '../support/gateway.ts'
import { TEST_LABEL, TEST_RUN } from '../support/labels.ts'
import { readSse } from '../support/sse.ts'

let gw: TestGateway
let containerId: string

beforeAll(async () => {
  gw = await testGateway()
  const { body } = await gw.json(
    '/v1/containers?start=true',
    postJson({
      image: testEngineEnv().image,
      name: uniqueName('ticket'),
      cmd: ['sh', '-c', 'echo via-ticket'],
      labels: { [TEST_LABEL]: TEST_RUN },
    }),
  )
  containerId = body.id
  await gw.call(`/v1/containers/${containerId}/wait`, { method: 'POST' })
})

const issue = async (body?: unknown, role: 'admin' | 'reader' | 'writer' = 'reader') =>
  gw.json(
    '/v1/stream-tickets',
    body === undefined ? { method: 'POST', role } : postJson(body, role),
  )

describe('stream tickets', () => {
  it('opens its event stream without an Authorization header, and again after it ended', async () => {
    const { status, body, response } = await issue({ scopes: ['logs:read'] }, 'admin')
    expect(status).toBe(201)
    // A credential: no cache may keep it.
    expect(response.headers.get('cache-control')).toBe('no-store')
    expect(Date.parse(body.expiresAt) - Date.now()).toBeLessThanOrEqual(60_000)
    expect(Date.parse(body.expiresAt) - Date.now()).toBeGreaterThan(50_000)
    const url = `/v1/containers/${containerId}/logs/stream?ticket=${body.ticket}`
    const events = await readSse(await gw.call(url, { role: null })).until('end')
    const lines = events.filter((e) => e.event === 'stdout')
    expect(lines.map((e) => JSON.parse(e.data).text)).toEqual(['via-ticket'])
    // What EventSource does after a drop: the same URL, with Last-Event-ID.
    const resumed = await readSse(
      await gw.call(url, { role: null, headers: { 'last-event-id': lines[0]!.id! } }),
    ).until('end')
    expect(resumed.filter((e) => e.event === 'stdout')).toEqual([])
    // Bound to that stream: no other one opens with it.
    const other = await gw.json(`/v1/events?ticket=${body.ticket}`, { role: null })
    expect(other.status).toBe(401)
    expect(other.body.detail).toMatch(/bound to another stream/)
  })

  it('holds one open stream at a time', async () => {
    const { body } = await issue({ scopes: ['events:read'] }, 'admin')
    const url = `/v1/events?ticket=${body.ticket}`
    const first = await gw.call(url, { role: null })
    expect(first.status).toBe(200)
    const second = await gw.json(url, { role: null })
    expect(second.status).toBe(401)
    expect(second.body.detail).toMatch(/one at a time/)
    await first.body?.cancel()
    const third = await gw.call(url, { role: null })
    expect(third.status).toBe(200)
    await third.body?.cancel()
  })

  it('opens only the stream it was issued for, when it names one', async () => {
    const stream = `/v1/containers/${containerId}/logs/stream`
    const { status, body } = await issue({ scopes: ['logs:read'], stream }, 'admin')
    expect(status).toBe(201)
    expect(body.stream).toBe(stream)
    const elsewhere = await gw.json(
      `/v1/containers/${containerId}/stats/stream?ticket=${body.ticket}`,
      {
        role: null,
      },
    )
    expect(elsewhere.status).toBe(401)
    const events = await readSse(
      await gw.call(`${stream}?ticket=${body.ticket}`, { role: null }),
    ).until('end')
    expect(events.at(-1)?.event).toBe('end')
    const notAStream = await issue({ stream: '/v1/containers' })
    expect(notAStream.status).toBe(400)
    // Every stream route may be named, a service's log stream too.
    const serviceLogs = await issue({ stream: '/v1/services/web/logs/stream' }, 'admin')
    expect(serviceLogs.status).toBe(201)
    expect(serviceLogs.body.stream).toBe('/v1/services/web/logs/stream')
  })

  it('is refused outside event streams, also by a GET whose path merely ends in /stream', async () => {
    const { body } = await issue()
    for (const path of ['/v1/containers', '/v1/containers/stream', '/v1/images/stream']) {
      const { status, body: problem } = await gw.json(`${path}?ticket=${body.ticket}`, {
        role: null,
      })
      expect(status).toBe(401)
      expect(problem.detail).toMatch(/only by event streams/)
    }
  })

  it('never accepts a long-lived token in the URL', async () => {
    const url = `/v1/containers/${containerId}/logs/stream?ticket=${tokenOf('admin')}`
    const { status, body } = await gw.json(url, { role: null })
    expect(status).toBe(401)
    expect(body.type).toBe('urn:dockgate:problem:unauthorized')
  })

  it('carries only the scopes it was narrowed to', async () => {
    const { body } = await issue({ scopes: ['images:read'] }, 'admin')
    expect(body.scopes).toEqual(['images:read'])
    const { status } = await gw.json(
      `/v1/containers/${containerId}/logs/stream?ticket=${body.ticket}`,
      { role: null },
    )
    expect(status).toBe(403)
  })

  it('cannot grant a scope its caller lacks', async () => {
    const { status, body } = await issue({ scopes: ['containers:write'] })
    expect(status).toBe(403)
    expect(body.detail).toMatch(/containers:write/)
  })

  it('refuses unknown fields and needs authentication', async () => {
    expect((await issue({ scopes: ['logs:read'], ttl: 3600 })).status).toBe(400)
    expect((await gw.json('/v1/stream-tickets', { method: 'POST', role: null })).status).toBe(401)
  })
})

describe('stream tickets across instances, when a token is rotated under the same name', () => {
  const OLD = 'dgt_rotation-old-token'
  const NEW = 'dgt_rotation-new-token'
  const tokens = async (token: string) =>
    new TokenStore([{ name: 'ci', hash: await hashToken(token), scopes: ['events:read'] }])
  /** Two instances sharing their state store and ticket key, each reloading its own config. */
  const instances = async () => {
    const store = new MemoryStore()
    return Promise.all(
      [0, 1].map(async () => {
        const authenticator = new SwappableAuthenticator(await tokens(OLD))
        const reloads = configReloads()
        const gateway = await testGateway({
          store,
          ticketSecret: 'rotation-test-secret-0123',
          dependencies: { authenticator, reloads },
        })
        const rotate = async () => {
          authenticator.replace(await tokens(NEW))
          reloads.notify({})
        }
        return { gateway, rotate }
      }),
    )
  }

  it("ends the other instance's stream and refuses the old token's tickets there", async () => {
    const [issuer, other] = await instances()
    const ticket = async () => {
      const issued = await issuer!.gateway.call('/v1/stream-tickets', {
        method: 'POST',
        role: null,
        headers: { authorization: `Bearer ${OLD}`, 'content-type': 'application/json' },
        body: JSON.stringify({ stream: '/v1/events' }),
      })
      expect(issued.status).toBe(201)
      return ((await issued.json()) as { ticket: string }).ticket
    }
    const [opening, unused] = [await ticket(), await ticket()]
    const open = await other!.gateway.call(`/v1/events?ticket=${opening}`, { role: null })
    expect(open.status).toBe(200)
    const stream = readSse(open)

    await issuer!.rotate()
    await other!.rotate()

    const [revoked] = await stream.take(1)
    expect(revoked!.event).toBe('revoked')
    expect(JSON.parse(revoked!.data)).toMatchObject({ reason: 'revoked' })
    await stream.close()
    const refused = await other!.gateway.json(`/v1/events?ticket=${unused}`, { role: null })
    expect(refused.status).toBe(401)
  })
})
