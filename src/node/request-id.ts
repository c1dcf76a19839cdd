/**
 * @module The request id header written on Node's own response.
 *
 * `@hono/node-server` hands the app each request's `ServerResponse` as `c.env.outgoing`. The Node
 * entry's server makes its responses a {@link RequestIdResponse}: the id is kept on it, and its
 * `writeHead` adds the header to the head the adapter writes, for every kind of answer (JSON,
 * problems, event streams, errors). Without the Fetch `Headers` object that `c.header` creates
 * for every response (filled and then read back by the adapter: several µs of CPU per request),
 * and without Node's progressive `setHeader`, which makes `writeHead` merge each of the answer's
 * headers into it one `setHeader` at a time (~4k instructions of the small request under
 * callgrind, bench/README.md "Changes and their effect"). Any other `ServerResponse` gets the
 * header through `setHeader`.
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

type Head = OutgoingHttpHeaders | OutgoingHttpHeader[]

/** Node's response, writing the id of its request into its head (`serverOptions.ServerResponse`). */
export class RequestIdResponse<
  Request extends IncomingMessage = IncomingMessage,
> extends ServerResponse<Request> {
  /** The id this response's head will carry, until it is written. */
  requestId: string | undefined = undefined

  override writeHead(statusCode: number, reason?: string | Head, headers?: Head): this {
    const id = this.requestId
    if (id === undefined) return super.writeHead(statusCode, reason as string, headers)
    this.requestId = undefined
    return typeof reason === 'string'
      ? super.writeHead(statusCode, reason, withId(headers, id))
      : super.writeHead(statusCode, withId(reason, id))
  }
}

/** The head with the id added (a copy: the caller's object stays as it was). */
function withId(headers: Head | undefined, id: string): Head {
  if (headers === undefined) return { [REQUEST_ID_HEADER]: id }
  if (Array.isArray(headers)) return [...headers, REQUEST_ID_HEADER, id]
  return { ...headers, [REQUEST_ID_HEADER]: id }
}

export const writeRequestIdOnNodeResponse: RequestIdWriter = (c, id) => {
  const outgoing = nodeResponseOf(c.env)
  if (!outgoing || outgoing.headersSent) requestIdThroughContext(c, id)
  else if (outgoing instanceof RequestIdResponse) outgoing.requestId = id
  else outgoing.setHeader(REQUEST_ID_HEADER, id)
}

export function nodeResponseOf(env: unknown): ServerResponse | undefined {
  if (typeof env !== 'object' || env === null || !('outgoing' in env)) return undefined
  return env.outgoing instanceof ServerResponse ? env.outgoing : undefined
}
