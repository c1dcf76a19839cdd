/**
 * @module Building event-stream text directly as UTF-8 bytes.
 *
 * The log-stream path writes every line it sends as JSON inside an SSE message, and the exec
 * stream every frame of output. Going through strings (decode the bytes, `JSON.stringify`,
 * encode again) costs more than everything else on those paths together, and the text is nearly
 * always plain printable ASCII that JSON would leave as it is. So the writer escapes the bytes
 * for JSON itself (json-text-escape.ts). The result is byte for byte the UTF-8 of
 * `JSON.stringify` of the decoded text.
 */
import { type JsonEscapeWasm, jsonEscapeWasm } from './json-escape-wasm.ts'
import { isPlain, JsonTextEscaper } from './json-text-escape.ts'

export { utf8SequenceLength } from './json-text-escape.ts'

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
// Shorter texts are copied byte by byte when plain: setting up the scan and the copy of
// json-text-escape.ts costs more (a log of 10-byte lines: 139 µs per 32 KiB this way, 184 in the
// single pass before; best of 40 × 200, alternating, in one process)
const SHORT_TEXT = 16
// Texts at least this long are escaped by the WebAssembly module (json-escape-wasm.ts), where
// it runs. Shorter ones are left to JavaScript: the module was as fast or faster on lines of
// 32–384 bytes in micro-benchmarks, but those moved 2× between runs under load, and the
// short-line phases pass as they are (bench/README.md, "Exec")
const WASM_TEXT_BYTES = 512

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
  // Made by the first JSON text: most writers of event streams never write any
  #escaper: JsonTextEscaper | undefined
  // The last batch taken and its slab (which it starts in at its byteOffset: every slab is a
  // whole buffer): what `reuse` gives back
  #lastTaken: Uint8Array | undefined
  #lastSlab = EMPTY

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
    if (end - start < SHORT_TEXT && this.#writePlain(bytes, start, end)) return
    if (end - start >= WASM_TEXT_BYTES) {
      const wasm = jsonEscapeWasm()
      if (wasm !== undefined) {
        this.#writeWasm(wasm, bytes, start, end)
        return
      }
    }
    this.#escaper ??= new JsonTextEscaper()
    const escaper = this.#escaper
    const added = escaper.measure(bytes, start, end)
    this.#reserve(end - start + added)
    this.#length = escaper.write(this.#buffer, this.#length, bytes, start, end, added)
  }

  /**
   * The bytes written since the last take, as a chunk of their own that later writes never
   * touch (a view of the writer's slab: nothing is copied); the writer starts a new batch.
   */
  take(): Uint8Array {
    const taken = this.#buffer.subarray(this.#start, this.#length)
    this.#lastTaken = taken
    this.#lastSlab = this.#buffer
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

  /**
   * The batch last {@link take}n has been used up (written out, and nothing keeps it): the next
   * batch starts where it started, in the same slab, instead of after it or in a new slab. Does
   * nothing for another batch or once more was written. An exec streaming its output takes,
   * writes and gives back one slab over and over: no allocation per batch.
   */
  reuse(batch: Uint8Array): void {
    if (batch !== this.#lastTaken || this.#length !== this.#start) return
    this.#lastTaken = undefined
    this.#buffer = this.#lastSlab
    this.#start = batch.byteOffset
    this.#length = batch.byteOffset
  }

  /** Escapes the text in the module's memory, a window at a time, and copies each result in. */
  #writeWasm(wasm: JsonEscapeWasm, bytes: Uint8Array, start: number, end: number): void {
    for (let from = start; from < end; ) {
      const to = wasm.windowEnd(bytes, from, end)
      const length = wasm.escape(bytes, from, to)
      this.#reserve(length)
      this.#buffer.set(wasm.escaped(length), this.#length)
      this.#length += length
      from = to
    }
  }

  /** Copies a short text that JSON leaves as it is; false, with nothing written, for any other. */
  #writePlain(bytes: Uint8Array, start: number, end: number): boolean {
    for (let i = start; i < end; i++) if (!isPlain(bytes[i] ?? 0)) return false
    this.#reserve(end - start)
    const buffer = this.#buffer
    let at = this.#length
    for (let i = start; i < end; i++) buffer[at++] = bytes[i] ?? 0
    this.#length = at
    return true
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
    // Written since the last take: nothing can be given back, and the old slab is let go
    this.#lastTaken = undefined
    this.#lastSlab = EMPTY
  }
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
