#!/usr/bin/env node
/**
 * Instructions per request: the one CPU figure a busy machine does not move.
 *
 * CPU time per request moves 2–4× between runs on these shared machines, and a change of 10–20 %
 * hides in it (bench/README.md, Findings). Valgrind's callgrind counts the instructions a process
 * executes (user space, every thread: JIT code, GC, libuv), whatever else the machine is doing.
 * It is not exact either: V8 compiles on background threads, which valgrind runs one at a time, so
 * when optimised code arrives depends on the schedule (bench/README.md, Findings, has runs of one
 * bundle agreeing within 1.5 % and one 1.7× apart): run it twice before believing a difference. It
 * does not see the kernel (each request is one `read` and one `writev`: `strace -c` says so) nor
 * cache misses.
 *
 * Each server runs under callgrind in turn: warmed up with `--warmup` requests (JIT tiers settle),
 * then `--requests` requests at 10 connections counted in `--chunks` parts (counters zeroed, the
 * part's requests, counters dumped), and the median part's figure taken: a one-off inside the
 * count (the version answer's 60 s cache running out under callgrind's slowness, the gateway then
 * asking the engine with cold code: 8–15k a request over a whole window of 2,000, bench/README.md
 * "Per-request CPU, Hono's layers and the head") moves one part, not the figure. Servers: this tree's
 * gateway (dist/dockgate.mjs, or `--entry=FILE`), with `--compare=REF` that commit's gateway too,
 * and the framework's floor (a bare Hono app's constant JSON route, bench/lib/hono-baseline.mjs).
 * Paths: the small authenticated request (`/v1/system/version`, answered from its cache) and,
 * with `--list`, a list of 20 containers from the read model; with `--prefixed` (implies `--list`)
 * the same list through the per-engine path too (`/v1/engines/default/containers`, bench phase 4e's
 * target: the same cost as the unprefixed list).
 *
 *   node bench/instructions.mjs [--compare=REF] [--entry=FILE] [--requests=2000] [--chunks=4] [--warmup=2000] [--list]
 *     [--prefixed] [--keep=DIR [--perf-map]] [--no-model] [--request-path] [--event-loop] [--store=redis]
 *
 * `--event-loop`: only what runs inside the main thread's event loop (`uv_run`) is counted:
 * every request's callbacks and the scavenges they trigger, but also timers, immediates and the
 * reads of other sockets (Redis's answers, with `--store=redis`), and not V8's background threads
 * (compilers, concurrent marking), whose half of a total moves with their schedule.
 * `--store=redis`: each gateway is counted twice, with the memory store and then with the Redis
 * store on the project's Redis (`DOCKGATE_TEST_STORE`, else `scripts/redis.sh up`): what the
 * store's script call costs a request in the gateway (not in Redis). Not with `--request-path`,
 * which would leave out what runs when Redis answers (a read of the Redis socket, not of the
 * request's): with `--event-loop`, or the whole process.
 *
 * `--no-model`: the gateway without its container read model (not with `--list`). On an engine
 * that others use at the same time, their containers' events reach the model while the requests
 * are counted (each one re-inspected and its summary serialised), and those instructions count
 * as the requests'; without the model only the requests are counted.
 *
 * `--request-path`: only what runs while the server's HTTP parser handles a read of a request
 * socket is counted (callgrind's `--toggle-collect` on Node's `Parser::OnStreamRead`; the
 * request's whole promise chain, its answer's write and the scavenges its allocations trigger run
 * inside it). Left out: V8's compiler and marking threads (half of every total, and when they
 * run depends on the schedule), timers, and the read model's engine traffic, which on an engine
 * others use at the same time made one list of 20 count 1,123k against 306k for the small request
 * (2026-12-04 10:05, 55 % of it TurboFan), when its request path counted 203k against 131k.
 *
 * `--keep=DIR` keeps each measured dump (`DIR/<server>-<path>-part<N>.callgrind`, `--requests` ÷
 * `--chunks` requests each: give `bench/callgrind-js.mjs` that `--requests`) for `callgrind_annotate`:
 * V8's builtins and Node's C++ are named there (JIT-compiled JavaScript is not), which says which
 * kind of work (promises, regular expressions, JSON, header parsing) a difference is made of.
 * With `--perf-map` the servers run with `--perf-basic-prof` and their `/tmp/perf-PID.map` (where
 * V8 put each compiled function) is kept beside each dump: `bench/callgrind-js.mjs` then names
 * the JavaScript functions too (the map costs nothing once the code is compiled, before counting).
 *
 * Needs valgrind (Debian's `valgrind`) and DOCKER_HOST=unix://… (`scripts/engine.sh env`). Under
 * callgrind a server runs ~50× slower: one server takes 1–3 minutes. Not part of `npm run bench`.
 */
import { execFileSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import {
  copyFileSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Agent, request } from 'undici'
import { buildCompareVariant } from './lib/compare.mjs'
import { Engine } from './lib/engine.mjs'
import { projectRedis } from './lib/parts.mjs'
import {
  freePort,
  gatewayEnv,
  getText,
  NODE_ENTRY,
  NODE_FLAGS,
  nodeFlagsOf,
  ROOT,
  startServer,
  stopProcess,
} from './lib/processes.mjs'
import { log, mapLimit, median, option, round } from './lib/util.mjs'

const args = process.argv.slice(2)
const requests = Number(option('requests', 2000))
const warmup = Number(option('warmup', 2000))
const chunks = Math.max(1, Number(option('chunks', 4)))
const compareRef = option('compare', undefined)
const entry = option('entry', `${ROOT}/${NODE_ENTRY}`)
const withPrefixed = args.includes('--prefixed')
const withList = args.includes('--list') || withPrefixed
const withoutModel = args.includes('--no-model') && !withList
const keep = option('keep', undefined)
const perfMap = args.includes('--perf-map')
const requestPath = args.includes('--request-path')
const eventLoop = args.includes('--event-loop') && !requestPath
const withRedis = option('store', 'memory') === 'redis'
if (withRedis && requestPath) {
  console.error('instructions: --store=redis counts the whole process; leave out --request-path')
  process.exit(2)
}
const dockerHost = process.env.DOCKER_HOST ?? ''
if (!dockerHost.startsWith('unix://')) {
  console.error('instructions: needs DOCKER_HOST=unix://… (eval "$(bash scripts/engine.sh env)")')
  process.exit(2)
}

const dir = mkdtempSync(join(tmpdir(), 'dockgate-instructions-'))
// `--perf-basic-prof` also writes V8's log (`isolate-…-v8.log`, in the working directory unless told).
const MAP_FLAGS = perfMap
  ? ['--perf-basic-prof', '--no-logfile-per-isolate', `--logfile=${join(dir, 'v8.log')}`]
  : []
const token = `dgt_bench-${randomBytes(18).toString('base64url')}`
const configPath = join(dir, 'config.json')
writeFileSync(
  configPath,
  JSON.stringify({
    // As bench/run.mjs raises them: under callgrind the Redis store's releases (given back with
    // the next script call) come late enough for 10 connections to fill the default budget.
    limits: {
      requestsPerSecond: 1e6,
      burst: 1e6,
      streamsPerClient: 1e5,
      engineCallsPerClient: 1e5,
    },
    ...(withoutModel ? { readModel: false } : {}),
  }),
)
const label = `dockgate-bench-instructions=${process.pid}`
const listPath = `/v1/containers?all=true&label=${encodeURIComponent(label)}`
const engine = new Engine(dockerHost.slice('unix://'.length))
const image = process.env.DOCKGATE_FIXTURE_IMAGE ?? 'dockgate-fixture:busybox'

/** vgdb names its pipes after USER and HOST: the server and callgrind_control must agree. */
const VGDB_ENV = { USER: 'root', LOGNAME: 'root', HOST: '127.0.0.1' }

/** Starts `file args` under callgrind, counting nothing until told. */
async function underCallgrind({ file, args: fileArgs, env, port, readyPath, name }) {
  const out = join(dir, `callgrind-${name}.out`)
  const server = await startServer({
    file: 'valgrind',
    args: [
      '--tool=callgrind',
      // V8 writes the code it runs: callgrind must see it change.
      '--smc-check=all-non-file',
      // A thunk Node's http server parser is called through, once per read (nothing nests it).
      ...(requestPath
        ? [
            '--toggle-collect=non-virtual thunk to node::(anonymous namespace)::Parser::OnStreamRead*',
          ]
        : []),
      ...(eventLoop ? ['--toggle-collect=uv_run'] : []),
      `--callgrind-out-file=${out}`,
      file,
      ...fileArgs,
    ],
    env: { ...env, ...VGDB_ENV },
    port,
    readyPath,
    timeoutMs: 600_000,
    quiet: true,
  })
  return { ...server, out }
}

/** The Redis of `--store=redis`: `DOCKGATE_TEST_STORE`'s, else the project's (stopped after if started). */
let redis

const control = (flag, pid) =>
  execFileSync('callgrind_control', [...flag, String(pid)], {
    env: { ...process.env, ...VGDB_ENV },
    stdio: ['ignore', 'ignore', 'pipe'],
  })

/** Instructions per request of `url` on the server `server` (under callgrind). */
async function measure(server, url, headers, keepAs) {
  const agent = new Agent({ connections: 10 })
  const get = async () => {
    // A server this slow may close a connection that idled past its keep-alive, or answer 408
    // when a loaded machine stalls it past the gateway's 15 s request timeout (seen twice at load
    // 5–6, 2026-12-04): ask again.
    for (let attempt = 0; ; attempt++) {
      try {
        const answer = await request(url, { dispatcher: agent, headers })
        await answer.body.text()
        if (answer.statusCode === 408 && attempt < 5) continue
        if (answer.statusCode !== 200) throw new Error(`GET ${url}: ${answer.statusCode}`)
        return
      } catch (error) {
        if (attempt >= 5 || String(error.message).startsWith('GET ')) throw error
      }
    }
  }
  const load = async (count) => {
    let left = count
    await Promise.all(
      Array.from({ length: 10 }, async () => {
        while (left-- > 0) await get()
      }),
    )
  }
  await load(warmup)
  const perChunk = Math.ceil(requests / chunks)
  const figures = []
  for (let part = 0; part < chunks; part++) {
    control(['-z'], server.pid)
    await load(perChunk)
    const before = new Set(readdirSync(dir))
    control(['-d', 'measured'], server.pid)
    const dumps = readdirSync(dir).filter((f) => !before.has(f) && f.startsWith('callgrind-'))
    const totals = dumps.map((f) => {
      const match = /^totals: (\d+)/m.exec(readFileSync(join(dir, f), 'utf8'))
      return match ? Number(match[1]) : 0
    })
    if (keep && keepAs) {
      mkdirSync(keep, { recursive: true })
      for (const [i, f] of dumps.entries()) {
        const name = `${keepAs}${chunks > 1 ? `-part${part}` : ''}${i ? `-${i}` : ''}`
        copyFileSync(join(dir, f), join(keep, `${name}.callgrind`))
      }
    }
    for (const f of dumps) rmSync(join(dir, f))
    figures.push(totals.reduce((a, b) => a + b, 0) / perChunk)
  }
  await agent.close()
  if (keep && keepAs && perfMap) {
    copyFileSync(`/tmp/perf-${server.pid}.map`, join(keep, `${keepAs}.map`))
  }
  if (chunks > 1)
    console.log(`    ${keepAs ?? url}: parts ${figures.map((f) => round(f / 1000, 1)).join(', ')}k`)
  return median(figures)
}

const ids = []
const rows = []
let constJson
let compared
try {
  if (withList) {
    ids.push(
      ...(await mapLimit(
        Array.from({ length: 20 }, (_, i) => i),
        4,
        (i) =>
          engine.createContainer({
            name: `dockgate-instructions-${process.pid}-${i}`,
            image,
            cmd: ['true'],
            labels: { 'dockgate-bench-instructions': String(process.pid) },
          }),
      )),
    )
  }
  const gateways = [{ name: 'this tree', entry, root: ROOT }]
  if (compareRef) {
    compared = buildCompareVariant(compareRef)
    gateways.push({ name: compared.label, entry: compared.entry, root: compared.root })
  }
  if (withRedis) {
    redis = process.env.DOCKGATE_TEST_STORE
      ? { url: process.env.DOCKGATE_TEST_STORE, stop: () => {} }
      : projectRedis()
    const env = {
      DOCKGATE_STORE: redis.url,
      DOCKGATE_SECRET: randomBytes(24).toString('base64url'),
    }
    gateways.push(...gateways.map((g) => ({ ...g, name: `${g.name}, Redis store`, env })))
  }
  const auth = { authorization: `Bearer ${token}` }
  for (const gateway of gateways) {
    const port = await freePort()
    log(`instructions: ${gateway.name} under callgrind…`)
    const server = await underCallgrind({
      file: process.execPath,
      args: [...nodeFlagsOf(gateway.root), ...MAP_FLAGS, gateway.entry],
      env: {
        ...gatewayEnv({ port, dockerHost, token, configPath, root: gateway.root }),
        ...gateway.env,
      },
      port,
      name: `g${rows.length}`,
    })
    try {
      const row = { server: gateway.name }
      // The Hono floor answers the same body, as in the bench's cpu phase (bench/run.mjs).
      constJson ??= (await getText(`${server.url}/v1/system/version`, auth, 120_000)).text
      row.version = await measure(
        server,
        `${server.url}/v1/system/version`,
        auth,
        `g${rows.length}-version`,
      )
      if (withList) {
        const { text } = await getText(`${server.url}${listPath}`, auth, 120_000)
        if (JSON.parse(text).containers?.length !== 20)
          throw new Error(`the list has not 20: ${text}`)
        row.list20 = await measure(server, `${server.url}${listPath}`, auth, `g${rows.length}-list`)
      }
      if (withPrefixed) {
        const prefixed = `${server.url}/v1/engines/default${listPath.slice('/v1'.length)}`
        const { text } = await getText(prefixed, auth, 120_000)
        if (JSON.parse(text).containers?.length !== 20)
          throw new Error(`the prefixed list has not 20: ${text}`)
        row.prefixed = await measure(server, prefixed, auth, `g${rows.length}-prefixed`)
      }
      rows.push(row)
    } finally {
      await stopProcess(server.child)
    }
  }
  const port = await freePort()
  log('instructions: the bare Hono app under callgrind…')
  const hono = await underCallgrind({
    file: process.execPath,
    args: [...NODE_FLAGS, ...MAP_FLAGS, `${ROOT}/bench/lib/hono-baseline.mjs`],
    env: {
      PATH: process.env.PATH ?? '',
      PORT: String(port),
      DOCKER_HOST: dockerHost,
      ...(constJson ? { CONST_JSON: constJson } : {}),
    },
    port,
    name: 'hono',
  })
  try {
    rows.push({
      server: 'bare Hono, constant route',
      version: await measure(hono, `${hono.url}/const`, undefined, 'hono-const'),
    })
  } finally {
    await stopProcess(hono.child)
  }
  const floor = rows.at(-1).version
  console.log(
    `\ninstructions per request (callgrind${requestPath ? ', request path only' : eventLoop ? ', event loop only' : ''}; ${requests} requests after ${warmup} unmeasured):`,
  )
  for (const row of rows) {
    const list = row.list20
      ? `, list of 20 ${round(row.list20 / 1000, 1)}k (${round(row.list20 / floor, 2)}× Hono)`
      : ''
    const prefixed = row.prefixed
      ? `, /v1/engines/default/containers ${round(row.prefixed / 1000, 1)}k (${round(row.prefixed / row.list20, 3)}× the list)`
      : ''
    console.log(
      `  ${row.server}: small request ${round(row.version / 1000, 1)}k (${round(row.version / floor, 2)}× Hono)${list}${prefixed}`,
    )
  }
  if (withRedis) {
    const half = (rows.length - 1) / 2
    for (let i = 0; i < half; i++) {
      const [memory, redis] = [rows[i], rows[i + half]]
      console.log(`  ${redis.server} / memory store: ${round(redis.version / memory.version, 3)}×`)
    }
  }
  if (compared && !withRedis) {
    console.log(`  this tree / ${compared.label}: ${round(rows[0].version / rows[1].version, 3)}×`)
  }
} finally {
  await Promise.all(ids.map((id) => engine.remove(id).catch(() => {})))
  compared?.remove()
  redis?.stop()
  rmSync(dir, { recursive: true, force: true })
}
