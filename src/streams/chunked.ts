/**
 * @module HTTP/1.1's chunked transfer coding, decoded as bytes arrive (RFC 9112, section 7.1):
 * `<size in hex>[;extensions]\r\n<size bytes>\r\n`, repeated, then a chunk of size 0, trailer
 * lines and an empty line.
 */

const LF = 0x0a
/** A size line longer than this is not HTTP (16 hex digits and room for extensions). */
const MAX_SIZE_LINE = 1024

type State = 'size' | 'data' | 'dataEnd' | 'trailer' | 'done'

/**
 * Decodes a chunked body pushed to it piece by piece, handing each piece of the body's bytes to
 * `emit` as a view of the bytes given (no copy). Throws a `TypeError` on bytes that are not the
 * chunked coding.
 */
export class ChunkedDecoder {
  #state: State = 'size'
  /** The size line or trailer line read so far (without its LF). */
  #line = ''
  #remaining = 0

  /** Whether the last chunk and the trailer were read: the body is complete. */
  get done(): boolean {
    return this.#state === 'done'
  }

  /** Decodes `bytes`; answers whether the body is complete (what follows it is ignored). */
  push(bytes: Uint8Array, emit: (body: Uint8Array) => void): boolean {
    let at = 0
    while (at < bytes.length && this.#state !== 'done') {
      if (this.#state === 'data') {
        const end = Math.min(bytes.length, at + this.#remaining)
        emit(bytes.subarray(at, end))
        this.#remaining -= end - at
        at = end
        if (this.#remaining === 0) this.#state = 'dataEnd'
        continue
      }
      const newline = bytes.indexOf(LF, at)
      const end = newline === -1 ? bytes.length : newline
      for (let i = at; i < end; i++) this.#line += String.fromCharCode(bytes[i]!)
      if (this.#line.length > MAX_SIZE_LINE) throw notChunked()
      if (newline === -1) return false
      at = newline + 1
      this.#endLine()
    }
    return this.#state === 'done'
  }

  #endLine(): void {
    const line = this.#line.endsWith('\r') ? this.#line.slice(0, -1) : this.#line
    this.#line = ''
    if (this.#state === 'dataEnd') {
      if (line !== '') throw notChunked()
      this.#state = 'size'
    } else if (this.#state === 'size') {
      const semicolon = line.indexOf(';')
      const digits = (semicolon === -1 ? line : line.slice(0, semicolon)).trim()
      if (!/^[0-9a-fA-F]{1,15}$/.test(digits)) throw notChunked()
      this.#remaining = Number.parseInt(digits, 16)
      this.#state = this.#remaining === 0 ? 'trailer' : 'data'
    } else if (line === '') {
      this.#state = 'done'
    }
  }
}

const notChunked = () =>
  new TypeError('The engine sent a body that is not chunked as HTTP/1.1 says')
