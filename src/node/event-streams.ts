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
    write: (chunk) => {
      // Node corks the socket for a write and uncorks it on the next tick, which waits for every
      // promise job queued before it: the hub writes a fan-out's first subscribers from the
      // upstream's read (a promise job), and the read model's work for the same event came first
      // (the bytes left 1.1 ms after the engine's instead of 0.5: bench/README.md, Findings 5).
      // Uncorked now, they leave at once, in the same one write (size line, bytes, CRLF) the tick
      // would have made.
      const socket = outgoing.socket
      const corkedBefore = socket?.writableCorked ?? 0
      const room = outgoing.write(chunk)
      if (socket && corkedBefore === 0 && socket.writableCorked > 0) socket.uncork()
      return room
    },
    end: () => outgoing.end(),
    onDrain: (listener) => outgoing.on('drain', listener),
    onClose: (listener) => outgoing.once('close', listener),
  }
}
