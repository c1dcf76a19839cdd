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
 * the engine) and the events hub opens its upstream inside the first `GET /v1/events`.
 */
import { type App, createApp } from './app.ts'
import { authenticatorFromConfig } from './auth/from-config.ts'
import { parseConfigFile, settingsFromConfig } from './config.ts'
import { EngineClient } from './engine/client.ts'
import { createFetchTransport } from './transport/fetch.ts'

export interface EdgeBindings {
  DOCKER_HOST?: string
  DOCKGATE_TOKEN?: string
  DOCKGATE_JWT_SECRET?: string
  DOCKGATE_CONFIG_JSON?: string
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
  const { app } = createApp({
    engine: new EngineClient(createFetchTransport(origin)),
    authenticator: authenticatorFromConfig(config, {
      envToken: bindings.DOCKGATE_TOKEN || undefined,
      jwtSecret: bindings.DOCKGATE_JWT_SECRET || undefined,
    }),
    // A read model would follow the engine between requests: an isolate runs only inside them.
    settings: { ...settingsFromConfig(config), readModel: false },
  })
  built = { bindings, app }
  return app
}

/** Bindings from the platform, else from `process.env` (Node-compatible runtimes). */
function bindingsOf(env: unknown): EdgeBindings {
  if (env && typeof env === 'object' && 'DOCKER_HOST' in env) return env as EdgeBindings
  const processEnv = (globalThis as { process?: { env?: EdgeBindings } }).process?.env
  return processEnv ?? {}
}

const handler = {
  fetch(request: Request, env?: unknown, context?: unknown): Response | Promise<Response> {
    const app = appFor(bindingsOf(env))
    return app.fetch(request, env, context as never)
  },
}

export default handler
