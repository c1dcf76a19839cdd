/**
 * @module Event streams written straight to Node's response.
 *
 * `@hono/node-server` sends a streaming body by reading it chunk by chunk (a read, a promise, an
 * enqueue on our side per write). For event streams the gateway can write to the
 * `ServerResponse` itself: with 10,000 subscribers that is most of a fan-out's cost above
 * writing the sockets. Everything else an event stream does (backpressure, heartbeats, the
 * final event, noticing that the client left) is the same; see `eventStreamTakeOver`.
 */
import type { ServerResponse } from 'node:http'
import { RESPONSE_ALREADY_SENT } from '@hono/node-server/utils/response'
import { isEventStream } from '../auth/middleware.ts'
import { type EventStreamWriter, eventStreamTakeOver } from '../http/sse.ts'
import { nodeResponseOf } from './request-id.ts'

type FetchHandler = (request: Request, env: unknown) => Response | Promise<Response>

/** The app's fetch, with its event streams written straight to Node's response. */
export function withDirectEventStreams(fetch: FetchHandler): FetchHandler {
  // Only a request that can be an event stream has its answer looked at: reading `body` of any
  // other answer would turn the adapter's lightweight response into a full Fetch Response, twice
  // the CPU of a small request (bench/README.md, "Changes and their effect"). Nor does any other
  // answer wait for an extra promise of ours.
  return (request, env) =>
    isEventStream(request.method, pathOf(request.url))
      ? writeDirectly(fetch(request, env), env)
      : fetch(request, env)
}

async function writeDirectly(answer: Response | Promise<Response>, env: unknown) {
  const response = await answer
  const takeOver = response.body ? eventStreamTakeOver(response.body) : undefined
  const outgoing = nodeResponseOf(env)
  if (!takeOver || !outgoing || outgoing.headersSent) return response
  outgoing.writeHead(response.status, Object.fromEntries(response.headers))
  outgoing.flushHeaders()
  void takeOver(nodeWriter(outgoing))
  return RESPONSE_ALREADY_SENT
}

/** The path of an absolute URL, without parsing the whole URL (this runs for every request). */
export function pathOf(url: string): string {
  const start = url.indexOf('/', url.indexOf('//') + 2)
  if (start === -1) return '/'
  const query = url.indexOf('?', start)
  return query === -1 ? url.slice(start) : url.slice(start, query)
}

function nodeWriter(outgoing: ServerResponse): EventStreamWriter {
  return {
    write: (chunk) => outgoing.write(chunk),
    end: () => outgoing.end(),
    onDrain: (listener) => outgoing.on('drain', listener),
    onClose: (listener) => outgoing.once('close', listener),
  }
}
