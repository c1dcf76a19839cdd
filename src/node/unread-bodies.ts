/**
 * @module An answer given before the request's body was read: the rest of the body is read and
 * dropped first, for a while, and the connection is closed after the answer if that did not end it.
 *
 * A request refused before its body was read (401, 403, 413, 415) leaves the rest of that body
 * on the connection. Kept alive, the connection's next request would wait behind it (the adapter
 * drains such a body for at most 500 ms, then closes the socket under the client, after an
 * answer that said keep-alive). Closed at once after the answer, the client may still be sending:
 * closing a socket with unread bytes makes the kernel answer with a reset, and a client that gets
 * the reset before it has read the answer sees a broken connection instead of the problem
 * (`test/node/fetch-globals.test.ts`, a 2 MB body refused with 413: `EPIPE` in 1 run of 16, and
 * in 3 of 20 once the answer came sooner). So the rest is read and dropped before the answer, at
 * most {@link DRAIN_MS} and {@link DRAIN_BYTES}: a body read to its end leaves the connection
 * clean for the next request; one that is not gets `Connection: close`, so that the client opens
 * a new one.
 */
import type { IncomingMessage, ServerResponse } from 'node:http'

type FetchHandler = (request: Request, env: unknown) => Response | Promise<Response>

/** How long the rest of an unread body is read for before the answer goes anyway. */
export const DRAIN_MS = 500
/** How much of it is read at most. */
export const DRAIN_BYTES = 8 * 1024 * 1024

export function closeAfterUnreadBodies(fetch: FetchHandler): FetchHandler {
  return (request, env) => {
    // GET and HEAD carry no body: their answers are not waited for here.
    if (request.method === 'GET' || request.method === 'HEAD') return fetch(request, env)
    const { incoming, outgoing } = env as { incoming?: IncomingMessage; outgoing?: ServerResponse }
    return Promise.resolve(fetch(request, env)).then(async (response) => {
      if (incoming && outgoing && !incoming.complete && !outgoing.headersSent) {
        await dropRest(incoming)
        if (!incoming.complete && !outgoing.headersSent) outgoing.setHeader('connection', 'close')
      }
      return response
    })
  }
}

/** Reads the body's rest and drops it; settles at its end, at a bound, or when it fails. */
function dropRest(incoming: IncomingMessage): Promise<void> {
  if (incoming.destroyed || incoming.readableEnded) return Promise.resolve()
  return new Promise((resolve) => {
    let bytes = 0
    const done = () => {
      clearTimeout(timer)
      incoming.off('data', onData)
      incoming.off('end', done)
      incoming.off('close', done)
      incoming.off('error', done)
      resolve()
    }
    const onData = (chunk: Buffer) => {
      bytes += chunk.byteLength
      if (bytes > DRAIN_BYTES) done()
    }
    const timer = setTimeout(done, DRAIN_MS)
    incoming.on('data', onData)
    incoming.once('end', done)
    incoming.once('close', done)
    incoming.once('error', done)
    incoming.resume()
  })
}
