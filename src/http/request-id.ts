/**
 * @module Request ids: the caller's `X-Request-Id` when it is short and plain, else a new UUID;
 * kept as the `requestId` variable and sent back as `X-Request-Id`.
 *
 * How the id reaches the response is the entry point's choice. Through the context (the
 * default) every response gets a Fetch `Headers` object, which costs Node several µs per
 * request; the Node entry writes the header on Node's own response instead.
 */
import type { Context } from 'hono'
import type { AppEnv } from './context.ts'
import type { RequestHeaderReader } from './request-headers.ts'

export const REQUEST_ID_HEADER = 'x-request-id'

/** Puts the request id on the response that `c` will answer with. */
export type RequestIdWriter = (c: Context<AppEnv>, id: string) => void

export const requestIdThroughContext: RequestIdWriter = (c, id) => c.header(REQUEST_ID_HEADER, id)

/** Ids a caller may choose: word characters, `-` and `=`, at most 255 of them. */
const PLAIN_ID = /^[\w\-=]{1,255}$/

/** The request's id (the caller's, if plain, else a new one), kept and written to the answer. */
export function assignRequestId(
  c: Context<AppEnv>,
  write: RequestIdWriter,
  read: RequestHeaderReader,
): void {
  const offered = read(c, REQUEST_ID_HEADER)
  const id = offered !== undefined && PLAIN_ID.test(offered) ? offered : crypto.randomUUID()
  c.set('requestId', id)
  write(c, id)
}
