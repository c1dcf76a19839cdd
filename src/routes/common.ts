/**
 * @module Schemas and helpers every route shares: problems, validation, identifiers. Built when a
 * route group is (`http/lazy-routes.ts`): the app itself needs only `./router.ts`.
 */

import { z } from '@hono/zod-openapi'
import { isZeroTime, toEngineTime } from '../engine/time.ts'

export { refuseQuery, router, scoped, validationHook } from './router.ts'

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
  if (!time || isZeroTime(time)) return null
  return time
}

/** Any valid bearer credential will do (the operation needs no particular scope). */
export const BEARER = [{ Bearer: [] }]

/**
 * A stream's resume point, and the parameter a problem about it names: `Last-Event-ID` when sent
 * (it wins), else `?cursor=` (what a new `EventSource`, which cannot set the header, sends).
 */
export function resumeFrom(header: string | undefined, cursor: string | undefined) {
  return header
    ? { text: header, parameter: 'header.last-event-id' }
    : { text: cursor || undefined, parameter: 'query.cursor' }
}

/**
 * Query parameters an operation takes; any other is refused with 400, as unknown body keys
 * are, so a misspelt `?forse=true` never silently does the default.
 */
export const strictQuery = <T extends z.ZodRawShape>(shape: T) => z.strictObject(shape)

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
