/**
 * The framework's floor, and a plain pass-through: a bare Hono app on the same adapter the gateway
 * uses on Node (@hono/node-server), run as a child process by the bench with the same Node flags.
 *
 *   GET /const    a constant JSON body (`CONST_JSON`, the gateway's own /v1/system/version answer),
 *                 serialised per request as `c.json` does: what any Hono route costs, before auth,
 *                 limits, metrics, logs or a read model
 *   GET /events   the engine's `/events` (same query) through undici, body passed on untouched: what
 *                 a proxy that only forwards adds to an event's latency
 *   GET /healthz  `ok`
 *
 * Environment: PORT, DOCKER_HOST (unix://…), CONST_JSON.
 */
import { serve } from '@hono/node-server'
import { Hono } from 'hono'
import { Agent, fetch } from 'undici'

const constant = JSON.parse(process.env.CONST_JSON ?? '{"ok":true}')
const socketPath = (process.env.DOCKER_HOST ?? '').replace(/^unix:\/\//, '')
const engine = new Agent({ connect: { socketPath } })

const app = new Hono()
app.get('/healthz', (c) => c.text('ok'))
app.get('/const', (c) => c.json(constant))
app.get('/events', async (c) => {
  const search = new URL(c.req.url).search
  const upstream = await fetch(`http://docker/events${search}`, {
    dispatcher: engine,
    signal: c.req.raw.signal,
  })
  return new Response(upstream.body, {
    status: upstream.status,
    headers: { 'content-type': upstream.headers.get('content-type') ?? 'application/json' },
  })
})

serve({ fetch: app.fetch, port: Number(process.env.PORT), hostname: '127.0.0.1' }, () =>
  console.log('listening'),
)
