import { describe, expect, it } from 'vitest'
import type { RequestLogEntry } from '../../src/http/observability.ts'
import { testEngineEnv } from '../support/engine.ts'
import { postJson, testGateway, uniqueName } from '../support/gateway.ts'
import { TEST_LABEL, TEST_RUN } from '../support/labels.ts'
import { readSse } from '../support/sse.ts'

const metricValue = (text: string, series: string) => {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `))
  return line === undefined ? undefined : Number(line.slice(series.length + 1))
}

describe('GET /metrics', () => {
  it('is for admins only: its counters are every tenant’s', async () => {
    const gw = await testGateway()
    expect((await gw.call('/metrics', { role: null })).status).toBe(401)
    expect((await gw.call('/metrics', { role: 'writer' })).status).toBe(403)
    // system:read is not enough (see test/tenancy/streams.test.ts)
    expect((await gw.call('/metrics', { role: 'reader' })).status).toBe(403)
    const response = await gw.call('/metrics', { role: 'admin' })
    expect(response.status).toBe(200)
    expect(response.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/)
  })

  it('counts requests by route pattern and status, with latency histograms and denials', async () => {
    const gw = await testGateway()
    await gw.call('/v1/containers/dockgate-missing-a')
    await gw.call('/v1/containers/dockgate-missing-b')
    await gw.call('/v1/images', { role: null })
    const text = await (await gw.call('/metrics')).text()
    expect(
      metricValue(
        text,
        'dockgate_http_requests_total{route="/v1/containers/:id",method="GET",status="404"}',
      ),
    ).toBe(2)
    expect(
      metricValue(text, 'dockgate_http_request_duration_seconds_count{route="/v1/containers/:id"}'),
    ).toBe(2)
    expect(text).toContain(
      'dockgate_http_request_duration_seconds_bucket{route="/v1/containers/:id",le="+Inf"} 2',
    )
    expect(metricValue(text, 'dockgate_denials_total{reason="unauthorized"}')).toBe(1)
    expect(text).toMatch(/# TYPE dockgate_http_request_duration_seconds histogram/)
  })

  it('shows how many engine events the ring holds, and how many it may hold', async () => {
    const small = await testGateway({ settings: { eventsRingSize: 7 } })
    const text = await (await small.call('/metrics')).text()
    expect(metricValue(text, 'dockgate_events_ring_capacity')).toBe(7)
    expect(metricValue(text, 'dockgate_events_ring_size')).toBeLessThanOrEqual(7)
    const usual = await (await (await testGateway()).call('/metrics')).text()
    expect(metricValue(usual, 'dockgate_events_ring_capacity')).toBe(10_000)
  })

  it('shows open streams and engine connections while a stream runs, and neither after', async () => {
    // No read model: its re-inspections on other tests' events would show as engine connections.
    const gw = await testGateway({ settings: { readModel: false } })
    const { body } = await gw.json(
      '/v1/containers?start=true',
      postJson({
        image: testEngineEnv().image,
        name: uniqueName('metrics'),
        cmd: ['sleep', '30'],
        labels: { [TEST_LABEL]: TEST_RUN },
      }),
    )
    const stream = readSse(await gw.call(`/v1/containers/${body.id}/logs/stream`))
    const gauges = async () => {
      const text = await (await gw.call('/metrics')).text()
      return [
        metricValue(text, 'dockgate_open_streams'),
        metricValue(text, 'dockgate_engine_connections'),
      ]
    }
    await expect.poll(gauges).toEqual([1, 1])
    await stream.close()
    await expect.poll(gauges).toEqual([0, 0])
  })
})

describe('request logs', () => {
  it('write one structured line per request, with the request id the client got', async () => {
    const requestLog: RequestLogEntry[] = []
    const gw = await testGateway({ requestLog })
    const response = await gw.call('/v1/containers/dockgate-missing', { role: 'reader' })
    const entry = requestLog.at(-1)!
    expect(entry).toMatchObject({
      msg: 'request',
      method: 'GET',
      route: '/v1/containers/:id',
      path: '/v1/containers/dockgate-missing',
      status: 404,
      principal: 'reader',
      requestId: response.headers.get('x-request-id'),
    })
    expect(entry.durationMs).toBeGreaterThanOrEqual(0)
  })
})
