/**
 * @module Schemas and helpers every route shares: problems, validation, identifiers.
 */

import type { Hook } from '@hono/zod-openapi'
import { OpenAPIHono, z } from '@hono/zod-openapi'
import type { Context, MiddlewareHandler } from 'hono'
import type { Scope } from '../domain/principal.ts'
import { toEngineTime } from '../engine/time.ts'
import { type InvalidParam, ProblemError } from '../errors.ts'
import { checkScope, eventStreamRoute } from '../http/authentication.ts'
import type { AppEnv } from '../http/context.ts'

export const ProblemSchema = z
  .object({
    type: z.string().openapi({ example: 'urn:dockgate:problem:not-found' }),
    title: z.string(),
    status: z.number().int(),
    detail: z.string().optional(),
    instance: z.string().optional(),
    requestId: z.string().optional(),
    invalidParams: z
      .array(z.object({ name: z.string(), reason: z.string() }))
      .optional()
      .openapi({ description: 'One entry per invalid input, for validation problems' }),
  })
  .openapi('Problem', { description: 'An RFC 9457 problem' })

const PROBLEM_DESCRIPTIONS = {
  400: 'The request is invalid',
  401: 'No or an invalid bearer token',
  403: 'The token lacks the scope this operation needs',
  404: 'No such resource',
  409: 'The resource is in a state that conflicts with the request',
  413: 'The request body is too large (any body, on every POST and DELETE: at most 64 KiB)',
  415: 'The request body is not application/json',
  426: 'This endpoint is a WebSocket: open it with a WebSocket client',
  429: 'Too many requests or open streams for this client (see Retry-After)',
  501: 'This runtime does not serve this endpoint',
  502: 'The Docker Engine failed',
  503: 'The Docker Engine, or the shared state store (Redis) the gateway is configured with, cannot be reached (see Retry-After)',
  504: 'The Docker Engine did not answer in time',
} as const

export type ProblemStatus = keyof typeof PROBLEM_DESCRIPTIONS

/** The `responses` entries for the problems an operation can answer with. */
export function problems<const S extends ProblemStatus>(...statuses: S[]) {
  const entries = statuses.map((status) => [
    status,
    {
      description: PROBLEM_DESCRIPTIONS[status],
      content: { 'application/problem+json': { schema: ProblemSchema } },
    },
  ])
  return Object.fromEntries(entries) as {
    [K in S]: {
      description: string
      content: { 'application/problem+json': { schema: typeof ProblemSchema } }
    }
  }
}

/** The problems every authenticated engine-backed operation may answer with. */
export const ENGINE_PROBLEMS = [401, 403, 429, 502, 503, 504] as const

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

/** Docker's container name alphabet; ids and id prefixes are a subset of it. */
export const CONTAINER_REF = /^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,127}$/

export const ContainerRefParams = z.object({
  id: z
    .string()
    .regex(
      CONTAINER_REF,
      'a container id, id prefix or name ([a-zA-Z0-9][a-zA-Z0-9_.-]*, at most 128)',
    )
    .openapi({
      param: { name: 'id', in: 'path' },
      description: 'Container id, unique id prefix, or name',
      example: 'hello',
    }),
})

/**
 * Query booleans: `true` or `false`, as the document says (`type: boolean`); Docker's `1`/`0` are
 * refused with 400 like any value the document does not allow (the conformance test found
 * `force=0` answered where the document refuses it).
 */
export const QueryBoolean = z
  .enum(['true', 'false'])
  .transform((value) => value === 'true')
  .openapi({ type: 'boolean' })

/** Docker's zero time means "never". */
export function isoOrNull(time: string | undefined | null): string | null {
  if (!time || time.startsWith('0001-01-01')) return null
  return time
}

/** Any valid bearer credential will do (the operation needs no particular scope). */
export const BEARER = [{ Bearer: [] }]

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
 * Query parameters an operation takes; any other is refused with 400, as unknown body keys
 * are, so a misspelt `?forse=true` never silently does the default.
 */
export const strictQuery = <T extends z.ZodRawShape>(shape: T) => z.strictObject(shape)

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

/** A whole number in a query, as digits only: no sign, space, exponent or empty value. */
export function QueryInteger(min: number, max: number) {
  return z
    .string()
    .regex(/^\d{1,10}$/, `an integer from ${min} to ${max}`)
    .transform(Number)
    .pipe(z.number().int().min(min).max(max))
    .openapi({ type: 'integer', minimum: min, maximum: max })
}

export const TIME_HELP =
  'Unix seconds (`1732860000.5`), RFC 3339 (`2026-11-29T03:40:53Z`) or a duration ago (`10m`, `1h30m`)'

/**
 * The three forms' shape, for the document (minLength excludes the empty duration); the
 * conversion still refuses dates that do not exist (February 30) and times before 1970.
 */
const ENGINE_TIME_SHAPE =
  /^(?:\d{1,12}(?:\.\d{1,9})?|\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,9})?(?:Z|[+-]\d{2}:\d{2})|(?:\d{1,6}h)?(?:\d{1,6}m)?(?:\d{1,8}s)?)$/

/**
 * A `since`/`until` value in the forms clients use, converted to the engine's exact
 * `seconds.nanoseconds` (the engine answers 500 to anything else).
 */
export const EngineTimeParam = z
  .string()
  .min(1)
  .max(40)
  .regex(ENGINE_TIME_SHAPE, `expected ${TIME_HELP}`)
  .transform((value, ctx) => {
    const time = toEngineTime(value)
    if (time === undefined) {
      ctx.addIssue({ code: 'custom', message: `expected ${TIME_HELP}` })
      return z.NEVER
    }
    return time
  })
  .openapi({
    type: 'string',
    minLength: 1,
    maxLength: 40,
    pattern: ENGINE_TIME_SHAPE.source,
    description: TIME_HELP,
  })
