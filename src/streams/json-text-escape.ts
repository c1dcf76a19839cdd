/**
 * @module UTF-8 bytes escaped for a JSON string as they are, in two passes: find the bytes that
 * change (a word at a time), then copy the input once and move its pieces into place.
 *
 * The exec stream's output (`{"text":…}` per frame) and every log line go through here. Copying
 * each plain run out of the input on its own took a typed-array view and a `set` per run: about
 * 100 ns, one run per line, most of the cost on a frame of short lines. Here the input is copied
 * whole (one native copy) to where its end stays, and each run moves down inside the output with
 * `copyWithin` (no view). A 32 KiB frame of 100-byte lines: 27 against 42–43 µs; of 30-byte
 * lines 62 against 118 µs; of 1,000-byte lines 14.7 against 15.6 µs (best of 40 × 200,
 * alternating with the single pass before it, in one process; bench phase `exec`, bench/README.md
 * "Exec"). A log's lines, one call each, cost about what they did (100-byte lines: 41–43 against
 * 39–40 µs per 32 KiB).
 *
 * Where WebAssembly SIMD runs, texts of 512 bytes and more go to json-escape-wasm.ts instead
 * (byte-writer.ts): this is the escaping of shorter texts, and of all of them where it does not.
 */

// Bytes that JSON.stringify writes with a two-character escape (by byte; 0: none)
const SHORT_ESCAPES = new Uint8Array(0x80)
for (const [byte, letter] of [
  [0x08, 'b'],
  [0x09, 't'],
  [0x0a, 'n'],
  [0x0c, 'f'],
  [0x0d, 'r'],
  [0x22, '"'],
  [0x5c, '\\'],
] as const) {
  SHORT_ESCAPES[byte] = letter.charCodeAt(0)
}
const BACKSLASH = 0x5c
const HEX_DIGITS = Uint8Array.from('0123456789abcdef', (char) => char.charCodeAt(0))
// Runs shorter than this move byte by byte: a `copyWithin` call costs more (35 ns for 99 bytes)
const SHORT_RUN = 16
// Marks kept between calls; an input with more changes gets a larger array for that call only
const KEPT_MARKS = 1024

/**
 * Writes what `JSON.stringify` writes between its quotes, as UTF-8, for the text that
 * `TextDecoder` (`fatal: false`) decodes from the bytes: valid UTF-8 is copied (JSON escapes only
 * `"`, `\` and C0 controls, and decoded bytes never hold the lone surrogates it would escape
 * too), and each invalid sequence becomes U+FFFD. Call {@link measure}, make room, then
 * {@link write} with the same range.
 */
export class JsonTextEscaper {
  // Where `measure` found a byte to escape or an invalid sequence: #marks[0, #count)
  #marks = new Int32Array(64)
  #count = 0
  // A word view of the last input buffer scanned: the lines of one chunk share its buffer
  #wordsOf: ArrayBufferLike | undefined
  #words: Int32Array<ArrayBufferLike> = new Int32Array(0)

  /** Finds what changes in `bytes[start, end)`; answers how many bytes longer its escaped text is. */
  measure(bytes: Uint8Array, start: number, end: number): number {
    const words = this.#wordsOver(bytes.buffer)
    const base = bytes.byteOffset
    // The words wholly inside the range end before this one
    const lastWord = (base + end) >> 2
    let marks = this.#marks
    let count = 0
    let added = 0
    let at = start
    // A byte at a time between aligned runs of plain words (a word with a byte to look at ends
    // a run)
    while (at < end) {
      if (((base + at) & 3) === 0) {
        // Four words a step: one branch per sixteen bytes
        let word = (base + at) >> 2
        while (
          word + 3 < lastWord &&
          ((specialFlags(words[word] ?? 0) |
            specialFlags(words[word + 1] ?? 0) |
            specialFlags(words[word + 2] ?? 0) |
            specialFlags(words[word + 3] ?? 0)) &
            HIGH_BITS) ===
            0
        ) {
          word += 4
        }
        let flags = 0
        while (word < lastWord) {
          flags = specialFlags(words[word] ?? 0) & HIGH_BITS
          if (flags !== 0) break
          word++
        }
        at = word * 4 - base
        if (at >= end) break
        // Straight to the word's lowest flagged byte, which is never plain (a borrow only runs
        // upward). Stepping to it a byte at a time, the word's flags worked out again for each,
        // cost 0.48 against 0.38 ms per MB of 100-byte lines for this pass, 0.97 against 0.79 of
        // 30-byte lines (best of 8, alternating, in one process)
        if (flags !== 0) at += (31 - Math.clz32(flags & -flags)) >> 3
      }
      const byte = bytes[at] ?? 0
      if (isPlain(byte)) {
        at++
        continue
      }
      let length = 1
      if (byte < 0x80) {
        added += SHORT_ESCAPES[byte] === 0 ? 5 : 1
      } else {
        length = utf8SequenceLength(bytes, at, end)
        if (length > 0) {
          at += length
          continue
        }
        // Broken: one U+FFFD (3 bytes) for the bytes up to where it broke
        length = -length
        added += 3 - length
      }
      if (count === marks.length) marks = this.#growMarks()
      marks[count++] = at
      at += length
    }
    this.#count = count
    return added
  }

  /**
   * Writes the escaped text of `bytes[start, end)`, just measured to be `added` bytes longer, into
   * `buffer` at `at` (which has room for it); answers where it ends.
   */
  write(
    buffer: Uint8Array,
    at: number,
    bytes: Uint8Array,
    start: number,
    end: number,
    added: number,
  ): number {
    // The input goes where its last byte stays, each run then moves down to its place: the bytes
    // written before a run never reach the input not yet moved, as no change makes text shorter
    const staged = at + added - start
    if (end - start < SHORT_RUN) {
      for (let i = start; i < end; i++) buffer[staged + i] = bytes[i] ?? 0
    } else {
      buffer.set(
        start === 0 && end === bytes.length ? bytes : bytes.subarray(start, end),
        staged + start,
      )
    }
    const count = this.#count
    // Nothing to change (most lines of a log): the copy is all
    if (count === 0) return at + end - start
    this.#count = 0
    let out = at
    let from = start
    const marks = this.#marks
    for (let m = 0; m < count; m++) {
      const special = marks[m] ?? 0
      out = moveDown(buffer, out, staged + from, staged + special)
      const byte = bytes[special] ?? 0
      if (byte < 0x80) {
        out = writeEscaped(buffer, out, byte)
        from = special + 1
      } else {
        buffer[out++] = 0xef
        buffer[out++] = 0xbf
        buffer[out++] = 0xbd
        from = special - utf8SequenceLength(bytes, special, end)
      }
    }
    if (marks.length > KEPT_MARKS) this.#marks = new Int32Array(KEPT_MARKS)
    return moveDown(buffer, out, staged + from, staged + end)
  }

  #growMarks(): Int32Array<ArrayBuffer> {
    const marks = new Int32Array(this.#marks.length * 2)
    marks.set(this.#marks)
    this.#marks = marks
    return marks
  }

  #wordsOver(buffer: ArrayBufferLike): Int32Array<ArrayBufferLike> {
    if (this.#wordsOf !== buffer) {
      this.#words = new Int32Array(buffer, 0, buffer.byteLength >> 2)
      this.#wordsOf = buffer
    }
    return this.#words
  }
}

/** Moves `buffer[from, end)` down to `to` (never above `from`); answers where it ends there. */
function moveDown(buffer: Uint8Array, to: number, from: number, end: number): number {
  const length = end - from
  if (to === from || length === 0) return to + length
  if (length < SHORT_RUN) {
    for (let i = 0; i < length; i++) buffer[to + i] = buffer[from + i] ?? 0
  } else {
    buffer.copyWithin(to, from, end)
  }
  return to + length
}

/** `"`, `\` or a C0 control, as JSON.stringify writes it; answers where it ends. */
function writeEscaped(buffer: Uint8Array, at: number, byte: number): number {
  const short = SHORT_ESCAPES[byte] ?? 0
  buffer[at] = BACKSLASH
  if (short !== 0) {
    buffer[at + 1] = short
    return at + 2
  }
  // JSON.stringify writes other controls as \u00xx with lowercase hex digits
  buffer[at + 1] = 0x75 // u
  buffer[at + 2] = 0x30
  buffer[at + 3] = 0x30
  buffer[at + 4] = HEX_DIGITS[byte >> 4] ?? 0
  buffer[at + 5] = HEX_DIGITS[byte & 0xf] ?? 0
  return at + 6
}

/** ASCII that JSON.stringify leaves as it is: all but C0 controls, `"` and `\` (DEL too). */
export function isPlain(byte: number): boolean {
  return byte >= 0x20 && byte < 0x80 && byte !== 0x22 && byte !== BACKSLASH
}

const HIGH_BITS = 0x80808080

/**
 * For a word of four bytes, a value whose {@link HIGH_BITS} are set exactly when one of the bytes
 * is not plain (see {@link isPlain}): the byte's own high bit for bytes >= 0x80; a borrow into
 * it for one below 0x20, `"` or `\` (subtracting from the byte, or from the byte XOR the
 * character, goes below zero only for those). A borrow starts only at such a byte, so the
 * lowest one is always flagged, and a plain word never is. The subtractions wrap to 32 bits
 * (`| 0`), which keeps the loop on integer arithmetic; a byte >= 0x80 borrows nothing, and is
 * flagged by its own bit whatever the others show. (Masking each byte to seven bits first, as
 * before, took one more operation a word: 3.7 against 3.4 µs per 16 KiB, best of 300 here.)
 */
function specialFlags(word: number): number {
  return (
    word |
    ((word - 0x20202020) | 0) |
    (((word ^ 0x22222222) - 0x01010101) | 0) |
    (((word ^ 0x5c5c5c5c) - 0x01010101) | 0)
  )
}

/**
 * The length of the valid UTF-8 sequence that starts at `at` (a byte >= 0x80) and ends before
 * `end`, or, negated, the number of bytes the decoder turns into one U+FFFD there: the lead byte
 * and the continuation bytes that were still possible (WHATWG Encoding, "UTF-8 decoder"; the byte
 * that broke the sequence is read again as the start of the next one). A sequence cut short by
 * `end` counts as broken there.
 */
export function utf8SequenceLength(bytes: Uint8Array, at: number, end = bytes.length): number {
  const lead = bytes[at] ?? 0
  let needed: number
  let lower = 0x80
  let upper = 0xbf
  if (lead >= 0xc2 && lead <= 0xdf) {
    needed = 1
  } else if (lead >= 0xe0 && lead <= 0xef) {
    needed = 2
    // No overlong forms, no surrogates
    if (lead === 0xe0) lower = 0xa0
    if (lead === 0xed) upper = 0x9f
  } else if (lead >= 0xf0 && lead <= 0xf4) {
    needed = 3
    // No overlong forms, nothing above U+10FFFF
    if (lead === 0xf0) lower = 0x90
    if (lead === 0xf4) upper = 0x8f
  } else {
    return -1
  }
  for (let seen = 1; seen <= needed; seen++) {
    if (at + seen >= end) return -seen
    const byte = bytes[at + seen] ?? 0
    if (byte < lower || byte > upper) return -seen
    lower = 0x80
    upper = 0xbf
  }
  return needed + 1
}
