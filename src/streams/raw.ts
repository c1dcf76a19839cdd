/**
 * @module Splitting a TTY container's raw log stream into the messages the engine logged.
 *
 * With `Tty: true` the body has no frame headers and stderr is merged into stdout
 * (docs/engine-notes.md#tty-logs). Requested with `timestamps=1`, it is the engine's messages glued
 * together, each with its own timestamp prefix.
 */

import { concatBytes, type FrameSink, type LogFrame } from './demux.ts'
import { isTimestampPrefix, PARTIAL_MESSAGE_BYTES, TIMESTAMP_PREFIX_BYTES } from './timestamp.ts'

const LINE_FEED = 0x0a

// Where the next glued partial's prefix starts, if the message is a 16 KiB partial
const PARTIAL_MESSAGE_END = TIMESTAMP_PREFIX_BYTES + PARTIAL_MESSAGE_BYTES
// How much of a message must be seen to decide whether it is a glued partial
const PARTIAL_CHECK_BYTES = PARTIAL_MESSAGE_END + TIMESTAMP_PREFIX_BYTES

/**
 * Turns a raw (TTY) log byte stream into the same frames the multiplexed stream would give, all
 * on `stdout`, so that {@link LogLineStream} can assemble lines from either.
 *
 * A message ends after each `\n` (kept in the payload); the remainder at the end of the stream
 * is a last message without newline. The engine splits messages longer than 16 KiB into
 * partials of exactly 16384 content bytes, each with its own timestamp prefix and no newline
 * but the last one's; here they arrive glued as `TS <16384 bytes>TS <16384 bytes>TS <rest>\n`.
 * So a message whose content is longer than 16384 bytes and has a timestamp prefix at content
 * offset 16384 is cut there, again and again.
 *
 * A partial is emitted as soon as the next one's prefix is seen, so memory stays around 16 KiB
 * per message for the engine's output. A message without newline that is followed by another
 * message (not a 16 KiB partial) cannot be told apart from its content and stays glued to it.
 */
export class RawLogStream extends TransformStream<Uint8Array, LogFrame> {
  constructor() {
    const splitter = new MessageSplitter()
    let emit: FrameSink = () => {}
    super({
      // One callback for the stream's life, not a closure per chunk
      start: (controller) => {
        emit = (frame) => controller.enqueue(frame)
      },
      transform: (chunk) => splitter.push(chunk, emit),
      flush: () => splitter.finish(emit),
    })
  }
}

/**
 * The splitter's state between chunks, usable without a stream around it (the SSE log path runs
 * it synchronously per chunk).
 */
export class MessageSplitter {
  #parts: Uint8Array[] = []
  #length = 0
  // Whether the current message was already checked for a glued partial (and is not one)
  #checked = false

  push(chunk: Uint8Array, emit: FrameSink): void {
    let offset = 0
    while (offset < chunk.length) {
      offset = this.#checked
        ? this.#readToNewline(chunk, offset, emit)
        : this.#readToPartialCheck(chunk, offset, emit)
    }
  }

  finish(emit: FrameSink): void {
    if (this.#length > 0) this.#emit(emit)
  }

  #readToPartialCheck(chunk: Uint8Array, offset: number, emit: FrameSink): number {
    const end = Math.min(chunk.length, offset + PARTIAL_CHECK_BYTES - this.#length)
    const newline = chunk.subarray(offset, end).indexOf(LINE_FEED)
    if (newline !== -1) return this.#endAtNewline(chunk, offset, offset + newline, emit)
    this.#append(chunk.subarray(offset, end))
    if (this.#length === PARTIAL_CHECK_BYTES) this.#splitGluedPartial(emit)
    return end
  }

  #readToNewline(chunk: Uint8Array, offset: number, emit: FrameSink): number {
    const newline = chunk.indexOf(LINE_FEED, offset)
    if (newline !== -1) return this.#endAtNewline(chunk, offset, newline, emit)
    this.#append(chunk.subarray(offset))
    return chunk.length
  }

  #endAtNewline(chunk: Uint8Array, offset: number, newline: number, emit: FrameSink): number {
    this.#append(chunk.subarray(offset, newline + 1))
    this.#emit(emit)
    return newline + 1
  }

  // Called once the message's first PARTIAL_CHECK_BYTES bytes are in, none of them a newline
  #splitGluedPartial(emit: FrameSink): void {
    const message = concatBytes(this.#parts, this.#length)
    const isGluedPartial =
      isTimestampPrefix(message, 0) && isTimestampPrefix(message, PARTIAL_MESSAGE_END)
    if (!isGluedPartial) {
      this.#parts = [message]
      this.#checked = true
      return
    }
    emit({ stream: 'stdout', payload: message.subarray(0, PARTIAL_MESSAGE_END) })
    // The rest starts with the next partial's prefix: a new message, to be checked in turn
    this.#parts = [message.subarray(PARTIAL_MESSAGE_END)]
    this.#length = message.length - PARTIAL_MESSAGE_END
  }

  #append(bytes: Uint8Array): void {
    if (bytes.length === 0) return
    this.#parts.push(bytes)
    this.#length += bytes.length
  }

  #emit(emit: FrameSink): void {
    const payload = concatBytes(this.#parts, this.#length)
    this.#parts = []
    this.#length = 0
    this.#checked = false
    emit({ stream: 'stdout', payload })
  }
}
