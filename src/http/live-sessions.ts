/**
 * @module The open exec sessions of one gateway, apart from their route (routes/exec-session.ts):
 * the app waits for them at `close()` whether or not that route was ever built.
 */
import type { HeldSession } from './held-streams.ts'

/** The open sessions of one gateway: a shutdown ends each, then waits for their sockets to close. */
export class LiveSessions {
  readonly #ending = new Set<Promise<void>>()

  add(session: HeldSession): void {
    const ended = new Promise<void>((resolve) => session.onEnd(resolve))
    this.#ending.add(ended)
    void ended.then(() => this.#ending.delete(ended))
  }

  /** Resolves once every session open now has ended (each stops its command first, then closes). */
  ended(): Promise<void> {
    return Promise.all(this.#ending).then(() => {})
  }
}
