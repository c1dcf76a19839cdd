/**
 * @module Rate, stream and engine-budget limits as one middleware: 429 problems with
 * `Retry-After`.
 *
 * Every request takes a token from its principal's bucket. An event stream then holds one of its
 * principal's stream slots until its body ends (a WebSocket session: until its socket closes). Any other request counts against the principal's
 * engine budget while it runs: it may hold an engine connection all that time (a wait, a stop
 * that waits out its timeout, a log read), so a principal with dozens in progress would hold
 * dozens of connections and the engine's attention; past the budget it gets 429 at once, before
 * anything reaches the engine. A principal holds at most the sum of both limits.
 *
 * The token and the slot are one step of the state store, so the limits hold across every
 * instance that shares it; the memory store answers at once, and then so does this middleware.
 * A store that does not answer makes the request a 503 (never a per-instance limit instead).
 */
import type { Context, Next } from 'hono'
import { createMiddleware } from 'hono/factory'
import { ProblemError } from '../errors.ts'
import type { Metrics } from '../observability/metrics.ts'
import {
  isRefusal,
  type Rates,
  type Refusal,
  type Release,
  type StateStore,
} from '../store/port.ts'
import { isEventStream } from './authentication.ts'
import type { AppEnv } from './context.ts'
import { holdUntilStreamEnds } from './held-streams.ts'

/** Seconds a client is told to wait: calls that hold the budget end in seconds, or take long. */
const BUDGET_RETRY_AFTER_SECONDS = '2'

/** The limits in force; a config reload replaces `rates` and changes the maxima. */
export interface LimitSettings {
  rates: Rates
  /** Open event streams per principal. */
  maxStreams: number
  /** Requests in progress per principal (every request but an event stream). */
  engineBudget: number
}

export interface RequestLimits {
  store: StateStore
  limits: LimitSettings
  metrics: Metrics
}

export function limitRequests({ store, limits, metrics }: RequestLimits) {
  // Not async: with the memory store most requests take a token and a place in the budget,
  // and go on with one promise.
  return createMiddleware<AppEnv>(function limitRequests(c, next) {
    const id = c.get('principal').id
    const stream = isEventStream(c)
    const answer = stream
      ? store.admit(id, limits.rates, 'streams', limits.maxStreams)
      : store.admit(id, limits.rates, 'budget', limits.engineBudget)
    if (answer instanceof Promise) {
      return answer.then((settled) =>
        stream
          ? holdStreamSlot(c, next, settled, limits, metrics)
          : holdEngineBudget(next, settled, limits),
      )
    }
    return stream
      ? holdStreamSlot(c, next, answer, limits, metrics)
      : holdEngineBudget(next, answer, limits)
  })
}

/** A request refused its place in the engine budget (or its rate): 429. */
function refuseOverBudget(refusal: Refusal, limits: LimitSettings): never {
  refuse(
    refusal,
    `This client already has ${limits.engineBudget} requests in progress`,
    BUDGET_RETRY_AFTER_SECONDS,
  )
}

function refuse(refusal: Refusal, slots: string, retryAfter: string): never {
  if (refusal.limit === 'rate') {
    throw new ProblemError(429, 'rate-limited', {
      detail: 'This client sends requests faster than its rate limit',
      headers: { 'retry-after': String(refusal.retryAfterSeconds) },
    })
  }
  throw new ProblemError(429, 'rate-limited', {
    detail: slots,
    headers: { 'retry-after': retryAfter },
  })
}

/** A request holds a place in its principal's engine budget until it is answered. */
export function holdEngineBudget<T>(
  next: () => Promise<T>,
  answer: Release | Refusal,
  limits: LimitSettings,
) {
  if (isRefusal(answer)) refuseOverBudget(answer, limits)
  try {
    // `.then` with both outcomes rather than `.finally`, which adds a promise and a job of its
    // own to every request (bench/README.md, "Per-request CPU (issue 17, branch smallreq2)").
    return next().then(
      (value) => {
        answer()
        return value
      },
      (error: unknown) => {
        answer()
        throw error
      },
    )
  } catch (error) {
    answer()
    throw error
  }
}

/** An event stream holds one of its client's slots until its body ends. */
async function holdStreamSlot(
  c: Context<AppEnv>,
  next: Next,
  answer: Release | Refusal,
  limits: LimitSettings,
  metrics: Metrics,
) {
  if (isRefusal(answer)) {
    refuse(answer, `This client already holds ${limits.maxStreams} open event streams`, '5')
  }
  const release = answer
  try {
    await next()
  } catch (error) {
    release()
    throw error
  }
  // Counted first: an answer that holds nothing gives it back at once.
  metrics.openStreams += 1
  holdUntilStreamEnds(c, () => {
    metrics.openStreams -= 1
    release()
  })
}
