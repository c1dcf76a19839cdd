/**
 * @module Decoding newline-delimited JSON (the `/events` and `/containers/{id}/stats` bodies).
 *
 * One JSON document per line, each ending in `\n`; HTTP chunks do not follow lines. Some numbers
 * do not survive `JSON.parse`: `timeNano` and `hierarchical_memory_limit` exceed
 * `Number.MAX_SAFE_INTEGER`, so each record keeps its source text for {@link extractIntegerField}.
 * See docs/engine-notes.md (event-stream, stats, large-integers).
 */

import { validMaxLineBytes } from './max-line-bytes.ts'

/** One line of the stream, decoded. */
export interface NdjsonRecord {
  /** The line as `JSON.parse` returns it (so integers above 2^53 are rounded). */
  value: unknown
  /** The exact source text of the line, without its `\n` or `\r\n`. */
  raw: string
}

export interface NdjsonStreamOptions {
  /**
   * The most bytes a line may hold (default 1 MiB), so that a peer cannot make the gateway
   * buffer an endless line. The line terminator does not count. A longer line errors the
   * stream as soon as it is seen, without waiting for its end.
   */
  maxLineBytes?: number
}

const LINE_FEED = 0x0a
const CARRIAGE_RETURN = 0x0d
// How much of a bad line an error message shows: enough to recognise it, not a whole payload
const PREVIEW_CHARS = 100

type Emit = (record: NdjsonRecord) => void

/** Whole lines after the stream's start: a byte order mark there is text, as the streaming decoder keeps it. */
const WHOLE_LINES = new TextDecoder('utf-8', { fatal: false, ignoreBOM: true })

/**
 * Splits a byte stream into lines and parses each as JSON, giving {@link NdjsonRecord}s.
 *
 * Empty lines are skipped, a `\r` before the `\n` is dropped, and a last line without `\n` is
 * parsed at the end. A UTF-8 BOM at the very start is skipped, and invalid UTF-8 shows as
 * U+FFFD (the engine's encoder never writes any).
 *
 * Errors with a `SyntaxError` on a line that is not JSON, and with a `RangeError` on a line
 * longer than `maxLineBytes`.
 *
 * @example
 * ```ts
 * for await (const { value, raw } of response.body.pipeThrough(new NdjsonStream())) {
 *   const timeNano = extractIntegerField(raw, 'timeNano')
 * }
 * ```
 */
export class NdjsonStream extends TransformStream<Uint8Array, NdjsonRecord> {
  constructor(options: NdjsonStreamOptions = {}) {
    const splitter = new LineSplitter(validMaxLineBytes(options.maxLineBytes, 'NdjsonStream'))
    let emit!: Emit
    super({
      start: (controller) => {
        emit = (record) => controller.enqueue(record)
      },
      transform: (chunk) => splitter.push(chunk, emit),
      flush: () => splitter.finish(emit),
    })
  }
}

/**
 * {@link NdjsonStream}'s decoding without a stream: each chunk's records are handed to `emit`
 * synchronously, in order, before `push` returns. For a reader that acts on every record of a
 * chunk before it reads the next (the event hub's upstream: bench phase `latency`, where the
 * stream's hop per record cost about 50 µs of an event's delivery). Throws as the stream errors,
 * after handing over the records before the bad line.
 */
export class NdjsonDecoder {
  readonly #splitter: LineSplitter

  constructor(options: NdjsonStreamOptions = {}) {
    this.#splitter = new LineSplitter(validMaxLineBytes(options.maxLineBytes, 'NdjsonDecoder'))
  }

  /** Decodes the lines this chunk completes. */
  push(chunk: Uint8Array, emit: (record: NdjsonRecord) => void): void {
    this.#splitter.push(chunk, emit)
  }

  /** The end of the bytes: a last line without `\n` is decoded. */
  finish(emit: (record: NdjsonRecord) => void): void {
    this.#splitter.finish(emit)
  }
}

/**
 * The line being read, between chunks. Lines are found in the bytes, so that their length is
 * known exactly; text is decoded as it arrives, so that only the text of one pending line is
 * held, never the chunks it came in.
 */
class LineSplitter {
  readonly #maxLineBytes: number
  // Streaming: a character split across chunks is completed by the next chunk
  readonly #decoder = new TextDecoder('utf-8', { fatal: false })
  #pendingText: string[] = []
  #pendingBytes = 0
  #pendingEndsWithCr = false
  #lineNumber = 1
  /** The streaming decoder has begun (and with it skipped a byte order mark, if any). */
  #decoded = false

  constructor(maxLineBytes: number) {
    this.#maxLineBytes = maxLineBytes
  }

  push(chunk: Uint8Array, emit: Emit): void {
    let start = 0
    for (
      let newline = chunk.indexOf(LINE_FEED);
      newline !== -1;
      newline = chunk.indexOf(LINE_FEED, start)
    ) {
      const endsWithCr =
        newline > start ? chunk[newline - 1] === CARRIAGE_RETURN : this.#pendingEndsWithCr
      this.#checkLength(this.#pendingBytes + newline - start - (endsWithCr ? 1 : 0))
      this.#pendingText.push(this.#lineText(chunk, start, newline))
      this.#endLine(emit)
      start = newline + 1
    }
    if (start === chunk.length) return
    this.#pendingBytes += chunk.length - start
    this.#pendingEndsWithCr = chunk[chunk.length - 1] === CARRIAGE_RETURN
    // The `\r` may be the start of a `\r\n`, which does not count
    this.#checkLength(this.#pendingBytes - (this.#pendingEndsWithCr ? 1 : 0))
    this.#decoded = true
    this.#pendingText.push(this.#decoder.decode(chunk.subarray(start), { stream: true }))
  }

  /**
   * The text of a line that ends at `newline` in this chunk. A line whole in this chunk, after
   * the stream's start (where a byte order mark is skipped), is decoded without the streaming
   * decoder: carrying nothing, it would give the same text, and Node's `TextDecoder` takes its
   * fast path only without `stream` (4 against 16 µs a 500-byte event line on a fresh process,
   * one line every 5 ms).
   */
  #lineText(chunk: Uint8Array, start: number, newline: number): string {
    if (this.#pendingBytes === 0 && this.#decoded) {
      return WHOLE_LINES.decode(chunk.subarray(start, newline))
    }
    this.#decoded = true
    // Decoding through the `\n` ends any unfinished character (as U+FFFD) in this line
    const text = this.#decoder.decode(chunk.subarray(start, newline + 1), { stream: true })
    return text.slice(0, -1)
  }

  finish(emit: Emit): void {
    this.#pendingText.push(this.#decoder.decode())
    this.#endLine(emit)
  }

  #checkLength(lineBytes: number): void {
    if (lineBytes > this.#maxLineBytes) {
      throw new RangeError(`Cannot decode NDJSON: a line exceeds ${this.#maxLineBytes} bytes`)
    }
  }

  #endLine(emit: Emit): void {
    const joined = this.#pendingText.join('')
    this.#pendingText = []
    this.#pendingBytes = 0
    this.#pendingEndsWithCr = false
    const raw = joined.endsWith('\r') ? joined.slice(0, -1) : joined
    if (raw !== '') emit({ value: parseLine(raw, this.#lineNumber), raw })
    this.#lineNumber++
  }
}

function parseLine(raw: string, lineNumber: number): unknown {
  try {
    return JSON.parse(raw)
  } catch (error) {
    // Not JSON.parse's message: V8 quotes the source around the error, which may be anything
    throw new SyntaxError(
      `Cannot decode NDJSON line: line ${lineNumber} is not JSON: ${preview(raw)}`,
      { cause: error },
    )
  }
}

function preview(text: string): string {
  if (text.length <= PREVIEW_CHARS) return JSON.stringify(text)
  let end = PREVIEW_CHARS
  // Do not cut a surrogate pair in half
  const last = text.charCodeAt(end - 1)
  if (last >= 0xd800 && last <= 0xdbff) end--
  return `${JSON.stringify(text.slice(0, end))}…`
}

// After a key: the colon, then an integer that is not the start of a fraction or exponent
const INTEGER_VALUE = /\s*:\s*(-?\d+)(?![.eE\d])/y
const QUOTE = 0x22
const BACKSLASH = 0x5c

/**
 * Returns the exact digits of an integer field of the top-level object in a JSON text, such as
 * `timeNano` in an event line, which `JSON.parse` would round (docs/engine-notes.md#large-integers).
 * Returns `undefined` when the field is missing or is not an integer.
 *
 * Only keys of the outermost object count: strings are skipped whole, so a label value or a
 * nested object that holds `"timeNano":1` is not mistaken for the field. The key must be
 * written as `JSON.stringify(field)` writes it (no needless escapes), as the engine does.
 *
 * @example
 * ```ts
 * extractIntegerField('{"time":1795923285,"timeNano":1795923285422325136}', 'timeNano')
 * // '1795923285422325136'
 * ```
 */
export function extractIntegerField(raw: string, field: string): string | undefined {
  const key = JSON.stringify(field)
  let depth = 0
  for (let index = 0; index < raw.length; index++) {
    const char = raw[index]
    if (char === '"') {
      const end = stringEnd(raw, index)
      if (end === -1) return undefined
      if (depth === 1 && end - index === key.length && raw.startsWith(key, index)) {
        // A key is followed by a colon; a string value equal to the key text is not
        INTEGER_VALUE.lastIndex = end
        const match = INTEGER_VALUE.exec(raw)
        if (match !== null) return match[1]
      }
      index = end - 1
    } else if (char === '{' || char === '[') {
      depth++
    } else if (char === '}' || char === ']') {
      depth--
    }
  }
  return undefined
}

/** The index after the string that opens at `start`, or -1 if it never closes. */
function stringEnd(text: string, start: number): number {
  for (let index = start + 1; index < text.length; index++) {
    const code = text.charCodeAt(index)
    if (code === BACKSLASH) index++
    else if (code === QUOTE) return index + 1
  }
  return -1
}
