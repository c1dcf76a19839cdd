/**
 * @module A byte stream that a runtime adapter feeds as it reads its connection, and that a
 * consumer may take chunk by chunk in the same call (`pushTo`) instead of through reads.
 *
 * A Web stream's read hands each chunk over through promise jobs (and a transport's own stream
 * stages more of them before it): for the event hub's upstream, which acts on every chunk as it
 * comes and never waits, the engine's bytes took 0.16–0.23 ms from the socket to the upstream's
 * read, 0.09 ms to its sink this way (bench phase `latency`; bench/README.md, "One subscriber's
 * latency, third look"). A consumer that can act in the adapter's callback takes the chunks
 * there; any other reads the stream as usual, with backpressure.
 */
import { EndReportingStream } from './on-end.ts'

/** Where {@link PushedByteStream.pushTo} hands the bytes. */
export interface ChunkSink {
  /**
   * One chunk, in the adapter's read callback. It must not wait: a sink that cannot take more
   * for a while pauses the source ({@link PushedChunks.pause}), and still takes what the
   * adapter had read already.
   */
  chunk(bytes: Uint8Array): void
  /** The end, once: without an error when the body is complete; with it when it failed. */
  end(error?: unknown): void
}

/** What the stream tells its adapter. */
export interface ByteSource {
  /** Stop reading for now: nobody wants more yet. */
  pause(): void
  /** Read on. */
  resume(): void
  /** The consumer gave up: drop the connection. */
  cancel(reason: unknown): void
}

/** What {@link PushedByteStream.pushTo} answers: the sink's hold on the source. */
export interface PushedChunks {
  /** The sink gave up: the connection is dropped, and the sink is not told of the end. */
  cancel(reason?: unknown): void
  /** The sink cannot take more for now: the adapter stops reading (the engine then waits). */
  pause(): void
  /** Read on after {@link pause}. */
  resume(): void
}

export class PushedByteStream extends EndReportingStream {
  readonly #controller: ReadableStreamDefaultController<Uint8Array>
  readonly #source: ByteSource
  /** Chunks no one asked for yet (neither a read waiting nor a sink). */
  #pending: Uint8Array[] = []
  /** A read waits for the next chunk. */
  #wanted = false
  #sink: ChunkSink | undefined
  /** The sink paused the source (`PushedChunks.pause`). */
  #sinkPaused = false
  /** How the source ended, once it did: `{}` complete, `{ error }` failed. */
  #ended: { error?: unknown } | undefined
  #over = false
  #endListeners: (() => void)[] = []

  constructor(source: ByteSource) {
    let controller!: ReadableStreamDefaultController<Uint8Array>
    super(
      {
        start(c) {
          controller = c
        },
        pull: () => this.#pull(),
        cancel: (reason) => this.#cancel(reason),
      },
      // Nothing read ahead: pull runs only while a read waits, so a chunk is either handed to
      // it, to the sink, or held with the source paused.
      new CountQueuingStrategy({ highWaterMark: 0 }),
    )
    this.#controller = controller
    this.#source = source
  }

  /**
   * From now on every chunk goes to `sink` as the adapter reads it (those already held first, at
   * once), then the end. Undefined when the stream is read already (locked) or pushed elsewhere.
   */
  pushTo(sink: ChunkSink): PushedChunks | undefined {
    if (this.locked || this.#sink) return undefined
    // Locked, so that nobody reads what goes to the sink.
    const reader = this.getReader()
    this.#sink = sink
    const held = this.#pending
    this.#pending = []
    for (const chunk of held) sink.chunk(chunk)
    if (this.#ended) this.#endSink()
    else if (!this.#sinkPaused) this.#source.resume()
    return {
      cancel: (reason) => void reader.cancel(reason).catch(() => {}),
      pause: () => {
        this.#sinkPaused = true
        if (!this.#over) this.#source.pause()
      },
      resume: () => {
        this.#sinkPaused = false
        if (!this.#over) this.#source.resume()
      },
    }
  }

  override onEnd(listener: () => void): void {
    if (this.#over) listener()
    else this.#endListeners.push(listener)
  }

  /** The adapter read a chunk. */
  push(chunk: Uint8Array): void {
    if (this.#over || this.#ended) return
    if (this.#sink) {
      this.#sink.chunk(chunk)
      return
    }
    if (this.#wanted) {
      this.#wanted = false
      this.#controller.enqueue(chunk)
      return
    }
    this.#pending.push(chunk)
    this.#source.pause()
  }

  /** The body is complete. */
  close(): void {
    this.#end({})
  }

  /** The body failed. */
  error(error: unknown): void {
    this.#end({ error })
  }

  #end(how: { error?: unknown }): void {
    if (this.#over || this.#ended) return
    this.#ended = how
    if (this.#sink) this.#endSink()
    else if (this.#pending.length === 0) this.#endReads()
  }

  #endSink(): void {
    const sink = this.#sink
    const how = this.#ended
    if (!sink || !how) return
    this.#finish()
    if ('error' in how) sink.end(how.error)
    else sink.end()
  }

  /** What the reads see once the held chunks are read. */
  #endReads(): void {
    const how = this.#ended
    if (!how || this.#over) return
    this.#finish()
    if ('error' in how) this.#controller.error(how.error)
    else this.#controller.close()
  }

  #pull(): void {
    const chunk = this.#pending.shift()
    if (chunk) {
      this.#controller.enqueue(chunk)
      if (this.#pending.length === 0) this.#endReads()
      return
    }
    if (this.#ended) {
      this.#endReads()
      return
    }
    this.#wanted = true
    this.#source.resume()
  }

  /** Read or pushed, the consumer gave up: a sink is not told (it cancelled). */
  #cancel(reason: unknown): void {
    const ended = this.#ended !== undefined
    this.#finish()
    this.#pending = []
    if (!ended) this.#source.cancel(reason)
  }

  #finish(): void {
    if (this.#over) return
    this.#over = true
    for (const listener of this.#endListeners.splice(0)) listener()
  }
}
