/**
 * @module The request id header written on Node's own response.
 *
 * `@hono/node-server` hands the app each request's `ServerResponse` as `c.env.outgoing`. A
 * header set there before the answer is merged into the answer's head by `writeHead`, for every
 * kind of answer (JSON, problems, event streams, errors), and without the Fetch `Headers` object
 * that `c.header` creates for every response: that object, filled and then read back by the
 * adapter, cost the gateway several µs of CPU per request.
 */
import { ServerResponse } from 'node:http'
import {
  REQUEST_ID_HEADER,
  type RequestIdWriter,
  requestIdThroughContext,
} from '../http/request-id.ts'

export const writeRequestIdOnNodeResponse: RequestIdWriter = (c, id) => {
  const outgoing = nodeResponseOf(c.env)
  if (outgoing && !outgoing.headersSent) outgoing.setHeader(REQUEST_ID_HEADER, id)
  else requestIdThroughContext(c, id)
}

export function nodeResponseOf(env: unknown): ServerResponse | undefined {
  if (typeof env !== 'object' || env === null || !('outgoing' in env)) return undefined
  return env.outgoing instanceof ServerResponse ? env.outgoing : undefined
}
