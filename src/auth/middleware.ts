/**
 * @module Bearer authentication and scope checks, as Hono middleware that throws problems.
 */
import { createMiddleware } from 'hono/factory'
import type { AppEnv } from '../context.ts'
import { ProblemError } from '../errors.ts'
import { hasScope, type Principal, type Scope } from './principal.ts'

/** Anything that can turn a presented bearer credential into a principal. */
export interface Authenticator {
  authenticate(token: string): Promise<Principal | undefined>
}

const REALM = 'Bearer realm="dockgate"'

export function bearerAuth(authenticator: Authenticator) {
  return createMiddleware<AppEnv>(async function bearerAuth(c, next) {
    const header = c.req.header('authorization')
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
  return createMiddleware<AppEnv>(async function requireScope(c, next) {
    if (!hasScope(c.var.principal, scope)) {
      throw new ProblemError(403, 'forbidden', {
        detail: `This operation needs the ${scope} scope`,
        headers: { 'www-authenticate': `${REALM}, error="insufficient_scope", scope="${scope}"` },
      })
    }
    await next()
  })
}
