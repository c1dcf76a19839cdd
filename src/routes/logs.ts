/**
 * @module `GET /v1/containers/{id}/logs`: the log history as JSON lines, demultiplexed.
 */
import { createRoute, OpenAPIHono, z } from '@hono/zod-openapi'
import type { EngineClient } from '../engine/client.ts'
import { containerPath, inspectContainer } from '../engine/containers.ts'
import { compareEngineTimes, shiftEngineTime, toEngineTime } from '../engine/time.ts'
import type { EngineContainerInspect } from '../engine/types.ts'
import { badRequest, ProblemError } from '../errors.ts'
import type { AppEnv } from '../http/context.ts'
import { RevokedDataSchema } from '../http/open-streams.ts'
import {
  eventStreamHead,
  type SseSink,
  type StreamDependencies,
  sseResponse,
  sseSettings,
} from '../http/sse.ts'
import { accessContainer } from '../policy/access.ts'
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
import {
  ContainerRefParams,
  ENGINE_PROBLEMS,
  EngineTimeParam,
  ProblemSchema,
  problems,
  QueryBoolean,
  scoped,
  strictQuery,
  validationHook,
} from './common.ts'
import { CursorIds, decodeCursor, type LogCursor } from './log-cursor.ts'

const TailParam = z
  .union([z.literal('all'), z.string().regex(/^\d{1,7}$/, 'a number of lines or "all"')])
  .openapi({ description: 'Only the last N lines (default all)', example: '100' })

export const LogsQuery = strictQuery({
  stdout: QueryBoolean.optional().openapi({ description: 'Include stdout (default true)' }),
  stderr: QueryBoolean.optional().openapi({ description: 'Include stderr (default true)' }),
  since: EngineTimeParam.optional(),
  until: EngineTimeParam.optional(),
  tail: TailParam.optional(),
})
  .refine((q) => q.stdout !== false || q.stderr !== false, {
    message: 'at least one of stdout and stderr must be true',
    path: ['stdout'],
  })
  // Compared only once both converted: an invalid one is reported as itself, not as a crash.
  .refine(
    (q) =>
      !isEngineTime(q.since) || !isEngineTime(q.until) || compareEngineTimes(q.since, q.until) <= 0,
    {
      message: 'since must not be after until',
      path: ['since'],
    },
  )

export type LogsQuery = z.infer<typeof LogsQuery>

/** The engine's `seconds.nanoseconds`, as EngineTimeParam converts every accepted time. */
const isEngineTime = (time: string | undefined): time is string =>
  time !== undefined && /^\d+\.\d{9}$/.test(time)

const LogLineSchema = z
  .object({
    stream: z.enum(['stdout', 'stderr']),
    time: z.string().openapi({
      description: 'The engine timestamp, nanosecond precision',
      example: '2026-11-29T03:40:53.902667431Z',
    }),
    text: z.string().openapi({ description: 'The line without its line ending' }),
  })
  .openapi('LogLine')

const LogsSchema = z
  .object({
    lines: z.array(LogLineSchema),
    truncated: z.boolean().openapi({
      description:
        'True when more lines matched than one answer carries (10,000 lines, or 1 MiB of line text); narrow with since/until/tail',
    }),
  })
  .openapi('Logs')

const logsRoute = createRoute({
  method: 'get',
  path: '/v1/containers/{id}/logs',
  operationId: 'getContainerLogs',
  tags: ['logs'],
  summary: 'Read a container’s logs',
  description:
    'stdout and stderr demultiplexed (TTY containers too), one entry per line; lines over 16 KB are rejoined.',
  ...scoped('logs:read'),
  request: { params: ContainerRefParams, query: LogsQuery },
  responses: {
    200: { description: 'The lines', content: { 'application/json': { schema: LogsSchema } } },
    ...problems(400, 404, ...ENGINE_PROBLEMS),
  },
})

/**
 * Opens the engine's log stream as curated lines. The container's `Config.Tty` decides the
 * format, never the bytes: API 1.41 sends no Content-Type on logs.
 */
export async function openLogLines(
  engine: EngineClient,
  inspect: EngineContainerInspect,
  query: LogsQuery & { follow?: boolean },
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
  query: LogsQuery & { follow?: boolean },
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
  })
  return response.body ?? new ReadableStream<Uint8Array>({ start: (c) => c.close() })
}

export const LogStreamQuery = strictQuery({
  stdout: QueryBoolean.optional().openapi({ description: 'Include stdout (default true)' }),
  stderr: QueryBoolean.optional().openapi({ description: 'Include stderr (default true)' }),
  since: EngineTimeParam.optional(),
  tail: TailParam.optional(),
  cursor: z.string().max(80).optional().openapi({
    description: 'Resume after this line (an event id); the Last-Event-ID header wins',
  }),
  ticket: z.string().max(128).optional().openapi({
    description:
      'A stream ticket (POST /v1/stream-tickets), for EventSource clients that cannot send headers',
  }),
})

const LogEventData = z
  .object({ time: z.string(), text: z.string() })
  .openapi('LogEventData', { description: 'The data of a `stdout` or `stderr` event' })
const LogEndData = z
  .object({
    exitCode: z.number().int().nullable(),
    state: z.string().openapi({ example: 'exited' }),
  })
  .openapi('LogEndData', { description: 'The data of the final `end` event' })

/** Documents the stream as the events it carries; each event's `data` is JSON. */
const LogStreamEvent = z
  .union([
    z.object({ event: z.enum(['stdout', 'stderr']), id: z.string(), data: LogEventData }),
    z.object({ event: z.literal('end'), data: LogEndData }),
    z.object({ event: z.literal('problem'), data: ProblemSchema }),
    z.object({ event: z.literal('shutdown'), data: z.object({ reason: z.string() }) }),
    z.object({ event: z.literal('revoked'), data: RevokedDataSchema }),
  ])
  .openapi('LogStreamEvent', {
    description:
      'One server-sent event of the log stream: `event:` name, `id:` cursor, `data:` JSON',
  })

const logStreamRoute = createRoute({
  method: 'get',
  path: '/v1/containers/{id}/logs/stream',
  operationId: 'streamContainerLogs',
  tags: ['logs'],
  summary: 'Follow a container’s logs as server-sent events',
  description: [
    'One event per line: `event: stdout|stderr`, `data: {"time","text"}` (`LogEventData`), `id:` an',
    'opaque cursor. Reconnect with `Last-Event-ID` (or `?cursor=`) to continue exactly after the last',
    'line received, with the same stdout/stderr selection. When the container stops: `event: end`',
    '(`LogEndData`), then the stream closes; a restart is not followed into the next run. Also',
    '`event: problem` (a `Problem`) when the engine fails mid-stream, `event: shutdown` when the',
    'gateway stops, `event: revoked` (`StreamRevokedData`) when the credential that opened it is',
    'revoked or changed (a config reload), and `: heartbeat` comments.',
  ].join(' '),
  ...scoped('logs:read'),
  request: {
    params: ContainerRefParams,
    query: LogStreamQuery,
    headers: z.object({
      'last-event-id': z
        .string()
        .max(80)
        .optional()
        .openapi({ description: 'Resume after this line' }),
    }),
  },
  responses: {
    200: {
      description: 'The event stream',
      content: {
        'text/event-stream': { schema: LogStreamEvent },
      },
    },
    ...problems(400, 404, ...ENGINE_PROBLEMS),
  },
})

/**
 * Follows the log, numbering lines so a reconnect can continue exactly after the last one.
 *
 * The engine can end a followed log before it has written the container's last message (a line
 * without newline flushed at exit), so once the follow ends, one plain read from the last line
 * delivered catches up on whatever came after it.
 */
async function followLog(
  engine: EngineClient,
  inspect: EngineContainerInspect,
  query: z.infer<typeof LogStreamQuery>,
  resumeAfter: LogCursor | undefined,
  sink: SseSink,
) {
  const follow = resumeAfter
    ? { ...query, since: toEngineTime(resumeAfter.time), tail: undefined, follow: true }
    : { ...query, follow: true }
  const last = await deliverLines(engine, inspect, follow, resumeAfter, sink)
  if (sink.signal.aborted) return
  const after = await inspectContainer(engine, inspect.Id, sink.signal)
  const nextRun = after.State.StartedAt !== inspect.State.StartedAt || after.State.Running
  await catchUp(engine, inspect, query, last, endOfRun(after.State, nextRun), sink)
  if (sink.signal.aborted) return
  const exitCode = nextRun ? null : after.State.ExitCode
  await sink.send({ event: 'end', data: JSON.stringify({ exitCode, state: after.State.Status }) })
}

/**
 * Where the followed run's log ends, for the catch-up read: its last message is written when its
 * output closes, just before the engine records FinishedAt, so a short margin after FinishedAt
 * holds it; a next run (a restart) never starts that soon, and its StartedAt bounds it anyway.
 */
function endOfRun(state: EngineContainerInspect['State'], nextRun: boolean): string | undefined {
  const finished = toEngineTime(state.FinishedAt)
  const started = toEngineTime(state.StartedAt)
  const bounds = [
    finished && shiftEngineTime(finished, RUN_END_MARGIN_NS),
    nextRun && started && shiftEngineTime(started, -1n),
  ].filter((t): t is string => typeof t === 'string')
  return bounds.sort(compareEngineTimes)[0]
}

const RUN_END_MARGIN_NS = 50_000_000n

/** The catch-up read after `last` up to `until`: from the end of the log when that is enough. */
async function catchUp(
  engine: EngineClient,
  inspect: EngineContainerInspect,
  query: z.infer<typeof LogStreamQuery>,
  last: LogCursor | undefined,
  until: string | undefined,
  sink: SseSink,
): Promise<void> {
  const tailed = last && (await readLogEnd(engine, inspect, query, last, until, sink.signal))
  if (tailed) {
    if (tailed.length > 0) await sink.sendEncoded(tailed)
    return
  }
  const plain = {
    ...query,
    since: last ? toEngineTime(last.time) : query.since,
    tail: last ? undefined : query.tail,
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
  query: z.infer<typeof LogStreamQuery>,
  last: LogCursor,
  until: string | undefined,
  signal: AbortSignal,
): Promise<Uint8Array | undefined> {
  if (inspect.Config.Tty || query.stdout === false || query.stderr === false) return undefined
  const since = toEngineTime(last.time)
  const window = { ...query, since, until: undefined, tail: String(CATCH_UP_TAIL) }
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
  query: LogsQuery & { follow?: boolean },
  resumeAfter: LogCursor | undefined,
  sink: SseSink,
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
      const sent = await sink.sendEncoded(messages)
      if (sent) last = batchLast
      return sent
    })
    return last
  } catch (error) {
    if (sink.signal.aborted) return last
    throw logReadProblem(error)
  }
}

/**
 * The lines of one JSON answer: at most `maxLines`, and at most `maxBytes` of line text (the
 * first line always goes), so that however long the log, an answer and what it holds while it is
 * read stay small. Reading stops at the bound: the engine stream is cancelled.
 */
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

export function logRoutes(engine: EngineClient, deps: StreamDependencies) {
  const { settings } = deps
  const app = new OpenAPIHono<AppEnv>({ defaultHook: validationHook })

  app.openapi(logsRoute, async (c) => {
    const { id } = c.req.valid('param')
    const query = c.req.valid('query')
    const signal = c.req.raw.signal
    const lines = await openLogLines(
      engine,
      await accessContainer(engine, c.var.guard, id, signal),
      query,
      signal,
    )
    try {
      return c.json(await collectLines(lines, settings.logsMaxLines, settings.logsMaxBytes), 200)
    } catch (error) {
      throw logReadProblem(error)
    }
  })

  app.openapi(logStreamRoute, async (c) => {
    const { id } = c.req.valid('param')
    const query = c.req.valid('query')
    const cursorText = c.req.valid('header')['last-event-id'] || query.cursor
    const resumeAfter = cursorText === undefined ? undefined : decodeCursor(cursorText)
    if (cursorText !== undefined && !resumeAfter) {
      throw badRequest('The cursor is not one this gateway issued', [
        { name: 'header.last-event-id', reason: 'not a log cursor' },
      ])
    }
    if (query.stdout === false && query.stderr === false) {
      throw badRequest('Nothing to stream', [
        { name: 'query.stdout', reason: 'at least one of stdout and stderr must be true' },
      ])
    }
    // Inspect before answering: a missing container is a 404, not a stream that errors.
    const inspect = await accessContainer(engine, c.var.guard, id, c.req.raw.signal)
    if (c.req.method === 'HEAD') return eventStreamHead()
    return sseResponse(
      sseSettings(deps),
      deps.toProblem,
      (sink) => followLog(engine, inspect, query, resumeAfter, sink),
      c.req.path,
    )
  })

  return app
}

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
