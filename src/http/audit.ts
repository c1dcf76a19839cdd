/**
 * @module Audit middleware: one record per mutating call and per authentication, scope or rate
 * denial, written after the answer is known. Policy denials are recorded by the `Guard` itself.
 */
import type { Context } from 'hono'
import { createMiddleware } from 'hono/factory'
import type { AuditSink } from '../domain/audit.ts'
import { Guard } from '../domain/guard.ts'
import { isoNow } from '../observability/iso-time.ts'
import type { AppEnv } from './context.ts'
import { sentPath } from './engines.ts'

const DENIED = new Set([401, 403, 429])

/** The audit record of an answered request, if it mutated or was denied (and none is yet). */
export function auditAnswer(c: Context<AppEnv>, sink: AuditSink): void {
  const status = c.res.status
  const method = c.req.method
  const mutating = method !== 'GET' && method !== 'HEAD'
  const denied = DENIED.has(status)
  if ((!mutating && !denied) || c.get('guard')?.recordedDenial) return
  const exec = c.get('execAudit')
  sink({
    time: isoNow(),
    requestId: c.get('requestId'),
    principal: c.get('principal')?.id ?? null,
    action: `${method} ${sentPath(c)}`,
    target: targetOf(c.req.path),
    outcome: status < 400 ? 'allowed' : denied ? 'denied' : 'failed',
    decision: denied ? 'deny' : 'allow',
    reason: c.get('problemCode') ?? null,
    status,
    ...(exec ? { exec } : {}),
  })
}

/** Gives every authenticated request its guard (after bearerAuth). */
export function guardRequests(sink: AuditSink) {
  // Not async: returning next()'s promise saves a promise and a microtask per request.
  return createMiddleware<AppEnv>(function guardRequests(c, next) {
    guard(c, sink)
    return next()
  })
}

/** The request's guard, for its principal (authenticated already). */
export function guard(c: Context<AppEnv>, sink: AuditSink): void {
  c.set(
    'guard',
    new Guard(c.get('principal'), sink, c.get('requestId'), `${c.req.method} ${sentPath(c)}`),
  )
}

/** `/v1/containers/<ref>/…` (the routing path: any engine's) → `<ref>`; `/v1/images/<ref>` → the decoded reference. */
function targetOf(path: string): string | null {
  const match = /^\/v1\/(?:containers|images)\/([^/]+)/.exec(path)
  if (!match) return null
  try {
    return decodeURIComponent(match[1]!)
  } catch {
    return match[1]!
  }
}
