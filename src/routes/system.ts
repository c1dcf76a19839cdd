/**
 * @module Health, readiness and version.
 */
import { createRoute, z } from '@hono/zod-openapi'
import type { Context, TypedResponse } from 'hono'
import { DEFAULT_ENGINE } from '../config.ts'
import type { EngineClient } from '../engine/client.ts'
import { EngineVersion, parseEngine } from '../engine/types.ts'
import { ProblemError } from '../errors.ts'
import type { AppEnv } from '../http/context.ts'
import { type EngineScopes, engineScope } from '../http/engines.ts'
import { type StateStore, storeUnavailable } from '../store/port.ts'
import { GATEWAY_VERSION } from '../version.ts'
import { ENGINE_PROBLEMS, problems, refuseQuery, router, scoped } from './common.ts'

const HealthSchema = z.object({ status: z.literal('ok') }).openapi('Health')

const EngineReadinessSchema = z
  .object({
    name: z.string().openapi({ example: 'default' }),
    ready: z.boolean().openapi({ description: 'Whether the engine answers /_ping' }),
    apiVersion: z.string().nullable().openapi({ description: 'Its API version, when it answers' }),
  })
  .openapi('EngineReadiness')

const ReadySchema = z
  .object({
    status: z.literal('ready'),
    engineApiVersion: z.string().openapi({ description: 'The `default` engine’s API version' }),
    engines: z.array(EngineReadinessSchema).openapi({
      description:
        'Every configured engine: one that does not answer makes only its own routes answer 503',
    }),
  })
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
  summary:
    'The default Docker Engine answers /_ping (and the shared state store, when there is one); each engine’s state',
  description:
    'A readiness probe, without a credential: 503 with Retry-After while the `default` engine, or the shared state store (Redis) the gateway is configured with, cannot be reached; the problem says which. Otherwise 200, listing whether each configured engine answers: another engine that does not answer makes only its own routes answer 503.',
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

type SystemVersion = z.infer<typeof SystemVersionSchema>

/**
 * A cached answer and its JSON, serialised once per engine answer instead of once per request:
 * `JSON.stringify` of it was ~11k of the ~170k instructions of a version request under callgrind
 * (bench/README.md, "Per-request CPU (issue 17, branch smallreq2)").
 */
interface CachedVersion {
  readonly at: number
  readonly json: string
}

/** What `c.json(value, 200)` answers for the value `json` serialises: the same body and headers. */
const versionAnswer = (c: Context<AppEnv>, json: string) =>
  c.body(json, 200, { 'Content-Type': 'application/json' }) as unknown as TypedResponse<
    SystemVersion,
    200,
    'json'
  >

/** Every engine's `/_ping`, once each: the default engine's answer, and every engine's state. */
function probeEngines(scopes: EngineScopes) {
  const pings = [...scopes.values()].map((scope) => ({
    name: scope.name,
    ping: scope.client.ping(),
  }))
  const engines = Promise.all(
    pings.map(({ name, ping }) =>
      ping.then(
        ({ apiVersion }) => ({ name, ready: true, apiVersion }),
        () => ({ name, ready: false, apiVersion: null }),
      ),
    ),
  )
  // The default engine is always among the scopes.
  const own = pings.find((p) => p.name === DEFAULT_ENGINE)!.ping
  return { own, engines }
}

export function systemRoutes(scopes: EngineScopes, store?: StateStore) {
  const app = router()
  /** By engine name: each engine answers its own versions. */
  const cache = new Map<string, CachedVersion>()

  app.openapi(healthRoute, (c) => c.json({ status: 'ok' as const }, 200))

  /**
   * Each engine pinged once for every probe under way: `/readyz` needs no credential, so however
   * many ask at once, each engine gets one `/_ping` (bounded by its own timeout, not by one
   * prober's leaving).
   */
  let probing: ReturnType<typeof probeEngines> | undefined
  const probe = () => {
    if (probing) return probing
    const current = probeEngines(scopes)
    probing = current
    void current.own.then(clear, clear)
    function clear() {
      if (probing === current) probing = undefined
    }
    return current
  }

  app.openapi(readyRoute, async (c) => {
    // The memory store is always there: only a shared one is asked.
    if (store && store.kind !== 'memory') {
      const health = await store.health()
      if (!health.ok) throw storeUnavailable(`Not ready: ${health.reason}`)
    }
    const { own, engines } = probe()
    try {
      const { apiVersion } = await own
      return c.json(
        { status: 'ready' as const, engineApiVersion: apiVersion, engines: await engines },
        200,
      )
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

  /** Asks the engine for its versions and keeps the answer's JSON. */
  const refresh = async (name: string, engine: EngineClient, signal: AbortSignal) => {
    const [raw, negotiated] = await Promise.all([
      engine.json('GET', '/version', { signal }),
      engine.apiVersion(signal),
    ])
    const version = parseEngine(EngineVersion, raw, 'version')
    const value: SystemVersion = {
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
    }
    const cached = { at: Date.now(), json: JSON.stringify(value) }
    cache.set(name, cached)
    return cached
  }

  // Not async: a cached answer goes without a promise of its own.
  app.openapi(versionRoute, (c) => {
    const { name, client } = engineScope(c)
    const cached = cache.get(name)
    if (cached && Date.now() - cached.at <= VERSION_CACHE_MS) return versionAnswer(c, cached.json)
    return refresh(name, client, c.req.raw.signal).then(({ json }) => versionAnswer(c, json))
  })

  return app
}
