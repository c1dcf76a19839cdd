/**
 * @module Rate and stream limits as middleware: 429 problems with `Retry-After`.
 */
import type { Context, Next } from 'hono'
import { createMiddleware } from 'hono/factory'
import { ProblemError } from '../errors.ts'
import type { Metrics } from '../observability/metrics.ts'
import type { StreamSlots, TokenBuckets } from '../policy/limits.ts'
import { onBodyEnd } from '../streams/on-end.ts'
import { isEventStream } from './authentication.ts'
import type { AppEnv } from './context.ts'

export function limitRequests(buckets: TokenBuckets, slots: StreamSlots, metrics: Metrics) {
  // Not async: most requests only take a token and go on, without a promise of their own.
  return createMiddleware<AppEnv>(function limitRequests(c, next) {
    const id = c.get('principal').id
    const taken = buckets.take(id)
    if (!taken.ok) {
      throw new ProblemError(429, 'rate-limited', {
        detail: 'This client sends requests faster than its rate limit',
        headers: { 'retry-after': String(taken.retryAfterSeconds) },
      })
    }
    if (!isEventStream(c)) return next()
    return holdStreamSlot(c, next, id, slots, metrics)
  })
}

/** An event stream holds one of its client's slots until its body ends. */
async function holdStreamSlot(
  c: Context<AppEnv>,
  next: Next,
  id: string,
  slots: StreamSlots,
  metrics: Metrics,
) {
  if (!slots.acquire(id)) {
    throw new ProblemError(429, 'rate-limited', {
      detail: `This client already holds ${slots.max} open event streams`,
      headers: { 'retry-after': '5' },
    })
  }
  try {
    await next()
  } catch (error) {
    slots.release(id)
    throw error
  }
  const body = c.res.body
  if (!body || c.res.status !== 200) {
    slots.release(id)
    return
  }
  metrics.openStreams += 1
  const release = () => {
    metrics.openStreams -= 1
    slots.release(id)
  }
  c.res = new Response(onBodyEnd(body, release), c.res)
}
