/**
 * @module Bearer authentication and scope checks, as Hono middleware that throws problems.
 */
import type { Context, MiddlewareHandler, Next } from 'hono'
import { createMiddleware } from 'hono/factory'
import { matchedRoutes } from 'hono/route'
import type { Authenticator } from '../auth/authenticator.ts'
import { TICKET_MAX_LENGTH, type TicketRefusal, type TicketStore } from '../auth/tickets.ts'
import { type Credential, hasScope, type Principal, type Scope } from '../domain/principal.ts'
import { ProblemError } from '../errors.ts'
import type { AppEnv } from './context.ts'
import { sentPath } from './engines.ts'
import { holdUntilStreamEnds } from './held-streams.ts'

const REALM = 'Bearer realm="dockgate"'

/**
 * The paths of the event-stream routes, as a ticket request names the one it opens:
 * `/v1/events`, a container's `…/logs/stream` and `…/stats/stream`, the exec WebSocket
 * `…/exec/session`, and a service's `…/logs/stream`.
 */
export const STREAM_PATH =
  /^\/v1\/(?:engines\/[a-z0-9][a-z0-9_-]{0,62}\/)?(?:events|containers\/[a-zA-Z0-9][a-zA-Z0-9_.-]{0,127}\/(?:(?:logs|stats)\/stream|exec\/session)|services\/[a-zA-Z0-9][a-zA-Z0-9_-]{0,62}\/logs\/stream)$/

/**
 * What an event-stream route declares itself with, as the first middleware of its route (see
 * `scoped` in routes/common.ts): it does nothing but be found among the request's matched routes.
 */
export const eventStreamRoute: MiddlewareHandler = function eventStreamRoute(_c, next) {
  return next()
}

/**
 * Whether the request is a GET of a route declared an event stream (or a POST of one that asks
 * for `text/event-stream`): known from the route the
 * router matched, before any of its own middleware runs. Event streams are the only place a
 * credential may come in the URL, and only as a ticket.
 */
export function isEventStream(c: Context<AppEnv>): boolean {
  // Asked by several middleware of every request: the matched routes are scanned once.
  let known: boolean | undefined = c.get('eventStream')
  if (known === undefined) {
    // A POST declared an event stream (an exec) is one only when the client asks for events.
    const method = c.req.method
    known =
      (method === 'GET' ||
        (method === 'POST' && (c.req.header('accept') ?? '').includes('text/event-stream'))) &&
      matchedRoutes(c).some((route) => route.handler === eventStreamRoute)
    c.set('eventStream', known)
  }
  return known
}

export function bearerAuth(authenticator: Authenticator, tickets?: TicketStore) {
  return createMiddleware<AppEnv>(async function bearerAuth(c, next) {
    const header = c.req.header('authorization')
    // A ticket counts only without an Authorization header: look for one only then.
    const ticket = header ? undefined : c.req.query('ticket')
    if (ticket !== undefined) return openWithTicket(c, next, ticket, tickets)
    const token = bearerToken(header)
    const principal = await authenticator.authenticate(token)
    if (!principal) throw invalidBearer()
    authenticated(c, authenticator, token, principal)
    await next()
  })
}

/** The token of an `Authorization: Bearer …` header; a 401 problem is thrown for anything else. */
export function bearerToken(header: string | undefined): string {
  const match = header?.match(/^Bearer[ ]+([A-Za-z0-9._~+/=-]+)[ ]*$/i)
  if (!match) {
    throw new ProblemError(401, 'unauthorized', {
      detail: header
        ? 'The Authorization header is not a bearer token'
        : 'A bearer token is required',
      headers: { 'www-authenticate': REALM },
    })
  }
  return match[1]!
}

/** What a bearer token no authenticator accepts answers. */
export const invalidBearer = () =>
  new ProblemError(401, 'unauthorized', {
    detail: 'The bearer token is not valid',
    headers: { 'www-authenticate': `${REALM}, error="invalid_token"` },
  })

/** The request's principal, and its credential judged again later by the same token. */
export function authenticated(
  c: Context<AppEnv>,
  authenticator: Authenticator,
  token: string,
  principal: Principal,
): void {
  c.set('principal', principal)
  c.set('credential', (at) =>
    authenticator.authenticate(token, at && { at }).catch(() => undefined),
  )
}

/** A caller without the scope is denied (403, recorded; in audit mode recorded and let through). */
export function checkScope(c: Context<AppEnv>, scope: Scope): void {
  if (hasScope(c.get('principal'), scope)) return
  const error = new ProblemError(403, 'forbidden', {
    detail: `This operation needs the ${scope} scope`,
    headers: { 'www-authenticate': `${REALM}, error="insufficient_scope", scope="${scope}"` },
  })
  c.get('guard').deny(`missing-scope:${scope}`, null, error)
}

const REFUSALS: Record<TicketRefusal, string> = {
  unknown: 'The stream ticket is unknown or expired',
  'other-stream': 'The stream ticket is bound to another stream',
  'in-use': 'The stream ticket holds an open stream already; it opens one at a time',
}

/**
 * A ticket opens the stream route it is bound to, one stream at a time: its lease is given back
 * when the stream ends, so that `EventSource` can reconnect with it while it lives. The
 * credential that asked for it is judged again each time: a revoked token's tickets open nothing.
 */
async function openWithTicket(
  c: Context<AppEnv>,
  next: Next,
  ticket: string,
  tickets: TicketStore | undefined,
) {
  // The path as sent: a ticket for one engine's stream opens no other engine's.
  const path = sentPath(c)
  // Tickets are for EventSource, which only GETs: never for a POST (an exec) in a URL.
  if (c.req.method !== 'GET' || !isEventStream(c)) {
    throw new ProblemError(401, 'unauthorized', {
      detail: 'Stream tickets are accepted only by event streams; send a bearer token',
      headers: { 'www-authenticate': REALM },
    })
  }
  const redemption =
    tickets && ticket.length <= TICKET_MAX_LENGTH
      ? await tickets.redeem(ticket, path)
      : { ok: false as const, refusal: 'unknown' as const }
  if (!redemption.ok) throw invalidTicket(REFUSALS[redemption.refusal])
  const { principal: issued, recheck, release } = redemption
  const credential: Credential = async (at) => {
    const current = recheck ? await recheck(at) : issued
    return current && narrowed(current, issued.scopes)
  }
  const principal = await credential()
  if (!principal) {
    release()
    throw invalidTicket('The credential that asked for this stream ticket is no longer accepted')
  }
  c.set('principal', principal)
  c.set('credential', credential)
  try {
    await next()
  } catch (error) {
    release()
    throw error
  }
  holdUntilStreamEnds(c, release)
}

/** The principal as it is now, holding no more than the ticket's scopes. */
function narrowed(current: Principal, scopes: ReadonlySet<Scope>): Principal {
  return { ...current, scopes: new Set([...scopes].filter((scope) => hasScope(current, scope))) }
}

const invalidTicket = (detail: string) =>
  new ProblemError(401, 'unauthorized', {
    detail,
    headers: { 'www-authenticate': `${REALM}, error="invalid_token"` },
  })
