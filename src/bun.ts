/**
 * @module The Bun entry point: `npm run start:bun`, the executable `dist/dockgate-bun/dockgate`
 * (scripts/build-bun.mjs bundles it and compiles it, with the pinned Bun, into one file).
 *
 * The same app as on Node, served by `Bun.serve`, reaching the engine through Bun's own `fetch`
 * (src/transport/bun.ts), with the same config file, environment, log lines and graceful stop.
 * Neither `node:http`, `@hono/node-server`, undici, `ws` nor `process.stdout`'s Node streams are
 * loaded: the Node bundle on Bun ran 556 M instructions to its first answer, this entry 267–284 M
 * (bench/README.md, "Cold start on Bun, an entry of its own"). The exec session's WebSocket is
 * Bun's own (`hono/bun`). The Node bundle still runs on Bun as before.
 */
import { upgradeWebSocket, websocket } from 'hono/bun'
import { entryGateway, firstAnswer, jsonLogTo, reportEngine } from './bootstrap.ts'
import { bunStdoutLines } from './bun/stdout.ts'
import { countingTransport } from './http/observability.ts'
import { RememberedFiles, watchConfig } from './node/config-file.ts'
import { Metrics } from './observability/metrics.ts'
import { createBunTransport } from './transport/bun.ts'

/** The few members of Bun's server this entry uses, so the code compiles without Bun's typings. */
interface BunServer {
  readonly hostname: string
  readonly port: number
  /** Stops listening; with `false`, requests in progress (event streams too) run to their end. */
  stop(closeActiveConnections?: boolean): Promise<void>
  /** This request's connection may stay idle for `seconds` (0: for ever). */
  timeout(request: Request, seconds: number): void
}
interface BunLike {
  serve(options: {
    port: number
    hostname: string
    idleTimeout: number
    maxRequestBodySize: number
    fetch(request: Request, server: BunServer): Response | Promise<Response>
    websocket: typeof websocket
  }): BunServer
  readonly unsafe: {
    /** Scales JavaScriptCore's JIT tier-up thresholds; 1 is the normal policy. */
    setJITPolicy(scale: number): void
  }
}

const bun = () => (globalThis as unknown as { Bun: BunLike }).Bun

/**
 * A connection that sends and receives nothing for 10 s is closed, as Node's gateway bounds a
 * request's headers to 10 s. An event stream is quiet between its heartbeats (15 s) and may
 * stay open for hours: its connection has no idle bound once its answer starts.
 */
const IDLE_TIMEOUT_S = 10
/** A request body is at most 64 KiB (the app answers 413 past that); Bun's default is 128 MiB. */
const MAX_REQUEST_BODY_BYTES = 1024 * 1024
/**
 * The request line and headers may take 64 KiB, as on Node (src/node.ts: the longest query the
 * OpenAPI document allows is 37 KB); Bun's own limit is 16 KiB, and a 431 past it.
 */
const MAX_HEADER_BYTES = 64 * 1024
const HEADER_SIZE_FLAG = '--max-http-header-size'

/**
 * Bun takes its header limit from its command line (`--max-http-header-size=65536`, which the
 * executable is built to start with), for nothing; started without that flag (`bun src/bun.ts`),
 * from `node:http`'s `maxHeaderSize`, which `Bun.serve` follows too, but loading `node:http`
 * costs a start 12–18 ms of CPU (bench/README.md, "Cold start on Bun, an entry of its own"). A
 * flag given is kept as it is.
 */
function allowLongHeaders(): void {
  if (process.execArgv.some((arg) => arg.startsWith(HEADER_SIZE_FLAG))) return
  const http = process.getBuiltinModule('node:http') as { maxHeaderSize: number }
  http.maxHeaderSize = MAX_HEADER_BYTES
}

/** Request log, audit records and the entry's own messages: one batched stream of lines. */
const stdout = bunStdoutLines()
const log = jsonLogTo(stdout.line)

async function main() {
  const env = process.env
  const port = Number(env.PORT ?? 8080)
  const hostname = env.HOST ?? '127.0.0.1'
  const metrics = new Metrics()
  const files = new RememberedFiles()
  const { gateway, shared, instances, engine, engines, configPath } = await entryGateway({
    env,
    files,
    log,
    line: stdout.line,
    connect: (target) => countingTransport(createBunTransport(target), metrics),
    ports: { metrics, upgradeWebSocket },
  })
  // The read models' first load, the engine report and the config file's watch wait for the
  // first answer: a cold start's first request does not share the thread with them.
  const first = firstAnswer()
  const stopWatching = watchConfig(configPath, instances.reload, { after: first.settled, files })
  gateway.start({ engineAfter: first.settled })
  const app = gateway.app
  allowLongHeaders()
  const server = bun().serve({
    port,
    hostname,
    idleTimeout: IDLE_TIMEOUT_S,
    maxRequestBodySize: MAX_REQUEST_BODY_BYTES,
    // The server is the app's `env`: hono/bun's WebSocket upgrade finds it there.
    async fetch(request, server) {
      const response = await app.fetch(request, server)
      first.answered()
      if (response.headers.get('content-type')?.startsWith('text/event-stream')) {
        server.timeout(request, 0)
      }
      return response
    },
    websocket,
  })
  log({
    level: 'info',
    msg: 'listening',
    url: `http://${server.hostname}:${server.port}`,
    engine: engine.transport.description,
    store: shared.display,
  })
  // Written now, not with the next batch 20 ms later: whoever waits for the gateway (an
  // orchestrator, a script, the bench's cold start) reads this line as the signal to connect.
  void stdout.drain()
  // While the line is on its way and the client connects.
  gateway.prepare()

  void first.settled.then(() => {
    // The executable starts with its JIT 64 times more reluctant (scripts/build-bun.mjs): a
    // start's code runs once, and compiling it took the cores the first answer needed. From
    // here on the gateway serves, and the JIT's usual policy pays.
    bun().unsafe.setJITPolicy(1)
    reportEngine(engine, log)
    for (const [name, other] of Object.entries(engines)) reportEngine(other, log, name)
  })

  let stopping = false
  const shutdown = async (signal: string) => {
    if (stopping) return
    stopping = true
    log({ level: 'info', msg: 'shutting down', signal })
    setTimeout(() => process.exit(1), 10_000).unref()
    stopWatching()
    void instances.stop()
    // Event streams send their final event and close, exec sessions stop their commands and
    // close: then the server has nothing left in progress.
    await gateway.close()
    await server.stop(false)
    const transports = [engine, ...Object.values(engines)].map((e) => e.transport.close())
    await Promise.all([...transports, shared.close()])
    // The last lines ("shutting down" among them) leave before the process does.
    await stdout.drain()
    process.exit(0)
  }
  process.on('SIGTERM', () => void shutdown('SIGTERM'))
  process.on('SIGINT', () => void shutdown('SIGINT'))
}

main().catch((error: unknown) => {
  console.error(error instanceof Error ? error.message : error)
  process.exit(1)
})
