/**
 * @module The exec stream's output events, `event: stdout|stderr` and `data: {"text":…}`, built
 * as bytes: each frame's bytes escaped for JSON as they are (`JsonTextChunks`), not decoded to a
 * string, passed through `JSON.stringify` and encoded again, which was most of the gateway's CPU
 * per MB of output (bench phase `exec`, bench/README.md "Exec").
 */
import { ByteWriter } from '../streams/byte-writer.ts'
import type { LogFrame } from '../streams/demux.ts'
import { JsonTextChunks } from '../streams/json-text-chunks.ts'

type OutputStream = 'stdout' | 'stderr'

const ascii = (text: string) => Uint8Array.from(text, (char) => char.charCodeAt(0))
const EVENT_START: Record<OutputStream, Uint8Array> = {
  stdout: ascii('event: stdout\ndata: {"text":"'),
  stderr: ascii('event: stderr\ndata: {"text":"'),
}
const EVENT_END = ascii('"}\n\n')

/**
 * One event per frame, byte for byte `encodeSse({ event, data: JSON.stringify({ text }) })` where
 * `text` is what a streaming UTF-8 decoder per stream (keeping a BOM) answers for the frame: a
 * character split between frames goes with the frame that ends it.
 */
export class ExecEventEncoder {
  readonly #writer = new ByteWriter()
  readonly #text = { stdout: new JsonTextChunks(), stderr: new JsonTextChunks() }

  /** Adds the event of a stdout or stderr frame (a stdin frame counts as stdout). */
  add(frame: LogFrame): void {
    const stream: OutputStream = frame.stream === 'stderr' ? 'stderr' : 'stdout'
    const writer = this.#writer
    writer.write(EVENT_START[stream])
    this.#text[stream].write(writer, frame.payload)
    writer.write(EVENT_END)
  }

  /**
   * The output ended: adds the event of the U+FFFD that stands for a character the stream began
   * and never finished, if it holds one.
   */
  end(stream: OutputStream): void {
    const text = this.#text[stream]
    if (!text.holding) return
    const writer = this.#writer
    writer.write(EVENT_START[stream])
    text.end(writer)
    writer.write(EVENT_END)
  }

  /** The events added since the last take, as a chunk of their own (empty if none). */
  take(): Uint8Array {
    return this.#writer.take()
  }

  /** The chunk last taken has left for the client: its memory is written over next (see `ByteWriter.reuse`). */
  reuse(chunk: Uint8Array): void {
    this.#writer.reuse(chunk)
  }
}
