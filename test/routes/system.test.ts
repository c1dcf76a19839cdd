import { beforeAll, describe, expect, it } from 'vitest'
import { createNodeTransport } from '../../src/transport/node.ts'
import { direct, recordingTransport } from '../support/engine.ts'
import { type TestGateway, testGateway } from '../support/gateway.ts'

let gw: TestGateway

beforeAll(async () => {
  gw = await testGateway()
})

/** A gateway whose engine socket does not exist: the engine is really unreachable. */
const unreachable = () =>
  testGateway({
    transport: createNodeTransport({ kind: 'unix', socketPath: '/nonexistent/dockgate.sock' }),
  })

describe('GET /healthz', () => {
  it('answers without a token', async () => {
    const { status, body } = await gw.json('/healthz', { role: null })
    expect(status).toBe(200)
    expect(body).toEqual({ status: 'ok' })
  })

  it('answers even when the engine is unreachable', async () => {
    const down = await unreachable()
    expect((await down.json('/healthz', { role: null })).status).toBe(200)
  })
})

describe('GET /readyz', () => {
  it('is ready when the engine answers /_ping', async () => {
    const { status, body } = await gw.json('/readyz', { role: null })
    expect(status).toBe(200)
    expect(body).toEqual({
      status: 'ready',
      engineApiVersion: '1.41',
      engines: [{ name: 'default', ready: true, apiVersion: '1.41' }],
    })
  })

  it('pings the engine once for the probes that come at once (they need no credential)', async () => {
    const recorder = recordingTransport()
    const probed = await testGateway({ transport: recorder.transport })
    expect((await probed.json('/readyz', { role: null })).status).toBe(200)
    const pings = () => recorder.calls.filter((call) => call === 'GET /_ping').length
    const before = pings()

    const answers = await Promise.all(
      Array.from({ length: 50 }, () => probed.json('/readyz', { role: null })),
    )

    expect(answers.map((a) => a.status)).toEqual(Array(50).fill(200))
    expect(pings() - before).toBe(1)
  })

  it('answers 503 with Retry-After when the engine is unreachable', async () => {
    const down = await unreachable()
    const { status, body, response } = await down.json('/readyz', { role: null })
    expect(status).toBe(503)
    expect(response.headers.get('retry-after')).toBe('5')
    expect(response.headers.get('content-type')).toBe('application/problem+json')
    expect(body.type).toBe('urn:dockgate:problem:engine-unavailable')
  })
})

describe('GET /v1/system/version', () => {
  it('reports the engine, the gateway and the negotiated API version', async () => {
    const engine = (await direct('/version')).json() as Record<string, string>
    const { status, body } = await gw.json('/v1/system/version', { role: 'reader' })
    expect(status).toBe(200)
    expect(body).toEqual({
      gateway: { version: '0.1.0' },
      engine: {
        version: engine.Version,
        apiVersion: engine.ApiVersion,
        minApiVersion: engine.MinAPIVersion,
        os: engine.Os,
        arch: engine.Arch,
        kernelVersion: engine.KernelVersion,
      },
      negotiatedApiVersion: '1.41',
    })
  })

  it('answers the kept answer again with the same bytes and headers as the first', async () => {
    const first = await gw.call('/v1/system/version', { role: 'reader' })
    const again = await gw.call('/v1/system/version', { role: 'reader' })
    for (const answer of [first, again]) {
      expect(answer.status).toBe(200)
      expect(answer.headers.get('content-type')).toBe('application/json')
    }
    const [a, b] = [await first.text(), await again.text()]
    expect(b).toBe(a)
    expect(JSON.stringify(JSON.parse(a))).toBe(a)
  })

  it('needs system:read', async () => {
    const { status, body } = await gw.json('/v1/system/version', { role: 'writer' })
    expect(status).toBe(403)
    expect(body.detail).toMatch(/system:read/)
  })

  it('answers 503 with Retry-After when the engine is unreachable', async () => {
    const down = await unreachable()
    const { status, response } = await down.json('/v1/system/version')
    expect(status).toBe(503)
    expect(response.headers.get('retry-after')).toBe('5')
  })
})
