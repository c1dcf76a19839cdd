/**
 * @module Builds the runtime-free gateway: a Hono app from injected dependencies.
 *
 * Nothing here touches `process`, `Deno` or `node:*`; entry points (`node.ts`, `deno.ts`,
 * `edge.ts`) choose the transport and the configuration, start the gateway and serve `app.fetch`.
 * Building does no I/O: what runs between requests begins with `start()` and ends with `close()`.
 */
import type { OpenAPIHono } from '@hono/zod-openapi'
import type { Context } from 'hono'
import { bodyLimit } from 'hono/body-limit'
import { methodNotAllowed } from 'hono/method-not-allowed'
import type { ContentfulStatusCode } from 'hono/utils/http-status'
import type { UpgradeWebSocket } from 'hono/ws'
import type { Authenticator } from './auth/authenticator.ts'
import { TicketStore } from './auth/tickets.ts'
import {
  type ConfigReloads,
  DEFAULT_ENGINE,
  DEFAULT_SETTINGS,
  ENGINE_NAME,
  type GatewaySettings,
  liveSettings,
} from './config.ts'
import { type DocsRendererLoader, docsRoutes } from './docs/routes.ts'
import { type AuditSink, jsonLineAudit } from './domain/audit.ts'
import type { EngineClient } from './engine/client.ts'
import { PROBLEM_CONTENT_TYPE, ProblemError, problemBody } from './errors.ts'
import { EventHub } from './events/hub.ts'
import type { SharedRing } from './events/shared.ts'
import { type AuthenticatedChain, authenticatedRequests } from './http/authenticated.ts'
import type { AppEnv } from './http/context.ts'
import { type EngineScope, type EngineScopes, routingPath, sentPath } from './http/engines.ts'
import type { EventStreamOutput } from './http/event-stream-output.ts'
import { frontRequests } from './http/front.ts'
import { type BuildAll, type LazyGroup, lazyGroups } from './http/lazy-routes.ts'
import type { LimitSettings } from './http/limits.ts'
import { LiveSessions } from './http/live-sessions.ts'
import { countDenials, type RequestLogSink } from './http/observability.ts'
import { OpenStreams } from './http/open-streams.ts'
import { type ErrorLogger, toProblem } from './http/problems.ts'
import type { RequestHeaderReader } from './http/request-headers.ts'
import type { RequestIdWriter } from './http/request-id.ts'
import { requestLogLine } from './http/request-log-line.ts'
import { ContainerModel } from './model/containers.ts'
import type { WritePositions } from './model/positions.ts'
import { ServiceOwners } from './model/services.ts'
import { Metrics } from './observability/metrics.ts'
import type { QuotaReservations } from './policy/quota.ts'
import { router } from './routes/router.ts'
import { MemoryStore } from './store/memory.ts'
import type { StateStore } from './store/port.ts'
import { GATEWAY_VERSION } from './version.ts'

export interface AppDependencies {
  /** The `default` engine: what every `/v1/…` route without an engine prefix uses. */
  engine: EngineClient
  /**
   * The other engines, by name (`/v1/engines/<name>/…`), each with its own transport and API
   * version; not `default`. Each gets its own events hub and read model here.
   */
  engines?: Readonly<Record<string, EngineClient>>
  /**
   * What instances share for an engine other than `default` (its events ring, its write
   * positions), by name; `sharedEvents` and `positions` are the `default` engine's.
   */
  engineSharing?: (name: string) => EngineSharing
  authenticator: Authenticator
  settings?: Partial<GatewaySettings>
  /** Where unexpected errors are reported; they never reach the client. */
  logError?: ErrorLogger
  /** Stream tickets; one store per process unless given. */
  tickets?: TicketStore
  /** Where audit records go; JSON lines on stdout unless given. */
  audit?: AuditSink
  /** Request metrics (`GET /metrics`); wrap the transport with `countingTransport` to count engine requests too. */
  metrics?: Metrics
  /** Where one structured line per request goes; JSON lines on stdout unless given. */
  requestLog?: RequestLogSink
  /** The engine events hub; one per app unless given (closed by `close()` when created here). */
  events?: EventHub
  /**
   * The events replay ring shared by every instance (`events/shared.ts`; Redis:
   * `events/shared-redis.ts`), for the hub created here: a client resumes on any instance.
   * None: this instance's own ring.
   */
  sharedEvents?: SharedRing
  /** How the request id reaches the response; through the context (Fetch headers) unless given. */
  writeRequestId?: RequestIdWriter
  /**
   * How the headers every request is asked for (`authorization`, `x-request-id`) are read;
   * through Hono unless given (Node: from its raw header list, `src/node/request-headers.ts`).
   */
  readRequestHeader?: RequestHeaderReader
  /**
   * Where the runtime writes event streams itself (Node: on its `ServerResponse`) instead of
   * reading their bodies; the bodies are sent as any other unless given.
   */
  eventStreamOutput?: EventStreamOutput
  /**
   * Config reloads: the live settings (`LIVE_SETTINGS`) change, and every open event stream's
   * credential is judged again (a revoked one's stream ends with `event: revoked`).
   */
  reloads?: ConfigReloads
  /** Where container quotas are reserved; through the state store unless given. */
  quota?: QuotaReservations
  /**
   * Where `/docs` gets its renderer (about 5 MB); a dynamic import of the generated module unless
   * given (workerd: a disk service, so that starting compiles none of it; see src/edge.ts).
   */
  docsRenderer?: DocsRendererLoader
  /**
   * Where the instances learn of each other's container changes (`model/positions.ts`; Redis:
   * `model/positions-redis.ts`), so that a read on any instance reflects a change made on
   * another. None: one instance, whose own changes are in its model before it answers.
   */
  positions?: WritePositions
  /**
   * What instances share (rate limits, stream and engine-budget slots, quotas, stream tickets):
   * this process's memory unless given (`src/store/`); the caller closes one it gives.
   */
  store?: StateStore
  /** The key that signs stream tickets (`DOCKGATE_SECRET`); a random one per process unless given. */
  ticketSecret?: string | undefined
  /**
   * The runtime's WebSocket upgrade (`@hono/node-server`'s on Node, `hono/deno`'s on Deno), for
   * the exec session; without it (the edge) that route answers 501.
   */
  upgradeWebSocket?: UpgradeWebSocket
}

/** What instances share for one engine (see `AppDependencies.engineSharing`). */
export interface EngineSharing {
  sharedEvents?: SharedRing | undefined
  positions?: WritePositions | undefined
}

export const OPENAPI_CONFIG = {
  openapi: '3.1.0',
  info: {
    title: 'dockgate',
    version: GATEWAY_VERSION,
    description:
      'A curated, authenticated REST facade over the Docker Engine API. ' +
      'Errors are RFC 9457 `application/problem+json`.',
    license: { name: 'MIT', identifier: 'MIT' },
    contact: { name: 'dockgate maintainers' },
  },
  servers: [{ url: '/', description: 'This gateway' }],
  tags: [
    { name: 'system', description: 'Health, readiness and versions' },
    { name: 'containers', description: 'Containers: list, create, inspect, lifecycle' },
    { name: 'logs', description: 'Container logs' },
    { name: 'stats', description: 'Container resource use: snapshots and live streams' },
    { name: 'events', description: 'Docker Engine events, live and resumable' },
    { name: 'images', description: 'Images: list, inspect, pull, remove' },
    { name: 'streams', description: 'Tickets for browser event streams' },
    { name: 'exec', description: 'Commands in running containers (policy `exec`)' },
    { name: 'services', description: 'Swarm services, their tasks and logs, and nodes' },
    { name: 'engines', description: 'The engines this gateway reaches (policy `engines`)' },
  ],
}

export type App = OpenAPIHono<AppEnv>

/**
 * A built gateway: `app` answers requests; `start()` begins what runs between requests (following
 * the engine and the config) and `close()` ends it.
 */
export interface Gateway {
  readonly app: App
  /**
   * The OpenAPI 3.1 document (`/openapi.json`): every route group is built for it on its first
   * use, the groups a start builds only on their first request (`http/lazy-routes.ts`).
   */
  document(): Promise<OpenApiDocument>
  /**
   * Starts following the config reloads, and the engine (the container read model, with
   * `readModel`): at once, or once `options.engineAfter` settles. An entry passes its first
   * answer there (`firstAnswer` in bootstrap.ts), so that the models' first load does not share
   * the thread with a cold start's first request; until a model has loaded, routes ask the
   * engine, as they do while it loads. Call it once, before serving; a second call does nothing.
   */
  start(options?: StartOptions): void
  /**
   * Builds now what the first request would otherwise build: Hono's router, which it builds on
   * its first match (2–10 ms on Bun). An entry calls it once it listens, while its first client
   * reads `listening` and connects; a request that comes meanwhile waits as it would have.
   */
  prepare(): void
  /**
   * Open event streams send their final `shutdown` event and close; exec sessions send `shutdown`,
   * stop their commands and close (1001); the read model and an events hub created here close;
   * reloads are no longer followed. Idempotent. Resolves once the exec sessions have ended: an
   * entry whose server does not wait for upgraded sockets (Deno) waits for this before it exits.
   */
  close(): Promise<void>
}

export interface StartOptions {
  /** The read models begin their first load once this settles (however it settles). */
  readonly engineAfter?: Promise<unknown>
}

/** Builds the gateway; nothing reaches the engine or follows anything until `start()`. */
export function createApp(deps: AppDependencies): Gateway {
  const settings: GatewaySettings = { ...DEFAULT_SETTINGS, ...deps.settings }
  const logError: ErrorLogger = deps.logError ?? ((message, error) => console.error(message, error))
  // Routed without the `/v1/engines/<name>` prefix: one definition of each route serves every engine.
  const app: App = router(routingPath)
  const stopping = new AbortController()

  const metrics = deps.metrics ?? new Metrics()
  app.use(
    frontRequests({
      metrics,
      requestLog: deps.requestLog ?? ((entry) => console.log(requestLogLine(entry))),
      writeRequestId: deps.writeRequestId,
      readHeader: deps.readRequestHeader,
      eventStreamOutput: deps.eventStreamOutput,
      methodNotAllowed: methodNotAllowed({ app, onMethodNotAllowed: methodNotAllowedResponse }),
    }),
  )
  const limitBody = bodyLimit({
    maxSize: settings.bodyLimitBytes,
    onError: () => {
      throw new ProblemError(413, 'payload-too-large', {
        detail: `Request bodies are limited to ${settings.bodyLimitBytes} bytes`,
      })
    },
  })
  const store = deps.store ?? new MemoryStore()
  const tickets =
    deps.tickets ??
    new TicketStore({
      store,
      secret: deps.ticketSecret,
      rejudge: (issued) => deps.authenticator.principalOf?.(issued) ?? Promise.resolve(undefined),
    })
  const audit = countDenials(deps.audit ?? jsonLineAudit((line) => console.log(line)), metrics)
  const limits = limitSettings(settings)
  const openStreams = new OpenStreams()
  const scopes = engineScopes(deps, settings, logError)
  const onError = (error: unknown, c: Context<AppEnv>) => problem(c, toProblem(error, logError))
  const chain: AuthenticatedChain = {
    audit,
    authenticator: deps.authenticator,
    tickets,
    limits: { store, limits, metrics },
    scopes,
    openStreams,
    onError,
    readHeader: deps.readRequestHeader,
  }
  // After authentication: a stranger's oversized body gets 401, as any request of a stranger
  // does, and only a caller's own gets 413.
  app.use('/v1/*', authenticatedRequests({ ...chain, bodyLimit: limitBody }))
  app.use('/metrics', authenticatedRequests(chain))
  const applyReload = (next: Partial<GatewaySettings>) => {
    Object.assign(settings, liveSettings(next))
    Object.assign(limits, limitSettings(settings))
    openStreams.recheck().catch((error: unknown) => logError('revocation check failed', error))
  }

  const streams = {
    settings,
    shutdown: stopping.signal,
    toProblem: (e: unknown) => toProblem(e, logError),
  }
  const sessions = new LiveSessions()
  const quota = deps.quota ?? store
  const defaultScope = scopes.get(DEFAULT_ENGINE)!
  metrics.events = () => defaultScope.hub.stats()
  const parts = { scopes, store, settings, quota, streams, sessions, metrics, tickets, logError }
  const buildAll = lazyGroups(app, routeGroups(parts, deps), onError)
  const document = documentOnFirstUse(app, buildAll)
  app.get('/openapi.json', async (c) => c.json(await document()))
  app.route('/', docsRoutes(document, deps.docsRenderer))

  app.notFound((c) =>
    problem(c, new ProblemError(404, 'not-found', { detail: `No route for ${sentPath(c)}` })),
  )
  app.onError(onError)

  let started = false
  let stopFollowing: (() => void) | undefined
  return {
    app,
    document,
    start(options = {}) {
      if (started || stopping.signal.aborted) return
      started = true
      stopFollowing = deps.reloads?.subscribe(applyReload)
      // Until loaded (or if it cannot load), routes ask the engine.
      const follow = () => {
        if (stopping.signal.aborted) return
        for (const scope of scopes.values()) void scope.model?.start()
      }
      if (options.engineAfter) void options.engineAfter.then(follow, follow)
      else follow()
    },
    prepare() {
      // Every route is registered by now: the groups build routers of their own.
      app.router.match('GET', '/healthz')
    },
    close() {
      if (!stopping.signal.aborted) {
        stopping.abort()
        stopFollowing?.()
        for (const scope of scopes.values()) {
          scope.model?.close()
          if (scope.hub !== deps.events) scope.hub.close()
        }
      }
      return sessions.ended()
    },
  }
}

/** What the route groups are built with (besides `AppDependencies`). */
interface GroupParts {
  scopes: EngineScopes
  store: StateStore
  settings: GatewaySettings
  quota: QuotaReservations
  streams: StreamRouteParts
  sessions: LiveSessions
  metrics: Metrics
  tickets: TicketStore
  logError: ErrorLogger
}

/** What the streaming routes share: the live settings, the shutdown, the problem mapper. */
interface StreamRouteParts {
  settings: GatewaySettings
  shutdown: AbortSignal
  toProblem: (e: unknown) => ProblemError
}

/**
 * The route groups, in the order they are registered and merged into the document, each with
 * its routes listed (a group whose router serves other routes fails to build:
 * `http/lazy-routes.ts`) and imported only when it is first built.
 */
function routeGroups(p: GroupParts, deps: AppDependencies): LazyGroup<App>[] {
  const stream = 'event stream'
  return [
    {
      routes: [
        ['GET', '/healthz'],
        ['GET', '/readyz'],
        ['GET', '/v1/system/version'],
      ],
      build: async () => (await import('./routes/system.ts')).systemRoutes(p.scopes, p.store),
    },
    {
      routes: [['GET', '/v1/engines']],
      build: async () => (await import('./routes/engines.ts')).engineRoutes(p.scopes),
    },
    {
      routes: [
        ['GET', '/v1/containers'],
        ['POST', '/v1/containers'],
        ['GET', '/v1/containers/:id'],
        ['POST', '/v1/containers/:id/start'],
        ['POST', '/v1/containers/:id/stop'],
        ['POST', '/v1/containers/:id/restart'],
        ['POST', '/v1/containers/:id/kill'],
        ['POST', '/v1/containers/:id/wait'],
        ['DELETE', '/v1/containers/:id'],
      ],
      build: async () =>
        (await import('./routes/containers.ts')).containerRoutes(p.settings, p.quota),
    },
    {
      routes: [
        ['GET', '/v1/containers/:id/logs'],
        ['GET', '/v1/containers/:id/logs/stream', stream],
      ],
      build: async () => (await import('./routes/logs.ts')).logRoutes(p.streams),
    },
    {
      routes: [
        ['GET', '/v1/containers/:id/stats'],
        ['GET', '/v1/containers/:id/stats/stream', stream],
      ],
      build: async () => (await import('./routes/stats.ts')).statsRoutes(p.streams),
    },
    {
      routes: [['POST', '/v1/containers/:id/exec', stream]],
      build: async () => (await import('./routes/exec.ts')).execRoutes(p.streams),
    },
    {
      routes: [['GET', '/v1/containers/:id/exec/session', stream]],
      build: async () =>
        (await import('./routes/exec-session.ts')).execSessionRoutes({
          ...p.streams,
          upgradeWebSocket: deps.upgradeWebSocket,
          live: p.sessions,
        }),
    },
    {
      routes: [
        ['GET', '/v1/services'],
        ['POST', '/v1/services'],
        ['GET', '/v1/services/:id'],
        ['PATCH', '/v1/services/:id'],
        ['DELETE', '/v1/services/:id'],
        ['GET', '/v1/services/:id/tasks'],
      ],
      build: async () => (await import('./routes/services.ts')).serviceRoutes(p.settings, p.quota),
    },
    {
      routes: [
        ['GET', '/v1/services/:id/logs'],
        ['GET', '/v1/services/:id/logs/stream', stream],
      ],
      build: async () => (await import('./routes/services.logs.ts')).serviceLogRoutes(p.streams),
    },
    {
      routes: [['GET', '/v1/nodes']],
      build: async () => (await import('./routes/nodes.ts')).nodeRoutes(),
    },
    {
      routes: [['GET', '/v1/events', stream]],
      build: async () => (await import('./routes/events.ts')).eventRoutes(p.scopes, p.streams),
    },
    {
      routes: [['GET', '/metrics']],
      build: async () => (await import('./routes/metrics.ts')).metricsRoutes(p.metrics),
    },
    {
      routes: [
        ['GET', '/v1/images'],
        ['GET', '/v1/images/:ref'],
      ],
      build: async () => (await import('./routes/images.ts')).imageRoutes(p.settings),
    },
    {
      routes: [
        ['POST', '/v1/images/pull', stream],
        ['DELETE', '/v1/images/:ref'],
      ],
      build: async () =>
        (await import('./routes/images.write.ts')).imageWriteRoutes(p.streams, p.logError),
    },
    {
      routes: [['POST', '/v1/stream-tickets']],
      build: async () => (await import('./routes/tickets.ts')).ticketRoutes(p.tickets),
    },
  ]
}

/** The OpenAPI 3.1 document, as `/openapi.json` answers it. */
export type OpenApiDocument = ReturnType<App['getOpenAPI31Document']>

/**
 * The document, built on its first use (`/openapi.json`, `/docs`, scripts/openapi.mjs): every
 * route group, each merged in the order the app registers them (as `app.route` merged them when
 * every group was built with the app), then what only the document needs: every `/v1/…`
 * operation again under `/v1/engines/{engine}/…`, as the router serves it, and the bearer
 * scheme. So the document comes out the same whichever groups requests built first
 * (test/openapi.test.ts). `app.getOpenAPI31Document` and `getOpenAPIDocument` answer it once
 * it is built.
 */
function documentOnFirstUse(app: App, buildAll: BuildAll<App>): () => Promise<OpenApiDocument> {
  let complete: Promise<App> | undefined
  const completeDocument = async () => {
    const merged = router()
    for (const group of await buildAll()) merged.route('/', group)
    const { documentEnginePrefixes } = await import('./routes/engines.ts')
    documentEnginePrefixes(merged.openAPIRegistry)
    merged.openAPIRegistry.registerComponent('securitySchemes', 'Bearer', {
      type: 'http',
      scheme: 'bearer',
      description:
        'A dockgate API token (`dgt_…`) or a JWT. Each operation lists the scope it needs; ' +
        'the `admin` scope grants every operation.',
    })
    app.getOpenAPIDocument = merged.getOpenAPIDocument
    app.getOpenAPI31Document = merged.getOpenAPI31Document
    return merged
  }
  const notYet = () => {
    throw new Error('The OpenAPI document is built on first use: await `Gateway.document()` first')
  }
  app.getOpenAPIDocument = notYet
  app.getOpenAPI31Document = notYet
  return async () => {
    complete ??= completeDocument()
    return (await complete).getOpenAPI31Document(OPENAPI_CONFIG)
  }
}

/**
 * One scope per engine: `default` (`deps.engine`, with the given hub and shared ports) and each
 * of `deps.engines`, each with its own hub and read model. No I/O: hubs connect on their first
 * subscriber, models when the gateway starts.
 */
function engineScopes(
  deps: AppDependencies,
  settings: GatewaySettings,
  logError: ErrorLogger,
): EngineScopes {
  const scopes = new Map<string, EngineScope>()
  const add = (name: string, client: EngineClient, hub: EventHub, sharing: EngineSharing) => {
    const model = settings.readModel ? new ContainerModel(client, hub, logError) : undefined
    const services = new ServiceOwners()
    scopes.set(name, { name, client, hub, model, positions: sharing.positions, services })
  }
  const hub = deps.events ?? ownEventHub(deps.engine, settings, logError, deps.sharedEvents)
  add(DEFAULT_ENGINE, deps.engine, hub, { positions: deps.positions })
  for (const [name, client] of Object.entries(deps.engines ?? {})) {
    if (name === DEFAULT_ENGINE || !ENGINE_NAME.test(name)) {
      throw new TypeError(`Cannot use the engine name ${JSON.stringify(name)}`)
    }
    const sharing = deps.engineSharing?.(name) ?? {}
    add(name, client, ownEventHub(client, settings, logError, sharing.sharedEvents), sharing)
  }
  return scopes
}

/** A hub for this app; it connects on its first subscriber (the read model, or a client). */
function ownEventHub(
  engine: EngineClient,
  settings: GatewaySettings,
  logError: ErrorLogger,
  shared: SharedRing | undefined,
) {
  return new EventHub(engine, {
    ringSize: settings.eventsRingSize,
    queueLimit: settings.eventsQueueLimit,
    logError,
    ...(shared ? { shared } : {}),
  })
}

/** The limits the settings set; each reload hands the store new `rates` (the memory store notices). */
function limitSettings(settings: GatewaySettings): LimitSettings {
  return {
    rates: { perSecond: settings.rateLimitPerSecond, burst: settings.rateLimitBurst },
    maxStreams: settings.maxStreamsPerPrincipal,
    engineBudget: settings.engineCallsPerPrincipal,
  }
}

/** Through the context, so headers that middleware already set (the request id) are kept. */
function problem(c: Context<AppEnv>, error: ProblemError) {
  c.set('problemCode', error.code)
  // The path as the client sent it (with its engine prefix), not the one it was routed by.
  const body = problemBody(error, sentPath(c), c.get('requestId'))
  return c.body(JSON.stringify(body), error.status as ContentfulStatusCode, {
    ...error.headers,
    'content-type': PROBLEM_CONTENT_TYPE,
  })
}

function methodNotAllowedResponse(c: Context<AppEnv>, methods: string[]) {
  const response = problem(
    c,
    new ProblemError(405, 'method-not-allowed', { detail: `${c.req.method} is not allowed here` }),
  )
  response.headers.set('allow', methods.join(', '))
  return response
}
