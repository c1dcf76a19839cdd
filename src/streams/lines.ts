/**
 * @module Assembling log lines from timestamped frames.
 *
 * Frames are not lines: the engine splits a long line into 16 KiB partials that share one
 * timestamp, and only the last partial ends in `\n` (docs/engine-notes.md#long-lines).
 */

import { concatBytes, type LogFrame } from './demux.ts'
import { validMaxLineBytes } from './max-line-bytes.ts'
import { PARTIAL_MESSAGE_BYTES, readTimestampPrefix, TIMESTAMP_PREFIX_BYTES } from './timestamp.ts'

/** One log line, decoded. */
export interface LogLine {
  stream: 'stdout' | 'stderr'
  /** The engine's timestamp exactly as sent: UTC, 9 fractional digits, e.g. `2026-11-29T03:40:53.902667431Z`. */
  time: string
  /** The line without its final `\n` or `\r\n`. Invalid UTF-8 shows as U+FFFD. */
  text: string
}

export interface LogLineStreamOptions {
  /**
   * The most bytes a line may hold (default 1 MiB), so that a client cannot make the gateway
   * buffer an endless line. Nothing is dropped: a longer line is emitted in pieces of at most
   * this many bytes (cut before a UTF-8 character, not inside it), all with the line's time.
   * The line terminator does not count. At least 4 (the longest UTF-8 character).
   */
  maxLineBytes?: number
}

/** The engine reported an error in-band, after the 200 (a `system` frame). */
export class LogStreamError extends Error {
  constructor(message: string) {
    super(message)
    this.name = 'LogStreamError'
  }
}

const LINE_FEED = 0x0a
const CARRIAGE_RETURN = 0x0d

/**
 * Turns frames requested with `timestamps=1` (from {@link DemuxStream} or {@link RawLogStream})
 * into {@link LogLine}s.
 *
 * Lines are assembled per stream: a frame ending in `\n` completes a line; a frame without it
 * is a partial, joined with the next frames of the same stream that carry the same timestamp.
 * A different timestamp means the pending partial was a line of its own (a last line without
 * newline). Lines are emitted in the order of their timestamps, as far as the two streams go: a
 * line of one stream waits while the other stream's pending line began earlier and goes on (its
 * last partial was a whole one, of {@link PARTIAL_MESSAGE_BYTES}: the rest is coming). The engine
 * stamps every partial of a line with the first one's time, so a long line's last partial comes
 * after the other stream's later lines; emitted as they complete, a line would come after a later
 * one, and a resume from either's cursor (the engine's `since`, src/engine/log-cursor.ts) would
 * repeat one or lose one. At the end, pending partials are emitted as they are. `stdin` frames
 * count as `stdout`, as stdcopy says.
 *
 * Errors with a {@link LogStreamError} carrying the engine's message on a `system` frame, and
 * with a `SyntaxError` on a frame without timestamp prefix.
 *
 * @example
 * ```ts
 * const lines = body.pipeThrough(tty ? new RawLogStream() : new DemuxStream())
 *   .pipeThrough(new LogLineStream())
 * ```
 */
export class LogLineStream extends TransformStream<LogFrame, LogLine> {
  constructor(options: LogLineStreamOptions = {}) {
    const assembler = new LineAssembler(options.maxLineBytes)
    let emit: LineBytesSink = () => {}
    super({
      // One callback for the stream's life, not a closure per frame
      start: (controller) => {
        emit = (stream, time, bytes, start, end) =>
          controller.enqueue({ stream, time, text: decodeLineText(bytes.subarray(start, end)) })
      },
      transform: (frame) => assembler.push(frame, emit),
      flush: () => assembler.finish(emit),
    })
  }
}

/**
 * Receives each line (or piece of a line over the limit) as the bytes of its text,
 * `bytes[start, end)`: without the timestamp prefix and without its final `\n` or `\r\n`, not
 * yet decoded. A range rather than a view of its own: a `subarray` per line cost as much as a
 * short line's escaping (bench phase `pipeline`, 100-byte lines). The bytes may be an input
 * chunk: use them before the next chunk is pushed.
 */
export type LineBytesSink = (
  stream: LogLine['stream'],
  time: string,
  bytes: Uint8Array,
  start: number,
  end: number,
) => void

interface PendingLine {
  stream: LogLine['stream']
  time: string
  parts: Uint8Array[]
  length: number
  /** Its last partial was a whole one: more of it is coming (a shorter one ended its output). */
  continues: boolean
}

/** A complete line (or piece) waiting for the other stream's earlier pending line: its own bytes. */
interface HeldLine {
  stream: LogLine['stream']
  time: string
  bytes: Uint8Array
}

/**
 * The line assembly of {@link LogLineStream} without a stream around it, emitting undecoded
 * bytes (the SSE log path encodes them as JSON without decoding). Throws what
 * {@link LogLineStream} errors with.
 */
export class LineAssembler {
  readonly #maxLineBytes: number
  // A Map iterates in insertion order, so flush emits partials in the order they started
  readonly #pending = new Map<LogLine['stream'], PendingLine>()
  /** Lines of one stream waiting for the other's earlier pending line, in order. */
  readonly #held: HeldLine[] = []

  constructor(maxLineBytes?: number) {
    this.#maxLineBytes = validMaxLineBytes(maxLineBytes, 'a log line stream')
  }

  push(frame: LogFrame, emit: LineBytesSink): void {
    if (frame.stream === 'system') throw new LogStreamError(decodeLine(frame.payload))
    const stream = frame.stream === 'stdin' ? 'stdout' : frame.stream
    const payload = frame.payload
    const time = readTimestampPrefix(payload)
    if (time === undefined) throw new SyntaxError('Cannot parse log message: missing timestamp')

    let line = this.#pending.get(stream)
    if (line !== undefined && line.time !== time) {
      this.#pending.delete(stream)
      this.#emit(line, emit)
      line = undefined
    }
    // The engine never logs an empty message (even an empty line has its `\n`)
    if (payload.length === TIMESTAMP_PREFIX_BYTES) return
    // Fast path: a whole line in one frame, the common case, needs no pending entry nor a view
    if (line === undefined && payload[payload.length - 1] === LINE_FEED) {
      const end = payload.length - terminatorLength(payload)
      if (end - TIMESTAMP_PREFIX_BYTES > this.#maxLineBytes) {
        this.#emitBytes(stream, time, payload.subarray(TIMESTAMP_PREFIX_BYTES), emit)
      } else if (this.#pending.size === 0 && this.#held.length === 0) {
        emit(stream, time, payload, TIMESTAMP_PREFIX_BYTES, end)
      } else {
        this.#deliver(stream, time, payload, TIMESTAMP_PREFIX_BYTES, end, emit)
      }
      this.#release(emit)
      return
    }
    const content = payload.subarray(TIMESTAMP_PREFIX_BYTES)
    if (line === undefined) {
      line = { stream, time, parts: [], length: 0, continues: false }
      this.#pending.set(stream, line)
    }
    line.parts.push(content)
    line.length += content.length
    line.continues = content.length === PARTIAL_MESSAGE_BYTES

    if (content[content.length - 1] === LINE_FEED) {
      this.#pending.delete(stream)
      this.#emit(line, emit)
    } else if (line.length > this.#maxLineBytes + 1) {
      this.#emitOverflow(line, emit)
    }
    this.#release(emit)
  }

  finish(emit: LineBytesSink): void {
    const pending = [...this.#pending.values()]
    this.#pending.clear()
    for (const line of pending) this.#emit(line, emit)
    this.#release(emit)
  }

  /**
   * Emits `bytes[start, end)`, or holds a copy of it: behind the lines of its stream already
   * held, and while the other stream's pending line began earlier.
   */
  #deliver(
    stream: LogLine['stream'],
    time: string,
    bytes: Uint8Array,
    start: number,
    end: number,
    emit: LineBytesSink,
  ): void {
    if (this.#held[0]?.stream === stream || this.#waits(stream, time)) {
      this.#held.push({ stream, time, bytes: bytes.slice(start, end) })
    } else {
      emit(stream, time, bytes, start, end)
    }
  }

  /**
   * Whether a line of `stream` at `time` must wait: the other stream's pending line began
   * earlier, and goes on.
   */
  #waits(stream: LogLine['stream'], time: string): boolean {
    const other = this.#pending.get(stream === 'stdout' ? 'stderr' : 'stdout')
    // Timestamps of one fixed form (UTC, nine fractional digits) order as strings.
    return other?.continues === true && other.time < time
  }

  /** Emits the held lines that need wait no longer, in order. */
  #release(emit: LineBytesSink): void {
    while (this.#held.length > 0) {
      const line = this.#held[0]!
      if (this.#waits(line.stream, line.time)) return
      this.#held.shift()
      emit(line.stream, line.time, line.bytes, 0, line.bytes.length)
    }
  }

  #emit(line: PendingLine, emit: LineBytesSink): void {
    this.#emitBytes(line.stream, line.time, concatBytes(line.parts, line.length), emit)
  }

  #emitBytes(stream: LogLine['stream'], time: string, bytes: Uint8Array, emit: LineBytesSink) {
    const start = this.#emitPiecesOverLimit(stream, time, bytes, terminatorLength(bytes), emit)
    this.#deliver(stream, time, bytes, start, bytes.length - terminatorLength(bytes), emit)
  }

  // Keeps one byte back: it may be the `\r` of a `\r\n` whose `\n` is in the next partial, and
  // a piece ending there would leave an empty line behind
  #emitOverflow(line: PendingLine, emit: LineBytesSink): void {
    const bytes = concatBytes(line.parts, line.length)
    const start = this.#emitPiecesOverLimit(line.stream, line.time, bytes, 1, emit)
    line.parts = [bytes.subarray(start)]
    line.length = bytes.length - start
  }

  /** Emits pieces of at most maxLineBytes while more than that precede `reserved` bytes at the end. */
  #emitPiecesOverLimit(
    stream: LogLine['stream'],
    time: string,
    bytes: Uint8Array,
    reserved: number,
    emit: LineBytesSink,
  ): number {
    let start = 0
    while (bytes.length - reserved - start > this.#maxLineBytes) {
      const end = characterBoundary(bytes, start + this.#maxLineBytes)
      // Every piece loses its own line terminator, as the decoded lines always did.
      const piece = bytes.subarray(start, end)
      this.#deliver(stream, time, piece, 0, piece.length - terminatorLength(piece), emit)
      start = end
    }
    return start
  }
}

// Not fatal: a log line with a stray byte is still worth showing. ignoreBOM keeps a leading
// U+FEFF, which is part of the line rather than an encoding marker
const decoder = new TextDecoder('utf-8', { fatal: false, ignoreBOM: true })

/** Decodes a whole line at once, so that a character split across partials comes out intact. */
function decodeLine(bytes: Uint8Array): string {
  return decodeLineText(bytes.subarray(0, bytes.length - terminatorLength(bytes)))
}

/** How every line's text is decoded; a bytes-level encoding of a line must match it. */
function decodeLineText(bytes: Uint8Array): string {
  return decoder.decode(bytes)
}

/** Length of the final `\n`, or of `\r\n` (TTY output), or 0. */
function terminatorLength(bytes: Uint8Array): number {
  if (bytes[bytes.length - 1] !== LINE_FEED) return 0
  return bytes[bytes.length - 2] === CARRIAGE_RETURN ? 2 : 1
}

/**
 * Moves `index` back to the start of the UTF-8 character it falls in. A character has at most
 * 3 continuation bytes (10xxxxxx); more than that is not UTF-8, and any cut will do.
 */
function characterBoundary(bytes: Uint8Array, index: number): number {
  for (let cut = index; cut > index - 4; cut--) {
    if (((bytes[cut] ?? 0) & 0xc0) !== 0x80) return cut
  }
  return index
}
