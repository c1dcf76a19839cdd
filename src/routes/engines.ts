/**
 * @module `GET /v1/engines`: the engines the caller may use and their state; and the OpenAPI
 * document's `/v1/engines/{engine}/…` operations, the same routes as `/v1/…` on one engine.
 */
import { createRoute, type OpenAPIHono, type RouteConfig, z } from '@hono/zod-openapi'
import { hasScope, isAdmin, type Principal } from '../domain/principal.ts'
import { listContainers } from '../engine/containers.ts'
import type { AppEnv } from '../http/context.ts'
import { type EngineScope, type EngineScopes, mayUse } from '../http/engines.ts'
import { canSee, ownerFilter } from '../policy/access.ts'
import { ENGINE_PROBLEMS, problems, router, scoped } from './common.ts'

const SwarmRoleSchema = z.enum(['inactive', 'pending', 'manager', 'worker', 'error', 'locked'])

const EngineSummarySchema = z
  .object({
    name: z.string().openapi({ example: 'default' }),
    reachable: z.boolean().openapi({ description: 'Whether the engine answered just now' }),
    version: z
      .string()
      .nullable()
      .openapi({ description: 'The engine’s version', example: '20.10.24' }),
    apiVersion: z.string().nullable().openapi({
      description: 'The Engine API version the gateway speaks to it (negotiated per engine)',
      example: '1.41',
    }),
    swarm: SwarmRoleSchema.nullable().openapi({
      description:
        'Its Swarm role: `manager` or `worker` in a swarm, else its node state (`inactive` when in none)',
    }),
    containers: z.number().int().nullable().openapi({
      description:
        'The containers on it the caller may see, in any state (null without `containers:read`, or when unreachable)',
    }),
  })
  .openapi('EngineSummary')

const EngineListSchema = z.object({ engines: z.array(EngineSummarySchema) }).openapi('EngineList')

const listEnginesRoute = createRoute({
  method: 'get',
  path: '/v1/engines',
  operationId: 'listEngines',
  tags: ['engines'],
  summary: 'The engines the caller may use',
  description:
    'Every configured engine the caller’s policy (`engines`) allows, in name order, with whether it answers, its versions, its Swarm role and how many of its containers the caller may see. Each engine’s routes are `/v1/engines/{engine}/…`; `/v1/…` is the `default` engine.',
  ...scoped('system:read', { noQuery: true }),
  responses: {
    200: {
      description: 'The engines',
      content: { 'application/json': { schema: EngineListSchema } },
    },
    ...problems(400, ...ENGINE_PROBLEMS),
  },
})

/** What `/info` says that the list shows. */
const EngineInfo = z.object({
  ServerVersion: z.string(),
  Swarm: z
    .object({ LocalNodeState: z.string(), ControlAvailable: z.boolean().optional() })
    .optional(),
})

const INFO_TIMEOUT_MS = 5_000

export function engineRoutes(scopes: EngineScopes) {
  const app = router()

  app.openapi(listEnginesRoute, async (c) => {
    const principal = c.get('principal')
    const signal = c.req.raw.signal
    const usable = [...scopes.values()]
      .filter((scope) => mayUse(principal, scope.name))
      .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
    const engines = await Promise.all(usable.map((scope) => summary(scope, principal, signal)))
    return c.json({ engines }, 200)
  })

  return app
}

async function summary(scope: EngineScope, principal: Principal, signal: AbortSignal) {
  const { client, model } = scope
  try {
    const [raw, apiVersion] = await Promise.all([
      client.json('GET', '/info', { signal, timeoutMs: INFO_TIMEOUT_MS }),
      client.apiVersion(signal),
    ])
    const info = EngineInfo.parse(raw)
    let containers: number | null = null
    if (hasScope(principal, 'containers:read')) {
      const visible = isAdmin(principal)
        ? undefined
        : (labels: Readonly<Record<string, string>>) => canSee(principal, labels)
      const owner = ownerFilter(principal)
      const filters = { all: true, label: owner ? [owner] : [] }
      containers = model?.ready
        ? model.list(filters, visible).length
        : (await listContainers(client, filters, signal, visible)).length
    }
    return {
      name: scope.name,
      reachable: true,
      version: info.ServerVersion,
      apiVersion,
      swarm: swarmRole(info.Swarm),
      containers,
    }
  } catch {
    // Unreachable, or answering what it should not: either way not usable now.
    return {
      name: scope.name,
      reachable: false,
      version: null,
      apiVersion: null,
      swarm: null,
      containers: null,
    }
  }
}

function swarmRole(swarm: z.infer<typeof EngineInfo>['Swarm']): z.infer<typeof SwarmRoleSchema> {
  const state = swarm?.LocalNodeState ?? 'inactive'
  if (state === 'active') return swarm?.ControlAvailable ? 'manager' : 'worker'
  const known = SwarmRoleSchema.safeParse(state)
  return known.success ? known.data : 'error'
}

const EngineParams = z.object({
  engine: z
    .string()
    .regex(/^[a-z0-9][a-z0-9_-]{0,62}$/, 'an engine name')
    .openapi({
      param: { name: 'engine', in: 'path' },
      description:
        'A configured engine’s name (`default`: the engine of the routes without this prefix); one the caller may not use is 404, as an unknown one',
      example: 'default',
    }),
})

/** Operations that use no engine: no engine to be refused (404) on their plain path. */
const ENGINE_FREE = new Set(['/v1/stream-tickets'])

/**
 * Adds every `/v1/…` operation again as `/v1/engines/{engine}/…` (operation id `…OnEngine`),
 * as the router serves it: the same route, on the engine the path names. `/v1/events`' `engine`
 * query parameter, which merges engines, is not on an engine's own path. Every operation that
 * uses an engine may answer 404: an engine the caller may not use (`default` too) is unknown.
 */
export function documentEnginePrefixes(registry: OpenAPIHono<AppEnv>['openAPIRegistry']) {
  for (const definition of [...registry.definitions]) {
    if (definition.type !== 'route') continue
    const route: RouteConfig = definition.route
    if (!route.path.startsWith('/v1/') || route.path.startsWith('/v1/engines')) continue
    if (!ENGINE_FREE.has(route.path) && !route.responses[404]) {
      Object.assign(route.responses, problems(404))
    }
    const request = route.request ?? {}
    const params = request.params as z.ZodObject | undefined
    const query = request.query as z.ZodObject | undefined
    registry.registerPath({
      ...route,
      path: `/v1/engines/{engine}${route.path.slice('/v1'.length)}`,
      operationId: `${route.operationId}OnEngine`,
      summary: `${route.summary} (one engine)`,
      request: {
        ...request,
        params: params ? EngineParams.extend(params.shape) : EngineParams,
        ...(query?.shape.engine ? { query: query.omit({ engine: true }) } : {}),
      },
      responses: { ...problems(404), ...route.responses },
    })
  }
}
