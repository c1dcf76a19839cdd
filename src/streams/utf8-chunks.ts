/**
 * @module UTF-8 text from a byte stream that arrives in chunks, a character split between chunks
 * kept whole, at the speed of a one-shot decode where it can.
 *
 * Node's `TextDecoder` decodes a whole buffer with `ignoreBOM` several times faster than it
 * decodes with `{ stream: true }` (measured on Node 20: 8–28 µs against 77–129 µs for 32 KB,
 * bench/README.md "Exec"): only the one-shot call takes its SIMD path. A chunk that ends on an
 * ASCII byte ends on a character boundary, so when the previous chunk left nothing behind it can
 * be decoded on its own; only chunks around a split character go through the streaming decoder.
 * The result is the same text either way: a byte order mark is kept (`ignoreBOM`) on both paths.
 */
export class Utf8Chunks {
  readonly #whole = new TextDecoder('utf-8', { ignoreBOM: true })
  readonly #streaming = new TextDecoder('utf-8', { ignoreBOM: true })
  /** Whether the streaming decoder may hold the start of a character. */
  #pending = false

  decode(bytes: Uint8Array): string {
    if (bytes.length === 0) return ''
    const last = bytes[bytes.length - 1] ?? 0
    if (!this.#pending && last < 0x80) return this.#whole.decode(bytes)
    const text = this.#streaming.decode(bytes, { stream: true })
    // Ending on an ASCII byte, the streaming decoder holds nothing any more.
    this.#pending = last >= 0x80
    return text
  }

  /**
   * The bytes ended: what the streaming decoder still holds (the start of a character that never
   * finished) as the U+FFFD a one-shot decode of the whole gives for it; '' when it holds nothing.
   */
  end(): string {
    if (!this.#pending) return ''
    this.#pending = false
    return this.#streaming.decode()
  }
}
