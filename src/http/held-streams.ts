/**
 * @module What an event-stream route's answer holds until it ends: an event stream's body, or a
 * WebSocket session the route opened (the exec session), whose answer has no body to watch.
 * The stream slot, the ticket's one open stream and the revocation check follow either the same
 * way.
 */
import type { Context } from 'hono'
import { onBodyEnd } from '../streams/on-end.ts'
import type { AppEnv } from './context.ts'
import type { RevokedData } from './open-streams.ts'

/**
 * A WebSocket session an upgrade answered (`c.set('session', …)` by its route): it counts as an
 * open stream from the upgrade until its socket closes.
 */
export interface HeldSession {
  /** Calls `listener` once when the session has ended; at once when it has already. */
  onEnd(listener: () => void): void
  /** Ends the session because its credential is no longer accepted, or now grants otherwise. */
  revoke(why: RevokedData): void
}

/**
 * Calls `release` once when what the request answered ends: the session the route opened, or
 * the event stream's body; at once when it answered neither (a refusal, a HEAD). Answers
 * whether it holds something.
 */
export function holdUntilStreamEnds(c: Context<AppEnv>, release: () => void): boolean {
  const session = c.get('session')
  if (session) {
    session.onEnd(release)
    return true
  }
  const body = c.res.body
  if (!body || c.res.status !== 200) {
    release()
    return false
  }
  c.res = new Response(onBodyEnd(body, release), c.res)
  return true
}
