/**
 * @module The schemas of the stats routes: the curated snapshot and the stream's events.
 */

import { z } from '@hono/zod-openapi'
import { TICKET_MAX_LENGTH } from '../auth/tickets.ts'
import { RevokedDataSchema } from '../http/open-streams.schemas.ts'
import { ProblemSchema, strictQuery } from './common.ts'

const Bytes = z.number().int().min(0)
const Percent = z.number().min(0)

export const ContainerStatsSchema = z
  .object({
    running: z.boolean().openapi({
      description:
        'False when the container is not running: the engine has no sample, every value is 0',
    }),
    time: z.string().nullable().openapi({
      description:
        'When the engine took the sample (RFC 3339, nanosecond precision); null when not running',
      example: '2026-11-29T06:00:23.958323046Z',
    }),
    cpuPercent: Percent.openapi({
      description:
        'CPU use over the last ~1 s as `docker stats` computes it: percent of one CPU, so up to ' +
        '100 × the online CPUs; rounded to 0.01',
      example: 49.98,
    }),
    memory: z.object({
      used: Bytes.openapi({
        description:
          'Bytes in use without the inactive page cache (usage − total_inactive_file on ' +
          'cgroup v1, − inactive_file on v2), as `docker stats` shows it',
      }),
      limit: Bytes.openapi({
        description:
          'The memory limit in bytes; the host’s memory when the container has none; 0 when unknown',
      }),
      percent: Percent.openapi({
        description: 'used / limit × 100, rounded to 0.01; 0 without a limit',
      }),
    }),
    pids: z.object({
      current: z.number().int().min(0),
      limit: z.number().int().min(1).nullable().openapi({ description: 'null when unlimited' }),
    }),
    network: z
      .object({ rxBytes: Bytes, txBytes: Bytes })
      .openapi({ description: 'Summed over the container’s networks; 0 without networks' }),
    blockIo: z.object({ readBytes: Bytes, writeBytes: Bytes }).openapi({
      description: 'Bytes read and written on block devices; 0 where the engine reports none',
    }),
  })
  .openapi('ContainerStats', { description: 'A curated resource-usage sample of one container' })

export const StatsStreamQuery = strictQuery({
  ticket: z.string().max(TICKET_MAX_LENGTH).optional().openapi({
    description:
      'A stream ticket (POST /v1/stream-tickets), for EventSource clients that cannot send headers',
  }),
})

const StatsEndSchema = z
  .object({
    state: z.string().openapi({
      description:
        'The container’s state when the stream ended (`exited`, …); `removing` or `removed` when ' +
        'it was removed meanwhile',
      example: 'exited',
    }),
    exitCode: z.number().int().nullable().openapi({
      description:
        'The exit code of the run that ended (state `exited`, `dead`, `restarting` or `removing`; `removed`: its `die` event’s, while the engine holds that event); null otherwise',
    }),
  })
  .openapi('StatsEndData', { description: 'The data of the final `end` event of a stats stream' })

/** Documents the stream as the events it carries; each event's `data` is JSON. */
export const StatsStreamEvent = z
  .union([
    z.object({ event: z.literal('stats'), data: ContainerStatsSchema }),
    z.object({ event: z.literal('end'), data: StatsEndSchema }),
    z.object({ event: z.literal('problem'), data: ProblemSchema }),
    z.object({ event: z.literal('shutdown'), data: z.object({ reason: z.string() }) }),
    z.object({ event: z.literal('revoked'), data: RevokedDataSchema }),
  ])
  .openapi('StatsStreamEvent', {
    description: 'One server-sent event of the stats stream: `event:` name, `data:` JSON',
  })
