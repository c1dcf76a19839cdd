import { setTimeout as sleep } from 'node:timers/promises'
import { describe, expect, it } from 'vitest'
import { firstAnswer } from '../src/bootstrap.ts'

/** Whether the promise has settled by the time the tasks queued so far have run. */
async function settledBy(promise: Promise<unknown>, waitMs = 0): Promise<boolean> {
  let settled = false
  void promise.then(() => (settled = true))
  await sleep(waitMs)
  return settled
}

describe('firstAnswer', () => {
  it('settles a turn of the event loop after the first answer, not before it', async () => {
    const first = firstAnswer(10_000)
    expect(await settledBy(first.settled, 50)).toBe(false)
    let settledInTurn = false
    void first.settled.then(() => (settledInTurn = true))
    first.answered()
    // Not in the answer's own turn (its microtasks): the server writes the answer first.
    await Promise.resolve()
    await Promise.resolve()
    expect(settledInTurn).toBe(false)
    expect(await settledBy(first.settled, 20)).toBe(true)
    first.answered()
  })

  it('watches a fetch handler: its answers as they were, settling after the first', async () => {
    const first = firstAnswer(10_000)
    const response = new Response('ok')
    let answer!: (response: Response) => void
    const fetch = first.watch((_request: Request, env: string) =>
      env === 'held' ? new Promise<Response>((resolve) => (answer = resolve)) : response,
    )
    const held = fetch(new Request('http://gateway/'), 'held')
    expect(await settledBy(first.settled, 50)).toBe(false)
    answer(response)
    expect(await held).toBe(response)
    expect(await settledBy(first.settled, 20)).toBe(true)
    // Synchronous answers stay synchronous.
    expect(fetch(new Request('http://gateway/'), 'now')).toBe(response)
  })

  it('settles after its bound when nothing has been answered', async () => {
    const started = performance.now()
    await firstAnswer(100).settled
    // Timers may fire late on a busy machine, never early (a millisecond of rounding aside).
    expect(performance.now() - started).toBeGreaterThanOrEqual(99)
  })
})
