/**
 * @module `POST /v1/stream-tickets`: a short-lived, single-use credential for `EventSource`.
 */
import { createRoute, OpenAPIHono, z } from '@hono/zod-openapi'
import { hasScope, ScopeSchema } from '../auth/principal.ts'
import type { TicketStore } from '../auth/tickets.ts'
import type { AppEnv } from '../context.ts'
import { ProblemError } from '../errors.ts'
import { BEARER, NO_QUERY, problems, validationHook } from './common.ts'

const TicketRequest = z
  .strictObject({
    scopes: z.array(ScopeSchema).min(1).max(8).optional().openapi({
      description:
        'Narrow the ticket to these scopes (each one the caller holds); default: all of them',
    }),
  })
  .openapi('StreamTicketRequest')

const TicketSchema = z
  .object({
    ticket: z.string().openapi({ example: 'dgk_3f9c…' }),
    expiresAt: z.string().openapi({ format: 'date-time' }),
    scopes: z.array(ScopeSchema),
  })
  .openapi('StreamTicket')

const issueRoute = createRoute({
  method: 'post',
  path: '/v1/stream-tickets',
  operationId: 'createStreamTicket',
  tags: ['streams'],
  summary: 'Get a ticket to open one event stream',
  description:
    'For browsers’ `EventSource`, which cannot send an Authorization header: pass the ticket as ' +
    '`?ticket=` to an event-stream endpoint (`/v1/events`, `…/logs/stream`, `…/stats/stream`). ' +
    'It is bound to the caller, valid for at most 60 seconds and for one stream. Long-lived ' +
    'tokens are never accepted in a URL.',
  security: BEARER,
  request: {
    query: NO_QUERY,
    body: { required: false, content: { 'application/json': { schema: TicketRequest } } },
  },
  responses: {
    201: { description: 'The ticket', content: { 'application/json': { schema: TicketSchema } } },
    ...problems(400, 401, 403, 413, 415, 429),
  },
})

export function ticketRoutes(tickets: TicketStore) {
  const app = new OpenAPIHono<AppEnv>({ defaultHook: validationHook })

  app.openapi(issueRoute, async (c) => {
    const { scopes } = c.req.valid('json')
    const principal = c.var.principal
    const missing = scopes?.filter((scope) => !hasScope(principal, scope)) ?? []
    if (missing.length > 0) {
      throw new ProblemError(403, 'forbidden', {
        detail: `A ticket cannot grant scopes the caller lacks: ${missing.join(', ')}`,
      })
    }
    const issued = await tickets.issue(principal, scopes)
    return c.json({ ...issued, expiresAt: issued.expiresAt.toISOString() }, 201)
  })

  return app
}
