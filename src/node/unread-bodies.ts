/**
 * @module An answer given before the request's body was read closes the connection.
 *
 * A request refused before its body was read (401, 403, 413, 415) leaves the rest of that body
 * on the connection. Kept alive, the connection's next request would wait behind it (the adapter
 * drains such a body for at most 500 ms, then closes the socket under the client, after an
 * answer that said keep-alive). Saying `Connection: close` lets the client open a new one.
 */
import type { IncomingMessage, ServerResponse } from 'node:http'

type FetchHandler = (request: Request, env: unknown) => Response | Promise<Response>

export function closeAfterUnreadBodies(fetch: FetchHandler): FetchHandler {
  return (request, env) => {
    // GET and HEAD carry no body: their answers are not waited for here.
    if (request.method === 'GET' || request.method === 'HEAD') return fetch(request, env)
    const { incoming, outgoing } = env as { incoming?: IncomingMessage; outgoing?: ServerResponse }
    return Promise.resolve(fetch(request, env)).then((response) => {
      if (incoming && outgoing && !incoming.complete && !outgoing.headersSent) {
        outgoing.setHeader('connection', 'close')
      }
      return response
    })
  }
}
