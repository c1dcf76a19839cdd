/**
 * @module Reading and following a container's log on the engine: demultiplexed lines for one
 * answer, or event-stream messages numbered by cursor for a follow that resumes exactly where a
 * client left and ends with the run's exit code. No HTTP framework here: a route opens one of
 * these once and turns what it gives into its response.
 */
import { ProblemError } from '../errors.ts'
import {
  concatBytes,
  DemuxStream,
  LogEventEncoder,
  type LogLine,
  LogLineStream,
  LogStreamError,
  pumpLogEvents,
  RawLogStream,
} from '../streams/index.ts'
import type { EngineClient } from './client.ts'
import { containerPath, everStarted, inspectContainerIfAny, isNotFound } from './containers.ts'
import { dieOfRun } from './die-event.ts'
import { CursorIds, type LogCursor } from './log-cursor.ts'
import { compareEngineTimes, shiftEngineTime, toEngineTime } from './time.ts'
import type { EngineContainerInspect } from './types.ts'

/** Which lines of the log: the engine's own `/logs` parameters (times as `seconds.nanoseconds`). */
export interface LogSelection {
  /** Include stdout (default true). */
  stdout?: boolean | undefined
  /** Include stderr (default true). */
  stderr?: boolean | undefined
  since?: string | undefined
  until?: string | undefined
  /** The last N messages, or `all`. */
  tail?: string | undefined
}

type EngineLogQuery = LogSelection & { follow?: boolean }

/** Where a follow writes: whole event-stream messages, with backpressure. */
export interface LogEventSink {
  /** Resolves once there is room for more, or with false when nobody reads any more. */
  sendEncoded(chunk: Uint8Array): Promise<boolean>
  /**
   * Whether the bytes sent so far have all left, nothing keeping a chunk given to
   * {@link sendEncoded}: its memory may then be written over (see `SseSink.wroteThrough`).
   */
  wroteThrough?(): boolean
  /** Aborts when nobody reads any more: every engine call of the follow is cancelled with it. */
  readonly signal: AbortSignal
}

/**
 * Sends a batch of messages, then gives its slab back to the encoder when the sink wrote it
 * through: a followed log that streams fast writes one slab over and over (as an exec's output
 * does, bench/README.md "Exec").
 */
export function sendReusing(
  sink: LogEventSink,
  encoder: { reuse(chunk: Uint8Array): void },
  messages: Uint8Array,
): Promise<boolean> {
  const sent = sink.sendEncoded(messages)
  if (sink.wroteThrough?.()) encoder.reuse(messages)
  return sent
}

/** How the followed run ended: what the final `end` event says. */
export interface LogEnd {
  /**
   * Null when the container runs again (a restart): this run's exit code is not the state's; when
   * it never ran; and for a removed container whose `die` event the engine no longer holds.
   */
  exitCode: number | null
  /** The container's state (`exited`…), or {@link REMOVED}. */
  state: string
}

/**
 * The state an `end` gives when the container was removed as its run ended (`AutoRemove`, as
 * `docker run --rm` sets it, or a forced removal): its log went with it, so what the follow
 * delivered is all there is, and the exit code is the `die` event's.
 */
const REMOVED = 'removed'

/**
 * The lines of one JSON answer: at most `maxLines`, and at most `maxBytes` of line text (the
 * first line always goes), so that however long the log, an answer and what it holds while it is
 * read stay small. Reading stops at the bound: the engine stream is cancelled.
 */
export async function readLogLines(
  engine: EngineClient,
  inspect: EngineContainerInspect,
  selection: LogSelection,
  bounds: { maxLines: number; maxBytes: number },
  signal: AbortSignal,
): Promise<{ lines: LogLine[]; truncated: boolean }> {
  const lines = await openLogLines(engine, inspect, selection, signal)
  try {
    return await collectLines(lines, bounds.maxLines, bounds.maxBytes)
  } catch (error) {
    throw logReadProblem(error)
  }
}

/**
 * Opens the engine's log stream as curated lines. The container's `Config.Tty` decides the
 * format, never the bytes: API 1.41 sends no Content-Type on logs.
 */
async function openLogLines(
  engine: EngineClient,
  inspect: EngineContainerInspect,
  query: EngineLogQuery,
  signal: AbortSignal,
): Promise<ReadableStream<LogLine>> {
  const body = await openLogBody(engine, inspect, query, signal)
  const frames = inspect.Config.Tty
    ? body.pipeThrough(new RawLogStream())
    : body.pipeThrough(new DemuxStream())
  return frames.pipeThrough(new LogLineStream())
}

/** The engine's log body as it comes: multiplexed, or raw for a TTY container. */
async function openLogBody(
  engine: EngineClient,
  inspect: EngineContainerInspect,
  query: EngineLogQuery,
  signal: AbortSignal,
): Promise<ReadableStream<Uint8Array>> {
  const response = await engine.request('GET', containerPath(inspect.Id, '/logs'), {
    query: {
      stdout: query.stdout !== false ? 1 : 0,
      stderr: query.stderr !== false ? 1 : 0,
      since: query.since,
      until: query.until,
      tail: query.tail,
      follow: query.follow ? 1 : undefined,
      timestamps: 1,
    },
    signal,
    timeoutMs: query.follow ? 0 : undefined,
    // As long as the log is (a json-file log can be 30 MB), or as the container runs
    held: true,
  })
  return response.body ?? new ReadableStream<Uint8Array>({ start: (c) => c.close() })
}

/**
 * Follows the log into `sink` as event-stream messages, each line's id its cursor, so a
 * reconnect can continue exactly after the last one (`resumeAfter`). Answers how the run ended,
 * or undefined when the sink stopped reading first.
 *
 * The engine can end a followed log before it has sent the end of it: when the run's log closes,
 * its follower stops without reading what was written since it last reached the end of the file
 * (tens of thousands of lines of a fast writer; docs/engine-notes.md#the-end-of-a-run). So once
 * the follow ends, one plain read from the last line delivered to the end of the run catches up.
 * A container removed by then (`AutoRemove`, a forced removal) took its log with it: the end
 * says {@link REMOVED}, with the exit code of its `die` event; one still being removed, its state
 * (`removing`) and its exit code.
 */
export async function followLog(
  engine: EngineClient,
  inspect: EngineContainerInspect,
  selection: Omit<LogSelection, 'until'>,
  resumeAfter: LogCursor | undefined,
  sink: LogEventSink,
): Promise<LogEnd | undefined> {
  const follow = resumeAfter
    ? { ...selection, since: toEngineTime(resumeAfter.time), tail: undefined, follow: true }
    : { ...selection, follow: true }
  const last = await deliverLines(engine, inspect, follow, resumeAfter, sink)
  if (sink.signal.aborted) return undefined
  const after = await inspectContainerIfAny(engine, inspect.Id, sink.signal)
  if (after === undefined) {
    const died = await dieOfRun(engine, inspect, sink.signal)
    return sink.signal.aborted ? undefined : { exitCode: died?.exitCode ?? null, state: REMOVED }
  }
  const nextRun = after.State.StartedAt !== inspect.State.StartedAt || after.State.Running
  const until = await endOfRun(engine, inspect, after.State, sink.signal)
  if (sink.signal.aborted) return undefined
  const going = await catchUp(engine, inspect, selection, last, until, sink).then(
    () => false,
    removedOrGoing,
  )
  if (sink.signal.aborted) return undefined
  // A container that never ran (`created`) has no exit code to give, whatever the engine's 0 says.
  const exitCode = nextRun || !everStarted(after.State) ? null : after.State.ExitCode
  if (!going) return { exitCode, state: after.State.Status }
  // Its log is going with it: the end says where the container is now.
  const now = await inspectContainerIfAny(engine, inspect.Id, sink.signal)
  return sink.signal.aborted ? undefined : { exitCode, state: now?.State.Status ?? REMOVED }
}

/**
 * True for the engine's 404 of a container removed meanwhile, and for its 409 to a log read of a
 * container being removed (or dead: "can not get logs from container which is dead or marked for
 * removal", `daemon/logs.go`, v20.10.24), which a forced removal during a follow met under load;
 * any other failure is thrown on.
 */
function removedOrGoing(error: unknown): true {
  if (isNotFound(error) || (error instanceof ProblemError && error.status === 409)) return true
  throw error
}

/**
 * Where the followed run's log ends, for the catch-up read (undefined: the end of the log).
 *
 * The engine handles a run's exit under the container's lock, which an inspect waits for
 * (`daemon/monitor.go`, `handleContainerExit`, v20.10.24): it drains the run's output into the
 * log and closes the log, records the new state, logs `die`, and only then can a next run start.
 * FinishedAt is not that point: a stopped run's is the process's exit time, before the drain,
 * and a fast writer's last lines are stamped up to seconds after it; nor is a next run's
 * StartedAt, stamped once its process runs, after its first lines may be
 * (docs/engine-notes.md#the-end-of-a-run). What bounds the run instead:
 * - restarting (a restart policy): FinishedAt, which the engine stamps after the drain then;
 * - stopped, or a next run started: the time of the run's `die` event (a start can follow at
 *   once: `restart`), else, when the engine no longer has it, the next run's StartedAt;
 * - still running, the same run (the engine ended the follow on its own): nothing more is read.
 */
async function endOfRun(
  engine: EngineClient,
  inspect: EngineContainerInspect,
  state: EngineContainerInspect['State'],
  signal: AbortSignal,
): Promise<string | undefined> {
  const started = toEngineTime(state.StartedAt)
  const before = (time: string | undefined) => time && shiftEngineTime(time, -1n)
  const nextRun = state.StartedAt !== inspect.State.StartedAt
  if (!nextRun && state.Running) {
    return state.Restarting ? toEngineTime(state.FinishedAt) : before(started)
  }
  // This run's end, by the engine's clock, unless a next run began since.
  const died = await dieOfRun(engine, inspect, signal, nextRun ? undefined : state.FinishedAt)
  return died?.time ?? (nextRun ? before(started) : undefined)
}

/** The catch-up read after `last` up to `until`: from the end of the log when that is enough. */
async function catchUp(
  engine: EngineClient,
  inspect: EngineContainerInspect,
  selection: LogSelection,
  last: LogCursor | undefined,
  until: string | undefined,
  sink: LogEventSink,
): Promise<void> {
  const tailed = last && (await readLogEnd(engine, inspect, selection, last, until, sink.signal))
  if (tailed) {
    if (tailed.length > 0) await sink.sendEncoded(tailed)
    return
  }
  const plain = {
    ...selection,
    since: last ? toEngineTime(last.time) : selection.since,
    tail: last ? undefined : selection.tail,
    until,
  }
  await deliverLines(engine, inspect, plain, last, sink)
}

/** Log messages the catch-up reads from the end of the log before it reads the plain way. */
const CATCH_UP_TAIL = 64

/**
 * The catch-up read from the end of the log: the events of the lines after `last` up to
 * `until`, as the plain read (`since=<last time>&until=…`) would give them, or undefined when
 * this read cannot tell that it holds all of them.
 *
 * Why: with `since`, the json-file driver decodes the whole log from its start to find the
 * first message (as much engine CPU as the follow itself: ~13 µs per line, and a 200 MB log
 * took seconds before `end`), while `tail=N` starts N messages before the end. The engine
 * applies `tail` first, then `since`: if `since` left out some of the N messages, the window
 * reached back before it (timestamps grow along the log), so it holds every message after
 * `last`. If all N are at or after `since`, more may precede the window: undefined. `until` is
 * applied here, as the engine does (it stops at the first message after it), because the
 * messages of a next run would otherwise fill the window. Left to the plain read: TTY logs
 * (their messages can only be counted where a line ends) and one stream of two (the engine
 * counts `tail` over both and picks the stream after).
 */
async function readLogEnd(
  engine: EngineClient,
  inspect: EngineContainerInspect,
  selection: LogSelection,
  last: LogCursor,
  until: string | undefined,
  signal: AbortSignal,
): Promise<Uint8Array | undefined> {
  if (inspect.Config.Tty || selection.stdout === false || selection.stderr === false) {
    return undefined
  }
  const since = toEngineTime(last.time)
  const window = { ...selection, since, until: undefined, tail: String(CATCH_UP_TAIL) }
  const ids = new CursorIds(last)
  let pastUntil = false
  const encoder = new LogEventEncoder({
    tty: false,
    eventId: (time) => {
      pastUntil ||= until !== undefined && compareEngineTimes(toEngineTime(time) ?? '0', until) > 0
      return pastUntil ? undefined : ids.next(time)
    },
  })
  const batches: Uint8Array[] = []
  const body = await openLogBody(engine, inspect, window, signal)
  try {
    await pumpLogEvents(body, encoder, async (messages) => batches.push(messages) > 0)
  } catch (error) {
    throw logReadProblem(error)
  }
  if (encoder.messages >= CATCH_UP_TAIL) return undefined
  return concatBytes(batches)
}

/**
 * Sends the lines after `resumeAfter`; answers the cursor of the last line sent (or the given
 * one). The lines of each chunk the engine sends leave as one batch of messages: one write to
 * the client per chunk instead of one per line.
 */
async function deliverLines(
  engine: EngineClient,
  inspect: EngineContainerInspect,
  query: EngineLogQuery,
  resumeAfter: LogCursor | undefined,
  sink: LogEventSink,
): Promise<LogCursor | undefined> {
  let last = resumeAfter
  const ids = new CursorIds(resumeAfter)
  const encoder = new LogEventEncoder({
    tty: inspect.Config.Tty,
    eventId: (time) => ids.next(time),
  })
  const body = await openLogBody(engine, inspect, query, sink.signal)
  try {
    await pumpLogEvents(body, encoder, async (messages) => {
      // The batch ends with the last line named so far
      const batchLast = ids.last
      const sent = await sendReusing(sink, encoder, messages)
      if (sent) last = batchLast
      return sent
    })
    return last
  } catch (error) {
    if (sink.signal.aborted) return last
    throw logReadProblem(error)
  }
}

async function collectLines(lines: ReadableStream<LogLine>, maxLines: number, maxBytes: number) {
  const collected: LogLine[] = []
  let bytes = 0
  const reader = lines.getReader()
  for (;;) {
    const { done, value } = await reader.read()
    if (done) return { lines: collected, truncated: false }
    bytes += utf8Length(value.text)
    if (collected.length === maxLines || (bytes > maxBytes && collected.length > 0)) {
      await reader.cancel()
      return { lines: collected, truncated: true }
    }
    collected.push(value)
  }
}

/** The UTF-8 length of a string; a pure-ASCII line (the common case) is measured without a loop. */
function utf8Length(text: string): number {
  if (!NON_ASCII.test(text)) return text.length
  let bytes = 0
  for (let i = 0; i < text.length; i++) {
    const unit = text.charCodeAt(i)
    if (unit < 0x80) bytes += 1
    else if (unit < 0x800) bytes += 2
    // A surrogate pair is 4 bytes in UTF-8: 2 for each half.
    else if (unit >= 0xd800 && unit <= 0xdfff) bytes += 2
    else bytes += 3
  }
  return bytes
}

const NON_ASCII = /[\u0080-\uffff]/

/** Errors after the engine said 200 arrive in-band or as a broken stream: never echo them. */
export function logReadProblem(error: unknown): unknown {
  if (error instanceof ProblemError) return error
  if (error instanceof Error && error.name === 'AbortError') return error
  const detail =
    error instanceof LogStreamError
      ? 'The Docker Engine reported an error while reading the logs'
      : 'The log stream from the Docker Engine broke off'
  return new ProblemError(502, 'engine-error', { detail, cause: error })
}
