/**
 * @module Assembling log lines from timestamped frames.
 *
 * Frames are not lines: the engine splits a long line into 16 KiB partials that share one
 * timestamp, and only the last partial ends in `\n` (engine-api-facts §1.2).
 */

import { concatBytes, type LogFrame } from './demux.ts'
import { readTimestampPrefix, TIMESTAMP_PREFIX_BYTES } from './timestamp.ts'

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

const DEFAULT_MAX_LINE_BYTES = 1024 * 1024
const LINE_FEED = 0x0a
const CARRIAGE_RETURN = 0x0d

/**
 * Turns frames requested with `timestamps=1` (from {@link DemuxStream} or {@link RawLogStream})
 * into {@link LogLine}s.
 *
 * Lines are assembled per stream: a frame ending in `\n` completes a line; a frame without it
 * is a partial, joined with the next frames of the same stream that carry the same timestamp.
 * A different timestamp means the pending partial was a line of its own (a last line without
 * newline). Lines are emitted in the order they complete; at the end, pending partials are
 * emitted as they are. `stdin` frames count as `stdout`, as stdcopy says.
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
    const assembler = new LineAssembler(validMaxLineBytes(options.maxLineBytes))
    super({
      transform: (frame, controller) => assembler.push(frame, controller),
      flush: (controller) => assembler.finish(controller),
    })
  }
}

type LineController = TransformStreamDefaultController<LogLine>

interface PendingLine {
  stream: LogLine['stream']
  time: string
  parts: Uint8Array[]
  length: number
}

class LineAssembler {
  readonly #maxLineBytes: number
  // A Map iterates in insertion order, so flush emits partials in the order they started
  readonly #pending = new Map<LogLine['stream'], PendingLine>()

  constructor(maxLineBytes: number) {
    this.#maxLineBytes = maxLineBytes
  }

  push(frame: LogFrame, controller: LineController): void {
    if (frame.stream === 'system') throw new LogStreamError(decodeLine(frame.payload))
    const stream = frame.stream === 'stdin' ? 'stdout' : frame.stream
    const time = readTimestampPrefix(frame.payload)
    if (time === undefined) throw new SyntaxError('Cannot parse log message: missing timestamp')
    const content = frame.payload.subarray(TIMESTAMP_PREFIX_BYTES)

    let line = this.#pending.get(stream)
    if (line !== undefined && line.time !== time) {
      this.#pending.delete(stream)
      this.#emit(line, controller)
      line = undefined
    }
    // The engine never logs an empty message (even an empty line has its `\n`)
    if (content.length === 0) return
    if (line === undefined) {
      line = { stream, time, parts: [], length: 0 }
      this.#pending.set(stream, line)
    }
    line.parts.push(content)
    line.length += content.length

    if (content[content.length - 1] === LINE_FEED) {
      this.#pending.delete(stream)
      this.#emit(line, controller)
    } else if (line.length > this.#maxLineBytes + 1) {
      this.#emitOverflow(line, controller)
    }
  }

  finish(controller: LineController): void {
    for (const line of this.#pending.values()) this.#emit(line, controller)
    this.#pending.clear()
  }

  #emit(line: PendingLine, controller: LineController): void {
    const bytes = concatBytes(line.parts, line.length)
    const start = this.#emitPiecesOverLimit(line, bytes, terminatorLength(bytes), controller)
    enqueueLine(line, bytes.subarray(start), controller)
  }

  // Keeps one byte back: it may be the `\r` of a `\r\n` whose `\n` is in the next partial, and
  // a piece ending there would leave an empty line behind
  #emitOverflow(line: PendingLine, controller: LineController): void {
    const bytes = concatBytes(line.parts, line.length)
    const start = this.#emitPiecesOverLimit(line, bytes, 1, controller)
    line.parts = [bytes.subarray(start)]
    line.length = bytes.length - start
  }

  /** Emits pieces of at most maxLineBytes while more than that precede `reserved` bytes at the end. */
  #emitPiecesOverLimit(
    line: PendingLine,
    bytes: Uint8Array,
    reserved: number,
    controller: LineController,
  ): number {
    let start = 0
    while (bytes.length - reserved - start > this.#maxLineBytes) {
      const end = characterBoundary(bytes, start + this.#maxLineBytes)
      enqueueLine(line, bytes.subarray(start, end), controller)
      start = end
    }
    return start
  }
}

function enqueueLine(line: PendingLine, bytes: Uint8Array, controller: LineController): void {
  controller.enqueue({ stream: line.stream, time: line.time, text: decodeLine(bytes) })
}

// Not fatal: a log line with a stray byte is still worth showing. ignoreBOM keeps a leading
// U+FEFF, which is part of the line rather than an encoding marker
const decoder = new TextDecoder('utf-8', { fatal: false, ignoreBOM: true })

/** Decodes a whole line at once, so that a character split across partials comes out intact. */
function decodeLine(bytes: Uint8Array): string {
  return decoder.decode(bytes.subarray(0, bytes.length - terminatorLength(bytes)))
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

function validMaxLineBytes(value = DEFAULT_MAX_LINE_BYTES): number {
  if (!Number.isInteger(value) || value < 4) {
    throw new RangeError(
      `Cannot create LogLineStream: maxLineBytes must be an integer >= 4: current value is ${value}`,
    )
  }
  return value
}
