/**
 * @module An upgraded engine call on Node, read straight off its socket.
 *
 * The same exchange as upgrade.ts (`Upgrade: tcp`, the engine's `101 UPGRADED`), without Web
 * stream adapters between the socket and the consumer: each chunk the socket reads is queued as
 * it is into one `ReadableStream`, and the socket is paused once the queue holds what the
 * consumer may have read ahead. Through `Duplex.toWeb` and a second stream (or undici's `fetch`
 * body and a read-ahead `TransformStream`, as an exec's output was read before) each chunk cost
 * several promises and stream steps: most of the gateway's CPU per MB beside formatting and
 * writing (bench phase `exec`, bench/README.md "Exec").
 */
import type { Socket } from 'node:net'
import type { EngineConnection, UpgradeOptions } from '../engine/transport.ts'
import { PushedByteStream } from '../streams/pushed.ts'
import { endedByReset, HeldReads, resetError } from './node-reads.ts'
import {
  type AnswerHead,
  concat,
  MAX_HEAD_BYTES,
  parseAnswerHead,
  upgradeRequestBytes,
} from './upgrade.ts'

/** What is read ahead of the consumer when the caller does not say: one socket read. */
const DEFAULT_READ_AHEAD_BYTES = 64 * 1024

/**
 * Sends `request` over `socket` (connected, nothing sent yet) and answers the connection once
 * the engine switched protocols. Any other answer is thrown as a `Response` (its body what
 * arrived before the engine closed or its length was reached), and the socket destroyed.
 */
export async function upgradeSocket(
  socket: Socket,
  request: Request,
  options: UpgradeOptions = {},
): Promise<EngineConnection> {
  // One listener from the start: an error between two steps would otherwise be unhandled (and
  // end the process); the step that runs next sees it.
  let failure: unknown
  socket.on('error', (error) => {
    failure ??= error
  })
  try {
    const bytes = await upgradeRequestBytes(request)
    if (failure !== undefined || socket.destroyed) throw failure ?? closedEarly()
    socket.write(bytes)
    const head = await readHead(socket)
    if (head.status !== 101) {
      const length = Number(head.responseHeaders.get('content-length'))
      const body = await readRefusal(socket, head.rest, length)
      throw new Response(body, {
        status: head.status,
        statusText: head.statusText,
        headers: head.responseHeaders,
      })
    }
    if (failure !== undefined || socket.destroyed) throw failure ?? closedEarly()
    const readAhead = options.readAheadBytes ?? DEFAULT_READ_AHEAD_BYTES
    const reading = options.push
      ? pushedReading(socket, head.rest, readAhead)
      : queuedReading(socket, head.rest, readAhead)
    return socketConnection(socket, reading)
  } catch (error) {
    socket.destroy()
    throw error
  }
}

/** Reads the answer head; leaves the socket paused, and what followed the head in `rest`. */
function readHead(socket: Socket): Promise<AnswerHead> {
  return new Promise((resolve, reject) => {
    let buffer: Uint8Array = new Uint8Array(0)
    const stop = () => {
      socket.pause()
      socket.off('data', onData)
      socket.off('end', onEnd)
      socket.off('error', onError)
    }
    const onData = (chunk: Uint8Array) => {
      buffer = buffer.length === 0 ? chunk : concat([buffer, chunk])
      let head: AnswerHead | undefined
      try {
        head = parseAnswerHead(buffer)
      } catch (error) {
        onError(error)
        return
      }
      if (!head) return
      stop()
      resolve(head)
    }
    const onEnd = () => onError(closedEarly())
    const onError = (error: unknown) => {
      stop()
      reject(error)
    }
    socket.on('data', onData)
    socket.once('end', onEnd)
    socket.once('error', onError)
    socket.resume()
  })
}

const closedEarly = () => new TypeError('The engine closed the connection before it answered')

/** The rest of a refusal: its JSON message, up to the engine closing or the content length. */
function readRefusal(
  socket: Socket,
  rest: Uint8Array,
  contentLength: number,
): Promise<Uint8Array<ArrayBuffer>> {
  // Refusals are short JSON with a length; bounded either way.
  const expected = Math.min(
    Number.isFinite(contentLength) ? contentLength : MAX_HEAD_BYTES,
    MAX_HEAD_BYTES,
  )
  return new Promise((resolve) => {
    const parts = [rest]
    let length = rest.length
    const done = () => {
      socket.off('data', onData)
      socket.off('end', done)
      socket.off('error', done)
      resolve(concat(parts))
    }
    const onData = (chunk: Uint8Array) => {
      parts.push(chunk)
      length += chunk.length
      if (length >= expected) done()
    }
    if (length >= expected) return done()
    socket.on('data', onData)
    socket.once('end', done)
    socket.once('error', done)
    socket.resume()
  })
}

/** How the connection is read after the head. */
interface Reading {
  readable: ReadableStream<Uint8Array>
  /** Ends reading as if the engine had closed (a pending read answers done, a sink its end). */
  end(): void
}

/** The connection after the head. */
function socketConnection(socket: Socket, reading: Reading): EngineConnection {
  return {
    readable: reading.readable,
    write: (chunk) =>
      new Promise<void>((resolve, reject) =>
        socket.write(chunk, (error) => (error ? reject(error) : resolve())),
      ),
    closeWrite: () => new Promise<void>((resolve) => socket.end(resolve)),
    close: () => {
      reading.end()
      socket.destroy()
    },
  }
}

/** `rest` first, then every chunk the socket reads, queued up to `readAheadBytes`. */
function queuedReading(socket: Socket, rest: Uint8Array, readAheadBytes: number): Reading {
  let ended = false
  let endReading = () => {}
  const readable = new ReadableStream<Uint8Array>(
    {
      start(controller) {
        endReading = () => controller.close()
        if (rest.length > 0) controller.enqueue(rest)
        socket.on('data', (chunk: Uint8Array) => {
          if (ended) return
          controller.enqueue(chunk)
          // Full: the socket waits (and with it, through the kernel's buffers, the engine)
          if ((controller.desiredSize ?? 0) <= 0) socket.pause()
        })
        socket.once('end', () => {
          if (ended) return
          ended = true
          controller.close()
          socket.destroy()
        })
        socket.once('error', (error) => {
          if (ended) return
          ended = true
          controller.error(error)
          socket.destroy()
        })
        // Destroyed from outside without an end or an error: what was read is all there is.
        socket.once('close', () => {
          if (ended) return
          ended = true
          controller.error(new TypeError('The engine connection closed'))
        })
      },
      pull() {
        socket.resume()
      },
      cancel() {
        ended = true
        socket.destroy()
      },
    },
    new ByteLengthQueuingStrategy({ highWaterMark: readAheadBytes }),
  )
  const end = () => {
    if (!ended) endReading()
    ended = true
  }
  return { readable, end }
}

/**
 * `rest` first, then every chunk the socket reads, handed to a sink in the socket's own `data`
 * callback (or read as usual): no queue, promise or stream step per chunk between the engine and
 * an exec's events (bench phase `exec`, bench/README.md "Exec"). While the consumer pauses, the
 * socket reads on into a queue of up to `readAheadBytes` (src/transport/node-reads.ts says why),
 * and an end that was a reset fails the stream.
 */
function pushedReading(socket: Socket, rest: Uint8Array, readAheadBytes: number): Reading {
  const stream = new PushedByteStream({
    pause: () => reads.pause(),
    resume: () => reads.resume(),
    cancel: () => socket.destroy(),
  })
  const reads = new HeldReads(socket, readAheadBytes, (chunk) => stream.push(chunk))
  if (rest.length > 0) stream.push(rest)
  socket.on('data', (chunk: Uint8Array) => reads.chunk(chunk))
  socket.once('end', () => {
    const reset = endedByReset(socket)
    reads.last(() => (reset ? stream.error(resetError()) : stream.close()))
    socket.destroy()
  })
  socket.once('error', (error) => {
    reads.last(() => stream.error(error))
    socket.destroy()
  })
  // Destroyed from outside without an end or an error: what was read is all there is.
  socket.once('close', () =>
    reads.last(() => stream.error(new TypeError('The engine connection closed'))),
  )
  return { readable: stream, end: () => stream.close() }
}
