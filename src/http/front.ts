/**
 * @module What every request goes through first, as one middleware: the request id, metrics and
 * the request log, 405 for a path that has routes of other methods, HEAD's unread body, and (on
 * Node) the hand-over of event streams to the runtime's own writer.
 *
 * As five Hono middleware, three of them async, each was a layer of its own per request; one
 * function does the same in the same order (bench phase 2, bench/README.md "Changes and their
 * effect"). Inner layers' errors reach it as answers already (Hono's composition turns them
 * into the error handler's answer), so what runs after the route always runs.
 */
import type { MiddlewareHandler } from 'hono'
import type { Metrics } from '../observability/metrics.ts'
import { isEventStream } from './authentication.ts'
import type { AppEnv } from './context.ts'
import { type EventStreamOutput, handOverAnswer } from './event-stream-output.ts'
import { observeAnswer, type RequestLogSink } from './observability.ts'
import { headerThroughHono, type RequestHeaderReader } from './request-headers.ts'
import { assignRequestId, type RequestIdWriter, requestIdThroughContext } from './request-id.ts'

export interface FrontOptions {
  metrics: Metrics
  requestLog: RequestLogSink
  writeRequestId?: RequestIdWriter | undefined
  /** How `x-request-id` is read; through Hono unless given (Node: its raw header list). */
  readHeader?: RequestHeaderReader | undefined
  eventStreamOutput?: EventStreamOutput | undefined
  /**
   * Hono's `methodNotAllowed` of the app: run on a 404 that no error made, with nothing after
   * it, it answers 405 when the path has routes of other methods.
   */
  methodNotAllowed: MiddlewareHandler<AppEnv>
}

const nothing = () => Promise.resolve()

export function frontRequests(options: FrontOptions): MiddlewareHandler<AppEnv> {
  const { metrics, requestLog, eventStreamOutput: output, methodNotAllowed } = options
  const writeId = options.writeRequestId ?? requestIdThroughContext
  const readHeader = options.readHeader ?? headerThroughHono
  return async function frontRequests(c, next) {
    // Only a request that can be an event stream has its answer looked at: reading `body` of any
    // other answer would turn the Node adapter's lightweight response into a full Fetch Response.
    const stream = output !== undefined && isEventStream(c)
    assignRequestId(c, writeId, readHeader)
    const started = performance.now()
    await next()
    // HEAD runs the GET route and Hono then drops the body unread: cancelled here, so that
    // nothing a body holds (an engine request, a subscription) outlives the answer.
    if (c.req.method === 'HEAD') await c.res.body?.cancel().catch(() => {})
    if (c.res.status === 404 && !c.error) await methodNotAllowed(c, nothing)
    observeAnswer(c, started, metrics, requestLog)
    if (stream) handOverAnswer(c, output)
  }
}
