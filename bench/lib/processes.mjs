/**
 * Gateway processes (and the bare baselines of the cold-start figure): started here, tracked by
 * pid, and stopped by pid at the end whatever happens.
 */
import { execFileSync, spawn } from 'node:child_process'
import { existsSync, readFileSync, writeFileSync } from 'node:fs'
import http from 'node:http'
import { createServer } from 'node:net'
import { dirname, join } from 'node:path'
import { workerdCommand, writeWorkerdConfig } from '../../scripts/workerd-config.mjs'
import { nowMs, sleep } from './util.mjs'

export const ROOT = new URL('../..', import.meta.url).pathname.replace(/\/$/, '')
export const DENO = `${ROOT}/node_modules/.bin/deno`
export const BUN = `${ROOT}/node_modules/.bin/bun`

const children = new Set()

export async function freePort() {
  const server = createServer()
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address()
  await new Promise((resolve) => server.close(resolve))
  return port
}

/** One GET on a fresh connection; resolves with the status, or 0 when nothing answers. */
export function probe(url, timeoutMs = 1_000) {
  return new Promise((resolve) => {
    const req = http.get(url, { agent: false, timeout: timeoutMs }, (res) => {
      res.resume()
      res.on('end', () => resolve(res.statusCode))
      res.on('error', () => resolve(0))
    })
    req.on('timeout', () => req.destroy())
    req.on('error', () => resolve(0))
  })
}

export function getText(url, headers = {}, timeoutMs = 10_000) {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { agent: false, headers, timeout: timeoutMs }, (res) => {
      const chunks = []
      res.on('data', (c) => chunks.push(c))
      res.on('end', () =>
        resolve({ status: res.statusCode, text: Buffer.concat(chunks).toString('utf8') }),
      )
      res.on('error', reject)
    })
    req.on('timeout', () => req.destroy(new Error(`GET ${url} timed out`)))
    req.on('error', reject)
  })
}

/**
 * Starts a process that serves HTTP on `port` and measures the time from spawn to the first
 * 200 on `readyPath`: it probes as soon as the process prints a line with "listening" and
 * every 20 ms besides. Rejects when it exits or stays silent past `timeoutMs`.
 */
export async function startServer({
  file,
  args,
  env,
  port,
  readyPath = '/healthz',
  timeoutMs,
  quiet = false,
  cwd = ROOT,
  probeEveryMs = 20,
}) {
  const url = `http://127.0.0.1:${port}`
  const t0 = nowMs()
  const child = spawn(file, args, {
    cwd,
    env,
    // A gateway under load writes a request log line per request: nobody reads it then.
    stdio: ['ignore', quiet ? 'ignore' : 'pipe', 'pipe'],
  })
  children.add(child)
  child.once('exit', () => children.delete(child))
  let tail = ''
  let sawListening = false
  let wake
  const onOutput = (chunk) => {
    const text = chunk.toString('utf8')
    tail = (tail + text).slice(-4_000)
    if (!sawListening && /listening|Listening/.test(text)) {
      sawListening = true
      wake?.()
    }
  }
  child.stdout?.on('data', onOutput)
  child.stderr.on('data', onOutput)
  const deadline = Date.now() + timeoutMs
  for (;;) {
    if (child.exitCode !== null || child.signalCode !== null) {
      throw new Error(`${file} ${args.join(' ')} exited before it answered:\n${tail}`)
    }
    if (Date.now() > deadline) {
      child.kill('SIGKILL')
      throw new Error(`${file} ${args.join(' ')} did not answer within ${timeoutMs} ms:\n${tail}`)
    }
    const status = await probe(`${url}${readyPath}`, 2_000)
    if (status === 200) break
    await new Promise((resolve) => {
      wake = resolve
      setTimeout(resolve, probeEveryMs)
    })
    wake = undefined
  }
  const readyMs = nowMs() - t0
  // From here on the output is only kept for error reports; the request log goes unread.
  return {
    child,
    pid: child.pid,
    url,
    port,
    readyMs,
    output: () => tail,
    stop: () => stopProcess(child),
  }
}

/** SIGTERM, then SIGKILL after 3 s; resolves once the process has exited. */
export async function stopProcess(child) {
  if (child.exitCode !== null || child.signalCode !== null) return
  const exited = new Promise((resolve) => child.once('exit', resolve))
  child.kill('SIGTERM')
  const killed = await Promise.race([exited.then(() => true), sleep(3_000).then(() => false)])
  if (!killed) {
    child.kill('SIGKILL')
    await Promise.race([exited, sleep(2_000)])
  }
}

/** Ends every process started here, by pid (SIGKILL: used on the way out). */
export function killAll() {
  for (const child of children) {
    if (child.exitCode === null && child.signalCode === null) {
      try {
        process.kill(child.pid, 'SIGKILL')
      } catch {
        // already gone
      }
    }
  }
}

export async function stopAll() {
  await Promise.all([...children].map((child) => stopProcess(child)))
}

/** The environment of a gateway process: only what it reads, plus PATH and HOME. */
export function gatewayEnv({ port, dockerHost, token, configPath, root }) {
  return {
    PATH: process.env.PATH ?? '/usr/bin:/bin',
    HOME: process.env.HOME ?? '/root',
    ...(process.env.DENO_DIR ? { DENO_DIR: process.env.DENO_DIR } : {}),
    NO_COLOR: '1',
    HOST: '127.0.0.1',
    PORT: String(port),
    DOCKER_HOST: dockerHost,
    DOCKGATE_TOKEN: token,
    DOCKGATE_CONFIG: configFor(root, configPath),
  }
}

/**
 * The bench's config as the tree at `root` (a `--compare` checkout) takes it. Its config schema
 * is strict, so a `limits` key its commit does not know yet (`engineCallsPerClient` before
 * issue 12) would stop it from starting: keys its `src/config.ts` never names are left out.
 */
function configFor(root, configPath) {
  if (!root || root === ROOT) return configPath
  const schema = readFileSync(`${root}/src/config.ts`, 'utf8')
  const config = JSON.parse(readFileSync(configPath, 'utf8'))
  const limits = Object.entries(config.limits ?? {}).filter(([key]) => schema.includes(key))
  const path = configPath.replace(/\.json$/, '.compared.json')
  writeFileSync(path, JSON.stringify({ ...config, limits: Object.fromEntries(limits) }))
  return path
}

/** The Node gateway as `npm start` runs it: the bundle scripts/build-node.mjs writes. */
export const NODE_ENTRY = 'dist/dockgate.mjs'
/** The flags a tree's `npm start` gives Node (its package.json `config.nodeFlags`; see the README). */
export const nodeFlagsOf = (root) =>
  JSON.parse(readFileSync(`${root}/package.json`, 'utf8'))
    .config?.nodeFlags?.split(/\s+/)
    .filter(Boolean) ?? []
export const NODE_FLAGS = nodeFlagsOf(ROOT)

export async function startNodeGateway(options) {
  const port = await freePort()
  return startServer({
    file: process.execPath,
    args: [
      ...(options.root ? nodeFlagsOf(options.root) : NODE_FLAGS),
      ...(options.nodeArgs ?? []),
      options.entry ?? NODE_ENTRY,
    ],
    env: { ...gatewayEnv({ ...options, port }), ...options.env },
    port,
    timeoutMs: options.timeoutMs ?? 20_000,
    quiet: options.quiet ?? false,
  })
}

/** The Deno gateway of the tree at `options.root` (this one, or a `--compare` checkout). */
export async function startDenoGateway(options) {
  const port = await freePort()
  return startServer({
    file: 'bash',
    args: [`${options.root ?? ROOT}/scripts/deno-start.sh`],
    cwd: options.root ?? ROOT,
    env: gatewayEnv({ ...options, port }),
    port,
    timeoutMs: options.timeoutMs ?? 30_000,
    quiet: options.quiet ?? false,
  })
}

/** The Bun entry scripts/build-bun.mjs writes: one executable, the pinned Bun in it. */
export const BUN_EXECUTABLE = 'dist/dockgate-bun/dockgate'
/** What it wrote before (a `--compare` checkout): a script compiled to Bun's bytecode. */
const BUN_SCRIPT = 'dist/dockgate-bun/dockgate.cjs'

/**
 * The gateway on Bun, of the tree at `options.root`: its Bun executable, its Bun script (run as
 * `npm run start:bun` ran it then), or the Node bundle (`npm start`'s file, or `options.entry`) in
 * a tree that has neither (`--compare` checkouts from before them).
 */
export function bunEntryOf(options) {
  if (options.entry) return options.entry
  const has = (file) => existsSync(join(options.root ?? ROOT, file))
  return has(BUN_EXECUTABLE) ? BUN_EXECUTABLE : has(BUN_SCRIPT) ? BUN_SCRIPT : NODE_ENTRY
}

export async function startBunGateway(options) {
  const port = await freePort()
  const entry = bunEntryOf(options)
  const root = options.root ?? ROOT
  return startServer({
    // As `npm run start:bun` runs the Bun entry (src/bun.ts says why).
    ...(entry === BUN_EXECUTABLE
      ? { file: join(root, entry), args: [] }
      : {
          file: BUN,
          args: [...(entry === BUN_SCRIPT ? ['--max-http-header-size=65536'] : []), entry],
        }),
    cwd: root,
    env: gatewayEnv({ ...options, port }),
    port,
    timeoutMs: options.timeoutMs ?? 20_000,
    quiet: options.quiet ?? false,
  })
}

/**
 * The edge bundle (`dist/edge.js` of the tree at `options.root`) on workerd, from a config that
 * scripts/workerd-config.mjs writes next to the bench's config: the engine over its TCP port
 * (`options.tcpHost`), the token and the bench's config file as bindings. workerd prints nothing
 * when it listens: the start is found by probing, every 5 ms.
 */
export async function startWorkerdGateway(options) {
  if (!options.tcpHost) {
    throw new Error(
      'workerd needs the engine on TCP: DOCKGATE_TEST_TCP_HOST (scripts/engine.sh env)',
    )
  }
  const port = await freePort()
  const config = gatewayEnv({ ...options, port }).DOCKGATE_CONFIG
  // A tree from before the renderer moved out of the bundle has no dist/edge-assets.
  const assets = join(options.root ?? ROOT, 'dist/edge-assets')
  const capnp = writeWorkerdConfig({
    directories: existsSync(assets) ? { DOCS_ASSETS: assets } : {},
    modulePath: join(options.root ?? ROOT, 'dist/edge.js'),
    configPath: join(dirname(options.configPath), `workerd-gateway-${port}.capnp`),
    port,
    bindings: {
      DOCKER_HOST: options.tcpHost,
      DOCKGATE_TOKEN: options.token,
      DOCKGATE_CONFIG_JSON: readFileSync(config, 'utf8'),
    },
  })
  return startWorkerd(capnp, port, '/healthz', options.timeoutMs ?? 20_000)
}

function startWorkerd(capnp, port, readyPath, timeoutMs) {
  const { file, args } = workerdCommand(capnp)
  return startServer({
    file,
    args,
    env: { PATH: process.env.PATH ?? '', NO_COLOR: '1' },
    port,
    readyPath,
    timeoutMs,
    probeEveryMs: 5,
  })
}

/** The smallest HTTP server each runtime can run: the cold-start baseline. */
export async function startBareNode(timeoutMs = 10_000) {
  const port = await freePort()
  const code =
    "require('node:http').createServer((q,s)=>s.end('ok')).listen(+process.env.PORT,'127.0.0.1',()=>console.log('listening'))"
  return startServer({
    file: process.execPath,
    args: ['-e', code],
    env: { PATH: process.env.PATH ?? '', PORT: String(port) },
    port,
    readyPath: '/',
    timeoutMs,
  })
}

export async function startBareDeno(timeoutMs = 20_000) {
  const port = await freePort()
  const code =
    "Deno.serve({ port: Number(Deno.env.get('PORT')), hostname: '127.0.0.1', onListen() { console.log('listening') } }, () => new Response('ok'))"
  return startServer({
    file: DENO,
    args: ['eval', code],
    env: {
      PATH: process.env.PATH ?? '',
      HOME: process.env.HOME ?? '/root',
      NO_COLOR: '1',
      PORT: String(port),
    },
    port,
    readyPath: '/',
    timeoutMs,
  })
}

const BARE_BUN_SERVER =
  "Bun.serve({ port: Number(process.env.PORT), hostname: '127.0.0.1', fetch: () => new Response('ok') }); console.log('listening')"

export async function startBareBun(timeoutMs = 10_000) {
  const port = await freePort()
  return startServer({
    file: BUN,
    args: ['-e', BARE_BUN_SERVER],
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/root', PORT: String(port) },
    port,
    readyPath: '/',
    timeoutMs,
  })
}

/**
 * The bare Bun server compiled into an executable as scripts/build-bun.mjs compiles the gateway
 * (`--compile --bytecode`, no `.env` or `bunfig.toml` read); built into `dir` on first use.
 */
export async function startBareBunExecutable(dir, timeoutMs = 10_000) {
  const executable = join(dir, 'bare-bun-server')
  if (!existsSync(executable)) {
    writeFileSync(join(dir, 'bare-bun-server.js'), BARE_BUN_SERVER)
    execFileSync(
      BUN,
      [
        'build',
        'bare-bun-server.js',
        '--compile',
        '--bytecode',
        '--no-compile-autoload-dotenv',
        '--no-compile-autoload-bunfig',
        `--outfile=${executable}`,
      ],
      { cwd: dir, stdio: ['ignore', 'ignore', 'inherit'] },
    )
  }
  const port = await freePort()
  return startServer({
    file: executable,
    args: [],
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/root', PORT: String(port) },
    port,
    readyPath: '/',
    timeoutMs,
  })
}

/** A minimal worker (one module that answers `ok`) on workerd; `dir` holds its module and config. */
export async function startBareWorkerd(dir, timeoutMs = 10_000) {
  const port = await freePort()
  const modulePath = join(dir, 'minimal-worker.mjs')
  writeFileSync(modulePath, "export default { fetch: () => new Response('ok') }\n")
  const capnp = writeWorkerdConfig({
    modulePath,
    configPath: join(dir, `workerd-bare-${port}.capnp`),
    port,
  })
  return startWorkerd(capnp, port, '/', timeoutMs)
}

/** The events fan-out floor: a bare node:http event-stream server (bench/lib/sse-floor.mjs). */
export async function startSseFloor(timeoutMs = 10_000) {
  const port = await freePort()
  return startServer({
    file: process.execPath,
    args: [`${ROOT}/bench/lib/sse-floor.mjs`],
    env: { PATH: process.env.PATH ?? '', PORT: String(port) },
    port,
    timeoutMs,
  })
}

/**
 * The bare Hono app (bench/lib/hono-baseline.mjs) on @hono/node-server, with the gateway's Node
 * flags: the CPU floor of a Hono route, and the plain pass-through of engine events.
 */
export async function startHonoBaseline({ dockerHost, constJson, timeoutMs = 10_000 }) {
  const port = await freePort()
  return startServer({
    file: process.execPath,
    args: [...NODE_FLAGS, `${ROOT}/bench/lib/hono-baseline.mjs`],
    env: {
      PATH: process.env.PATH ?? '',
      PORT: String(port),
      DOCKER_HOST: dockerHost,
      CONST_JSON: constJson,
    },
    port,
    timeoutMs,
    quiet: true,
  })
}

/** The gateway's Prometheus text as { name: value } (unlabelled series only). */
export async function gatewayGauges(url, token) {
  const { status, text } = await getText(`${url}/metrics`, { authorization: `Bearer ${token}` })
  if (status !== 200) throw new Error(`GET /metrics: ${status}`)
  const gauges = {}
  for (const line of text.split('\n')) {
    const match = /^([a-z_]+) ([0-9.e+-]+)$/.exec(line)
    if (match) gauges[match[1]] = Number(match[2])
  }
  return gauges
}
