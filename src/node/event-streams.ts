/**
 * @module Event streams written straight to Node's response.
 *
 * `@hono/node-server` sends a streaming body by reading it chunk by chunk (a read, a promise, an
 * enqueue on our side per write). For event streams the gateway can write to the
 * `ServerResponse` itself: with 10,000 subscribers that is most of a fan-out's cost above
 * writing the sockets. The Node entry declares it to the app as its `eventStreamOutput`.
 */
import type { ServerResponse } from 'node:http'
import { RESPONSE_ALREADY_SENT } from '@hono/node-server/utils/response'
import type { EventStreamOutput } from '../http/event-stream-output.ts'
import type { EventStreamWriter } from '../http/sse.ts'
import { nodeResponseOf } from './request-id.ts'

/** Writes the head on Node's `ServerResponse` (`c.env.outgoing`), then the stream's bytes. */
export const writeEventStreamsOnNodeResponse: EventStreamOutput = (c, status, headers) => {
  const outgoing = nodeResponseOf(c.env)
  if (!outgoing || outgoing.headersSent) return undefined
  outgoing.writeHead(status, Object.fromEntries(headers))
  outgoing.flushHeaders()
  return { writer: nodeWriter(outgoing), answer: RESPONSE_ALREADY_SENT }
}

function nodeWriter(outgoing: ServerResponse): EventStreamWriter {
  return {
    write: (chunk) => outgoing.write(chunk),
    end: () => outgoing.end(),
    onDrain: (listener) => outgoing.on('drain', listener),
    onClose: (listener) => outgoing.once('close', listener),
  }
}
