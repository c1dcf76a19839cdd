/**
 * @module A byte stream's text as JSON string contents, chunk by chunk, a character split
 * between chunks kept whole, without decoding it to a string.
 *
 * The exec stream sends each frame of output as `{"text":…}`: decoding 32 KiB to a string,
 * `JSON.stringify` and encoding again cost most of the gateway's CPU per MB (bench phase `exec`,
 * bench/README.md "Exec"). Here the bytes are escaped as they are ({@link ByteWriter.writeJsonText})
 * and only the start of a character the chunk ends in waits for the next chunk.
 */
import type { ByteWriter } from './byte-writer.ts'
import { utf8SequenceLength } from './json-text-escape.ts'

// U+FFFD in UTF-8: what the decoder shows for a character the bytes began and never finished
const REPLACEMENT = Uint8Array.of(0xef, 0xbf, 0xbd)
// The longest UTF-8 character
const MAX_CHARACTER_BYTES = 4

/**
 * Writes into a {@link ByteWriter} what `JSON.stringify` gives, between its quotes, for the text
 * that a `TextDecoder('utf-8', { ignoreBOM: true })` decoding the chunks with `{ stream: true }`
 * answers for each chunk: byte for byte the same, a byte order mark kept as U+FEFF, each invalid
 * sequence as U+FFFD, and a character split between chunks written with the chunk that ends it.
 *
 * @example
 * ```ts
 * const text = new JsonTextChunks()
 * text.write(writer, chunk) // may hold back the start of a character the chunk ends in
 * if (text.end(writer)) … // a character began and never finished: its U+FFFD was written
 * ```
 */
export class JsonTextChunks {
  // The start of a character that the last chunk ended in: bytes [0, #heldLength)
  readonly #held = new Uint8Array(MAX_CHARACTER_BYTES)
  #heldLength = 0

  write(writer: ByteWriter, chunk: Uint8Array): void {
    let start = 0
    if (this.#heldLength > 0) start = this.#finishHeld(writer, chunk)
    const end = chunk.length - unfinishedTail(chunk, start)
    writer.writeJsonText(chunk, start, end)
    for (let i = end; i < chunk.length; i++) this.#held[this.#heldLength++] = chunk[i] ?? 0
  }

  /** Whether it holds the start of a character that the bytes so far did not finish. */
  get holding(): boolean {
    return this.#heldLength > 0
  }

  /** The bytes ended: writes the U+FFFD of a character they began and never finished, if any. */
  end(writer: ByteWriter): boolean {
    if (this.#heldLength === 0) return false
    this.#heldLength = 0
    writer.write(REPLACEMENT)
    return true
  }

  /**
   * Ends the held character with the chunk's first bytes (or holds on, when the chunk is shorter
   * than what it lacks); answers where the rest of the chunk starts.
   */
  #finishHeld(writer: ByteWriter, chunk: Uint8Array): number {
    const held = this.#held
    const before = this.#heldLength
    const taken = Math.min(chunk.length, MAX_CHARACTER_BYTES - before)
    for (let i = 0; i < taken; i++) held[before + i] = chunk[i] ?? 0
    const length = utf8SequenceLength(held, 0, before + taken)
    if (length > 0) {
      // Whole and valid: a character above U+007F, which JSON leaves as it is
      writer.write(held.subarray(0, length))
      this.#heldLength = 0
      return length - before
    }
    if (-length === before + taken && taken < MAX_CHARACTER_BYTES - before) {
      // Still unfinished and still valid: the whole chunk waits with it
      this.#heldLength = before + taken
      return chunk.length
    }
    // Broken at byte -length: one U+FFFD for what came before, the rest read again from there.
    // The held bytes were a valid start, so the break is in the chunk
    writer.write(REPLACEMENT)
    this.#heldLength = 0
    return -length - before
  }
}

/**
 * How many bytes at the end of `bytes` (from `start` on) are the valid start of a character that
 * they do not finish: what a streaming decoder holds back. A lead byte (0xC2 and up) always starts
 * a character, so looking back from the end for one is enough.
 */
function unfinishedTail(bytes: Uint8Array, start: number): number {
  const end = bytes.length
  for (let back = 1; back < MAX_CHARACTER_BYTES && end - back >= start; back++) {
    const byte = bytes[end - back] ?? 0
    if (byte < 0x80) return 0
    // Not a continuation byte: a lead, or a byte that starts nothing (0xC0, 0xC1, 0xF5 and up)
    if (byte >= 0xc0) {
      const isLead = byte >= 0xc2 && byte <= 0xf4
      return isLead && utf8SequenceLength(bytes, end - back, end) === -back ? back : 0
    }
  }
  return 0
}
