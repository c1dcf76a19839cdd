/**
 * @module Log lines written in batches: one write for many lines instead of one per line.
 *
 * The gateway logs a line per request. Written one at a time (`console.log`), each line paid
 * for console formatting, a stream write and, to a file or a terminal, a blocking system call:
 * about a fifth of the CPU of a small request, and a stalled event loop whenever the consumer
 * is slow. Here lines are joined and handed to `write` together.
 *
 * Flush rules: a batch is written `maxDelayMs` after its first line, or at once when it holds
 * `maxChars` characters, or when `flush()` is called (entry points call it on shutdown and on
 * exit). Lines are never split and keep their order; each chunk ends with a line break.
 * Runtime-free: only `setTimeout`.
 */

/** What an entry point's log goes to: lines, batched, and a way to wait for the last ones. */
export interface StdoutLines {
  line(text: string): void
  /** Writes what is pending and settles once stdout has taken it. */
  drain(): Promise<void>
}

export interface LineBufferOptions {
  /** Receives whole lines, in order, each ending in `\n`. */
  write: (chunk: string) => void
  /** How long a line may wait for others; 20 ms unless given. */
  maxDelayMs?: number
  /** A batch this long is written at once; 32 Ki characters unless given. */
  maxChars?: number
}

export class LineBuffer {
  readonly #write: (chunk: string) => void
  readonly #maxDelayMs: number
  readonly #maxChars: number
  #pending = ''
  #timer: ReturnType<typeof setTimeout> | undefined

  constructor(options: LineBufferOptions) {
    this.#write = options.write
    this.#maxDelayMs = options.maxDelayMs ?? 20
    this.#maxChars = options.maxChars ?? 32 * 1024
  }

  /** Adds one line (without its line break). */
  line(text: string): void {
    this.#pending += `${text}\n`
    if (this.#pending.length >= this.#maxChars) this.flush()
    else this.#timer ??= setTimeout(this.#flushLater, this.#maxDelayMs)
  }

  /** Hands every pending line to `write` now. */
  flush(): void {
    if (this.#timer !== undefined) {
      clearTimeout(this.#timer)
      this.#timer = undefined
    }
    if (this.#pending === '') return
    const chunk = this.#pending
    this.#pending = ''
    this.#write(chunk)
  }

  /** Characters waiting to be written. */
  get pending(): number {
    return this.#pending.length
  }

  readonly #flushLater = () => {
    this.#timer = undefined
    this.flush()
  }
}
