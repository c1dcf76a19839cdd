/**
 * @module The Node entry point: `npm start`.
 *
 * Environment: `PORT` (8080), `HOST` (127.0.0.1), `DOCKGATE_CONFIG` (./dockgate.config.json),
 * `DOCKGATE_TOKEN` (an admin token for automation), and the docker CLI's `DOCKER_HOST`,
 * `DOCKER_TLS_VERIFY`, `DOCKER_CERT_PATH`.
 */
import { serve } from '@hono/node-server'
import { createApp } from './app.ts'
import { authenticatorFromConfig, SwappableAuthenticator } from './auth/from-config.ts'
import { settingsFromConfig } from './config.ts'
import { DEFAULT_CONFIG_PATH, loadConfig, loadOrCreateConfig, readJwks } from './config-store.ts'
import { EngineClient } from './engine/client.ts'
import { nodeFiles, watchConfig } from './node/config-file.ts'
import { Metrics } from './observability/metrics.ts'
import { countingTransport } from './observability/middleware.ts'
import { engineTargetFromEnv } from './transport/docker-host.ts'
import { createNodeTransport } from './transport/node.ts'

/**
 * A client has 10 s to send its headers and 15 s for its whole request (a body is at most
 * 64 KiB); Node's own limits are 60 s and 5 min, checked every 30 s, so a client trickling a
 * body a byte at a time held a connection for minutes. A response, an event stream included,
 * is not bound by these: a request is complete once its headers and body have arrived.
 */
const serverOptions = {
  headersTimeout: 10_000,
  requestTimeout: 15_000,
  connectionsCheckingInterval: 1_000,
}

const log = (fields: Record<string, unknown>) =>
  console.log(JSON.stringify({ time: new Date().toISOString(), ...fields }))

async function main() {
  const env = process.env
  const port = Number(env.PORT ?? 8080)
  const host = env.HOST ?? '127.0.0.1'
  const configPath = env.DOCKGATE_CONFIG ?? DEFAULT_CONFIG_PATH
  const envToken = env.DOCKGATE_TOKEN || undefined

  const jwtSecret = env.DOCKGATE_JWT_SECRET || undefined
  const { config, createdToken } = await loadOrCreateConfig(
    nodeFiles,
    configPath,
    envToken !== undefined || jwtSecret !== undefined,
  )
  if (createdToken) {
    console.log(
      `\nCreated ${configPath} with one admin token. It is shown only this once:\n\n  ${createdToken}\n\n` +
        'Only its hash is stored. Use it as: Authorization: Bearer <token>\n',
    )
  }

  const authEnv = { envToken, jwtSecret }
  const authenticator = new SwappableAuthenticator(
    authenticatorFromConfig(config, { ...authEnv, jwks: readJwks(nodeFiles, config, configPath) }),
  )
  const stopWatching = watchConfig(configPath, () => {
    try {
      const next = loadConfig(nodeFiles, configPath)
      const jwks = readJwks(nodeFiles, next, configPath)
      authenticator.replace(authenticatorFromConfig(next, { ...authEnv, jwks }))
      log({ level: 'info', msg: 'config reloaded', tokens: next.tokens.length })
    } catch (error) {
      log({
        level: 'error',
        msg: 'config reload failed; the previous config stays',
        error: String(error),
      })
    }
  })

  const transport = createNodeTransport(engineTargetFromEnv(env))
  const metrics = new Metrics()
  const engine = new EngineClient(countingTransport(transport, metrics), {
    onEngineError: (detail) => log({ level: 'warn', msg: 'engine error', ...detail }),
  })
  const stopping = new AbortController()
  const app = createApp({
    engine,
    shutdown: stopping.signal,
    metrics,
    authenticator,
    settings: settingsFromConfig(config),
    logError: (message, error) => log({ level: 'error', msg: message, error: String(error) }),
  })

  const server = serve({ fetch: app.fetch, port, hostname: host, serverOptions }, (info) => {
    log({
      level: 'info',
      msg: 'listening',
      url: `http://${info.address}:${info.port}`,
      engine: transport.description,
    })
  })

  engine.ping().then(
    ({ apiVersion }) => log({ level: 'info', msg: 'engine answers', apiVersion }),
    () =>
      log({
        level: 'warn',
        msg: `no Docker Engine answers at ${transport.description}; /readyz says 503 until one does`,
        hint: 'start the project engine with: eval "$(bash scripts/engine.sh up)" and restart, or set DOCKER_HOST',
      }),
  )

  const shutdown = (signal: string) => {
    if (stopping.signal.aborted) return
    log({ level: 'info', msg: 'shutting down', signal })
    const forced = setTimeout(() => process.exit(1), 10_000)
    forced.unref()
    stopWatching()
    // Event streams send their final event and close, so the server can finish.
    stopping.abort()
    server.close(() => {
      transport.close().finally(() => process.exit(0))
    })
    // Idle keep-alive sockets would hold close() open, also those whose event stream has just
    // sent its final event: close them as they become idle.
    const closeIdle = () => {
      if ('closeIdleConnections' in server) server.closeIdleConnections()
    }
    closeIdle()
    setInterval(closeIdle, 50).unref()
  }
  process.on('SIGTERM', () => shutdown('SIGTERM'))
  process.on('SIGINT', () => shutdown('SIGINT'))
}

main().catch((error: unknown) => {
  console.error(error instanceof Error ? error.message : error)
  process.exit(1)
})
