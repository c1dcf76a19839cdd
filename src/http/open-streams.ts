/**
 * @module Revocation of open event streams: each open stream remembers the credential that
 * opened it; when the credentials change (a config reload), every one is judged again, and a
 * stream whose credential is no longer accepted, or now grants other scopes or another policy,
 * ends with a final `event: revoked` (a WebSocket session: a `revoked` message and a close).
 */
import type { z } from '@hono/zod-openapi'
import type { Context, Next } from 'hono'
import { createMiddleware } from 'hono/factory'
import type { Credential, Principal } from '../domain/principal.ts'
import { isEventStream } from './authentication.ts'
import type { AppEnv } from './context.ts'
import { holdUntilStreamEnds } from './held-streams.ts'
import type { RevokedDataSchema } from './open-streams.schemas.ts'
import { endEventStream } from './sse.ts'

interface OpenStream {
  principal: Principal
  credential: Credential
  /** When it opened: a JWT is judged as of then (its expiry alone ends no stream). */
  openedAt: Date
  /** Ends it with the reason (an event stream's last event, a session's close). */
  end(why: RevokedData): void
}

export type RevokedData = z.infer<typeof RevokedDataSchema>

const REVOKED: RevokedData = {
  reason: 'revoked',
  detail: 'The credential that opened this stream is no longer accepted',
}
const CHANGED: RevokedData = {
  reason: 'changed',
  detail:
    'The scopes or policy of the credential that opened this stream changed: open it again to continue under the new ones',
}

export class OpenStreams {
  readonly #streams = new Set<OpenStream>()

  /** Tracks a stream until the function it answers is called (when the stream ends). */
  add(stream: OpenStream): () => void {
    this.#streams.add(stream)
    return () => this.#streams.delete(stream)
  }

  /** Judges every open stream's credential again; answers how many streams it ended. */
  async recheck(): Promise<number> {
    const verdicts = await Promise.all(
      [...this.#streams].map(async (stream) => {
        const now = await stream.credential(stream.openedAt).catch(() => undefined)
        const why = now === undefined ? REVOKED : sameGrant(stream.principal, now) ? null : CHANGED
        if (why === null || !this.#streams.has(stream)) return 0
        this.#streams.delete(stream)
        stream.end(why)
        return 1
      }),
    )
    return verdicts.reduce<number>((sum, ended) => sum + ended, 0)
  }
}

/** Same principal with the same scopes and policy: what it may see has not changed. */
function sameGrant(then: Principal, now: Principal): boolean {
  return (
    now.id === then.id &&
    now.kind === then.kind &&
    now.scopes.size === then.scopes.size &&
    [...then.scopes].every((scope) => now.scopes.has(scope)) &&
    JSON.stringify(now.policy) === JSON.stringify(then.policy)
  )
}

/** Tracks every event stream and WebSocket session answered, with the credential that opened it. */
export function trackOpenStreams(open: OpenStreams) {
  // Not async: a request that is no event stream goes on without a promise of its own.
  return createMiddleware<AppEnv>(function trackOpenStreams(c, next) {
    return isEventStream(c) ? track(c, next, open) : next()
  })
}

async function track(c: Context<AppEnv>, next: Next, open: OpenStreams) {
  const openedAt = new Date()
  await next()
  const principal = c.get('principal')
  const credential = c.get('credential')
  const session = c.get('session')
  const body = c.res.body
  const end = session
    ? (why: RevokedData) => session.revoke(why)
    : body && c.res.status === 200
      ? (why: RevokedData) => endEventStream(body, { event: 'revoked', data: JSON.stringify(why) })
      : undefined
  if (!end) return
  holdUntilStreamEnds(c, open.add({ principal, credential, openedAt, end }))
}
