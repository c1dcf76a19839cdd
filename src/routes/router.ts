/**
 * @module The gateway's routers and what every route runs before its own handler: validation
 * failures as one problem, a route's scope and query gates. No schema is built here: the app
 * needs this at start, the schemas every route shares (`./common.ts`) only once a route group is
 * built (bench/README.md, "Cold start: no route's schema at start").
 */
import type { Hook } from '@hono/zod-openapi'
import { OpenAPIHono } from '@hono/zod-openapi'
import type { Context, MiddlewareHandler } from 'hono'
import type { Scope } from '../domain/principal.ts'
import { type InvalidParam, ProblemError } from '../errors.ts'
import { checkScope, eventStreamRoute } from '../http/authentication.ts'
import type { AppEnv } from '../http/context.ts'

/** Validation failures become one `validation-failed` problem listing every invalid input. */
export const validationHook: Hook<unknown, AppEnv, string, unknown> = (result) => {
  if (result.success) return
  const invalidParams: InvalidParam[] = result.error.issues.flatMap((issue) => {
    const at = [result.target, ...issue.path.map(String)]
    // One entry per unknown key, named where it was sent (`query.forse`), not one for the object.
    if (issue.code === 'unrecognized_keys') {
      const what = result.target === 'query' ? 'parameter' : 'field'
      return issue.keys.map((key) => ({
        name: [...at, key].join('.'),
        reason: `unknown ${what} "${key}"`,
      }))
    }
    // A bad record key: say what is wrong with it, not only that it is a bad key.
    const reason = issue.code === 'invalid_key' ? (issue.issues[0]?.message ?? '') : issue.message
    return [{ name: at.join('.'), reason: reason || issue.message }]
  })
  throw new ProblemError(400, 'validation-failed', {
    detail: `Invalid ${result.target}: ${invalidParams.map((p) => p.name).join(', ')}`,
    invalidParams,
  })
}

/**
 * A router of the gateway: its validation failures answer as one problem (`validationHook`), and
 * a route's gate runs in the layer after it (`mergeGates`). `getPath`: the path the app routes by
 * (the top-level app's: `http/engines.ts`).
 */
export const router = (getPath?: (request: Request) => string) => {
  const app = new OpenAPIHono<AppEnv>({
    defaultHook: validationHook,
    ...(getPath ? { getPath } : {}),
  })
  // Every `openapi` route is registered through `on`, with its middleware and validators.
  const on = app.on as unknown as (method: string[], path: string[], ...handlers: unknown[]) => App
  app.on = ((method: string[], path: string[], ...handlers: unknown[]) =>
    on(method, path, ...mergeGates(handlers))) as unknown as typeof app.on
  return app
}

type App = OpenAPIHono<AppEnv>

/**
 * What a route checks before anything of its own runs (its scope; that no query came): it throws
 * a problem, or lets the request go on.
 */
type RouteGate = (c: Context<AppEnv>) => void

const ROUTE_GATE = Symbol('route gate')

type GateMiddleware = MiddlewareHandler<AppEnv> & { readonly [ROUTE_GATE]: RouteGate }

/** A gate as a middleware of its own: what it is on any app but a {@link router}'s. */
function gateMiddleware(gate: RouteGate): GateMiddleware {
  const middleware: MiddlewareHandler<AppEnv> = (c, next) => {
    gate(c)
    return next()
  }
  return Object.assign(middleware, { [ROUTE_GATE]: gate })
}

/**
 * A route's handlers with each gate run by the handler after it (a validator, or the route's
 * own), at the same place in the chain: what it throws is answered by the same error handler,
 * before the same validators. Each middleware is a layer of Hono's chain (an async dispatch and
 * its promise, per request); the small request's version route lost one layer this way (bench/
 * README.md, "Per-request CPU, Hono's layers and the head").
 */
function mergeGates(handlers: readonly unknown[]): unknown[] {
  const merged: unknown[] = []
  for (let i = 0; i < handlers.length; i++) {
    const handler = handlers[i]
    const after = handlers[i + 1]
    const gate =
      typeof handler === 'function' ? (handler as Partial<GateMiddleware>)[ROUTE_GATE] : undefined
    // The event-stream marker is known by itself (`isEventStream`): never wrapped.
    if (gate && typeof after === 'function' && after !== eventStreamRoute) {
      merged.push(gated(gate, after as MiddlewareHandler<AppEnv>))
      i++
    } else merged.push(handler)
  }
  return merged
}

function gated(gate: RouteGate, handler: MiddlewareHandler<AppEnv>): MiddlewareHandler<AppEnv> {
  return function gated(c, next) {
    gate(c)
    return handler(c, next)
  }
}

/**
 * What an operation needs, as its middleware enforces it and its document states it (OpenAPI 3.1
 * lists role names in a bearer requirement), from one value so the two cannot drift apart. An
 * event stream says so here, once: authentication (tickets), the stream limits and revocation
 * know it by this, not by its path.
 */
export function scoped<const S extends Scope>(
  scope: S,
  kind: { eventStream?: true; noQuery?: true } = {},
) {
  return {
    security: [{ Bearer: [scope] }],
    middleware: [
      ...(kind.eventStream ? [eventStreamRoute] : []),
      gateMiddleware(
        kind.noQuery
          ? (c) => {
              checkScope(c, scope)
              refuseQueryParameters(c)
            }
          : (c) => checkScope(c, scope),
      ),
    ],
  }
}

/**
 * For operations that take no query parameters at all: any is refused with 400, named as the
 * validator names unknown ones (`query.forse`). A look at the URL rather than a validator of an
 * empty strict object, which cost a small request ~10 µs of CPU (parsing the query, zod, a
 * promise; bench/README.md, "Changes and their effect"). The document lists no parameter for
 * such an operation either way.
 */
export const refuseQuery: MiddlewareHandler<AppEnv> = gateMiddleware(refuseQueryParameters)

/** What {@link refuseQuery} checks: a 400 problem naming each query parameter, if any came. */
function refuseQueryParameters(c: Context<AppEnv>): void {
  const url = c.req.url
  const at = url.indexOf('?')
  const names = at === -1 ? [] : [...new Set(new URLSearchParams(url.slice(at + 1)).keys())]
  if (names.length === 0) return
  const invalidParams = names.map((name) => ({
    name: `query.${name}`,
    reason: `unknown parameter "${name}"`,
  }))
  throw new ProblemError(400, 'validation-failed', {
    detail: `Invalid query: ${invalidParams.map((p) => p.name).join(', ')}`,
    invalidParams,
  })
}
