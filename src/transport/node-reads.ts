/**
 * @module How an exec's output is read off its Node socket: into slabs, on into a bounded queue
 * while the consumer pauses, and with a reset told apart from an end.
 *
 * Reads into slabs halve the reads and writes per MB of an exec's output (bench/README.md,
 * "Exec"). In that mode (`net.connect`'s `onread`) a paused socket stops reading at once, where a
 * plain one reads on into its stream's buffer; and a reset (RST) that arrives while nothing reads
 * comes out as a clean end of file: the stream ends without the reset's error, and a cut output
 * looks complete. So the consumer's pauses do not stop the socket: what it reads meanwhile is
 * held ({@link HeldReads}) up to the read-ahead, as a plain socket's buffer holds it. And since
 * even a plain socket whose reads stopped sees a reset that way, the end of the connection is
 * checked ({@link endedByReset}). test/transport/node-reads.test.ts has both cases stand-alone.
 */
import type { OnReadOpts, Socket } from 'node:net'

/** The bytes a slab holds (the most one read takes), and the least room a read is given. */
export const SLAB_BYTES = 256 * 1024
const SLAB_MIN_READ_BYTES = 64 * 1024

/**
 * Reads into the free rest of one slab after another instead of a new 64 KiB buffer each (Node's
 * own reads), handed to the socket's `data` listeners as before. A busy exec's output arrives in
 * frames of up to 32,776 bytes (docs/engine-notes.md), so a 64 KiB read of two full ones ends 16
 * bytes short of the second's end and the next read is those 16 bytes; a read with 256 KiB of room
 * takes what the kernel holds in one go. Chunks are views of the slab and are never written
 * over: a chunk kept keeps its slab, which only a connection's short-lived exec output uses
 * (an interactive session, which may idle for hours, reads as usual).
 */
export function readsIntoSlabs(socketOf: () => Socket): OnReadOpts {
  let slab = Buffer.allocUnsafeSlow(SLAB_BYTES)
  let used = 0
  return {
    buffer: () => {
      if (slab.length - used < SLAB_MIN_READ_BYTES) {
        slab = Buffer.allocUnsafeSlow(SLAB_BYTES)
        used = 0
      }
      return slab.subarray(used)
    },
    callback: (length, buffer) => {
      used += length
      socketOf().emit('data', buffer.subarray(0, length))
      return true
    },
  }
}

/**
 * Between a socket and a consumer that may pause: while it is paused, what the socket reads is
 * held (the socket itself paused only once `limit` bytes are), and the end or an error waits
 * behind the chunks held, so that nothing is taken out of order.
 */
export class HeldReads {
  readonly #socket: Socket
  readonly #limit: number
  readonly #deliver: (chunk: Uint8Array) => void
  readonly #held: (Uint8Array | (() => void))[] = []
  #heldBytes = 0
  #paused = false
  /** The socket is paused: it was handed over so (after its answer head), or the queue is full. */
  #socketPaused = true

  constructor(socket: Socket, limit: number, deliver: (chunk: Uint8Array) => void) {
    this.#socket = socket
    this.#limit = limit
    this.#deliver = deliver
  }

  /** A chunk the socket read. */
  chunk(bytes: Uint8Array): void {
    if (!this.#paused && this.#held.length === 0) {
      this.#deliver(bytes)
      return
    }
    this.#held.push(bytes)
    this.#heldBytes += bytes.length
    if (this.#heldBytes >= this.#limit && !this.#socketPaused) {
      this.#socketPaused = true
      this.#socket.pause()
    }
  }

  /** The end, an error or the close: run once what was read before it is taken. */
  last(step: () => void): void {
    if (!this.#paused && this.#held.length === 0) step()
    else this.#held.push(step)
  }

  /** The consumer takes nothing for now; the socket reads on up to the limit. */
  pause(): void {
    this.#paused = true
  }

  /** The consumer takes what is held, then what comes, until it pauses again. */
  resume(): void {
    this.#paused = false
    while (!this.#paused) {
      const next = this.#held.shift()
      if (next === undefined) break
      if (typeof next === 'function') next()
      else {
        this.#heldBytes -= next.length
        this.#deliver(next)
      }
    }
    if (this.#socketPaused && this.#heldBytes < this.#limit && !this.#socket.destroyed) {
      this.#socketPaused = false
      this.#socket.resume()
    }
  }
}

/**
 * Whether a connection that just read its end was reset instead (checked in its `end` listener).
 * A reset that arrives behind bytes not read yet ends the stream as a clean end of file (Node's
 * libuv reads those bytes, sees the hang-up, and does not read again for the error); a connection
 * the peer ended is still connected on this side until it ends too, a reset one is not
 * (`getpeername` fails with ENOTCONN). A Unix socket's handle has no `getpeername`: false. A peer
 * that ends the connection and then resets it before this side reads the end (an abortive close
 * after a graceful one) is taken for a reset too: the output is then failed though it was whole.
 */
export function endedByReset(socket: Socket): boolean {
  const handle = (socket as unknown as { _handle?: { getpeername?: (out: object) => number } })
    ._handle
  return typeof handle?.getpeername === 'function' && handle.getpeername({}) !== 0
}

/** The error a reset connection ends with (as Node's own read of it would have raised). */
export function resetError(): Error {
  return Object.assign(new Error('read ECONNRESET'), {
    code: 'ECONNRESET',
    errno: -104,
    syscall: 'read',
  })
}
