/**
 * Whether a route is an event stream is what the route declares (`scoped(scope, { eventStream:
 * true })`), not what its path looks like: a small app of its own, with routes at paths that say
 * the opposite of their declarations.
 */
import { createRoute, OpenAPIHono, z } from '@hono/zod-openapi'
import type { Context } from 'hono'
import { describe, expect, it } from 'vitest'
import { TicketStore } from '../../src/auth/tickets.ts'
import { DEFAULT_POLICY } from '../../src/domain/policy.ts'
import type { Principal } from '../../src/domain/principal.ts'
import { ProblemError } from '../../src/errors.ts'
import { bearerAuth, isEventStream } from '../../src/http/authentication.ts'
import type { AppEnv } from '../../src/http/context.ts'
import { scoped } from '../../src/routes/common.ts'

const alice: Principal = {
  id: 'alice',
  kind: 'token',
  scopes: new Set(['events:read']),
  policy: DEFAULT_POLICY,
}

const answer = {
  200: {
    description: 'ok',
    content: { 'application/json': { schema: z.object({ stream: z.boolean() }) } },
  },
}

function appWith(tickets: TicketStore) {
  const app = new OpenAPIHono<AppEnv>()
  app.onError((error) =>
    error instanceof ProblemError
      ? Response.json({ detail: error.detail }, { status: error.status })
      : new Response(null, { status: 500 }),
  )
  app.use('/v1/*', bearerAuth({ authenticate: async () => undefined }, tickets))
  const reply = (c: Context<AppEnv>) => c.json({ stream: isEventStream(c) }, 200)
  // Declared a stream, at a path no stream had
  app.openapi(
    createRoute({
      method: 'get',
      path: '/v1/feed',
      ...scoped('events:read', { eventStream: true }),
      responses: answer,
    }),
    reply,
  )
  // At the events stream's path, declared an ordinary route
  app.openapi(
    createRoute({ method: 'get', path: '/v1/events', ...scoped('events:read'), responses: answer }),
    reply,
  )
  return app
}

describe('a route declared an event stream', () => {
  it('accepts a stream ticket, and is known as a stream by the middleware', async () => {
    const tickets = new TicketStore()
    const { ticket } = await tickets.issue(alice)
    const response = await appWith(tickets).request(`/v1/feed?ticket=${ticket}`)
    expect(response.status).toBe(200)
    expect(await response.json()).toEqual({ stream: true })
  })

  it('is a stream for GET only: a ticket on HEAD is refused', async () => {
    const tickets = new TicketStore()
    const { ticket } = await tickets.issue(alice)
    const response = await appWith(tickets).request(`/v1/feed?ticket=${ticket}`, { method: 'HEAD' })
    expect(response.status).toBe(401)
  })
})

describe('a route not declared an event stream', () => {
  it('refuses a stream ticket even at an event stream’s path', async () => {
    const tickets = new TicketStore()
    const { ticket } = await tickets.issue(alice)
    const response = await appWith(tickets).request(`/v1/events?ticket=${ticket}`)
    expect(response.status).toBe(401)
    expect(await response.json()).toEqual({
      detail: 'Stream tickets are accepted only by event streams; send a bearer token',
    })
  })
})
