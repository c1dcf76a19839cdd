/**
 * @module `GET /v1/services/{id}/logs` and `/logs/stream`: a service's log, every task on every
 * node, as JSON lines or followed as server-sent events that resume exactly
 * (`engine/service-log-cursor.ts`). The reading and following is the engine side's.
 */
import { createRoute, z } from '@hono/zod-openapi'
import { TICKET_MAX_LENGTH } from '../auth/tickets.ts'
import { decodeServiceCursor, MAX_CURSOR_LENGTH } from '../engine/service-log-cursor.ts'
import { followServiceLog, readServiceLogLines } from '../engine/service-logs.ts'
import { badRequest } from '../errors.ts'
import { engineScope, sentPath } from '../http/engines.ts'
import { RevokedDataSchema } from '../http/open-streams.schemas.ts'
import { eventStreamHead, type StreamDependencies, sseResponse, sseSettings } from '../http/sse.ts'
import type { ServiceOwners } from '../model/services.ts'
import { accessService } from '../policy/services.ts'
import {
  ENGINE_PROBLEMS,
  EngineTimeParam,
  ProblemSchema,
  problems,
  QueryBoolean,
  resumeFrom,
  router,
  scoped,
  strictQuery,
} from './common.ts'
import { ServiceRefParams } from './services.schemas.ts'

const TailParam = z
  .union([z.literal('all'), z.string().regex(/^\d{1,7}$/, 'a number of lines or "all"')])
  .openapi({ description: 'Only the last N lines of each task (default all)', example: '100' })

const streams = {
  stdout: QueryBoolean.optional().openapi({ description: 'Include stdout (default true)' }),
  stderr: QueryBoolean.optional().openapi({ description: 'Include stderr (default true)' }),
}
const oneStream = {
  message: 'at least one of stdout and stderr must be true',
  path: ['stdout'],
}

const ServiceLogsQuery = strictQuery({
  ...streams,
  since: EngineTimeParam.optional(),
  tail: TailParam.optional(),
}).refine((q) => q.stdout !== false || q.stderr !== false, oneStream)

const ServiceLogLineSchema = z
  .object({
    stream: z.enum(['stdout', 'stderr']),
    time: z.string().openapi({ example: '2026-11-29T03:40:53.902667431Z' }),
    task: z.string().openapi({ description: 'The id of the task that wrote it' }),
    node: z.string().openapi({ description: 'The id of the node the task ran on' }),
    text: z.string(),
  })
  .openapi('ServiceLogLine')

const ServiceLogsSchema = z
  .object({
    lines: z.array(ServiceLogLineSchema).openapi({
      description:
        'In the order the manager gathered them: each task’s lines in order, the tasks’ interleaved',
    }),
    truncated: z.boolean(),
  })
  .openapi('ServiceLogs')

const logsRoute = createRoute({
  method: 'get',
  path: '/v1/services/{id}/logs',
  operationId: 'getServiceLogs',
  tags: ['services'],
  summary: 'Read a service’s logs',
  description:
    'The lines of every task on every node, each saying its task and node. At most 10,000 lines or 1 MiB of text (`truncated`).',
  ...scoped('logs:read'),
  request: { params: ServiceRefParams, query: ServiceLogsQuery },
  responses: {
    200: {
      description: 'The lines',
      content: { 'application/json': { schema: ServiceLogsSchema } },
    },
    ...problems(400, 404, 409, ...ENGINE_PROBLEMS),
  },
})

const CursorText = z.string().max(MAX_CURSOR_LENGTH)

const ServiceLogStreamQuery = strictQuery({
  ...streams,
  since: EngineTimeParam.optional(),
  tail: TailParam.optional(),
  cursor: CursorText.optional().openapi({
    description: 'Resume after this line (an event id); the Last-Event-ID header wins',
  }),
  ticket: z.string().max(TICKET_MAX_LENGTH).optional().openapi({
    description:
      'A stream ticket (POST /v1/stream-tickets), for EventSource clients that cannot send headers',
  }),
}).refine((q) => q.stdout !== false || q.stderr !== false, oneStream)

const ServiceLogEventData = z
  .object({ time: z.string(), task: z.string(), node: z.string(), text: z.string() })
  .openapi('ServiceLogEventData', { description: 'The data of a `stdout` or `stderr` event' })

const ServiceLogStreamEvent = z
  .union([
    z.object({ event: z.enum(['stdout', 'stderr']), id: z.string(), data: ServiceLogEventData }),
    z.object({ event: z.literal('end'), data: z.object({ reason: z.literal('removed') }) }),
    z.object({ event: z.literal('problem'), data: ProblemSchema }),
    z.object({ event: z.literal('shutdown'), data: z.object({ reason: z.string() }) }),
    z.object({ event: z.literal('revoked'), data: RevokedDataSchema }),
  ])
  .openapi('ServiceLogStreamEvent', {
    description: 'One server-sent event of a service’s log stream',
  })

const logStreamRoute = createRoute({
  method: 'get',
  path: '/v1/services/{id}/logs/stream',
  operationId: 'streamServiceLogs',
  tags: ['services'],
  summary: 'Follow a service’s logs as server-sent events',
  description: [
    'One event per line of any task on any node: `event: stdout|stderr`,',
    '`data: {"time","task","node","text"}`, `id:` a cursor that names the last line delivered of',
    'every task. Reconnect with `Last-Event-ID` (or `?cursor=`) to continue exactly after it:',
    'no line repeated, none missed, whichever node it came from. When the service is removed:',
    '`event: end`; also `problem`, `shutdown`, `revoked` and `: heartbeat` as every stream.',
  ].join(' '),
  ...scoped('logs:read', { eventStream: true }),
  request: {
    params: ServiceRefParams,
    query: ServiceLogStreamQuery,
    headers: z.object({
      'last-event-id': CursorText.optional().openapi({ description: 'Resume after this line' }),
    }),
  },
  responses: {
    200: {
      description: 'The event stream',
      content: { 'text/event-stream': { schema: ServiceLogStreamEvent } },
    },
    ...problems(400, 404, 409, ...ENGINE_PROBLEMS),
  },
})

export function serviceLogRoutes(deps: StreamDependencies) {
  const { settings } = deps
  const app = router()

  app.openapi(logsRoute, async (c) => {
    const { id } = c.req.valid('param')
    const signal = c.req.raw.signal
    const { client: engine, services } = engineScope(c)
    const service = seen(services, await accessService(engine, c.get('guard'), id, signal))
    const bounds = { maxLines: settings.logsMaxLines, maxBytes: settings.logsMaxBytes }
    const query = c.req.valid('query')
    return c.json(await readServiceLogLines(engine, service, query, bounds, signal), 200)
  })

  app.openapi(logStreamRoute, async (c) => {
    const { id } = c.req.valid('param')
    const { cursor, ticket: _ticket, ...query } = c.req.valid('query')
    const resume = resumeFrom(c.req.valid('header')['last-event-id'], cursor)
    const resumeAfter = resume.text === undefined ? undefined : decodeServiceCursor(resume.text)
    if (resume.text !== undefined && !resumeAfter) {
      throw badRequest('The cursor is not one this gateway issued', [
        { name: resume.parameter, reason: 'not a service log cursor' },
      ])
    }
    // Inspect before answering: a missing service is a 404, not a stream that errors.
    const { client: engine, services } = engineScope(c)
    const service = seen(
      services,
      await accessService(engine, c.get('guard'), id, c.req.raw.signal),
    )
    if (c.req.method === 'HEAD') return eventStreamHead()
    return sseResponse(
      sseSettings(deps),
      deps.toProblem,
      async (sink) => {
        const end = await followServiceLog(engine, service, query, resumeAfter, sink)
        if (end) await sink.send({ event: 'end', data: JSON.stringify(end) })
      },
      sentPath(c),
    )
  })

  return app
}

/** Remembers who owns the service, for the events stream; answers it. */
function seen(owners: ServiceOwners, service: Awaited<ReturnType<typeof accessService>>) {
  owners.put(service.ID, service.Spec.Name, service.Spec.Labels ?? {})
  return service
}
