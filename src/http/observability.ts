/**
 * @module Request metrics and structured request logs.
 */
import type { Context } from 'hono'
import { routePath } from 'hono/route'
import type { AuditSink } from '../domain/audit.ts'
import type { EngineTransport } from '../engine/transport.ts'
import { isoNow } from '../observability/iso-time.ts'
import type { Metrics } from '../observability/metrics.ts'
import { onBodyEnd } from '../streams/on-end.ts'
import type { AppEnv } from './context.ts'
import { sentPath } from './engines.ts'

export interface RequestLogEntry {
  /** ISO 8601, as `isoNow` makes it: nothing in it JSON escapes (`requestLogLine` relies on it). */
  time: string
  msg: 'request'
  /**
   * The request's id, as `assignRequestId` chose it: word characters, `-` and `=`, or a UUID;
   * nothing in it JSON escapes (`requestLogLine` relies on it).
   */
  requestId: string | undefined
  method: string
  route: string
  path: string
  status: number
  durationMs: number
  principal: string | null
}

export type RequestLogSink = (entry: RequestLogEntry) => void

/**
 * Counts, times and logs an answered request that began at `started` (`performance.now()`): by
 * route pattern, never by raw path (ids would explode the labels).
 */
export function observeAnswer(
  c: Context<AppEnv>,
  started: number,
  metrics: Metrics,
  log: RequestLogSink,
): void {
  const seconds = (performance.now() - started) / 1000
  const route = routePath(c, -1) || 'unmatched'
  const status = c.res.status
  const method = c.req.method
  metrics.observeRequest(route, method, status, seconds)
  log({
    time: isoNow(),
    msg: 'request',
    requestId: c.get('requestId'),
    method,
    route,
    path: sentPath(c),
    status,
    durationMs: Math.round(seconds * 1e4) / 10,
    principal: c.get('principal')?.id ?? null,
  })
}

/** The same transport, keeping count of engine requests whose answer is still being read. */
export function countingTransport(transport: EngineTransport, metrics: Metrics): EngineTransport {
  return {
    description: transport.description,
    close: () => transport.close(),
    async fetch(request, options) {
      metrics.engineConnections += 1
      let response: Response
      try {
        response = await transport.fetch(request, options)
      } catch (error) {
        metrics.engineConnections -= 1
        throw error
      }
      if (!response.body) {
        metrics.engineConnections -= 1
        return response
      }
      const body = onBodyEnd(response.body, () => {
        metrics.engineConnections -= 1
      })
      return new Response(body, {
        status: response.status,
        statusText: response.statusText,
        headers: response.headers,
      })
    },
    // An upgraded connection (an exec session) is the caller's until it closes: not counted.
    ...(transport.upgrade ? { upgrade: transport.upgrade.bind(transport) } : {}),
  }
}

/** The same audit sink, counting denials by reason. */
export function countDenials(sink: AuditSink, metrics: Metrics): AuditSink {
  return (entry) => {
    if (entry.outcome === 'denied') metrics.denials.inc({ reason: entry.reason ?? 'unknown' })
    sink(entry)
  }
}
