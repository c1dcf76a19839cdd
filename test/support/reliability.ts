/**
 * Helpers of the reliability and security suite (test/reliability): a transport that records
 * every engine call, the engine's own event log, the Node entry point built once per test run and
 * spawned as `npm start` runs it, a raw HTTP client, a stalled "engine", and kernel-level counts
 * (open descriptors, engine connections, resident memory) of a process.
 */
import { AsyncLocalStorage } from 'node:async_hooks'
import { type ChildProcess, execFile, execFileSync, spawn } from 'node:child_process'
import {
  closeSync,
  existsSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  readSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs'
import { connect, createServer, type Socket } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { serve } from '@hono/node-server'
import type { EngineTransport } from '../../src/engine/transport.ts'
import { engineTargetFromEnv } from '../../src/transport/docker-host.ts'
import { createNodeTransport } from '../../src/transport/node.ts'
import { direct, testEngineEnv } from './engine.ts'
import { TEST_RUN } from './labels.ts'
import { untilListening } from './listening.ts'
import { freePort, tcpConnectionsTo } from './net.ts'
import { NODE_FLAGS } from './node-flags.ts'

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

// --- engine calls --------------------------------------------------------------------------------

export interface EngineCall {
  method: string
  /** The engine path with its query, e.g. `/v1.41/containers/x/json`. */
  path: string
  /** The tag of the request the call was made for (see `tagged`), if any. */
  tag: string | undefined
}

const requestTags = new AsyncLocalStorage<string>()

/**
 * Runs `fn` (a request to an in-process gateway) so that every engine call made on its behalf
 * is recorded with `tag`: the gateway's background work (the events hub, a read model) is not.
 */
export const tagged = <T>(tag: string, fn: () => Promise<T>): Promise<T> => requestTags.run(tag, fn)

/** A transport to the test engine that records every call the gateway makes. */
export function recordingTransport(inner?: EngineTransport): {
  transport: EngineTransport
  calls: EngineCall[]
} {
  const target =
    inner ?? createNodeTransport(engineTargetFromEnv({ DOCKER_HOST: testEngineEnv().dockerHost }))
  const calls: EngineCall[] = []
  return {
    calls,
    transport: {
      description: target.description,
      close: () => target.close(),
      fetch(request, options) {
        const url = new URL(request.url)
        const tag = requestTags.getStore()
        calls.push({ method: request.method, path: url.pathname + url.search, tag })
        return target.fetch(request, options)
      },
    },
  }
}

// --- the engine's own event log ----------------------------------------------------------------

export interface EngineEventRecord {
  Type: string
  Action: string
  Actor: { ID: string; Attributes?: Record<string, string> }
  time: number
  timeNano: number
}

/** Actions that change something on the engine (containers, images, networks, volumes). */
export const MUTATING_ACTIONS = new Set([
  'create',
  'start',
  'restart',
  'stop',
  'kill',
  'die',
  'destroy',
  'pause',
  'unpause',
  'rename',
  'update',
  'oom',
  'attach',
  'commit',
  'copy',
  'exec_create',
  'exec_start',
  'export',
  'delete',
  'untag',
  'tag',
  'pull',
  'push',
  'import',
  'load',
  'save',
  'remove',
  'prune',
  'connect',
  'disconnect',
  'mount',
  'unmount',
])

/** The engine's clock as it reads `since`/`until`: seconds with a fraction. */
export const engineNow = () => (Date.now() / 1000).toFixed(3)

/** Every event the engine published between two engine times, read from its own ring. */
export async function engineEvents(since: string, until: string): Promise<EngineEventRecord[]> {
  const answer = await direct(`/events?since=${since}&until=${until}`)
  if (answer.status !== 200) throw new Error(`engine events: ${answer.status} ${answer.text}`)
  return answer.text
    .split('\n')
    .filter((line) => line.trim() !== '')
    .map((line) => JSON.parse(line) as EngineEventRecord)
}

// --- the Node entry point, built once per test run ---------------------------------------------

const ROOT = fileURLToPath(new URL('../..', import.meta.url))

/**
 * The Node entry bundled as `npm start` runs it (scripts/build-node.mjs), into a directory of
 * this test run, so the files under test are exactly this run's `src/` whatever other files do
 * to `dist/` meanwhile. Built once per run whichever reliability file asks first; the others
 * wait. Returns the path of the bundle.
 */
export async function nodeEntry(): Promise<string> {
  const base = join(tmpdir(), 'dockgate-reliability')
  mkdirSync(base, { recursive: true })
  removeOldBuilds(base)
  const dir = join(base, TEST_RUN.replace(/[^A-Za-z0-9_-]/g, '_'))
  const done = join(dir, 'built')
  const entry = join(dir, 'dockgate.mjs')
  let mine = false
  try {
    mkdirSync(dir)
    mine = true
  } catch {
    // Another file of this run builds it.
  }
  if (mine) {
    await new Promise<void>((resolvePromise, reject) => {
      execFile(
        process.execPath,
        [join(ROOT, 'scripts', 'build-node.mjs'), `--outfile=${entry}`],
        { cwd: ROOT, timeout: 110_000 },
        (error, _stdout, stderr) =>
          error ? reject(new Error(`the bundle failed: ${stderr}`)) : resolvePromise(),
      )
    })
    writeFileSync(done, new Date().toISOString())
    return entry
  }
  const deadline = Date.now() + 115_000
  while (!existsSync(done)) {
    if (Date.now() > deadline) throw new Error(`the build in ${dir} did not finish`)
    await sleep(200)
  }
  return entry
}

/** Builds of runs older than an hour (a run that died leaves its build behind). */
function removeOldBuilds(base: string) {
  const hourAgo = Date.now() - 3_600_000
  for (const name of readdirSync(base)) {
    const path = join(base, name)
    try {
      if (statSync(path).mtimeMs < hourAgo) rmSync(path, { recursive: true, force: true })
    } catch {
      // Removed by someone else meanwhile.
    }
  }
}

export interface SpawnedGateway {
  child: ChildProcess
  pid: number
  port: number
  url: string
  output(): string
  /** Resolves with the exit code once the process exited. */
  exited: Promise<number | null>
  /** SIGKILL if it still runs (for afterAll). */
  kill(): void
}

/**
 * Loaded with `--require` when asked: on SIGUSR2 the process collects its garbage and prints
 * one line with its memory, so a test can tell retained memory from garbage not yet collected.
 */
const GC_PROBE = `process.on('SIGUSR2', () => {
  global.gc(); global.gc()
  const { heapUsed, rss } = process.memoryUsage()
  console.log(JSON.stringify({ gcProbe: Date.now(), heapUsed, rss }))
})
`

/** Starts the Node entry point with this config file content and waits until it listens. */
export async function spawnGateway(options: {
  config: unknown
  env?: Record<string, string>
  dir: string
  /** Expose a heap measurement after a full GC (see `heapAfterGc`; Node only). */
  gcProbe?: boolean
  /** The Node bundle (the default) or the Deno entry as `scripts/deno-start.sh` runs it. */
  runtime?: 'node' | 'deno'
}): Promise<SpawnedGateway> {
  const deno = options.runtime === 'deno'
  const entry = deno ? undefined : await nodeEntry()
  const port = await freePort()
  const configPath = join(options.dir, `config-${port}.json`)
  writeFileSync(configPath, JSON.stringify(options.config), { mode: 0o600 })
  const probe = join(options.dir, 'gc-probe.cjs')
  if (options.gcProbe) writeFileSync(probe, GC_PROBE)
  // Its output goes to a file, not a pipe: writes to a pipe are synchronous on Linux, and a test
  // busy with a thousand requests would stall the gateway's event loop by reading them late.
  const logPath = join(options.dir, `gateway-${port}.log`)
  const log = openSync(logPath, 'w')
  // deno-start.sh ends in `exec deno …`: the child's pid is the gateway's either way.
  const [file, args] = entry
    ? [process.execPath, [...NODE_FLAGS, entry]]
    : ['bash', ['scripts/deno-start.sh']]
  const child = spawn(file, args, {
    env: {
      PATH: process.env.PATH,
      HOME: options.dir,
      PORT: String(port),
      DOCKGATE_CONFIG: configPath,
      DOCKER_HOST: testEngineEnv().dockerHost,
      ...(options.gcProbe ? { NODE_OPTIONS: `--expose-gc --require ${probe}` } : {}),
      ...options.env,
    },
    stdio: ['ignore', log, log],
  })
  closeSync(log)
  /** The log's last 200 kB (a load test writes one line per request). */
  const output = () => {
    const size = statSync(logPath).size
    const fd = openSync(logPath, 'r')
    try {
      const length = Math.min(size, 200_000)
      const buffer = Buffer.alloc(length)
      readSync(fd, buffer, 0, length, size - length)
      return buffer.toString()
    } finally {
      closeSync(fd)
    }
  }
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)))
  // Whatever happens to the test, the gateway does not outlive the worker that started it.
  const reap = () => child.kill('SIGKILL')
  process.once('exit', reap)
  void exited.then(() => process.off('exit', reap))
  // Deno type-checks nothing here but may fill its module cache on a first start.
  await untilListening(child, output, deno ? 60_000 : 20_000).catch((error: unknown) => {
    child.kill('SIGKILL')
    throw error
  })
  return {
    child,
    pid: child.pid!,
    port,
    url: `http://127.0.0.1:${port}`,
    output,
    exited,
    kill: () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
    },
  }
}

/** The heap of a gateway started with `gcProbe`, in bytes, after a full garbage collection. */
export async function heapAfterGc(gateway: SpawnedGateway): Promise<number> {
  const since = Date.now()
  gateway.child.kill('SIGUSR2')
  const deadline = Date.now() + 5_000
  for (;;) {
    const reports = gateway
      .output()
      .split('\n')
      .filter((line) => line.startsWith('{"gcProbe":'))
      .map((line) => JSON.parse(line) as { gcProbe: number; heapUsed: number })
      .filter((report) => report.gcProbe >= since)
    if (reports.length > 0) return reports.at(-1)!.heapUsed
    if (Date.now() > deadline) throw new Error('the gateway did not report its heap')
    await sleep(50)
  }
}

/** A throwaway directory for config files, removed by the caller. */
export function scratchDir(prefix: string): string {
  const dir = join(tmpdir(), `${prefix}-${process.pid}-${Date.now().toString(36)}`)
  mkdirSync(dir, { recursive: true })
  return dir
}

// --- raw HTTP ------------------------------------------------------------------------------------

export interface RawExchange {
  /** Everything the server sent until it closed the connection or the wait ended. */
  text: string
  /** The status of the first response, if one arrived. */
  status: number | undefined
  /** Whether the server closed the connection. */
  closed: boolean
  /** Milliseconds from connecting to the close (or to the end of the wait). */
  ms: number
}

/**
 * Sends bytes on a fresh connection (optionally in timed pieces) and collects the answer until
 * the server closes the connection or `waitMs` passes.
 */
export function rawHttp(
  port: number,
  pieces: (string | Buffer | { delayMs: number })[],
  waitMs = 5_000,
): Promise<RawExchange> {
  return new Promise((resolvePromise) => {
    const started = Date.now()
    const socket = connect(port, '127.0.0.1')
    let text = ''
    let closed = false
    let finished = false
    const finish = () => {
      if (finished) return
      finished = true
      clearTimeout(timer)
      socket.destroy()
      const status = /^HTTP\/1\.1 (\d{3})/.exec(text)?.[1]
      resolvePromise({
        text,
        status: status ? Number(status) : undefined,
        closed,
        ms: Date.now() - started,
      })
    }
    const timer = setTimeout(finish, waitMs)
    socket.on('data', (chunk) => {
      text += chunk.toString('latin1')
    })
    socket.on('error', () => {
      closed = true
      finish()
    })
    socket.on('close', () => {
      closed = true
      finish()
    })
    socket.on('connect', async () => {
      for (const piece of pieces) {
        if (finished || socket.destroyed) return
        if (typeof piece === 'object' && 'delayMs' in piece) await sleep(piece.delayMs)
        else if (!socket.destroyed) socket.write(piece)
      }
    })
  })
}

// --- a stalled engine ----------------------------------------------------------------------------

export interface StalledEngine {
  dockerHost: string
  /** Connections accepted so far. */
  readonly accepted: number
  /** Connections still open (the gateway has not given them up). */
  readonly open: number
  close(): Promise<void>
}

/** A TCP listener that accepts connections, reads what comes and never answers. */
export async function startStalledEngine(): Promise<StalledEngine> {
  const sockets = new Set<Socket>()
  let accepted = 0
  const server = createServer((socket) => {
    accepted++
    sockets.add(socket)
    socket.on('data', () => {})
    socket.on('error', () => {})
    socket.on('close', () => sockets.delete(socket))
  })
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  const { port } = server.address() as { port: number }
  return {
    dockerHost: `tcp://127.0.0.1:${port}`,
    get accepted() {
      return accepted
    },
    get open() {
      return sockets.size
    },
    close: async () => {
      for (const socket of sockets) socket.destroy()
      await new Promise((r) => server.close(r))
    },
  }
}

// --- what the kernel says about a process -------------------------------------------------------

/** Open file descriptors of a process. */
export function openFds(pid: number): number {
  return readdirSync(`/proc/${pid}/fd`).length
}

/** Inodes of the sockets a process holds. */
export function socketInodes(pid: number): Set<string> {
  const inodes = new Set<string>()
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    try {
      const match = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`))
      if (match) inodes.add(match[1]!)
    } catch {
      // Closed meanwhile.
    }
  }
  return inodes
}

/**
 * Connections a process holds to the engine's unix socket: its socket inodes that are the peers
 * of sockets the engine accepted on its socket path, as `ss -x` lists them.
 */
export function engineUnixConnections(pid: number): number {
  const path = testEngineEnv().socketPath
  const mine = socketInodes(pid)
  const out = execFileSync('ss', ['-xH'], { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 })
  let count = 0
  for (const line of out.split('\n')) {
    // Netid State Recv-Q Send-Q Local-Address Local-Port Peer-Address Peer-Port
    const fields = line.trim().split(/\s+/)
    if (fields[4] === path && fields[7] !== undefined && mine.has(fields[7])) count++
  }
  return count
}

/** Resident memory of a process in bytes (VmRSS). */
export function rssBytes(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8')
  const kb = /^VmRSS:\s+(\d+) kB$/m.exec(status)?.[1]
  return Number(kb) * 1024
}

/** Polls `read` until `accept` holds or `timeoutMs` passes; answers the last value. */
export async function settle<T>(
  read: () => T | Promise<T>,
  accept: (value: T) => boolean,
  timeoutMs: number,
  everyMs = 100,
): Promise<T> {
  const deadline = Date.now() + timeoutMs
  let value = await read()
  while (!accept(value) && Date.now() < deadline) {
    await sleep(everyMs)
    value = await read()
  }
  return value
}

/** The engine's TCP port as `scripts/engine.sh` forwards it. */
export function engineTcpTarget(): { host: string; port: number } {
  const tcp = testEngineEnv().tcpHost
  if (!tcp) throw new Error('DOCKGATE_TEST_TCP_HOST is not set')
  const url = new URL(tcp.replace(/^tcp:/, 'http:'))
  return { host: url.hostname, port: Number(url.port) }
}

// --- an in-process gateway on a real socket ------------------------------------------------------

export interface ServedApp {
  port: number
  url: string
  close(): Promise<void>
}

/** Serves an app with @hono/node-server on a free loopback port, as the Node entry does. */
export function serveApp(app: { fetch: (request: Request) => Response | Promise<Response> }) {
  return new Promise<ServedApp>((resolvePromise) => {
    const server = serve({ fetch: app.fetch, port: 0, hostname: '127.0.0.1' }, (info) => {
      resolvePromise({
        port: info.port,
        url: `http://127.0.0.1:${info.port}`,
        close: () =>
          new Promise<void>((r) => {
            server.close(() => r())
            if ('closeAllConnections' in server) server.closeAllConnections()
          }),
      })
    })
  })
}

export { freePort, tcpConnectionsTo }
