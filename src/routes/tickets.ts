/**
 * @module `POST /v1/stream-tickets`: a short-lived credential for one `EventSource` stream.
 */
import { createRoute, z } from '@hono/zod-openapi'
import { TICKET_TTL_MS, type TicketStore } from '../auth/tickets.ts'
import { hasScope, ScopeSchema } from '../domain/principal.ts'
import { ProblemError } from '../errors.ts'
import { STREAM_PATH } from '../http/authentication.ts'
import { BEARER, problems, refuseQuery, router } from './common.ts'

const TicketRequest = z
  .strictObject({
    scopes: z.array(ScopeSchema).min(1).max(8).optional().openapi({
      description:
        'Narrow the ticket to these scopes (each one the caller holds); default: all of them',
    }),
    stream: z
      .string()
      .max(200)
      .regex(
        STREAM_PATH,
        'the path of an event stream: /v1/events, /v1/containers/{id}/logs/stream, /v1/containers/{id}/stats/stream or /v1/containers/{id}/exec/session',
      )
      .optional()
      .openapi({
        description:
          'The one stream the ticket opens (its path, without query); default: the first one it opens',
        example: '/v1/containers/web/logs/stream',
      }),
  })
  .openapi('StreamTicketRequest')

const TicketSchema = z
  .object({
    ticket: z.string().openapi({ example: 'dgk_3f9c…' }),
    expiresAt: z.string().openapi({ format: 'date-time' }),
    scopes: z.array(ScopeSchema),
    stream: z.string().nullable().openapi({
      description: 'The stream path it is bound to; null: bound by the first stream it opens',
    }),
  })
  .openapi('StreamTicket')

const issueRoute = createRoute({
  method: 'post',
  path: '/v1/stream-tickets',
  operationId: 'createStreamTicket',
  tags: ['streams'],
  summary: 'Get a ticket to open one event stream',
  description: [
    'For browsers’ `EventSource`, which cannot send an Authorization header: pass the ticket as',
    '`?ticket=` to an event-stream endpoint (`/v1/events`, a container’s or a service’s `…/logs/stream`,',
    '`…/stats/stream`);',
    'no other route accepts it. It is bound to the caller and to one stream path (`stream`, or',
    `the first one it opens), and lives ${TICKET_TTL_MS / 1000} seconds. While it lives it may`,
    'open that stream again once the previous one has ended (one open stream at a time), so an',
    '`EventSource` that lost its connection reconnects with it (and `Last-Event-ID`). A stream it',
    'opened is not cut when it expires. The caller’s credential is checked again each time: a',
    'revoked token’s tickets open nothing. Long-lived tokens are never accepted in a URL.',
  ].join(' '),
  security: BEARER,
  middleware: [refuseQuery],
  request: {
    body: { required: false, content: { 'application/json': { schema: TicketRequest } } },
  },
  responses: {
    201: { description: 'The ticket', content: { 'application/json': { schema: TicketSchema } } },
    ...problems(400, 401, 403, 413, 415, 429, 503),
  },
})

export function ticketRoutes(tickets: TicketStore) {
  const app = router()

  app.openapi(issueRoute, async (c) => {
    const { scopes, stream } = c.req.valid('json')
    const principal = c.get('principal')
    const missing = scopes?.filter((scope) => !hasScope(principal, scope)) ?? []
    if (missing.length > 0) {
      throw new ProblemError(403, 'forbidden', {
        detail: `A ticket cannot grant scopes the caller lacks: ${missing.join(', ')}`,
      })
    }
    const issued = await tickets.issue(principal, {
      scopes,
      stream,
      recheck: c.get('credential'),
    })
    // A credential: no cache on the way keeps it.
    c.header('cache-control', 'no-store')
    return c.json({ ...issued, expiresAt: issued.expiresAt.toISOString() }, 201)
  })

  return app
}
