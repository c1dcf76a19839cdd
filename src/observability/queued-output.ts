/**
 * @module Log text to an asynchronous byte sink (Deno's stdout), in order, one write at a time,
 * never holding more than a bound: what a reader that does not keep up cannot take is dropped
 * and counted, and said in the first text written once there is room again. The gateway then
 * never waits for its log reader, and its memory never depends on it. Runtime-free.
 */

/** Writes some of `bytes`, answering how many (as `Deno.stdout.write` does). */
export type ByteSink = (bytes: Uint8Array) => Promise<number>

export interface QueuedOutputOptions {
  /** Bytes that may wait for the sink before text is dropped; 16 MiB unless given. */
  maxQueuedBytes?: number
  /** Errors of the sink (a reader that went away): the text is lost, the gateway goes on. */
  onError?: (error: unknown) => void
}

/** What a log output may hold for a reader that falls behind (Node's stdout and Deno's). */
export const DEFAULT_MAX_QUEUED_BYTES = 16 * 1024 * 1024

export class QueuedOutput {
  readonly #sink: ByteSink
  readonly #maxQueued: number
  readonly #onError: (error: unknown) => void
  readonly #encoder = new TextEncoder()
  #queue: Uint8Array[] = []
  #queuedBytes = 0
  #dropped = 0
  #writing: Promise<void> | undefined

  constructor(sink: ByteSink, options: QueuedOutputOptions = {}) {
    this.#sink = sink
    this.#maxQueued = options.maxQueuedBytes ?? DEFAULT_MAX_QUEUED_BYTES
    this.#onError = options.onError ?? (() => {})
  }

  /** Queues whole lines (each ending in `\n`), or drops them when the bound is reached. */
  write(text: string): void {
    if (this.#queuedBytes >= this.#maxQueued) {
      this.#dropped += countLines(text)
      return
    }
    if (this.#dropped > 0) {
      this.#enqueue(droppedLinesNotice(this.#dropped))
      this.#dropped = 0
    }
    this.#enqueue(text)
  }

  /** Bytes waiting for the sink. */
  get queuedBytes(): number {
    return this.#queuedBytes
  }

  /** Removes and answers what waits and has not started to be written (for a last, synchronous write at exit). */
  takeQueued(): Uint8Array[] {
    const queued = this.#queue
    this.#queue = []
    for (const bytes of queued) this.#queuedBytes -= bytes.length
    return queued
  }

  /** Settles once everything queued so far has been written (or failed). */
  async drained(): Promise<void> {
    while (this.#writing) await this.#writing
  }

  #enqueue(text: string): void {
    const bytes = this.#encoder.encode(text)
    this.#queue.push(bytes)
    this.#queuedBytes += bytes.length
    this.#writing ??= this.#writeQueued()
  }

  async #writeQueued(): Promise<void> {
    for (let bytes = this.#queue.shift(); bytes; bytes = this.#queue.shift()) {
      try {
        for (let at = 0; at < bytes.length; ) at += await this.#sink(bytes.subarray(at))
      } catch (error) {
        this.#onError(error)
      }
      this.#queuedBytes -= bytes.length
    }
    this.#writing = undefined
  }
}

/** The line that says how many log lines a slow reader cost (JSON, as every other). */
export function droppedLinesNotice(count: number): string {
  const msg = 'log lines dropped: stdout was not read fast enough'
  return `${JSON.stringify({ time: new Date().toISOString(), level: 'warn', msg, dropped: count })}\n`
}

export function countLines(text: string): number {
  let count = 0
  for (let at = text.indexOf('\n'); at !== -1; at = text.indexOf('\n', at + 1)) count++
  return count
}
