/**
 * @module Event streams written straight to Node's response.
 *
 * `@hono/node-server` sends a streaming body by reading it chunk by chunk (a read, a promise, an
 * enqueue on our side per write). For event streams the gateway can write to the
 * `ServerResponse` itself: with 10,000 subscribers that is most of a fan-out's cost above
 * writing the sockets. The Node entry declares it to the app as its `eventStreamOutput`.
 *
 * Once the head is on the wire, each chunk goes to the socket as one chunked-encoding frame
 * (`<size>\r\n<bytes>\r\n`), built once per chunk: a fan-out writes the same chunk to every
 * subscriber with the same events, and `ServerResponse.write` made four socket writes of each
 * (size line, a `Buffer` view of the bytes, CRLF; corked, then one `writev`), with their
 * bookkeeping, per subscriber (bench phase `events`, bench/README.md). A large chunk (an exec's
 * output, one stream's alone) is not copied into a frame: its size line, the chunk and the CRLF
 * leave in one `writev` (bench phase `exec`).
 */
import type { ServerResponse } from 'node:http'
import type { Socket } from 'node:net'
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

const CRLF = Buffer.from('\r\n', 'latin1')

/**
 * From this size on a chunk goes to the socket as it is, between its size line and CRLF (three
 * buffers, one `writev`), instead of copied into one frame and remembered: an exec's 64 KiB
 * batches spent 13 % of the gateway's busy time building their frames (`--cpu-prof`,
 * bench/exec-cpu.mjs); written this way, 0.2–0.3 % of the samples outside the kernel's `writev`
 * (the same bytes either way). Fan-out chunks (events of a few hundred bytes, written to many
 * sockets) stay below it.
 */
const FRAMED_IN_PLACE_BYTES = 16 * 1024

/**
 * Each chunk's frame, built once however many sockets it goes to: a memo of a pure function,
 * keyed on the chunk (the event encoder hands every subscriber with the same events the same one).
 */
const chunkFrames = new WeakMap<Uint8Array, Buffer>()

/** The chunk as one HTTP/1.1 chunked-encoding frame. */
export function chunkFrame(chunk: Uint8Array): Buffer {
  let frame = chunkFrames.get(chunk)
  if (frame === undefined) {
    // One buffer written in place: no size `Buffer` and no `concat` list per chunk.
    const size = `${chunk.byteLength.toString(16)}\r\n`
    frame = Buffer.allocUnsafe(size.length + chunk.byteLength + 2)
    frame.write(size, 0, 'latin1')
    frame.set(chunk, size.length)
    frame.set(CRLF, size.length + chunk.byteLength)
    chunkFrames.set(chunk, frame)
  }
  return frame
}

/**
 * The socket a frame may be written to directly: the response's own, with the head on the wire
 * and nothing of Node's still queued before it (pipelined answers wait without a socket), in
 * chunked encoding (an HTTP/1.0 client gets the bytes as they are, through the response).
 */
function frameSocket(outgoing: ServerResponse): Socket | undefined {
  const socket = outgoing.socket
  if (!socket || socket.destroyed || !outgoing.headersSent || outgoing.writableEnded) return
  const internals = outgoing as unknown as {
    chunkedEncoding?: boolean
    outputData?: unknown[]
    _hasBody?: boolean
  }
  if (internals.chunkedEncoding !== true || internals._hasBody === false) return
  if ((internals.outputData?.length ?? 0) > 0) return
  return socket
}

/** Writes the chunk as one chunked-encoding frame; false when the socket wants a drain first. */
function writeFrame(socket: Socket, chunk: Uint8Array): boolean {
  if (chunk.byteLength < FRAMED_IN_PLACE_BYTES) return socket.write(chunkFrame(chunk))
  socket.cork()
  socket.write(Buffer.from(`${chunk.byteLength.toString(16)}\r\n`, 'latin1'))
  socket.write(chunk)
  const room = socket.write(CRLF)
  socket.uncork()
  return room
}

function nodeWriter(outgoing: ServerResponse): EventStreamWriter {
  const drainListeners: (() => void)[] = []
  const onSocketDrain = () => {
    for (const listener of drainListeners) listener()
  }
  /**
   * The socket frames go to, once {@link frameSocket} allowed it: that cannot change for the rest
   * of the response (its head is out, its encoding chosen), and a fan-out's write to 10,000
   * sockets touches as few objects per subscriber as it can (bench phase `events`).
   */
  let direct: Socket | undefined
  outgoing.once('close', () => direct?.off('drain', onSocketDrain))
  return {
    write: (chunk) => {
      if (direct === undefined) {
        direct = frameSocket(outgoing)
        // Backpressure on the socket itself: the response only reports a drain it asked for.
        direct?.on('drain', onSocketDrain)
      }
      if (direct !== undefined && !direct.destroyed) return writeFrame(direct, chunk)
      // Node corks the socket for a write and uncorks it on the next tick, which waits for every
      // promise job queued before it: the hub writes a fan-out's first subscribers from the
      // upstream's read (a promise job), and the read model's work for the same event came first
      // (the bytes left 1.1 ms after the engine's instead of 0.5: bench/README.md, Findings 5).
      // Uncorked now, they leave at once, in the same one write (size line, bytes, CRLF) the tick
      // would have made.
      const corkedBefore = outgoing.socket?.writableCorked ?? 0
      const room = outgoing.write(chunk)
      const after = outgoing.socket
      if (after && corkedBefore === 0 && after.writableCorked > 0) after.uncork()
      return room
    },
    end: () => outgoing.end(),
    onDrain: (listener) => {
      drainListeners.push(listener)
      outgoing.on('drain', listener)
    },
    onClose: (listener) => outgoing.once('close', listener),
    // Written to the socket itself, and taken whole by the kernel: Node counts a write until
    // libuv has finished it, and keeps the chunks of one it has not (`writableLength`)
    wroteThrough: () => direct !== undefined && direct.writableLength === 0,
  }
}
