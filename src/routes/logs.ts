/**
 * @module `GET /v1/containers/{id}/logs` and `/logs/stream`: the log as JSON lines, or followed as
 * server-sent events. The reading and following is the engine side's (engine/logs.ts).
 */
import { decodeCursor } from '../engine/log-cursor.ts'
import { followLog, readLogLines } from '../engine/logs.ts'
import { badRequest } from '../errors.ts'
import { engineScope, sentPath } from '../http/engines.ts'
import { eventStreamHead, type StreamDependencies, sseResponse, sseSettings } from '../http/sse.ts'
import { accessContainer } from '../policy/access.ts'
import { resumeFrom, router } from './common.ts'
import { logStreamRoute, logsRoute } from './logs.schemas.ts'

export function logRoutes(deps: StreamDependencies) {
  const { settings } = deps
  const app = router()

  app.openapi(logsRoute, async (c) => {
    const { id } = c.req.valid('param')
    const signal = c.req.raw.signal
    const engine = engineScope(c).client
    const inspect = await accessContainer(engine, c.get('guard'), id, signal)
    const bounds = { maxLines: settings.logsMaxLines, maxBytes: settings.logsMaxBytes }
    return c.json(await readLogLines(engine, inspect, c.req.valid('query'), bounds, signal), 200)
  })

  app.openapi(logStreamRoute, async (c) => {
    const { id } = c.req.valid('param')
    const query = c.req.valid('query')
    const resume = resumeFrom(c.req.valid('header')['last-event-id'], query.cursor)
    const resumeAfter = resume.text === undefined ? undefined : decodeCursor(resume.text)
    if (resume.text !== undefined && !resumeAfter) {
      throw badRequest('The cursor is not one this gateway issued', [
        { name: resume.parameter, reason: 'not a log cursor' },
      ])
    }
    if (query.stdout === false && query.stderr === false) {
      throw badRequest('Nothing to stream', [
        { name: 'query.stdout', reason: 'at least one of stdout and stderr must be true' },
      ])
    }
    // Inspect before answering: a missing container is a 404, not a stream that errors.
    const engine = engineScope(c).client
    const inspect = await accessContainer(engine, c.get('guard'), id, c.req.raw.signal)
    if (c.req.method === 'HEAD') return eventStreamHead()
    return sseResponse(
      sseSettings(deps),
      deps.toProblem,
      async (sink) => {
        const end = await followLog(engine, inspect, query, resumeAfter, sink)
        if (end) await sink.send({ event: 'end', data: JSON.stringify(end) })
      },
      sentPath(c),
    )
  })

  return app
}
