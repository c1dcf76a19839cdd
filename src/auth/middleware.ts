/**
 * @module Bearer authentication and scope checks, as Hono middleware that throws problems.
 */
import { createMiddleware } from 'hono/factory'
import type { AppEnv } from '../context.ts'
import { ProblemError } from '../errors.ts'
import { hasScope, type Principal, type Scope } from './principal.ts'
import type { TicketStore } from './tickets.ts'

/** Anything that can turn a presented bearer credential into a principal. */
export interface Authenticator {
  authenticate(token: string): Promise<Principal | undefined>
}

const REALM = 'Bearer realm="dockgate"'

/** Event streams are the only place a credential may come in the URL, and only as a ticket. */
export const isEventStream = (method: string, path: string) =>
  method === 'GET' && (path === '/v1/events' || path.endsWith('/stream'))

export function bearerAuth(authenticator: Authenticator, tickets?: TicketStore) {
  return createMiddleware<AppEnv>(async function bearerAuth(c, next) {
    const header = c.req.header('authorization')
    // A ticket counts only without an Authorization header: look for one only then.
    const ticket = header ? undefined : c.req.query('ticket')
    if (ticket !== undefined) {
      c.set('principal', await redeemTicket(ticket, c.req.method, c.req.path, tickets))
      return next()
    }
    const match = header?.match(/^Bearer[ ]+([A-Za-z0-9._~+/=-]+)[ ]*$/i)
    if (!match) {
      throw new ProblemError(401, 'unauthorized', {
        detail: header
          ? 'The Authorization header is not a bearer token'
          : 'A bearer token is required',
        headers: { 'www-authenticate': REALM },
      })
    }
    const principal = await authenticator.authenticate(match[1]!)
    if (!principal) {
      throw new ProblemError(401, 'unauthorized', {
        detail: 'The bearer token is not valid',
        headers: { 'www-authenticate': `${REALM}, error="invalid_token"` },
      })
    }
    c.set('principal', principal)
    await next()
  })
}

export function requireScope(scope: Scope) {
  // Not async: a request with the scope goes on without a promise of its own.
  return createMiddleware<AppEnv>(function requireScope(c, next) {
    if (!hasScope(c.get('principal'), scope)) {
      const error = new ProblemError(403, 'forbidden', {
        detail: `This operation needs the ${scope} scope`,
        headers: { 'www-authenticate': `${REALM}, error="insufficient_scope", scope="${scope}"` },
      })
      c.get('guard').deny(`missing-scope:${scope}`, null, error)
    }
    return next()
  })
}

async function redeemTicket(
  ticket: string,
  method: string,
  path: string,
  tickets: TicketStore | undefined,
): Promise<Principal> {
  if (!isEventStream(method, path)) {
    throw new ProblemError(401, 'unauthorized', {
      detail: 'Stream tickets are accepted only by event streams; send a bearer token',
      headers: { 'www-authenticate': REALM },
    })
  }
  const principal = tickets && ticket.length <= 128 ? await tickets.redeem(ticket) : undefined
  if (!principal) {
    throw new ProblemError(401, 'unauthorized', {
      detail: 'The stream ticket is unknown, expired or already used',
      headers: { 'www-authenticate': `${REALM}, error="invalid_token"` },
    })
  }
  return principal
}
