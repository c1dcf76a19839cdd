import { describe, expect, it } from 'vitest'
import { Metrics } from '../../src/observability/metrics.ts'

const series = (text: string, prefix: string) =>
  text.split('\n').filter((line) => line.startsWith(prefix))

describe('Metrics.observeRequest', () => {
  it('counts by route, method and status, and fills the cumulative latency buckets', () => {
    const metrics = new Metrics()
    metrics.observeRequest('/v1/system/version', 'GET', 200, 0.003)
    metrics.observeRequest('/v1/system/version', 'GET', 200, 0.02)
    metrics.observeRequest('/v1/system/version', 'GET', 401, 0.0005)
    metrics.observeRequest('/v1/containers/:id', 'DELETE', 204, 20)
    const text = metrics.render()
    expect(series(text, 'dockgate_http_requests_total{')).toEqual([
      'dockgate_http_requests_total{route="/v1/system/version",method="GET",status="200"} 2',
      'dockgate_http_requests_total{route="/v1/system/version",method="GET",status="401"} 1',
      'dockgate_http_requests_total{route="/v1/containers/:id",method="DELETE",status="204"} 1',
    ])
    const version = 'dockgate_http_request_duration_seconds_bucket{route="/v1/system/version",'
    expect(series(text, version)).toEqual(
      [
        ['0.001', 1],
        ['0.005', 2],
        ['0.01', 2],
        ['0.025', 3],
        ['0.05', 3],
        ['0.1', 3],
        ['0.25', 3],
        ['0.5', 3],
        ['1', 3],
        ['2.5', 3],
        ['5', 3],
        ['10', 3],
        ['+Inf', 3],
      ].map(([le, n]) => `${version}le="${le}"} ${n}`),
    )
    // Beyond the largest bound: only +Inf, the sum and the count hold it.
    const slow = 'dockgate_http_request_duration_seconds_bucket{route="/v1/containers/:id",'
    expect(series(text, `${slow}le="10"}`)).toEqual([`${slow}le="10"} 0`])
    expect(series(text, `${slow}le="+Inf"}`)).toEqual([`${slow}le="+Inf"} 1`])
    expect(text).toContain(
      'dockgate_http_request_duration_seconds_count{route="/v1/containers/:id"} 1',
    )
  })

  it('counts a value on a bound in that bound’s bucket and every later one, as Prometheus reads them', () => {
    const metrics = new Metrics()
    for (const seconds of [0.001, 0.0010001, 0.005, 10, 10.5]) {
      metrics.observeRequest('/v1/x', 'GET', 200, seconds)
    }
    const text = metrics.render()
    const bucket = (le: string) =>
      series(text, `dockgate_http_request_duration_seconds_bucket{route="/v1/x",le="${le}"}`)[0]
    expect([
      bucket('0.001'),
      bucket('0.005'),
      bucket('0.01'),
      bucket('10'),
      bucket('+Inf'),
    ]).toEqual([
      'dockgate_http_request_duration_seconds_bucket{route="/v1/x",le="0.001"} 1',
      'dockgate_http_request_duration_seconds_bucket{route="/v1/x",le="0.005"} 3',
      'dockgate_http_request_duration_seconds_bucket{route="/v1/x",le="0.01"} 3',
      'dockgate_http_request_duration_seconds_bucket{route="/v1/x",le="10"} 4',
      'dockgate_http_request_duration_seconds_bucket{route="/v1/x",le="+Inf"} 5',
    ])
  })

  it('escapes label values', () => {
    const metrics = new Metrics()
    metrics.observeRequest('a"b\\c\nd', 'GET', 404, 0)
    expect(metrics.render()).toContain(
      'dockgate_http_requests_total{route="a\\"b\\\\c\\nd",method="GET",status="404"} 1',
    )
  })
})
