/**
 * @module The log routes' contract: the queries they accept and the lines and events they answer.
 */
import { createRoute, z } from '@hono/zod-openapi'
import { TICKET_MAX_LENGTH } from '../auth/tickets.ts'
import { compareEngineTimes } from '../engine/time.ts'
import { RevokedDataSchema } from '../http/open-streams.schemas.ts'
import {
  ContainerRefParams,
  ENGINE_PROBLEMS,
  EngineTimeParam,
  ProblemSchema,
  problems,
  QueryBoolean,
  scoped,
  strictQuery,
} from './common.ts'

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

export const logsRoute = createRoute({
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

export const LogStreamQuery = strictQuery({
  stdout: QueryBoolean.optional().openapi({ description: 'Include stdout (default true)' }),
  stderr: QueryBoolean.optional().openapi({ description: 'Include stderr (default true)' }),
  since: EngineTimeParam.optional(),
  tail: TailParam.optional(),
  cursor: z.string().max(80).optional().openapi({
    description: 'Resume after this line (an event id); the Last-Event-ID header wins',
  }),
  ticket: z.string().max(TICKET_MAX_LENGTH).optional().openapi({
    description:
      'A stream ticket (POST /v1/stream-tickets), for EventSource clients that cannot send headers',
  }),
})

const LogEventData = z
  .object({ time: z.string(), text: z.string() })
  .openapi('LogEventData', { description: 'The data of a `stdout` or `stderr` event' })
const LogEndData = z
  .object({
    exitCode: z.number().int().nullable().openapi({
      description:
        'The exit code of the run that ended; null when the container runs again (a restart) or never ran',
    }),
    state: z.string().openapi({
      example: 'exited',
      description:
        'The container’s state once the run ended (`exited`, `restarting`…), `removing` while it is removed as it stopped (`AutoRemove`, a forced removal), and `removed` once it is gone: its exit code is then its `die` event’s, null when the engine no longer holds that event',
    }),
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

export const logStreamRoute = createRoute({
  method: 'get',
  path: '/v1/containers/{id}/logs/stream',
  operationId: 'streamContainerLogs',
  tags: ['logs'],
  summary: 'Follow a container’s logs as server-sent events',
  description: [
    'One event per line: `event: stdout|stderr`, `data: {"time","text"}` (`LogEventData`), `id:` an',
    'opaque cursor. Reconnect with `Last-Event-ID` (or `?cursor=`) to continue exactly after the last',
    'line received, with the same stdout/stderr selection. When the container stops: `event: end`',
    '(`LogEndData`), then the stream closes; a restart is not followed into the next run, and a',
    'container removed as it stops ends with `state` `removing` or `removed`. Also',
    '`event: problem` (a `Problem`) when the engine fails mid-stream, `event: shutdown` when the',
    'gateway stops, `event: revoked` (`StreamRevokedData`) when the credential that opened it is',
    'revoked or changed (a config reload), and `: heartbeat` comments.',
  ].join(' '),
  ...scoped('logs:read', { eventStream: true }),
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
