/**
 * @module Rate, stream and engine-budget limits as one middleware: 429 problems with
 * `Retry-After`.
 *
 * Every request takes a token from its principal's bucket. An event stream then holds one of its
 * principal's stream slots until its body ends. Any other request counts against the principal's
 * engine budget while it runs: it may hold an engine connection all that time (a wait, a stop
 * that waits out its timeout, a log read), so a principal with dozens in progress would hold
 * dozens of connections and the engine's attention; past the budget it gets 429 at once, before
 * anything reaches the engine. A principal holds at most the sum of both limits.
 */
import type { Context, Next } from 'hono'
import { createMiddleware } from 'hono/factory'
import { ProblemError } from '../errors.ts'
import type { Metrics } from '../observability/metrics.ts'
import type { StreamSlots, TokenBuckets } from '../policy/limits.ts'
import { onBodyEnd } from '../streams/on-end.ts'
import { isEventStream } from './authentication.ts'
import type { AppEnv } from './context.ts'

/** Seconds a client is told to wait: calls that hold the budget end in seconds, or take long. */
const BUDGET_RETRY_AFTER_SECONDS = '2'

export interface RequestLimits {
  buckets: TokenBuckets
  /** Open event streams per principal. */
  streams: StreamSlots
  /** Requests in progress per principal (every request but an event stream). */
  engineBudget: StreamSlots
  metrics: Metrics
}

export function limitRequests(limits: RequestLimits) {
  // Not async: most requests take a token and a place in the budget, and go on with one promise.
  return createMiddleware<AppEnv>(function limitRequests(c, next) {
    const id = c.get('principal').id
    const taken = limits.buckets.take(id)
    if (!taken.ok) {
      throw new ProblemError(429, 'rate-limited', {
        detail: 'This client sends requests faster than its rate limit',
        headers: { 'retry-after': String(taken.retryAfterSeconds) },
      })
    }
    return isEventStream(c)
      ? holdStreamSlot(c, next, id, limits)
      : holdEngineBudget(next, id, limits.engineBudget)
  })
}

/** A request holds a place in its principal's engine budget until it is answered. */
function holdEngineBudget(next: Next, id: string, budget: StreamSlots): Promise<void> {
  if (!budget.acquire(id)) {
    throw new ProblemError(429, 'rate-limited', {
      detail: `This client already has ${budget.max} requests in progress`,
      headers: { 'retry-after': BUDGET_RETRY_AFTER_SECONDS },
    })
  }
  const release = () => budget.release(id)
  try {
    return next().finally(release)
  } catch (error) {
    release()
    throw error
  }
}

/** An event stream holds one of its client's slots until its body ends. */
async function holdStreamSlot(c: Context<AppEnv>, next: Next, id: string, limits: RequestLimits) {
  const { streams, metrics } = limits
  if (!streams.acquire(id)) {
    throw new ProblemError(429, 'rate-limited', {
      detail: `This client already holds ${streams.max} open event streams`,
      headers: { 'retry-after': '5' },
    })
  }
  try {
    await next()
  } catch (error) {
    streams.release(id)
    throw error
  }
  const body = c.res.body
  if (!body || c.res.status !== 200) {
    streams.release(id)
    return
  }
  metrics.openStreams += 1
  const release = () => {
    metrics.openStreams -= 1
    streams.release(id)
  }
  c.res = new Response(onBodyEnd(body, release), c.res)
}
