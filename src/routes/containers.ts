/**
 * @module `/v1/containers`: list, create, inspect, lifecycle actions, wait and remove.
 */
import { createRoute, type z } from '@hono/zod-openapi'
import type { Context, TypedResponse } from 'hono'
import type { GatewaySettings } from '../config.ts'
import type { Guard } from '../domain/guard.ts'
import { isAdmin, type Principal } from '../domain/principal.ts'
import { refuseSecretSelectors } from '../domain/redaction.ts'
import { type EngineClient, EngineRefusal, refusedAs } from '../engine/client.ts'
import { containerPath, inspectContainer, listContainers } from '../engine/containers.ts'
import {
  type EngineContainerInspect,
  EngineCreated,
  EngineWait,
  parseEngine,
} from '../engine/types.ts'
import { ProblemError } from '../errors.ts'
import type { AppEnv } from '../http/context.ts'
import { type EngineScope, engineScope, sentPath } from '../http/engines.ts'
import type { ContainerModel } from '../model/containers.ts'
import { laterPosition, parsePosition, writePosition } from '../model/positions.ts'
import { accessContainer, canSee, ownerFilter, viewerKey } from '../policy/access.ts'
import type { QuotaReservations } from '../policy/quota.ts'
import { ownedCount } from '../policy/services.ts'
import { MemoryStore } from '../store/memory.ts'
import {
  ContainerRefParams,
  ENGINE_PROBLEMS,
  problems,
  router,
  scoped,
  strictQuery,
} from './common.ts'
import { checkCreatePolicy, engineCreateBody } from './containers.create.ts'
import { ListAnswers, ListKeys, listKey } from './containers.list-answers.ts'
import {
  ContainerActionSchema,
  ContainerDetailSchema,
  ContainerListSchema,
  CreateContainerBody,
  CreateContainerQuery,
  checkPositionHeader,
  DeleteQuery,
  KillQuery,
  ListContainersQuery,
  POSITION_HEADER,
  POSITION_RESPONSE_HEADER,
  PositionHeaders,
  StopQuery,
  WaitSchema,
} from './containers.schemas.ts'
import { toDetail, toListJson } from './containers.view.ts'
import { queryMemo } from './query-memo.ts'
import { COMMAND_COULD_NOT_RUN, startFailure, startFailureText } from './start-failure.ts'

const TAGS = ['containers']
const read = scoped('containers:read')
const readNoQuery = scoped('containers:read', { noQuery: true })
const write = scoped('containers:write')
const json = <T extends z.ZodType>(schema: T, description: string) => ({
  description,
  content: { 'application/json': { schema } },
})

const listRoute = createRoute({
  method: 'get',
  path: '/v1/containers',
  operationId: 'listContainers',
  tags: TAGS,
  summary: 'List containers',
  description:
    'The containers the caller may see (its own unless admin), newest first; running ones unless `all`.',
  ...read,
  request: { query: ListContainersQuery, headers: PositionHeaders },
  responses: {
    200: json(ContainerListSchema, 'Containers, newest first'),
    ...problems(400, ...ENGINE_PROBLEMS),
  },
})

/**
 * A read route as documented (its `Dockgate-Position` header listed) and registered without
 * Hono's header validator, which copies every request header into a Fetch `Headers` object (the
 * Node adapter then builds them all) and parses them with zod on every request: 6–8 % of the
 * list's CPU (bench phase 2, bench/README.md "Changes and their effect"). `checkPositionHeader`
 * refuses a bad header with the same problem, first thing in the handler.
 */
function documentedWithPositionHeader<R extends typeof listRoute | typeof inspectRoute>(
  app: ReturnType<typeof router>,
  route: R,
) {
  const { middleware: _notDocumented, ...documented } = route
  app.openAPIRegistry.registerPath(documented)
  const { headers: _checkedInTheHandler, ...request } = route.request
  return { ...route, hide: true, request } as const
}

/**
 * The list route (documented already) registered without Hono's query validator: its handler
 * validates the query with `queryMemo` instead, with the same problem for a bad one.
 */
function listedWithQueryMemo(
  route: ReturnType<typeof documentedWithPositionHeader<typeof listRoute>>,
) {
  const { query: _validatedInTheHandler, ...request } = route.request
  return { ...route, request } as const
}

/** The list serialised ahead from cached parts, typed as the `c.json(list)` it equals. */
const listAnswer = (c: Context<AppEnv>, body: string | Uint8Array<ArrayBuffer>) =>
  c.body(body, 200, { 'content-type': 'application/json' }) as unknown as TypedResponse<
    z.infer<typeof ContainerListSchema>,
    200,
    'json'
  >

const createContainerRoute = createRoute({
  method: 'post',
  path: '/v1/containers',
  operationId: 'createContainer',
  tags: TAGS,
  summary: 'Create a container (and optionally start it)',
  description:
    'The gateway builds the engine request itself: no network, all capabilities dropped, ' +
    'no-new-privileges, bounded memory and pids, json-file logs with a size cap. ' +
    'Unknown fields are refused, never ignored.',
  ...write,
  request: {
    query: CreateContainerQuery,
    body: { required: true, content: { 'application/json': { schema: CreateContainerBody } } },
  },
  responses: {
    201: {
      ...json(ContainerDetailSchema, 'Created (and started, with ?start=true)'),
      headers: POSITION_RESPONSE_HEADER,
    },
    ...problems(400, 404, 409, 413, 415, ...ENGINE_PROBLEMS),
  },
})

const inspectRoute = createRoute({
  method: 'get',
  path: '/v1/containers/{id}',
  operationId: 'getContainer',
  tags: TAGS,
  summary: 'Inspect a container',
  description:
    'The curated view of one container; env values and secret-looking labels are redacted.',
  ...readNoQuery,
  request: { params: ContainerRefParams, headers: PositionHeaders },
  responses: {
    200: json(ContainerDetailSchema, 'The container'),
    ...problems(400, 404, ...ENGINE_PROBLEMS),
  },
})

function actionRoute<Q extends z.ZodObject>(
  action: 'start' | 'stop' | 'restart' | 'kill',
  query: Q,
  summary: string,
  description: string,
) {
  return createRoute({
    method: 'post',
    path: `/v1/containers/{id}/${action}`,
    operationId: `${action}Container`,
    tags: TAGS,
    summary,
    description,
    ...write,
    request: { params: ContainerRefParams, query },
    responses: {
      200: {
        ...json(ContainerActionSchema, 'Done; `changed` is false when nothing had to happen'),
        headers: POSITION_RESPONSE_HEADER,
      },
      ...problems(400, 404, 409, 413, ...ENGINE_PROBLEMS),
    },
  })
}

const startRoute = actionRoute(
  'start',
  strictQuery({}),
  'Start a container',
  'Starts it; `changed` is false when it was already running.',
)
const stopRoute = actionRoute(
  'stop',
  StopQuery,
  'Stop a container (SIGTERM, then SIGKILL)',
  'Sends its stop signal, then SIGKILL after `timeout` seconds; `changed` is false when it was not running.',
)
const restartRoute = actionRoute(
  'restart',
  StopQuery,
  'Restart a container',
  'Stops it as `stop` does (if running), then starts it.',
)
const killRoute = actionRoute(
  'kill',
  KillQuery,
  'Send a signal to a running container',
  'Sends `signal` (SIGKILL by default); 409 when the container is not running.',
)

const waitRoute = createRoute({
  method: 'post',
  path: '/v1/containers/{id}/wait',
  operationId: 'waitContainer',
  tags: TAGS,
  summary: 'Wait until a container stops',
  description: 'Answers once the container is not running; at once if it already is not.',
  ...readNoQuery,
  request: { params: ContainerRefParams },
  responses: {
    200: { ...json(WaitSchema, 'The exit code'), headers: POSITION_RESPONSE_HEADER },
    ...problems(400, 404, 413, ...ENGINE_PROBLEMS),
  },
})

const deleteRoute = createRoute({
  method: 'delete',
  path: '/v1/containers/{id}',
  operationId: 'deleteContainer',
  tags: TAGS,
  summary: 'Remove a container',
  description: 'Removes it with its anonymous volumes; a running one only with `force` (else 409).',
  ...write,
  request: { params: ContainerRefParams, query: DeleteQuery },
  responses: {
    204: { description: 'Removed', headers: POSITION_RESPONSE_HEADER },
    ...problems(400, 404, 409, 413, ...ENGINE_PROBLEMS),
  },
})

type Action = 'start' | 'stop' | 'restart' | 'kill'

/**
 * The engine's refusals in the caller's terms. Its own words stay in the server log: a name
 * conflict names the other container's full id (maybe another tenant's), a failed start runc's.
 */
const NOT_RUNNING = 'The container is not running'
const START_FAILED = COMMAND_COULD_NOT_RUN
const CREATE_REFUSED = {
  400: "The Docker Engine refused the container's configuration",
  409: 'The name is already in use by another container',
}
const ACTION_REFUSED: Record<Action, Partial<Record<400 | 409, string>>> = {
  start: { 400: START_FAILED, 409: 'The container cannot be started in its current state' },
  stop: { 409: NOT_RUNNING },
  restart: { 400: START_FAILED, 409: 'The container cannot be restarted in its current state' },
  kill: { 400: 'The Docker Engine does not accept this signal', 409: NOT_RUNNING },
}
const DELETE_REFUSED = {
  409: 'The container cannot be removed in its current state: stop it first, or remove it with force=true',
}

/**
 * Each request's engine comes from the context (`engineScope`): its client, its read model (lists
 * and inspects are answered from it when it is ready, and every change made here is put into it
 * before the answer: read-your-writes) and its positions (where instances learn of each other's
 * changes: every change records its position; a read is answered from the model once it has
 * caught up with the newest one and the caller's `Dockgate-Position`, else from the engine).
 * @param quota where a principal's container count and its create are made one step.
 */
export function containerRoutes(
  settings: GatewaySettings,
  quota: QuotaReservations = new MemoryStore(),
) {
  const app = router()
  const listAnswers = new ListAnswers()
  const listQuery = queryMemo(ListContainersQuery)
  const utf8 = new TextEncoder()

  /** The model, if it reflects every change the read must see; undefined: ask the engine. */
  const modelFor = async (c: Context<AppEnv>, { model, positions }: EngineScope) => {
    if (!model?.ready) return undefined
    let recorded: bigint | undefined
    try {
      recorded = await positions?.latest()
    } catch {
      // Unknown: the engine knows.
      return undefined
    }
    const position = laterPosition(parsePosition(c.req.header(POSITION_HEADER)), recorded)
    if (position === undefined) return model
    c.header(POSITION_HEADER, position.toString())
    return (await model.caughtUp(position)) ? model : undefined
  }
  /** After a change is in the model: its position, recorded for every instance and answered. */
  const stamp = async (c: Context<AppEnv>) => {
    const { model, positions } = engineScope(c)
    const position = model?.stamp() ?? writePosition(undefined)
    await positions?.record(position)
    c.header(POSITION_HEADER, position.toString())
  }

  /**
   * The model when nothing is to be waited for (one instance, no `Dockgate-Position` sent), as
   * `modelFor` would answer it but without a promise: a polled list is then answered at once.
   */
  const modelAtOnce = ({ model, positions }: EngineScope, sentPosition: string | undefined) =>
    model?.ready && positions === undefined && sentPosition === undefined ? model : undefined

  /** Query values whose label selectors passed `refuseSecretSelectors`, and for which patterns. */
  const selectorsPassed = new WeakMap<object, readonly string[]>()
  const listKeys = new ListKeys()

  // Not async: a kept answer goes without a promise of its own (see `modelAtOnce`).
  app.openapi(listedWithQueryMemo(documentedWithPositionHeader(app, listRoute)), (c) => {
    const sentPosition = checkPositionHeader(c)
    const query = listQuery(c)
    // Judged once per query value and patterns (a reload replaces them): lower-casing and seven
    // regular expressions were ~7k instructions a request (bench/README.md) for the same verdict.
    if (selectorsPassed.get(query) !== settings.secretLabelPatterns) {
      refuseSecretSelectors(query.label, settings.secretLabelPatterns, 'query.label')
      selectorsPassed.set(query, settings.secretLabelPatterns)
    }
    const scope = engineScope(c)
    const memory = modelAtOnce(scope, sentPosition)
    if (memory) return listAnswer(c, listFromModel(c, query, memory))
    return modelFor(c, scope).then(async (model) =>
      listAnswer(c, model ? listFromModel(c, query, model) : await listFromEngine(c, query)),
    )
  })

  /** The list's body from the model: kept per model version, patterns and key (`listAnswers`). */
  const listFromModel = (c: Context<AppEnv>, query: ListQuery, memory: ContainerModel) => {
    const guard = c.get('guard')
    const { principal } = guard
    const key = listKeys.get(query, principal, () =>
      listKey({
        viewer: viewerKey(principal),
        auditMode: guard.auditMode,
        filters: listFilters(query, principal),
      }),
    )
    const answer = listAnswers.get(memory, settings, key, () => {
      const containers = memory.list(listFilters(query, principal), visibleTo(guard))
      const body = utf8.encode(toListJson(containers, settings))
      return { body, showsHidden: showsHidden(guard, containers) }
    })
    if (answer.showsHidden) recordHidden(guard)
    return answer.body
  }

  const listFromEngine = async (c: Context<AppEnv>, query: ListQuery) => {
    const guard = c.get('guard')
    const filters = listFilters(query, guard.principal)
    const signal = c.req.raw.signal
    const containers = await listContainers(
      engineScope(c).client,
      filters,
      signal,
      visibleTo(guard),
    )
    if (showsHidden(guard, containers)) recordHidden(guard)
    return toListJson(containers, settings)
  }

  app.openapi(createContainerRoute, async (c) => {
    const body = c.req.valid('json')
    const { start } = c.req.valid('query')
    const signal = c.req.raw.signal
    const { client: engine, model } = engineScope(c)
    const resources = checkCreatePolicy(c.get('guard'), body)
    // Not cancelled when the client leaves: the engine makes a container whose create it has
    // received whether or not anyone waits for the answer, and the quota's next count must see it
    // (an abandoned create once ended its step early, and the next one passed the quota).
    const createOnEngine = () =>
      engine
        .json('POST', '/containers/create', {
          query: { name: body.name },
          body: engineCreateBody(body, c.get('principal').id, resources),
        })
        .catch(refusedAs(CREATE_REFUSED))
    // The count and the create are one step per principal: parallel creates cannot all pass
    // the same count. Admins have no quota.
    const answer = isAdmin(c.get('principal'))
      ? await createOnEngine()
      : await quota.exclusive(c.get('principal').id, async () => {
          await checkContainerQuota(engine, c.get('guard'), signal)
          return createOnEngine()
        })
    const created = parseEngine(EngineCreated, answer, 'create answer')
    if (start) {
      try {
        await engine
          .status('POST', containerPath(created.Id, '/start'), { signal })
          .catch(refusedAs(ACTION_REFUSED.start))
      } catch (error) {
        // A container that could not start is not what the client asked for: leave nothing behind.
        await engine
          .status('DELETE', containerPath(created.Id), { query: { force: 1, v: 1 } })
          .catch(() => {})
        throw error
      }
    }
    const inspect = await inspectContainer(engine, created.Id, signal)
    model?.put(inspect)
    await stamp(c)
    // Where the client asked: the engine's prefix kept.
    c.header('location', `${sentPath(c).replace(/\/containers$/, '')}/containers/${inspect.Id}`)
    return c.json(toDetail(inspect, settings), 201)
  })

  app.openapi(documentedWithPositionHeader(app, inspectRoute), async (c) => {
    checkPositionHeader(c)
    const { id } = c.req.valid('param')
    const scope = engineScope(c)
    const memory = await modelFor(c, scope)
    const inspect = await accessContainer(
      scope.client,
      c.get('guard'),
      id,
      c.req.raw.signal,
      memory,
    )
    return c.json(toDetail(inspect, settings), 200)
  })

  const act = (action: Action, query: Record<string, string | number | undefined>) =>
    async function containerAction(c: Context<AppEnv>, ref: string) {
      const { client: engine, model } = engineScope(c)
      const guard = c.get('guard')
      const signal = c.req.raw.signal
      const { Id: id } = await accessContainer(engine, guard, ref, signal, model)
      const status = await engine
        .status('POST', containerPath(id, `/${action}`), {
          query,
          signal,
          // stop and restart wait for the container to end; their own timeout bounds that.
          timeoutMs: 0,
          held: action === 'stop' || action === 'restart',
          accept: [304],
        })
        .catch(async (error: unknown) => {
          // A container whose start failed: its own state, in fixed words, whatever the engine
          // answered (start 400, restart 500).
          if (action === 'start' || action === 'restart') {
            const failed = await startFailureOf(engine, id, error, signal, model)
            if (failed) throw failed
          }
          // A refused start changes the container's state without an event (its exit code and
          // error): what the caller reads next must show it.
          if (error instanceof EngineRefusal) {
            await inspectContainer(engine, id, signal).then(
              (i) => model?.put(i),
              () => {},
            )
          }
          return refusedAs(ACTION_REFUSED[action])(error)
        })
      const inspect = await inspectContainer(engine, id, signal)
      model?.put(inspect)
      return { id, state: inspect.State.Status, changed: status !== 304 }
    }

  app.openapi(startRoute, async (c) => {
    const { id } = c.req.valid('param')
    const done = await act('start', {})(c, id)
    await stamp(c)
    return c.json(done, 200)
  })

  app.openapi(stopRoute, async (c) => {
    const { id } = c.req.valid('param')
    const { timeout } = c.req.valid('query')
    const done = await act('stop', { t: timeout })(c, id)
    await stamp(c)
    return c.json(done, 200)
  })

  app.openapi(restartRoute, async (c) => {
    const { id } = c.req.valid('param')
    const { timeout } = c.req.valid('query')
    const done = await act('restart', { t: timeout })(c, id)
    await stamp(c)
    return c.json(done, 200)
  })

  app.openapi(killRoute, async (c) => {
    const { id } = c.req.valid('param')
    const { signal } = c.req.valid('query')
    const done = await act('kill', { signal })(c, id)
    await stamp(c)
    return c.json(done, 200)
  })

  app.openapi(waitRoute, async (c) => {
    const { id: ref } = c.req.valid('param')
    const { client: engine, model } = engineScope(c)
    const { Id: id } = await accessContainer(engine, c.get('guard'), ref, c.req.raw.signal, model)
    const answer = parseEngine(
      EngineWait,
      await engine.json('POST', containerPath(id, '/wait'), {
        query: { condition: 'not-running' },
        signal: c.req.raw.signal,
        timeoutMs: 0,
        held: true,
      }),
      'wait answer',
    )
    // The caller has seen the container stop here: a list or inspect it makes next must say so,
    // even before the engine's `die` event reaches the read model.
    if (model) model.put(await inspectContainer(engine, id, c.req.raw.signal))
    await stamp(c)
    // The engine's Error is why the container's start failed: the caller's own container's
    // state, answered in fixed words (never runc's).
    if (answer.Error?.Message) {
      return c.json(
        { exitCode: answer.StatusCode, error: startFailureText(answer.StatusCode) },
        200,
      )
    }
    return c.json({ exitCode: answer.StatusCode }, 200)
  })

  app.openapi(deleteRoute, async (c) => {
    const { id: ref } = c.req.valid('param')
    const { force } = c.req.valid('query')
    const { client: engine, model } = engineScope(c)
    const { Id: id } = await accessContainer(engine, c.get('guard'), ref, c.req.raw.signal, model)
    await engine
      .status('DELETE', containerPath(id), {
        query: { force: force ? 1 : undefined, v: 1 },
        signal: c.req.raw.signal,
      })
      .catch(refusedAs(DELETE_REFUSED))
    model?.remove(id)
    await stamp(c)
    return c.body(null, 204)
  })

  return app
}

type ListQuery = z.output<typeof ListContainersQuery>

/** The list's filters: the query's, and the owner label when the engine can filter by it. */
function listFilters(query: ListQuery, principal: Principal) {
  const owner = ownerFilter(principal)
  return { ...query, label: owner ? [...query.label, owner] : query.label }
}

/**
 * Which containers a list shows: visibility first, then the filters and `limit`, since a limit
 * counted over containers the caller cannot see would tell it that someone created something
 * newer. In audit mode the caller is shown everything, and what it should not see is recorded.
 */
function visibleTo({ principal, auditMode }: Guard) {
  return isAdmin(principal) || auditMode
    ? undefined
    : (labels: Readonly<Record<string, string>>) => canSee(principal, labels)
}

/** In audit mode: whether the list shows a container the caller may not see. */
function showsHidden(
  { principal, auditMode }: Guard,
  containers: readonly EngineContainerInspect[],
) {
  return auditMode && containers.some((i) => !canSee(principal, i.Config.Labels ?? {}))
}

function recordHidden(guard: Guard) {
  guard.record({
    outcome: 'allowed',
    decision: 'would_deny',
    reason: 'not-owner',
    target: null,
    status: null,
  })
}

/**
 * A start or restart the engine refused because the container could not start is the caller's
 * container's state, not an engine failure: a 400 with fixed words, and the state it left (exit
 * code, error; no engine event says it) put into the read model. Undefined for any other failure.
 */
async function startFailureOf(
  engine: EngineClient,
  id: string,
  error: unknown,
  signal: AbortSignal,
  model: ContainerModel | undefined,
): Promise<ProblemError | undefined> {
  if (!(error instanceof ProblemError) || error.status === 404) return undefined
  const after = await inspectContainer(engine, id, signal).catch(() => undefined)
  if (!after) return undefined
  model?.put(after)
  return startFailure(after.State)
}

/**
 * A principal may own at most `maxContainers` containers at once, the replicas of its Swarm
 * services counted as containers (admins have no quota).
 */
async function checkContainerQuota(engine: EngineClient, guard: Guard, signal: AbortSignal) {
  const { principal } = guard
  const count = await ownedCount(engine, principal.id, signal)
  if (count >= principal.policy.maxContainers) {
    guard.deny(
      'max-containers',
      null,
      new ProblemError(403, 'forbidden', {
        detail: `This client owns ${count} containers, its maximum is ${principal.policy.maxContainers}`,
      }),
    )
  }
}
