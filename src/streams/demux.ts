/**
 * @module Decoding of Docker's multiplexed (stdcopy) stream into frames.
 *
 * Non-TTY logs, attach and exec bodies are a sequence of frames: an 8-byte header
 * `[streamId, 0, 0, 0, size (uint32 big-endian)]` followed by `size` payload bytes. HTTP chunks
 * do not respect frame boundaries, and frames do not respect line boundaries
 * (docs/engine-notes.md#log-frames).
 */

/** Frame stream by stdcopy id: 0 stdin, 1 stdout, 2 stderr, 3 system (an engine error, in-band). */
export type LogStreamName = 'stdin' | 'stdout' | 'stderr' | 'system'

/** One frame as the engine wrote it. The payload is a piece of output, not necessarily a line. */
export interface LogFrame {
  stream: LogStreamName
  payload: Uint8Array
}

const HEADER_BYTES = 8
/**
 * The engine's frames hold at most 16 KiB of log text plus its timestamp (32 KiB from attach and
 * exec): a header that claims more is corrupt, and believing it would make the gateway buffer up
 * to 4 GiB for one frame.
 */
export const MAX_FRAME_BYTES = 1024 * 1024
const STREAM_NAMES: readonly LogStreamName[] = ['stdin', 'stdout', 'stderr', 'system']

/**
 * Splits a multiplexed byte stream into {@link LogFrame}s.
 *
 * Errors with a `SyntaxError` on a header it does not understand (the engine's own `StdCopy`
 * refuses unknown ids too), on a frame larger than {@link MAX_FRAME_BYTES} and on a stream that
 * ends inside a frame. Zero-size frames are
 * dropped. A payload that lies within one input chunk is a view of that chunk, not a copy, so
 * the producer must not reuse its chunks (fetch bodies don't).
 *
 * @example
 * ```ts
 * const frames = response.body.pipeThrough(new DemuxStream())
 * ```
 */
export class DemuxStream extends TransformStream<Uint8Array, LogFrame> {
  constructor() {
    const decoder = new FrameDecoder()
    let emit: FrameSink = () => {}
    super({
      // One callback for the stream's life, not a closure per chunk
      start: (controller) => {
        emit = (frame) => controller.enqueue(frame)
      },
      transform: (chunk) => decoder.push(chunk, emit),
      flush: () => decoder.finish(),
    })
  }
}

/** Receives each frame as soon as it is complete. */
export type FrameSink = (frame: LogFrame) => void

export interface FrameDecoderOptions {
  /**
   * A frame split between chunks comes as one frame per piece, each a view of its chunk, instead
   * of joined into a copy: for a consumer to whom a frame's bounds mean nothing. An exec's output
   * is such: its 32 KiB frames straddle Node's 64 KiB reads every other time, and joining them was
   * 1.5 % of the gateway's samples at 27 % busy, the most of its JavaScript after the escaping.
   * Decoding and encoding 32 KiB frames read 64 KiB at a time: 0.283 → 0.237 ms/MB (medians of 15,
   * alternating, in one process, twice: 0.282 → 0.239); in the gateway's CPU per MB, below the
   * noise of bench/exec-cpu.mjs (1.6 and 1.7 ms/MB, 10 × 50 MB each).
   */
  pieces?: boolean
}

/**
 * The decoder state between chunks, usable without a stream around it (the SSE log path runs it
 * synchronously per chunk). Each input byte is looked at once and payload bytes are copied at
 * most once (only when a payload straddles chunks), so the cost stays linear however the input
 * is chunked. Throws what {@link DemuxStream} errors with.
 */
export class FrameDecoder {
  // Holds a header that straddles chunks; a header within one chunk is read in place
  readonly #header = new Uint8Array(HEADER_BYTES)
  #headerLength = 0
  // The frame whose payload is being read, if any
  #stream: LogStreamName | undefined
  #payloadSize = 0
  #payloadRemaining = 0
  #payloadParts: Uint8Array[] = []
  readonly #pieces: boolean

  constructor(options: FrameDecoderOptions = {}) {
    this.#pieces = options.pieces ?? false
  }

  push(chunk: Uint8Array, emit: FrameSink): void {
    let offset = 0
    while (offset < chunk.length) {
      offset =
        this.#stream === undefined
          ? this.#readHeader(chunk, offset)
          : this.#readPayload(chunk, offset, this.#stream, emit)
    }
  }

  finish(): void {
    const trailing =
      this.#stream === undefined
        ? this.#headerLength
        : HEADER_BYTES + this.#payloadSize - this.#payloadRemaining
    if (trailing > 0) {
      throw new SyntaxError(`Cannot decode multiplexed stream: ${trailing} trailing bytes`)
    }
  }

  #readHeader(chunk: Uint8Array, offset: number): number {
    if (this.#headerLength === 0 && chunk.length - offset >= HEADER_BYTES) {
      this.#startFrame(chunk, offset)
      return offset + HEADER_BYTES
    }
    const end = Math.min(chunk.length, offset + HEADER_BYTES - this.#headerLength)
    this.#header.set(chunk.subarray(offset, end), this.#headerLength)
    this.#headerLength += end - offset
    if (this.#headerLength === HEADER_BYTES) {
      this.#headerLength = 0
      this.#startFrame(this.#header, 0)
    }
    return end
  }

  #startFrame(bytes: Uint8Array, offset: number): void {
    const stream = parseStreamName(bytes, offset)
    const size = readUint32BigEndian(bytes, offset + 4)
    if (size === 0) return
    if (size > MAX_FRAME_BYTES) {
      throw new SyntaxError(
        `Cannot decode multiplexed stream: a frame of ${size} bytes (at most ${MAX_FRAME_BYTES})`,
      )
    }
    this.#stream = stream
    this.#payloadSize = size
    this.#payloadRemaining = size
  }

  #readPayload(chunk: Uint8Array, offset: number, stream: LogStreamName, emit: FrameSink): number {
    if (this.#pieces) return this.#readPiece(chunk, offset, stream, emit)
    const available = chunk.length - offset
    // Fast path: the whole payload is in this chunk, so hand out a view instead of a copy
    if (this.#payloadParts.length === 0 && available >= this.#payloadRemaining) {
      const end = offset + this.#payloadRemaining
      this.#endFrame(stream, chunk.subarray(offset, end), emit)
      return end
    }
    const end = offset + Math.min(available, this.#payloadRemaining)
    this.#payloadParts.push(chunk.subarray(offset, end))
    this.#payloadRemaining -= end - offset
    if (this.#payloadRemaining === 0) {
      this.#endFrame(stream, concatBytes(this.#payloadParts, this.#payloadSize), emit)
    }
    return end
  }

  /** What of the payload this chunk holds, as a frame of its own (`pieces`). */
  #readPiece(chunk: Uint8Array, offset: number, stream: LogStreamName, emit: FrameSink): number {
    const end = offset + Math.min(chunk.length - offset, this.#payloadRemaining)
    this.#payloadRemaining -= end - offset
    if (this.#payloadRemaining === 0) {
      this.#stream = undefined
      this.#payloadSize = 0
    }
    emit({ stream, payload: chunk.subarray(offset, end) })
    return end
  }

  #endFrame(stream: LogStreamName, payload: Uint8Array, emit: FrameSink): void {
    this.#stream = undefined
    this.#payloadSize = 0
    this.#payloadRemaining = 0
    // Most payloads lie within one chunk and never used the parts: no new array per frame
    if (this.#payloadParts.length > 0) this.#payloadParts = []
    emit({ stream, payload })
  }
}

function parseStreamName(header: Uint8Array, offset: number): LogStreamName {
  const id = header[offset] ?? 0
  const stream = STREAM_NAMES[id]
  if (stream === undefined) {
    throw new SyntaxError(`Cannot decode multiplexed stream: unknown stream id ${id}`)
  }
  // Bytes 1-3 are always zero; anything else means we are not at a header (or not stdcopy at all)
  if (header[offset + 1] !== 0 || header[offset + 2] !== 0 || header[offset + 3] !== 0) {
    const reserved = Array.from(header.subarray(offset + 1, offset + 4), toHex).join(' ')
    throw new SyntaxError(
      `Cannot decode multiplexed stream: header bytes 1-3 must be zero: current value is ${reserved}`,
    )
  }
  return stream
}

function readUint32BigEndian(bytes: Uint8Array, offset: number): number {
  // Multiplication instead of `<< 24` keeps sizes >= 2 GiB positive
  return (
    (bytes[offset] ?? 0) * 0x1000000 +
    (((bytes[offset + 1] ?? 0) << 16) | ((bytes[offset + 2] ?? 0) << 8) | (bytes[offset + 3] ?? 0))
  )
}

function toHex(byte: number): string {
  return byte.toString(16).padStart(2, '0')
}

/**
 * Joins byte arrays into one. A single part is returned as is (no copy).
 *
 * @param length the total length of `parts`, when the caller already knows it
 */
export function concatBytes(parts: readonly Uint8Array[], length?: number): Uint8Array {
  if (parts.length === 1 && parts[0] !== undefined) return parts[0]
  const joined = new Uint8Array(length ?? parts.reduce((sum, part) => sum + part.length, 0))
  let offset = 0
  for (const part of parts) {
    joined.set(part, offset)
    offset += part.length
  }
  return joined
}
