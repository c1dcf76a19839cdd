/**
 * @module The per-principal engine budget: how many requests one principal may have in progress.
 *
 * Every request but an event stream may hold an engine connection for as long as it runs (a
 * wait, a stop that waits out its timeout, a log read), so a principal with dozens in progress
 * holds dozens of connections and the engine's attention. Past the budget it gets 429 at once,
 * before anything reaches the engine. Event streams count against their own limit
 * (`maxStreamsPerPrincipal`), so a principal holds at most the sum of both.
 */
import { createMiddleware } from 'hono/factory'
import { ProblemError } from '../errors.ts'
import type { StreamSlots } from '../policy/limits.ts'
import { isEventStream } from './authentication.ts'
import type { AppEnv } from './context.ts'

/** Seconds a client is told to wait: calls that hold the budget end in seconds, or take long. */
const RETRY_AFTER_SECONDS = '2'

export function limitEngineCalls(budget: StreamSlots) {
  return createMiddleware<AppEnv>(async function limitEngineCalls(c, next) {
    if (isEventStream(c)) return next()
    const id = c.get('principal').id
    if (!budget.acquire(id)) {
      throw new ProblemError(429, 'rate-limited', {
        detail: `This client already has ${budget.max} requests in progress`,
        headers: { 'retry-after': RETRY_AFTER_SECONDS },
      })
    }
    try {
      await next()
    } finally {
      budget.release(id)
    }
  })
}
