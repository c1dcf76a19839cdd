/**
 * @module The port through which a runtime writes event streams itself.
 *
 * A runtime adapter reads a streaming body chunk by chunk (on Node: a read, a promise and an
 * enqueue on our side per write). A runtime that can write an event stream's bytes to the
 * connection directly declares it in `AppDependencies.eventStreamOutput`; the app then hands it
 * every event stream it answers, once every middleware has seen the answer. Everything else an
 * event stream does (backpressure, heartbeats, the final event, noticing that the client left)
 * stays the same.
 */
import type { Context } from 'hono'
import type { AppEnv } from './context.ts'
import { type EventStreamWriter, eventStreamTakeOver } from './sse.ts'

/**
 * Sends the head of an event stream answer itself (`status`, `headers`) and answers the writer
 * its bytes go to, with what the app returns instead of the answer; undefined when it cannot
 * (the body is then sent as usual).
 */
export type EventStreamOutput = (
  c: Context<AppEnv>,
  status: number,
  headers: Headers,
) => { writer: EventStreamWriter; answer: Response } | undefined

/** Hands an event stream's answer to `output`, once every other middleware has seen it. */
export function handOverAnswer(c: Context<AppEnv>, output: EventStreamOutput): void {
  const body = c.res.body
  const takeOver = body ? eventStreamTakeOver(body) : undefined
  if (!takeOver) return
  const taken = output(c, c.res.status, c.res.headers)
  if (!taken) return
  void takeOver(taken.writer)
  // Set over an answer, Hono copies the new one into yet another Response: the runtime's answer
  // must reach it as it is (Node's adapter knows its "already sent" answer by itself).
  c.res = undefined
  c.res = taken.answer
}
