/**
 * @module The request id header written on Node's own response.
 *
 * `@hono/node-server` hands the app each request's `ServerResponse` as `c.env.outgoing`, and
 * writes every answer's head with one `writeHead(status, headers)`. The Node entry's server
 * makes its responses {@link ResponseWithRequestId}s, which add the id to the headers that call
 * is given: every kind of answer (JSON, problems, event streams, errors) carries it, without the
 * Fetch `Headers` object that `c.header` creates for every response.
 *
 * Set with `setHeader` instead, the id made Node take `writeHead`'s slow path (every header of
 * the answer then goes through `setHeader`: name and value checked, lower-cased, kept in a table
 * of their own): answering without any id counted 92.9k instructions a small request, the same
 * code with it 101.5–102.3k (bench/README.md, "Per-request CPU, the request's headers on Node").
 * A response of another class gets the id through the context.
 */
import {
  type IncomingMessage,
  type OutgoingHttpHeader,
  type OutgoingHttpHeaders,
  ServerResponse,
} from 'node:http'
import {
  REQUEST_ID_HEADER,
  type RequestIdWriter,
  requestIdThroughContext,
} from '../http/request-id.ts'

type HeadHeaders = OutgoingHttpHeaders | OutgoingHttpHeader[]

/** A response whose head carries {@link requestId} (Node's `createServer({ ServerResponse })`). */
export class ResponseWithRequestId<
  Request extends IncomingMessage = IncomingMessage,
> extends ServerResponse<Request> {
  /** Sent as `x-request-id` with the head; set before it is written. */
  declare requestId: string | undefined

  override writeHead(
    statusCode: number,
    reason?: string | HeadHeaders,
    headers?: HeadHeaders,
  ): this {
    const id = this.requestId
    if (id === undefined) return super.writeHead(statusCode, reason as string, headers)
    if (typeof reason === 'string') return super.writeHead(statusCode, reason, withId(headers, id))
    return super.writeHead(statusCode, withId(reason ?? headers, id))
  }
}

/** The head's headers and the id, in a new list or object: the one given may be shared. */
function withId(headers: HeadHeaders | undefined, id: string): HeadHeaders {
  if (headers === undefined) return { [REQUEST_ID_HEADER]: id }
  if (!Array.isArray(headers)) {
    // Copied name by name: with `{ ...headers, [REQUEST_ID_HEADER]: id }` the small request counted
    // more instructions than with `setHeader` (bench/README.md, the same section).
    const merged: OutgoingHttpHeaders = {}
    for (const name in headers) merged[name] = headers[name]
    merged[REQUEST_ID_HEADER] = id
    return merged
  }
  // Node takes a list of pairs or a flat list of names and values.
  return Array.isArray(headers[0])
    ? [...headers, [REQUEST_ID_HEADER, id]]
    : [...headers, REQUEST_ID_HEADER, id]
}

export const writeRequestIdOnNodeResponse: RequestIdWriter = (c, id) => {
  const outgoing = nodeResponseOf(c.env)
  if (outgoing instanceof ResponseWithRequestId && !outgoing.headersSent) outgoing.requestId = id
  else requestIdThroughContext(c, id)
}

export function nodeResponseOf(env: unknown): ServerResponse | undefined {
  if (typeof env !== 'object' || env === null || !('outgoing' in env)) return undefined
  return env.outgoing instanceof ServerResponse ? env.outgoing : undefined
}
