/**
 * @module The Deno entry point: `deno task start`.
 *
 * The same app as on Node, served by `Deno.serve`, reaching the engine through Deno's own HTTP
 * client (a Unix-socket proxy, or TCP/TLS), with the same config file and environment.
 */
import { upgradeWebSocket } from 'hono/deno'
import { entryGateway, firstAnswer, jsonLogTo, reportEngine } from './bootstrap.ts'
import type { ConfigFiles } from './config-store.ts'
import { denoStdoutLines } from './deno/stdout.ts'
import { createDenoTransport } from './transport/deno.ts'

/** Request log, audit records and the entry's own messages: one batched stream of lines. */
const stdout = denoStdoutLines()
const log = jsonLogTo(stdout.line)

const denoFiles: ConfigFiles = {
  read(path) {
    try {
      return Deno.readTextFileSync(path)
    } catch (error) {
      if (error instanceof Deno.errors.NotFound) return undefined
      throw error
    }
  },
  writePrivate(path, text) {
    Deno.writeTextFileSync(path, text, { mode: 0o600 })
    Deno.chmodSync(path, 0o600)
  },
}

/** Every environment variable the gateway reads (scripts/deno-start.sh allows exactly these). */
const ENV_KEYS = [
  'PORT',
  'HOST',
  'DOCKGATE_CONFIG',
  'DOCKGATE_TOKEN',
  'DOCKGATE_JWT_SECRET',
  'DOCKGATE_STORE',
  'DOCKGATE_SECRET',
  'DOCKER_HOST',
  'DOCKER_TLS_VERIFY',
  'DOCKER_TLS',
  'DOCKER_CERT_PATH',
  'HOME',
] as const

async function main() {
  // Variables read one by one: `--allow-env` then names exactly these.
  const env = Object.fromEntries(ENV_KEYS.map((key) => [key, Deno.env.get(key)]))
  const port = Number(env.PORT ?? 8080)
  const hostname = env.HOST ?? '127.0.0.1'
  const { gateway, shared, instances, engine, engines } = await entryGateway({
    env,
    files: denoFiles,
    log,
    line: stdout.line,
    connect: createDenoTransport,
    ports: { upgradeWebSocket },
  })
  Deno.addSignalListener('SIGHUP', instances.reload)

  // Listen for signals before serving: a SIGTERM right after "listening" must end cleanly.
  let server: Deno.HttpServer | undefined
  let stopping = false
  const shutdown = async (signal: string) => {
    if (stopping) return
    stopping = true
    log({ level: 'info', msg: 'shutting down', signal })
    setTimeout(() => Deno.exit(1), 10_000)
    // Exec sessions stop their commands and close first: Deno's shutdown does not wait for them.
    await gateway.close()
    await instances.stop()
    await server?.shutdown()
    const transports = [engine, ...Object.values(engines)].map((e) => e.transport.close())
    await Promise.all([...transports, shared.close()])
    // The last lines ("shutting down" among them) leave before the process does.
    await stdout.drain()
    Deno.exit(0)
  }
  Deno.addSignalListener('SIGTERM', () => void shutdown('SIGTERM'))
  Deno.addSignalListener('SIGINT', () => void shutdown('SIGINT'))

  // The read models' first load and the engine report wait for the first answer: a cold
  // start's first request does not share the thread with them.
  const first = firstAnswer()
  let answered = false
  gateway.start({ engineAfter: first.settled })
  server = Deno.serve(
    {
      port,
      hostname,
      onListen: ({ hostname: host, port: bound }) => {
        log({
          level: 'info',
          msg: 'listening',
          url: `http://${host}:${bound}`,
          engine: engine.transport.description,
          store: shared.display,
        })
        // Written now, not with the next batch 20 ms later: whoever waits for the gateway (an
        // orchestrator, a script, the bench's cold start) reads this line as the signal to connect.
        void stdout.drain()
        // While the line is on its way and the client connects.
        gateway.prepare()
      },
    },
    (request, info) => {
      // Once the first answer has left: Deno writes it from this same thread, after the handler.
      if (!answered) {
        answered = true
        info.completed.then(first.answered, first.answered)
      }
      return gateway.app.fetch(request, info)
    },
  )

  void first.settled.then(() => {
    reportEngine(engine, log)
    for (const [name, other] of Object.entries(engines)) reportEngine(other, log, name)
  })
}

main().catch((error: unknown) => {
  console.error(error instanceof Error ? error.message : error)
  Deno.exit(1)
})
