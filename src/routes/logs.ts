/**
 * @module `GET /v1/containers/{id}/logs`: the log history as JSON lines, demultiplexed.
 */
import { createRoute, OpenAPIHono, z } from '@hono/zod-openapi'
import { requireScope } from '../auth/middleware.ts'
import type { GatewaySettings } from '../config.ts'
import type { AppEnv } from '../context.ts'
import type { EngineClient } from '../engine/client.ts'
import { containerPath, inspectContainer } from '../engine/containers.ts'
import { compareEngineTimes, toEngineTime } from '../engine/time.ts'
import { ProblemError } from '../errors.ts'
import {
  DemuxStream,
  type LogLine,
  LogLineStream,
  LogStreamError,
  RawLogStream,
} from '../streams/index.ts'
import {
  BEARER,
  ContainerRefParams,
  ENGINE_PROBLEMS,
  problems,
  QueryBoolean,
  validationHook,
} from './common.ts'

const TIME_HELP =
  'Unix seconds (`1732860000.5`), RFC 3339 (`2026-11-29T03:40:53Z`) or a duration ago (`10m`, `1h30m`)'

const EngineTimeParam = z
  .string()
  .max(40)
  .transform((value, ctx) => {
    const time = toEngineTime(value)
    if (time === undefined) {
      ctx.addIssue({ code: 'custom', message: `expected ${TIME_HELP}` })
      return z.NEVER
    }
    return time
  })
  .openapi({ type: 'string', description: TIME_HELP })

export const LogsQuery = z
  .object({
    stdout: QueryBoolean.optional().openapi({ description: 'Include stdout (default true)' }),
    stderr: QueryBoolean.optional().openapi({ description: 'Include stderr (default true)' }),
    since: EngineTimeParam.optional(),
    until: EngineTimeParam.optional(),
    tail: z
      .union([z.literal('all'), z.string().regex(/^\d{1,7}$/, 'a number of lines or "all"')])
      .optional()
      .openapi({ description: 'Only the last N lines (default all)', example: '100' }),
  })
  .refine((q) => q.stdout !== false || q.stderr !== false, {
    message: 'at least one of stdout and stderr must be true',
    path: ['stdout'],
  })
  .refine((q) => !q.since || !q.until || compareEngineTimes(q.since, q.until) <= 0, {
    message: 'since must not be after until',
    path: ['since'],
  })

export type LogsQuery = z.infer<typeof LogsQuery>

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
        'True when more lines matched than one answer carries; narrow with since/until/tail',
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
  security: BEARER,
  middleware: [requireScope('logs:read')] as const,
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
  ref: string,
  query: LogsQuery & { follow?: boolean },
  signal: AbortSignal,
): Promise<ReadableStream<LogLine>> {
  const inspect = await inspectContainer(engine, ref, signal)
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
  const body = response.body ?? new ReadableStream<Uint8Array>({ start: (c) => c.close() })
  const frames = inspect.Config.Tty
    ? body.pipeThrough(new RawLogStream())
    : body.pipeThrough(new DemuxStream())
  return frames.pipeThrough(new LogLineStream())
}

export function logRoutes(engine: EngineClient, settings: GatewaySettings) {
  const app = new OpenAPIHono<AppEnv>({ defaultHook: validationHook })

  app.openapi(logsRoute, async (c) => {
    const { id } = c.req.valid('param')
    const query = c.req.valid('query')
    const lines = await openLogLines(engine, id, query, c.req.raw.signal)
    const collected: LogLine[] = []
    let truncated = false
    const reader = lines.getReader()
    try {
      for (;;) {
        const { done, value } = await reader.read()
        if (done) break
        if (collected.length === settings.logsMaxLines) {
          truncated = true
          await reader.cancel()
          break
        }
        collected.push(value)
      }
    } catch (error) {
      throw logReadProblem(error)
    }
    return c.json({ lines: collected, truncated }, 200)
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
