/**
 * @module Every authenticated request's chain as one middleware: the audit record, bearer
 * authentication (or a stream ticket), the guard, the rate and engine-budget limits, the engine
 * scope, the open-stream bookkeeping and, on `/v1/*`, the body limit.
 *
 * As six Hono middleware each was a layer of its own (an async dispatch, closures, promises and
 * awaits): together they cost the small authenticated request more CPU than its route does (bench
 * phase 2; figures in bench/README.md, "Changes and their effect"). Here the usual request, a
 * bearer token on a route that is no event stream, goes through a few plain calls up to the
 * route. Everything else (a stream ticket, a missing header, an event stream) goes through the
 * same steps as separate middleware composed as Hono composes them. Either way each step does
 * what it did, a refusal answers as the app's error handler makes it, and the audit record is
 * written once the answer is known.
 */
import type { Context, ErrorHandler, MiddlewareHandler, Next } from 'hono'
import type { Authenticator } from '../auth/authenticator.ts'
import type { TicketStore } from '../auth/tickets.ts'
import type { AuditSink } from '../domain/audit.ts'
import type { Principal } from '../domain/principal.ts'
import type { Refusal, Release } from '../store/port.ts'
import { auditAnswer, guard, guardRequests } from './audit.ts'
import {
  authenticated,
  bearerAuth,
  bearerToken,
  invalidBearer,
  isEventStream,
} from './authentication.ts'
import type { AppEnv } from './context.ts'
import { type EngineScopes, selectEngine, selectScope } from './engines.ts'
import { holdEngineBudget, limitRequests, type RequestLimits } from './limits.ts'
import { type OpenStreams, trackOpenStreams } from './open-streams.ts'
import { headerThroughHono, type RequestHeaderReader } from './request-headers.ts'

export interface AuthenticatedChain {
  audit: AuditSink
  authenticator: Authenticator
  tickets: TicketStore | undefined
  limits: RequestLimits
  scopes: EngineScopes
  openStreams: OpenStreams
  /** The body limit, for a request that may carry a body (`/v1/*`; none on `/metrics`). */
  bodyLimit?: MiddlewareHandler<AppEnv> | undefined
  /** The app's error handler: what a refusal here answers. */
  onError: ErrorHandler<AppEnv>
  /** How the `authorization` header is read; through Hono unless given. */
  readHeader?: RequestHeaderReader | undefined
}

type Env = Context<AppEnv>

export function authenticatedRequests(chain: AuthenticatedChain): MiddlewareHandler<AppEnv> {
  const { audit, authenticator, scopes, onError } = chain
  const { store, limits } = chain.limits
  const bodyLimit = chain.bodyLimit
  const readHeader = chain.readHeader ?? headerThroughHono
  // GET and HEAD carry no body: checking one anyway makes the Node adapter build a full Request.
  const toRoute = (c: Env, next: Next) =>
    bodyLimit && c.req.method !== 'GET' && c.req.method !== 'HEAD' ? bodyLimit(c, next) : next()
  const steps = composed(
    [
      bearerAuth(authenticator, chain.tickets),
      guardRequests(audit),
      limitRequests(chain.limits),
      selectEngine(scopes),
      trackOpenStreams(chain.openStreams),
      toRoute,
    ],
    onError,
  )

  /** A bearer token on a route that is no event stream: authenticated, guarded, limited. */
  const plain = (c: Env, next: Next, header: string) => {
    const token = bearerToken(header)
    const known = authenticator.knownPrincipal?.(token)
    if (known) return admit(c, next, token, known)
    return authenticator.authenticate(token).then((principal) => admit(c, next, token, principal))
  }
  const admit = (c: Env, next: Next, token: string, principal: Principal | undefined) => {
    if (!principal) throw invalidBearer()
    authenticated(c, authenticator, token, principal)
    guard(c, audit)
    const answer = store.admit(principal.id, limits.rates, 'budget', limits.engineBudget)
    return answer instanceof Promise
      ? answer.then((settled) => withinBudget(c, next, settled))
      : withinBudget(c, next, answer)
  }
  /** The request holds its place in the budget until it is answered (or refused here). */
  const withinBudget = (c: Env, next: Next, answer: Release | Refusal) =>
    holdEngineBudget(
      () => {
        selectScope(c, scopes)
        return toRoute(c, next)
      },
      answer,
      limits,
    )

  return async function authenticatedRequests(c, next) {
    try {
      const header = readHeader(c, 'authorization')
      // An empty header is no bearer token: then a ticket may count (`bearerAuth`).
      await (header && !isEventStream(c) ? plain(c, next, header) : steps(c, next))
    } catch (error) {
      await answerError(c, error, onError)
    }
    auditAnswer(c, audit)
  }
}

/**
 * Middleware run in turn as Hono's `compose` runs an app's: each one an error boundary (what it
 * throws becomes the error handler's answer, and the middleware before it goes on with that).
 */
function composed(
  layers: readonly MiddlewareHandler<AppEnv>[],
  onError: ErrorHandler<AppEnv>,
): (c: Env, next: Next) => Promise<void> {
  return (c, next) => {
    const dispatch = async (i: number): Promise<void> => {
      const layer = layers[i]
      if (!layer) return next()
      try {
        const answer = await layer(c, () => dispatch(i + 1))
        if (answer instanceof Response && !c.finalized) c.res = answer
      } catch (error) {
        await answerError(c, error, onError)
      }
    }
    return dispatch(0)
  }
}

/** As Hono's `compose` does: an `Error` becomes the error handler's answer; anything else goes on up. */
async function answerError(c: Env, error: unknown, onError: ErrorHandler<AppEnv>): Promise<void> {
  if (!(error instanceof Error)) throw error
  c.error = error
  c.res = await onError(error, c)
}
