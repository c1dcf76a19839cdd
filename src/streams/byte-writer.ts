/**
 * @module Building event-stream text directly as UTF-8 bytes.
 *
 * The log-stream path writes every line it sends as JSON inside an SSE message. Going through
 * strings (decode the line, `JSON.stringify`, encode again) costs more than everything else on
 * that path together, and the line is nearly always plain printable ASCII that JSON would leave
 * as it is. So the writer escapes the line's bytes for JSON itself: plain runs are copied as
 * they are, found a machine word at a time, and only the rare other bytes are looked at one by
 * one. The result is byte for byte the UTF-8 of `JSON.stringify` of the decoded line.
 */

// Batches are cut from slabs, one after the other, so that taking one neither copies it nor
// allocates; a batch larger than what is left moves to a new slab. A slab is sized to hold
// BATCHES_PER_SLAB of the largest batch the slab before it held, within these bounds: a busy
// log gets 128 KiB slabs, and a followed log that stays quiet (most of them, held open by the
// thousand) keeps 4 KiB ones instead of a 128 KiB slab each. Not larger: slabs of 256 KiB made
// the pipeline on 16 KB frames 0.46× a copy against 0.51–0.73× with 128 KiB (CPU time, best of
// 5, 64 MB, alternating), as allocations past 128 KiB are fresh pages from the system each time
// (glibc's mmap threshold) where smaller ones reuse the heap.
const MIN_SLAB_BYTES = 4 * 1024
const MAX_SLAB_BYTES = 128 * 1024
const BATCHES_PER_SLAB = 16
const EMPTY = new Uint8Array(0)

// Bytes that JSON.stringify writes with a two-character escape
const SHORT_ESCAPES = new Map<number, number>([
  [0x08, 0x62], // \b
  [0x09, 0x74], // \t
  [0x0a, 0x6e], // \n
  [0x0c, 0x66], // \f
  [0x0d, 0x72], // \r
  [0x22, 0x22], // \"
  [0x5c, 0x5c], // \\
])
const BACKSLASH = 0x5c
const HEX_DIGITS = Uint8Array.from('0123456789abcdef', (char) => char.charCodeAt(0))
// U+FFFD in UTF-8: what the decoder shows for each invalid sequence
const REPLACEMENT = Uint8Array.of(0xef, 0xbf, 0xbd)
// Runs shorter than this are copied byte by byte: a typed-array view per run costs more
const SHORT_RUN = 16

/**
 * A growing byte buffer that collects messages until they are {@link take}n as one chunk.
 */
export class ByteWriter {
  // No slab until the first write: a stream that never sends holds none
  #buffer = EMPTY
  // The current batch is buffer[#start, #length)
  #start = 0
  #length = 0
  // The largest batch taken from the current slab, to size the next one
  #largestBatch = 0
  // A word view of the last input buffer scanned: the lines of one chunk share its buffer
  #wordsOf: ArrayBufferLike | undefined
  #words: Int32Array<ArrayBufferLike> = new Int32Array(0)

  /** Bytes written since the last {@link take}. */
  get length(): number {
    return this.#length - this.#start
  }

  /** Appends bytes as they are. */
  write(bytes: Uint8Array): void {
    this.#reserve(bytes.length)
    this.#buffer.set(bytes, this.#length)
    this.#length += bytes.length
  }

  /**
   * Appends a string of printable ASCII (U+0020 to U+007E) as its bytes. Throws a `RangeError`
   * on any other character: callers write names and ids that must not break a message's lines.
   */
  writeAscii(text: string): void {
    this.#reserve(text.length)
    const buffer = this.#buffer
    let at = this.#length
    for (let i = 0; i < text.length; i++) {
      const code = text.charCodeAt(i)
      if (code < 0x20 || code > 0x7e) {
        throw new RangeError(
          `Cannot write ASCII text: character ${i} is U+${code.toString(16).padStart(4, '0')}`,
        )
      }
      buffer[at++] = code
    }
    this.#length = at
  }

  /**
   * Appends what `JSON.stringify(text)` would write between its quotes, as UTF-8, where `text`
   * is `bytes[start, end)` decoded as UTF-8 the way `TextDecoder` does with `fatal: false` (each
   * invalid sequence becomes U+FFFD). Valid UTF-8 is copied: JSON escapes only `"`, `\` and C0
   * controls, and decoded bytes never hold the lone surrogates it would escape too. The range
   * spares the callers a view per line (a `subarray` costs about as much as escaping a short
   * line: bench phase `pipeline`, 100-byte lines).
   */
  writeJsonText(bytes: Uint8Array, start = 0, end = bytes.length): void {
    this.#reserve(end - start)
    let at = start
    while (at < end) {
      const plainEnd = this.#plainRunEnd(bytes, at, end)
      if (plainEnd > at) this.#copyRun(bytes, at, plainEnd)
      if (plainEnd === end) return
      at = this.#writeSpecial(bytes, plainEnd, end)
    }
  }

  /**
   * The bytes written since the last take, as a chunk of their own that later writes never
   * touch (a view of the writer's slab: nothing is copied); the writer starts a new batch.
   */
  take(): Uint8Array {
    const taken = this.#buffer.subarray(this.#start, this.#length)
    this.#start = this.#length
    if (taken.length > this.#largestBatch) this.#largestBatch = taken.length
    // Less room left than a sixteenth of the slab, or than the batch just taken, is not worth
    // starting the next batch in: the next write makes a new slab, with nothing to move into it
    // (a batch that outgrew its slab was copied into the next one: 12% of the time on 16 KB
    // frames, bench phase `pipeline`, where batches are 64 KiB and slabs 256 KiB)
    const room = this.#buffer.length - this.#start
    if (room < this.#buffer.length / BATCHES_PER_SLAB || room < taken.length) {
      this.#buffer = EMPTY
      this.#start = 0
      this.#length = 0
    }
    return taken
  }

  #reserve(more: number): void {
    if (this.#length + more > this.#buffer.length) this.#newSlab(more)
  }

  /** Moves the current batch to a new slab with room for `more` bytes after it. */
  #newSlab(more: number): void {
    const batch = this.#buffer.subarray(this.#start, this.#length)
    const needed = batch.length + more
    const slab = new Uint8Array(slabSize(Math.max(needed, this.#largestBatch), batch.length))
    this.#largestBatch = 0
    slab.set(batch)
    this.#buffer = slab
    this.#start = 0
    this.#length = batch.length
  }

  #copyRun(bytes: Uint8Array, start: number, end: number): void {
    this.#reserve(end - start)
    if (end - start >= SHORT_RUN) {
      this.#buffer.set(bytes.subarray(start, end), this.#length)
      this.#length += end - start
      return
    }
    const buffer = this.#buffer
    let at = this.#length
    for (let i = start; i < end; i++) buffer[at++] = bytes[i] ?? 0
    this.#length = at
  }

  /**
   * Where the run of plain bytes (see {@link isPlain}) that starts at `start` ends, at most at
   * `end`. Looks at four bytes at once where they are aligned; a word that may hold another byte
   * is then looked at byte by byte.
   */
  #plainRunEnd(bytes: Uint8Array, start: number, end: number): number {
    let at = start
    const base = bytes.byteOffset
    while (at < end && ((base + at) & 3) !== 0) {
      if (!isPlain(bytes[at] ?? 0)) return at
      at++
    }
    if (end - at >= 8) {
      const words = this.#wordsOver(bytes.buffer)
      const first = (base + at) >> 2
      const last = (base + end) >> 2
      let word = first
      // Four words a step: one branch per sixteen bytes (against two words a step: 3.7 against
      // about 4.5 µs per 16 KiB, best of 200 here)
      while (
        word + 3 < last &&
        ((specialFlags(words[word] ?? 0) |
          specialFlags(words[word + 1] ?? 0) |
          specialFlags(words[word + 2] ?? 0) |
          specialFlags(words[word + 3] ?? 0)) &
          HIGH_BITS) ===
          0
      ) {
        word += 4
      }
      while (word < last && (specialFlags(words[word] ?? 0) & HIGH_BITS) === 0) word++
      at += (word - first) * 4
    }
    while (at < end && isPlain(bytes[at] ?? 0)) at++
    return at
  }

  #wordsOver(buffer: ArrayBufferLike): Int32Array<ArrayBufferLike> {
    if (this.#wordsOf !== buffer) {
      this.#words = new Int32Array(buffer, 0, buffer.byteLength >> 2)
      this.#wordsOf = buffer
    }
    return this.#words
  }

  /** Writes the byte at `at` (not plain) or the UTF-8 sequence it starts; answers where to go on. */
  #writeSpecial(bytes: Uint8Array, at: number, end: number): number {
    const byte = bytes[at] ?? 0
    if (byte < 0x80) {
      this.#writeAsciiEscaped(byte)
      return at + 1
    }
    const length = utf8SequenceLength(bytes, at, end)
    if (length > 0) {
      this.#copyRun(bytes, at, at + length)
      return at + length
    }
    this.write(REPLACEMENT)
    return at - length
  }

  /** `"`, `\` or a C0 control. */
  #writeAsciiEscaped(byte: number): void {
    this.#reserve(6)
    const buffer = this.#buffer
    let at = this.#length
    const short = SHORT_ESCAPES.get(byte)
    if (short !== undefined) {
      buffer[at++] = BACKSLASH
      buffer[at++] = short
    } else {
      // JSON.stringify writes other controls as \u00xx with lowercase hex digits
      buffer[at++] = BACKSLASH
      buffer[at++] = 0x75 // u
      buffer[at++] = 0x30
      buffer[at++] = 0x30
      buffer[at++] = HEX_DIGITS[byte >> 4] ?? 0
      buffer[at++] = HEX_DIGITS[byte & 0xf] ?? 0
    }
    this.#length = at
  }
}

/** ASCII that JSON.stringify leaves as it is: all but C0 controls, `"` and `\` (DEL too). */
function isPlain(byte: number): boolean {
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

/**
 * A slab for batches of up to `batchBytes`: BATCHES_PER_SLAB of them, to the next power of two
 * within the bounds. A batch past half the largest slab gets a slab of its own, doubled while
 * the batch in it grows.
 */
function slabSize(batchBytes: number, pendingBytes: number): number {
  if (batchBytes > MAX_SLAB_BYTES / 2) return Math.max(batchBytes, pendingBytes * 2)
  let size = MIN_SLAB_BYTES
  while (size < batchBytes * BATCHES_PER_SLAB && size < MAX_SLAB_BYTES) size *= 2
  return size
}
