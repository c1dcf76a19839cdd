/**
 * @module One exec from start to end: its output as demultiplexed frames to a consumer, bounded
 * in time (stopped when its timeout passes or the caller leaves), and how it ended.
 */
import { ProblemError } from '../errors.ts'
import { FrameDecoder, type LogFrame } from '../streams/demux.ts'
import { nextTurn } from '../streams/next-turn.ts'
import { PushedByteStream, type PushedChunks } from '../streams/pushed.ts'
import type { EngineClient } from './client.ts'
import { type EngineExecInspect, type ExecSpec, inspectExec, killExec, startExec } from './exec.ts'

export interface ExecEnd {
  /** Null when it was stopped but could not be killed (see `killExec`): it may still run. */
  exitCode: number | null
  /** Its timeout passed and it was stopped. */
  timedOut: boolean
}

export interface ExecRunOptions {
  timeoutMs: number
  /** The caller's: when it aborts, the exec is stopped and nothing more is read. */
  signal: AbortSignal
  /**
   * Each stdout or stderr frame as it comes; a promise when the consumer cannot take more yet,
   * which reading waits for (the engine is not read meanwhile, so a slow consumer slows the
   * command, never the gateway's memory). Until the command is known to run (`running()`, one
   * engine call), a frame may be the engine's own error text (a command or user that does not
   * exist), not for the caller.
   */
  onFrame(frame: LogFrame, running: () => Promise<boolean>): void | Promise<void>
  /**
   * After the frames of the engine's output read so far, once no more of it is waiting (or
   * {@link COALESCED_BYTES} of it were read since the last call): a consumer that collects what
   * `onFrame` gives can write it here in one go (one write to the client per few reads rather
   * than per 32 KiB frame, bench phase `exec`). Reading waits for it as for `onFrame`.
   */
  onChunkEnd?(): void | Promise<void>
}

/**
 * At most this much of the engine's output goes into one `onChunkEnd` while more is waiting:
 * writes of 64 KiB cost the sender half the CPU per MB of writes of 24 KiB on loopback TCP
 * (bench/README.md, "Exec"), and a larger batch would need a slab past glibc's mmap threshold.
 */
export const COALESCED_BYTES = 64 * 1024

/**
 * The output's frames as they arrive: a frame split between two reads comes as its two pieces,
 * not joined (the consumers add each piece to the same text: JSON, or events whose bounds mean
 * nothing, with a character split between pieces kept whole by `JsonTextChunks`).
 */
const OUTPUT_FRAMES = { pieces: true } as const

/** How long a stopped exec's output may take to end once its processes were killed. */
const AFTER_KILL_MS = 5_000

/** The fixed words for an exec whose command never ran; the engine's own text names runc internals. */
export const EXEC_COULD_NOT_RUN =
  'The command could not be run: it is missing from the image, not executable, or the policy\u2019s user or the workingDir does not exist in the container'

/**
 * Whether the engine could not start the command: it then sets 126 or 127 and Running false
 * before it writes its error text to the output, and the process never had a pid. A running
 * command's output can come before the engine has recorded its pid (verified on 20.10).
 */
export const neverRan = (inspect: EngineExecInspect) =>
  inspect.Pid === 0 && !inspect.Running && (inspect.ExitCode === 126 || inspect.ExitCode === 127)

/** Runs the exec; throws a 400 problem when its command never ran. */
export async function runExec(
  engine: EngineClient,
  containerId: string,
  spec: ExecSpec,
  options: ExecRunOptions,
): Promise<ExecEnd> {
  const started = await startExec(engine, containerId, spec, options.signal)
  const running = async () => !neverRan(await inspectExec(engine, started.id, options.signal))
  const timeout = AbortSignal.timeout(options.timeoutMs)
  const stop = AbortSignal.any([options.signal, timeout])
  const reading = readOutput(started.output, options, running)
  let killed: Promise<boolean> | undefined
  const kill = () => {
    killed ??= killExec(engine, containerId, started, spec.user)
    return killed
  }
  let giveUp: ReturnType<typeof setTimeout> | undefined
  // Not a race per read: one listener. The caller gone, reading stops at once; a timeout kills
  // the command, whose output then ends (or reading stops after a while if it cannot be killed).
  const onStop = () => {
    void kill().then((ok) => {
      if (options.signal.aborted || !ok) reading.cancel()
      else giveUp = setTimeout(reading.cancel, AFTER_KILL_MS)
    })
    if (options.signal.aborted) reading.cancel()
  }
  if (stop.aborted) onStop()
  else stop.addEventListener('abort', onStop, { once: true })
  try {
    await reading.done
  } catch (error) {
    if (options.signal.aborted) throw options.signal.reason ?? error
    // Output the caller will never see: the command is not left running for nobody (its output
    // connection gone, the engine would keep it, blocked on a full pipe).
    void kill()
    if (error instanceof ProblemError) throw error
    throw brokeOff(error)
  } finally {
    clearTimeout(giveUp)
    stop.removeEventListener('abort', onStop)
  }
  // Cancelled reads end as `done`: a caller that left gets nothing more.
  if (options.signal.aborted) throw options.signal.reason
  const timedOut = timeout.aborted
  if (timedOut && !(await kill())) return { exitCode: null, timedOut }
  const inspect = await inspectExec(engine, started.id, options.signal)
  if (neverRan(inspect) && !timedOut) {
    throw new ProblemError(400, 'bad-request', { detail: EXEC_COULD_NOT_RUN })
  }
  if (inspect.Running && !timedOut) {
    // The engine records the exit before it ends the output (it closes the output's streams
    // after the exit, up to 2 s after it while a child holds them: README, "What the engine does
    // not allow"), so an output that ended first was cut: a connection closed or reset on the
    // way, which a transport may read as a clean end (src/transport/node-reads.ts).
    void kill()
    throw brokeOff(undefined)
  }
  return { exitCode: inspect.Running ? null : inspect.ExitCode, timedOut }
}

/** The 502 of an exec whose output connection to the engine broke off. */
export const brokeOff = (cause: unknown) =>
  new ProblemError(502, 'engine-error', {
    detail: "The exec's output stream from the Docker Engine broke off",
    cause,
  })

/** Reading an exec's output: done at its end (or once cancelled), failed when it broke off. */
interface OutputReading {
  readonly done: Promise<void>
  /** Nothing more is read: `done` settles as at the end. */
  cancel(): void
}

type FrameOptions = Pick<ExecRunOptions, 'onFrame' | 'onChunkEnd'>

function readOutput(
  output: ReadableStream<Uint8Array>,
  options: FrameOptions,
  running: () => Promise<boolean>,
): OutputReading {
  if (output instanceof PushedByteStream) {
    const pushed = takePushed(output, options, running)
    if (pushed) return pushed
  }
  return readChunks(output, options, running)
}

/** The output read chunk by chunk (any transport's body). */
function readChunks(
  output: ReadableStream<Uint8Array>,
  options: FrameOptions,
  running: () => Promise<boolean>,
): OutputReading {
  // Read ahead of this loop by startExec: the engine's output keeps arriving meanwhile.
  const reader = output.getReader()
  const decoder = new FrameDecoder(OUTPUT_FRAMES)
  const frames: LogFrame[] = []
  // Raced after a read: `Promise.race` settles as the first of its promises that has settled, in
  // their order, so a read whose chunk was already queued wins, and a read still waiting loses.
  // One per exec (a promise of module scope would be shared by the requests of an edge isolate)
  const notYet = Promise.resolve('not yet' as const)
  const loop = async () => {
    let sinceChunkEnd = 0
    let next = reader.read()
    for (;;) {
      const { done, value } = await next
      if (done) break
      decoder.push(value, (frame) => frames.push(frame))
      for (const frame of frames.splice(0)) {
        if (frame.stream === 'stdout' || frame.stream === 'stderr') {
          // Awaited only when it is a promise: no microtask per frame for a consumer that takes
          // it at once (bench phase `exec`)
          const taking = options.onFrame(frame, running)
          if (taking) await taking
        }
      }
      // More of the output already read: its events go in the same write (bench phase `exec`)
      // (always raced: that also handles a read that fails while `onChunkEnd` waits)
      next = reader.read()
      const waiting = (await Promise.race([next, notYet])) === 'not yet'
      sinceChunkEnd += value.length
      if (waiting || sinceChunkEnd >= COALESCED_BYTES) {
        sinceChunkEnd = 0
        const writing = options.onChunkEnd?.()
        if (writing) await writing
      }
    }
    // The last read's frames, when the end was already known at the race
    if (sinceChunkEnd > 0) await options.onChunkEnd?.()
  }
  // Cancelled reads end as `done`.
  return { done: loop(), cancel: () => void reader.cancel().catch(() => {}) }
}

/**
 * The output taken in the transport's own read callback (`PushedByteStream`, Node): each chunk's
 * frames go to the consumer there, and the events of what was read in one turn of the event loop
 * (or {@link COALESCED_BYTES} of it) in one `onChunkEnd`. While the consumer waits (a promise
 * from `onFrame` or `onChunkEnd`), the connection is paused and what it still hands over is
 * held. Undefined when the stream is read already.
 */
function takePushed(
  output: PushedByteStream,
  options: FrameOptions,
  running: () => Promise<boolean>,
): OutputReading | undefined {
  const decoder = new FrameDecoder(OUTPUT_FRAMES)
  const frames: LogFrame[] = []
  let next = 0
  const held: Uint8Array[] = []
  let waiting = false
  let sinceChunkEnd = 0
  let flushAsked = false
  /** How the output ended, once it did. */
  let ended: { error?: unknown } | undefined
  let settled = false
  let resolve!: () => void
  let reject!: (error: unknown) => void
  const done = new Promise<void>((yes, no) => {
    resolve = yes
    reject = no
  })
  let source: PushedChunks | undefined
  const settle = (error?: unknown) => {
    if (settled) return
    settled = true
    if (error === undefined) resolve()
    else {
      reject(error)
      source?.cancel(error)
    }
  }
  const wait = (promise: Promise<void>) => {
    waiting = true
    source?.pause()
    promise.then(() => {
      waiting = false
      proceed()
      if (!waiting && !settled) source?.resume()
    }, settle)
  }
  // Takes the frames decoded and the chunks held, as far as the consumer lets it; writes them
  // once enough is read, the output ended, or (`flush`) this turn's reads are over.
  const proceed = (flush = false) => {
    if (settled) return
    try {
      for (;;) {
        while (next < frames.length) {
          const frame = frames[next++] as LogFrame
          if (frame.stream !== 'stdout' && frame.stream !== 'stderr') continue
          const taking = options.onFrame(frame, running)
          if (taking) return wait(taking)
        }
        frames.length = 0
        next = 0
        const chunk = held.shift()
        if (chunk === undefined) break
        decoder.push(chunk, (frame) => frames.push(frame))
      }
      if (sinceChunkEnd > 0 && (flush || ended || sinceChunkEnd >= COALESCED_BYTES)) {
        sinceChunkEnd = 0
        const writing = options.onChunkEnd?.()
        if (writing) return wait(writing)
      } else if (sinceChunkEnd > 0 && !flushAsked) {
        flushAsked = true
        nextTurn(flushTurn)
      }
      if (ended) settle(ended.error)
    } catch (error) {
      settle(error)
    }
  }
  // What was read in this turn of the event loop goes out in one write.
  const flushTurn = () => {
    flushAsked = false
    if (!waiting) proceed(true)
  }
  const taken = output.pushTo({
    chunk: (bytes) => {
      if (settled) return
      held.push(bytes)
      sinceChunkEnd += bytes.length
      if (!waiting) proceed()
    },
    end: (error) => {
      if (settled) return
      ended = error === undefined ? {} : { error }
      if (!waiting) proceed()
    },
  })
  if (!taken) return undefined
  source = taken
  if (waiting) taken.pause()
  if (settled && !ended) taken.cancel()
  return {
    done,
    cancel: () => {
      settle()
      taken.cancel()
    },
  }
}
