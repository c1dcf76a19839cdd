/**
 * @module The Node entry point: `npm start`.
 *
 * Environment: `PORT` (8080), `HOST` (127.0.0.1), `DOCKGATE_CONFIG` (./dockgate.config.json),
 * `DOCKGATE_TOKEN` (an admin token for automation), `DOCKGATE_STORE` and `DOCKGATE_SECRET` (the
 * state store shared with other instances: limits, tickets, the events ring, write positions and
 * reloads), and the docker CLI's `DOCKER_HOST`, `DOCKER_TLS_VERIFY`, `DOCKER_CERT_PATH`.
 */
// First: the Fetch globals are undici's before @hono/node-server is evaluated (it extends them).
import './node/fetch-globals.ts'
import type { Server } from 'node:http'
import { serve, upgradeWebSocket } from '@hono/node-server'
import { WebSocketServer } from 'ws'
import { entryGateway, firstAnswer, jsonLogTo, reportEngine } from './bootstrap.ts'
import { countingTransport } from './http/observability.ts'
import { answerClientErrorsAsProblems } from './node/client-errors.ts'
import { RememberedFiles, watchConfig } from './node/config-file.ts'
import { writeEventStreamsOnNodeResponse } from './node/event-streams.ts'
import { readHeaderOfNodeRequest } from './node/request-headers.ts'
import { ResponseWithRequestId, writeRequestIdOnNodeResponse } from './node/request-id.ts'
import { stdoutLines } from './node/stdout.ts'
import { closeAfterUnreadBodies } from './node/unread-bodies.ts'
import { Metrics } from './observability/metrics.ts'
import { SESSION_QUEUE_BYTES } from './routes/exec-session.limits.ts'
import { createNodeTransport } from './transport/node.ts'

/**
 * A client has 10 s to send its headers and 15 s for its whole request (a body is at most
 * 64 KiB); Node's own limits are 60 s and 5 min, checked every 30 s, so a client trickling a
 * body a byte at a time held a connection for minutes. A response, an event stream included,
 * is not bound by these: a request is complete once its headers and body have arrived.
 * The request line and headers may take 64 KiB (Node's default is 16): the longest query the
 * OpenAPI document allows, 16 label selectors of 256 characters percent-encoded, is 37 KB.
 */
const serverOptions = {
  maxHeaderSize: 64 * 1024,
  ServerResponse: ResponseWithRequestId,
  headersTimeout: 10_000,
  requestTimeout: 15_000,
  connectionsCheckingInterval: 1_000,
}

/** Request log, audit records and the entry's own messages: one batched stream of lines. */
const stdout = stdoutLines()
const log = jsonLogTo(stdout.line)

async function main() {
  const env = process.env
  const port = Number(env.PORT ?? 8080)
  const host = env.HOST ?? '127.0.0.1'
  const metrics = new Metrics()
  const files = new RememberedFiles()
  const { gateway, shared, instances, engine, engines, configPath } = await entryGateway({
    env,
    files,
    log,
    line: stdout.line,
    connect: (target) => countingTransport(createNodeTransport(target), metrics),
    ports: {
      metrics,
      writeRequestId: writeRequestIdOnNodeResponse,
      readRequestHeader: readHeaderOfNodeRequest,
      eventStreamOutput: writeEventStreamsOnNodeResponse,
      upgradeWebSocket,
    },
  })
  // The read models' first load, the engine report and the config file's watch wait for the
  // first answer: a cold start's first request does not share the thread with them.
  const first = firstAnswer()
  const stopWatching = watchConfig(configPath, instances.reload, { after: first.settled, files })
  gateway.start({ engineAfter: first.settled })
  const fetch = first.watch(closeAfterUnreadBodies(gateway.app.fetch))
  // The exec session's WebSockets: `ws` takes the upgraded sockets the adapter hands it. A message
  // may be no larger than what a session lets wait (`ws` reads up to 100 MiB of one otherwise).
  const websocket = {
    server: new WebSocketServer({ noServer: true, maxPayload: SESSION_QUEUE_BYTES }),
  }
  const server = serve({ fetch, port, hostname: host, serverOptions, websocket }, (info) => {
    log({
      level: 'info',
      msg: 'listening',
      url: `http://${info.address}:${info.port}`,
      engine: engine.transport.description,
      store: shared.display,
    })
    // Written now, not with the next batch 20 ms later: whoever waits for the gateway (an
    // orchestrator, a script, the bench's cold start) reads this line as the signal to connect.
    void stdout.drain()
    // While the line is on its way and the client connects.
    gateway.prepare()
  })

  answerClientErrorsAsProblems(server as Server)
  void first.settled.then(() => {
    reportEngine(engine, log)
    for (const [name, other] of Object.entries(engines)) reportEngine(other, log, name)
  })

  let stopping = false
  const shutdown = (signal: string) => {
    if (stopping) return
    stopping = true
    log({ level: 'info', msg: 'shutting down', signal })
    const forced = setTimeout(() => process.exit(1), 10_000)
    forced.unref()
    stopWatching()
    void instances.stop()
    // Event streams send their final event and close, so the server can finish; so do exec
    // sessions, once their commands are stopped (the server waits for their sockets).
    void gateway.close()
    server.close(() => {
      // The last lines ("shutting down" among them) leave before the process does.
      const exit = () => stdout.drain().then(() => process.exit(0))
      const transports = [engine, ...Object.values(engines)].map((e) => e.transport.close())
      Promise.all([...transports, shared.close()]).then(exit, exit)
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
