import { beforeAll, describe, expect, it } from 'vitest'
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
  it('opens one event stream without an Authorization header, once', async () => {
    const { status, body } = await issue({ scopes: ['logs:read'] }, 'admin')
    expect(status).toBe(201)
    expect(Date.parse(body.expiresAt) - Date.now()).toBeLessThanOrEqual(60_000)
    const url = `/v1/containers/${containerId}/logs/stream?ticket=${body.ticket}`
    const events = await readSse(await gw.call(url, { role: null })).until('end')
    expect(events.filter((e) => e.event === 'stdout').map((e) => JSON.parse(e.data).text)).toEqual([
      'via-ticket',
    ])
    const again = await gw.json(url, { role: null })
    expect(again.status).toBe(401)
    expect(again.body.detail).toMatch(/already used/)
  })

  it('is refused outside event streams', async () => {
    const { body } = await issue()
    const { status, body: problem } = await gw.json(`/v1/containers?ticket=${body.ticket}`, {
      role: null,
    })
    expect(status).toBe(401)
    expect(problem.detail).toMatch(/only by event streams/)
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
