/**
 * @module The edge entry point: a standard `{ fetch }` handler (Workers / Deno Deploy style).
 *
 * The engine is reached with the runtime's plain `fetch` over HTTP(S) (`DOCKER_HOST=http(s)://…`);
 * put a TLS- and auth-terminating proxy in front of a remote engine, since edge runtimes offer no
 * client certificates. Configuration comes from bindings (or `process.env` where it exists):
 * `DOCKER_HOST`, `DOCKGATE_TOKEN`, `DOCKGATE_JWT_SECRET` and `DOCKGATE_CONFIG_JSON` (the config
 * file's content). `scripts/build-edge.mjs` bundles this file into one ES module.
 *
 * Nothing runs outside a request: the gateway is built (no I/O) on the first request and never
 * started, so the container read model is off (`readModel` is ignored; lists and inspects ask
 * the engine), and each `GET /v1/events` opens an upstream of its own, inside that request, and
 * closes it with the stream (see {@link EventHubPerSubscription}).
 *
 * Bindings arrive as the handler's `env` on Workers-style runtimes (workerd: text bindings; see
 * scripts/workerd-config.mjs), else from `process.env` where there is one (Deno Deploy, Bun).
 * Bad bindings answer every request with a 500 problem that says what is wrong.
 */
import { type App, createApp } from './app.ts'
import { authenticatorFromConfig } from './auth/from-config.ts'
import { DEFAULT_SETTINGS, parseConfigFile, settingsFromConfig } from './config.ts'
import type { DocsRenderer, DocsRendererLoader } from './docs/routes.ts'
import { EngineClient } from './engine/client.ts'
import { PROBLEM_CONTENT_TYPE, ProblemError, problemBody } from './errors.ts'
import {
  EventHub,
  type EventHubOptions,
  type EventHubStats,
  type SubscribeOptions,
  type Subscription,
} from './events/hub.ts'
import { createFetchTransport } from './transport/fetch.ts'

export interface EdgeBindings {
  DOCKER_HOST?: string
  DOCKGATE_TOKEN?: string
  DOCKGATE_JWT_SECRET?: string
  DOCKGATE_CONFIG_JSON?: string
  /**
   * Where `/docs` reads its renderer, `docs-renderer.json` (scripts/build-edge.mjs writes it to
   * dist/edge-assets): a service binding (workerd: a disk service). Unset: the module beside the
   * bundle, imported on the first `/docs` request.
   */
  DOCS_ASSETS?: { fetch(input: string): Promise<Response> }
}

/** Built once per set of bindings: isolates are reused across requests. */
let built: { bindings: EdgeBindings; app: App } | undefined

function appFor(bindings: EdgeBindings): App {
  if (built?.bindings === bindings) return built.app
  const origin = bindings.DOCKER_HOST?.replace(/^tcp:\/\//, 'http://')
  if (!origin || !/^https?:\/\//.test(origin)) {
    throw new TypeError(
      'Cannot start: DOCKER_HOST must be an http:// or https:// engine URL on the edge',
    )
  }
  const config = parseConfigFile(bindings.DOCKGATE_CONFIG_JSON ?? '{}', 'DOCKGATE_CONFIG_JSON')
  const settings = { ...settingsFromConfig(config), readModel: false }
  const engine = new EngineClient(createFetchTransport(origin))
  const { app } = createApp({
    engine,
    events: new EventHubPerSubscription(engine, {
      ringSize: settings.eventsRingSize ?? DEFAULT_SETTINGS.eventsRingSize,
      queueLimit: settings.eventsQueueLimit ?? DEFAULT_SETTINGS.eventsQueueLimit,
    }),
    authenticator: authenticatorFromConfig(config, {
      envToken: bindings.DOCKGATE_TOKEN || undefined,
      jwtSecret: bindings.DOCKGATE_JWT_SECRET || undefined,
    }),
    // A read model would follow the engine between requests: an isolate runs only inside them.
    settings,
    ...(bindings.DOCS_ASSETS ? { docsRenderer: rendererFrom(bindings.DOCS_ASSETS) } : {}),
  })
  built = { bindings, app }
  return app
}

/**
 * The /docs renderer from an assets binding. workerd compiles every module of its config when it
 * starts, and the renderer as one cost a cold start about 250 ms (bench/README.md): read as data
 * on the first request that needs it instead, and kept.
 */
function rendererFrom(assets: NonNullable<EdgeBindings['DOCS_ASSETS']>): DocsRendererLoader {
  let renderer: DocsRenderer | undefined
  return async () => {
    if (renderer) return renderer
    const response = await assets.fetch('http://assets/docs-renderer.json')
    if (!response.ok) {
      await response.body?.cancel()
      throw new Error(`DOCS_ASSETS answered ${response.status} for docs-renderer.json`)
    }
    const { file, script } = (await response.json()) as DocsRenderer
    renderer = { file, script }
    return renderer
  }
}

/** Bindings from the platform, else from `process.env` (Node-compatible runtimes). */
function bindingsOf(env: unknown): EdgeBindings {
  if (env && typeof env === 'object' && 'DOCKER_HOST' in env) return env as EdgeBindings
  const processEnv = (globalThis as { process?: { env?: EdgeBindings } }).process?.env
  return processEnv ?? {}
}

/**
 * The events hub of an isolate: one `EventHub` per subscription, opened inside the request that
 * subscribes and closed when its stream ends. A hub shared by requests would keep an engine stream
 * open between them, and on workerd that stream belongs to the request that opened it (I/O
 * objects are per request: the runtime cancels it when that request ends, and another request may
 * not read it). A resume (`Last-Event-ID`, `since`) still works: each hub's first connection
 * replays the engine's own ring (`since=0`), so a point the engine still holds resumes with no gap
 * and no repeat, and one it no longer holds gets `resync` (`gap`), as on any instance.
 *
 * `GET /v1/events` asks `connected` and `ready()` right after `subscribe()`, in the same turn, so
 * they answer for the hub of the subscription just made.
 */
class EventHubPerSubscription extends EventHub {
  readonly #engine: EngineClient
  readonly #options: EventHubOptions
  readonly #open = new Set<EventHub>()
  #latest: EventHub | undefined
  /** Upstream connections of the hubs already closed, so the count never goes down. */
  #closedConnections = 0

  constructor(engine: EngineClient, options: EventHubOptions) {
    super(engine, options)
    this.#engine = engine
    this.#options = options
  }

  override subscribe(options: SubscribeOptions = {}): Subscription {
    const hub = new EventHub(this.#engine, this.#options)
    const subscription = hub.subscribe(options)
    this.#open.add(hub)
    this.#latest = hub
    return {
      next: () => subscription.next(),
      takeReady: (max) => subscription.takeReady(max),
      whenReady: () => subscription.whenReady(),
      onReady: (listener) => subscription.onReady(listener),
      close: () => {
        subscription.close()
        hub.close()
        if (this.#open.delete(hub)) this.#closedConnections += hub.stats().upstreamConnections
        if (this.#latest === hub) this.#latest = undefined
      },
    }
  }

  override get connected(): boolean {
    return this.#latest?.connected ?? false
  }

  override ready(signal?: AbortSignal): Promise<void> {
    return this.#latest ? this.#latest.ready(signal) : Promise.resolve()
  }

  override start(): void {}

  /** The hubs together: connections (closed hubs' too) and the open ones' subscribers add up. */
  override stats(): EventHubStats {
    const all = [...this.#open].map((hub) => hub.stats())
    return {
      upstreamConnected: all.some((s) => s.upstreamConnected),
      upstreamConnections: all.reduce(
        (sum, s) => sum + s.upstreamConnections,
        this.#closedConnections,
      ),
      subscribers: all.reduce((sum, s) => sum + s.subscribers, 0),
      ringSize: all.reduce((sum, s) => sum + s.ringSize, 0),
      // What each subscription's hub may hold: they are all built with the same options.
      ringCapacity: super.stats().ringCapacity,
      coverageFrom: null,
      malformed: all.reduce((sum, s) => sum + s.malformed, 0),
    }
  }

  override close(): void {
    for (const hub of this.#open) {
      hub.close()
      this.#closedConnections += hub.stats().upstreamConnections
    }
    this.#open.clear()
  }
}

/** The bindings an isolate is configured by, as a misconfigured one's answer names them. */
const BINDINGS = [
  'DOCKER_HOST',
  'DOCKGATE_CONFIG_JSON',
  'DOCKGATE_TOKEN',
  'DOCKGATE_JWT_SECRET',
] as const

/**
 * Bad bindings, as a problem: an isolate has no start-up to refuse, and no one reads its stderr
 * first. The answer names the binding at fault; why is logged only, since a config's issues name
 * its registries, tokens and engines, and every request gets this answer, `/healthz` included.
 */
function misconfigured(request: Request, error: unknown): Response {
  const reason = error instanceof Error ? error.message : String(error)
  console.error(JSON.stringify({ level: 'error', msg: 'misconfigured', reason }))
  const binding = BINDINGS.filter((name) => reason.includes(name)).join(', ') || 'a binding'
  const problem = new ProblemError(500, 'internal-error', {
    detail: `The gateway is misconfigured: ${binding} cannot be used (its log says why)`,
  })
  return new Response(JSON.stringify(problemBody(problem, new URL(request.url).pathname)), {
    status: 500,
    headers: { 'content-type': PROBLEM_CONTENT_TYPE },
  })
}

const handler = {
  fetch(request: Request, env?: unknown, context?: unknown): Response | Promise<Response> {
    let app: App
    try {
      app = appFor(bindingsOf(env))
    } catch (error) {
      return misconfigured(request, error)
    }
    return app.fetch(request, env, context as never)
  },
}

export default handler
