/**
 * @module `/v1/services`: Swarm services the gateway builds itself, their scale and their tasks.
 * On an engine that is not a Swarm manager every route answers 409 `not-a-swarm-manager`.
 */
import { createRoute, type z } from '@hono/zod-openapi'
import type { GatewaySettings } from '../config.ts'
import { OWNER_LABEL } from '../domain/containers.ts'
import type { Guard } from '../domain/guard.ts'
import { isAdmin } from '../domain/principal.ts'
import { refuseSecretSelectors } from '../domain/redaction.ts'
import { serviceSpec, withReplicas } from '../domain/services.ts'
import { type EngineClient, refusedAs } from '../engine/client.ts'
import {
  inspectService,
  listServices,
  listTasks,
  replicasOf,
  servicePath,
} from '../engine/services.ts'
import { badRequest, ProblemError } from '../errors.ts'
import { engineScope, sentPath } from '../http/engines.ts'
import type { ServiceOwners } from '../model/services.ts'
import { canSee } from '../policy/access.ts'
import type { QuotaReservations } from '../policy/quota.ts'
import { accessService, checkReplicaQuota, ownedCount } from '../policy/services.ts'
import { MemoryStore } from '../store/memory.ts'
import { ENGINE_PROBLEMS, problems, router, scoped } from './common.ts'
import { checkCreatePolicy, refuseReservedLabels } from './containers.create.ts'
import {
  CreateServiceBody,
  ListServicesQuery,
  ScaleServiceBody,
  ServiceListSchema,
  ServiceRefParams,
  ServiceSchema,
  TaskListSchema,
} from './services.schemas.ts'
import { toService, toTask } from './services.view.ts'

const TAGS = ['services']
const read = scoped('containers:read')
const readNoQuery = scoped('containers:read', { noQuery: true })
const writeNoQuery = scoped('containers:write', { noQuery: true })
const json = <T extends z.ZodType>(schema: T, description: string) => ({
  description,
  content: { 'application/json': { schema } },
})
const SWARM_PROBLEMS = [409, ...ENGINE_PROBLEMS] as const

const listRoute = createRoute({
  method: 'get',
  path: '/v1/services',
  operationId: 'listServices',
  tags: TAGS,
  summary: 'List services',
  description: 'The services the caller may see (its own unless admin).',
  ...read,
  request: { query: ListServicesQuery },
  responses: {
    200: json(ServiceListSchema, 'Services'),
    ...problems(400, ...SWARM_PROBLEMS),
  },
})

const createServiceRoute = createRoute({
  method: 'post',
  path: '/v1/services',
  operationId: 'createService',
  tags: TAGS,
  summary: 'Create a Swarm service',
  description:
    'The container-create fields plus `replicas`, strictly. The gateway builds the task template ' +
    'itself: all capabilities dropped, no mounts, no published ports, no networks unless the ' +
    'policy names them, bounded memory, CPU and pids, json-file logs with a size cap, at most 3 ' +
    'restarts of a failed task, and the owner label on the service and its containers. Every ' +
    'replica counts towards the client’s maxContainers.',
  ...writeNoQuery,
  request: {
    body: { required: true, content: { 'application/json': { schema: CreateServiceBody } } },
  },
  responses: {
    201: json(ServiceSchema, 'Created'),
    ...problems(400, 409, 413, 415, ...ENGINE_PROBLEMS),
  },
})

const inspectRoute = createRoute({
  method: 'get',
  path: '/v1/services/{id}',
  operationId: 'getService',
  tags: TAGS,
  summary: 'Inspect a service',
  description: 'The curated view of one service; env values and secret-looking labels redacted.',
  ...readNoQuery,
  request: { params: ServiceRefParams },
  responses: {
    200: json(ServiceSchema, 'The service'),
    ...problems(400, 404, ...SWARM_PROBLEMS),
  },
})

const scaleRoute = createRoute({
  method: 'patch',
  path: '/v1/services/{id}',
  operationId: 'scaleService',
  tags: TAGS,
  summary: 'Scale a service',
  description:
    '`replicas` is the one field that can change; more replicas count towards maxContainers.',
  ...writeNoQuery,
  request: {
    params: ServiceRefParams,
    body: { required: true, content: { 'application/json': { schema: ScaleServiceBody } } },
  },
  responses: {
    200: json(ServiceSchema, 'The service as the engine now has it'),
    ...problems(400, 404, 409, 413, 415, ...ENGINE_PROBLEMS),
  },
})

const deleteRoute = createRoute({
  method: 'delete',
  path: '/v1/services/{id}',
  operationId: 'deleteService',
  tags: TAGS,
  summary: 'Remove a service',
  description: 'Removes it; the engine then stops and removes its tasks.',
  ...writeNoQuery,
  request: { params: ServiceRefParams },
  responses: {
    204: { description: 'Removed' },
    ...problems(400, 404, 413, ...SWARM_PROBLEMS),
  },
})

const tasksRoute = createRoute({
  method: 'get',
  path: '/v1/services/{id}/tasks',
  operationId: 'listServiceTasks',
  tags: TAGS,
  summary: 'List a service’s tasks',
  description: 'Its tasks, newest first, with the node each was placed on.',
  ...readNoQuery,
  request: { params: ServiceRefParams },
  responses: {
    200: json(TaskListSchema, 'The tasks'),
    ...problems(400, 404, ...SWARM_PROBLEMS),
  },
})

const CREATE_REFUSED = {
  400: "The Docker Engine refused the service's configuration",
  409: 'The name is already in use by another service',
}
const SCALE_REFUSED = {
  400: 'The Docker Engine refused the new number of replicas',
  409: 'The service changed meanwhile: try again',
}

/** Remembers who owns the service, for the events stream; answers it. */
function seen<T extends { ID: string; Spec: { Name: string; Labels?: unknown } }>(
  owners: ServiceOwners,
  service: T,
): T {
  owners.put(service.ID, service.Spec.Name, (service.Spec.Labels ?? {}) as Record<string, string>)
  return service
}

/**
 * Every service answered about is put in its engine's `services` (`EngineScope`): where the
 * events stream learns who owns a service (API 1.41's service events carry no labels).
 * @param quota where a principal's count and its change are made one step (shared with
 * containers: replicas and containers count together).
 */
export function serviceRoutes(
  settings: GatewaySettings,
  quota: QuotaReservations = new MemoryStore(),
) {
  const app = router()

  app.openapi(listRoute, async (c) => {
    const { label } = c.req.valid('query')
    refuseSecretSelectors(label, settings.secretLabelPatterns, 'query.label')
    const { principal, auditMode } = c.get('guard')
    const own = isAdmin(principal) || auditMode || principal.policy.visibleLabels.length > 0
    const selectors = own ? label : [...label, `${OWNER_LABEL}=${principal.id}`]
    const { client: engine, services: owners } = engineScope(c)
    const services = await listServices(engine, selectors, c.req.raw.signal)
    const visible = services.filter(
      (s) => isAdmin(principal) || auditMode || canSee(principal, s.Spec.Labels ?? {}),
    )
    if (auditMode && services.some((s) => !canSee(principal, s.Spec.Labels ?? {}))) {
      c.get('guard').record({
        outcome: 'allowed',
        decision: 'would_deny',
        reason: 'not-owner',
        target: null,
        status: null,
      })
    }
    visible.sort((a, b) => b.CreatedAt.localeCompare(a.CreatedAt))
    return c.json({ services: visible.map((s) => toService(seen(owners, s), settings)) }, 200)
  })

  app.openapi(createServiceRoute, async (c) => {
    const body = c.req.valid('json')
    const guard = c.get('guard')
    const signal = c.req.raw.signal
    refuseReservedLabels(body.labels)
    checkNetworks(guard, body.networks ?? [])
    const resources = checkCreatePolicy(guard, body)
    const owner = c.get('principal').id
    const { client: engine, services: owners } = engineScope(c)
    const spec = serviceSpec(
      body,
      owner,
      resources,
      await imageIdOnManager(engine, body.image, signal),
    )
    const createOnEngine = async () => {
      const name = body.name
      if (name !== undefined) owners.expect(name, spec.Labels)
      // Not cancelled when the client leaves, as a container's create (routes/containers.ts).
      return engine.json('POST', '/services/create', { body: spec }).catch((error: unknown) => {
        if (name !== undefined) owners.unexpect(name)
        return refusedAs(CREATE_REFUSED)(error)
      })
    }
    const answer = isAdmin(c.get('principal'))
      ? await createOnEngine()
      : await quota.exclusive(owner, async () => {
          checkReplicaQuota(guard, await ownedCount(engine, owner, signal), body.replicas)
          return createOnEngine()
        })
    const id = (answer as { ID?: unknown } | undefined)?.ID
    if (typeof id !== 'string') {
      throw new ProblemError(502, 'engine-error', {
        detail: 'The Docker Engine sent a malformed answer',
      })
    }
    // Before the inspect: the sooner the events stream knows whose it is, the fewer it holds back.
    owners.put(id, body.name ?? '', spec.Labels)
    const service = seen(owners, await inspectService(engine, id, signal))
    c.header('location', `${sentPath(c)}/${service.ID}`)
    return c.json(toService(service, settings), 201)
  })

  app.openapi(inspectRoute, async (c) => {
    const { id } = c.req.valid('param')
    const { client: engine, services: owners } = engineScope(c)
    const service = await accessService(engine, c.get('guard'), id, c.req.raw.signal)
    return c.json(toService(seen(owners, service), settings), 200)
  })

  app.openapi(scaleRoute, async (c) => {
    const { id: ref } = c.req.valid('param')
    const { replicas } = c.req.valid('json')
    const guard = c.get('guard')
    const signal = c.req.raw.signal
    const { client: engine, services: owners } = engineScope(c)
    const scale = async () => {
      const service = await accessService(engine, guard, ref, signal)
      if (!service.Spec.Mode.Replicated) {
        throw new ProblemError(409, 'conflict', {
          detail: 'A global service runs one task per node: it cannot be scaled',
        })
      }
      if (!isAdmin(guard.principal)) {
        const owned = await ownedCount(engine, guard.principal.id, signal)
        checkReplicaQuota(guard, owned, replicas - replicasOf(service))
      }
      // Not cancelled when the client leaves, as a create: the next count must see the scale.
      await engine
        .json('POST', servicePath(service.ID, '/update'), {
          query: { version: service.Version.Index },
          body: withReplicas(service.Spec, replicas),
        })
        .catch(refusedAs(SCALE_REFUSED))
      return service.ID
    }
    const id = isAdmin(guard.principal)
      ? await scale()
      : await quota.exclusive(guard.principal.id, scale)
    const service = seen(owners, await inspectService(engine, id, signal))
    return c.json(toService(service, settings), 200)
  })

  app.openapi(deleteRoute, async (c) => {
    const { id: ref } = c.req.valid('param')
    const { client: engine, services: owners } = engineScope(c)
    const service = seen(owners, await accessService(engine, c.get('guard'), ref, c.req.raw.signal))
    await engine.status('DELETE', servicePath(service.ID), { signal: c.req.raw.signal })
    return c.body(null, 204)
  })

  app.openapi(tasksRoute, async (c) => {
    const { id } = c.req.valid('param')
    const signal = c.req.raw.signal
    const { client: engine, services: owners } = engineScope(c)
    const service = seen(owners, await accessService(engine, c.get('guard'), id, signal))
    const tasks = await listTasks(engine, service.ID, signal)
    return c.json({ tasks: tasks.map(toTask) }, 200)
  })

  return app
}

/**
 * The id of the image the manager has under `ref`: what the tasks run (`serviceSpec`). The
 * gateway never pulls, and neither do the nodes for it: an image the manager lacks is refused.
 */
async function imageIdOnManager(engine: EngineClient, ref: string, signal: AbortSignal) {
  try {
    const image = await engine.json('GET', `/images/${encodeURIComponent(ref)}/json`, { signal })
    const id = (image as { Id?: unknown } | undefined)?.Id
    if (typeof id === 'string' && /^sha256:[0-9a-f]{64}$/.test(id)) return id
  } catch (error) {
    if (!(error instanceof ProblemError && error.status === 404)) throw error
  }
  throw badRequest(
    `The image ${ref} is not on the Swarm manager: pull it first (POST /v1/images/pull); services run the manager's image, and no node pulls`,
    [{ name: 'body.image', reason: 'not on the manager' }],
  )
}

/**
 * Networks reach other hosts and services: none unless the policy names them. A request naming
 * one when the policy names none is invalid input (400); one outside what the policy names is a
 * policy denial (403), as an image outside the allowlist is.
 */
function checkNetworks(guard: Guard, networks: readonly string[]): void {
  if (networks.length === 0) return
  const allowed = guard.principal.policy.networks
  if (allowed.length === 0) {
    throw badRequest('This client’s services attach to no network (its policy names none)', [
      { name: 'body.networks', reason: 'not allowed by the policy' },
    ])
  }
  for (const network of networks) {
    if (!allowed.includes(network)) {
      guard.deny(
        'network-not-allowed',
        network,
        new ProblemError(403, 'forbidden', {
          detail: `The network ${network} is not one this client's services may attach to`,
        }),
      )
    }
  }
}
