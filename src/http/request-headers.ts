/**
 * @module How the headers every request is asked for are read: `authorization` and
 * `x-request-id`.
 *
 * Through Hono (the default) a read builds the runtime's request headers; on Node that is
 * `@hono/node-server`'s lazy `Headers`, whose every `get` checks and lower-cases the name and,
 * for `x-request-id`, has Node build the whole `IncomingMessage.headers` object. The Node entry
 * reads Node's raw header list instead (`src/node/request-headers.ts`), with the same answer.
 */
import type { Context } from 'hono'
import type { AppEnv } from './context.ts'

/**
 * The value of the request's header `name` (lower case), as Fetch's `Headers.get` gives it: the
 * values of every header of that name joined with `", "`; undefined when there is none.
 */
export type RequestHeaderReader = (
  c: Context<AppEnv>,
  name: Lowercase<string>,
) => string | undefined

export const headerThroughHono: RequestHeaderReader = (c, name) => c.req.header(name)
