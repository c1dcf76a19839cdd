/**
 * @module Health, readiness and version.
 */
import { createRoute, z } from '@hono/zod-openapi'
import type { EngineClient } from '../engine/client.ts'
import { EngineVersion, parseEngine } from '../engine/types.ts'
import { ProblemError } from '../errors.ts'
import { type StateStore, storeUnavailable } from '../store/port.ts'
import { GATEWAY_VERSION } from '../version.ts'
import { ENGINE_PROBLEMS, problems, refuseQuery, router, scoped } from './common.ts'

const HealthSchema = z.object({ status: z.literal('ok') }).openapi('Health')

const ReadySchema = z
  .object({ status: z.literal('ready'), engineApiVersion: z.string() })
  .openapi('Ready')

const SystemVersionSchema = z
  .object({
    gateway: z.object({ version: z.string() }),
    engine: z.object({
      version: z.string(),
      apiVersion: z.string(),
      minApiVersion: z.string().nullable(),
      os: z.string(),
      arch: z.string(),
      kernelVersion: z.string().nullable(),
    }),
    negotiatedApiVersion: z.string().openapi({
      description: 'The Engine API version dockgate speaks to this engine',
      example: '1.41',
    }),
  })
  .openapi('SystemVersion')

const healthRoute = createRoute({
  method: 'get',
  path: '/healthz',
  operationId: 'getHealth',
  tags: ['system'],
  summary: 'The gateway process is up',
  description: 'A liveness probe: answers without asking the engine or a credential.',
  security: [],
  middleware: [refuseQuery],
  responses: {
    200: { description: 'Up', content: { 'application/json': { schema: HealthSchema } } },
    ...problems(400),
  },
})

const readyRoute = createRoute({
  method: 'get',
  path: '/readyz',
  operationId: 'getReadiness',
  tags: ['system'],
  summary: 'The Docker Engine answers /_ping (and the shared state store, when there is one)',
  description:
    'A readiness probe, without a credential: 503 with Retry-After while the engine, or the shared state store (Redis) the gateway is configured with, cannot be reached; the problem says which.',
  security: [],
  middleware: [refuseQuery],
  responses: {
    200: { description: 'Ready', content: { 'application/json': { schema: ReadySchema } } },
    ...problems(400, 503),
  },
})

const versionRoute = createRoute({
  method: 'get',
  path: '/v1/system/version',
  operationId: 'getSystemVersion',
  tags: ['system'],
  summary: 'Versions of the engine and the gateway',
  description: 'The engine’s version and API version, and the gateway’s; cached for a minute.',
  ...scoped('system:read', { noQuery: true }),
  responses: {
    200: {
      description: 'Versions',
      content: { 'application/json': { schema: SystemVersionSchema } },
    },
    ...problems(400, ...ENGINE_PROBLEMS),
  },
})

/** `/version` costs the engine real work (it runs runc), so one answer serves for a while. */
const VERSION_CACHE_MS = 60_000

export function systemRoutes(engine: EngineClient, store?: StateStore) {
  const app = router()
  let cached: { at: number; value: z.infer<typeof SystemVersionSchema> } | undefined

  app.openapi(healthRoute, (c) => c.json({ status: 'ok' as const }, 200))

  app.openapi(readyRoute, async (c) => {
    // The memory store is always there: only a shared one is asked.
    if (store && store.kind !== 'memory') {
      const health = await store.health()
      if (!health.ok) throw storeUnavailable(`Not ready: ${health.reason}`)
    }
    try {
      const { apiVersion } = await engine.ping(c.req.raw.signal)
      return c.json({ status: 'ready' as const, engineApiVersion: apiVersion }, 200)
    } catch (error) {
      if (error instanceof ProblemError && error.status !== 503) {
        throw new ProblemError(503, 'engine-unavailable', {
          detail: error.detail,
          headers: { 'retry-after': '5' },
        })
      }
      throw error
    }
  })

  app.openapi(versionRoute, async (c) => {
    if (!cached || Date.now() - cached.at > VERSION_CACHE_MS) {
      const signal = c.req.raw.signal
      const [raw, negotiated] = await Promise.all([
        engine.json('GET', '/version', { signal }),
        engine.apiVersion(signal),
      ])
      const version = parseEngine(EngineVersion, raw, 'version')
      cached = {
        at: Date.now(),
        value: {
          gateway: { version: GATEWAY_VERSION },
          engine: {
            version: version.Version,
            apiVersion: version.ApiVersion,
            minApiVersion: version.MinAPIVersion ?? null,
            os: version.Os,
            arch: version.Arch,
            kernelVersion: version.KernelVersion ?? null,
          },
          negotiatedApiVersion: negotiated,
        },
      }
    }
    return c.json(cached.value, 200)
  })

  return app
}
