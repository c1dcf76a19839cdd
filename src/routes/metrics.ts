/**
 * @module `GET /metrics`: the Prometheus text exposition, for admins only: its counters are
 * the whole gateway's (every tenant's requests, denials and streams).
 */
import { createRoute, z } from '@hono/zod-openapi'
import type { Metrics } from '../observability/metrics.ts'
import { problems, router, scoped } from './common.ts'

const metricsRoute = createRoute({
  method: 'get',
  path: '/metrics',
  operationId: 'getMetrics',
  tags: ['system'],
  summary: 'Prometheus metrics',
  description:
    'Requests by route and status, latency histograms, open event streams, engine requests in ' +
    'flight, denials by reason, and the events ring. Text format 0.0.4. Admin only (the `admin`' +
    ' scope): the counters are gateway-wide, every tenant’s traffic in them.',
  ...scoped('admin', { noQuery: true }),
  responses: {
    200: {
      description: 'The metrics',
      content: {
        'text/plain': { schema: z.string().openapi({ example: 'dockgate_open_streams 3' }) },
      },
    },
    ...problems(400, 401, 403, 429, 503),
  },
})

export function metricsRoutes(metrics: Metrics) {
  const app = router()
  app.openapi(metricsRoute, (c) =>
    c.text(metrics.render(), 200, { 'content-type': 'text/plain; version=0.0.4; charset=utf-8' }),
  )
  return app
}
