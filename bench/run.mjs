#!/usr/bin/env node
/**
 * dockgate's benchmark: `npm run bench` (≤ 7½ min) or `npm run bench:quick` (≤ 130 s).
 *
 * Brings up what it needs against the real engine (scripts/engine.sh when DOCKER_HOST is not
 * set), measures the gateway beside its baselines in one run (the engine's own socket, a bare
 * Hono app, a bare node:http server, a bare server of each runtime, a plain copy), writes
 * bench/results/latest.json and latest.md (quick runs: quick.*), prints PASS/MISS against the targets, and cleans up
 * (containers labelled dockgate-bench=<run id>, the processes it started, by pid) on the way out,
 * also on failure and on SIGINT. Traffic goes to 127.0.0.1 and the engine's Unix socket only.
 *
 * Exit code: 0 when every phase ran (targets are figures, not assertions: a MISS is still 0);
 * 1 when the setup or a phase failed, or the time bound was hit.
 */
import { execFileSync } from 'node:child_process'
import { createHash, randomBytes } from 'node:crypto'
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs'
import { cpus, loadavg, tmpdir } from 'node:os'
import { join } from 'node:path'
import { runColdStart } from './coldstart.mjs'
import { buildCompareVariant } from './lib/compare.mjs'
import { Engine, removeStaleBenchContainers } from './lib/engine.mjs'
import { partUp } from './lib/parts.mjs'
import {
  gatewayGauges,
  getText,
  killAll,
  ROOT,
  startHonoBaseline,
  startNodeGateway,
  startSseFloor,
  stopAll,
  stopProcess,
} from './lib/processes.mjs'
import { Budget, listenerPid, log, mapLimit, medianP99Level, round, sleep } from './lib/util.mjs'

const argv = new Set(process.argv.slice(2))
const PHASES = [
  'throughput',
  'cpu',
  'logs',
  'pipeline',
  'pull',
  'exec',
  'servicelogs',
  'latency',
  'engines',
  'memory',
  'events',
  'cluster',
  'cold',
]
const only = onlyPhases(process.argv.slice(2))
if (argv.has('--help') || argv.has('-h')) {
  console.log(
    [
      'usage: node bench/run.mjs [--quick] [--no-build] [--cpu-prof] [--only=PHASE,…] [--compare=REF]',
      '  --quick     ≤ 130 s: smaller sizes (CI)',
      '  --no-build  use dist/ as it is',
      `  --only=…    run only these phases (${PHASES.join(', ')}); the report goes to`,
      '              bench/results/partial.{json,md}, leaving latest.* to whole runs',
      '  --cpu-prof  run the measured gateways under node --cpu-prof (profiles in bench/results/profiles/;',
      '              read them with node bench/profile-summary.mjs FILE); the figures then include its cost',
      '  --entry=FILE  run this Node bundle as the gateway instead of dist/dockgate.mjs (to set two',
      '              builds side by side: e.g. one made from another commit with scripts/build-node.mjs --outfile=)',
      '  --compare=REF  also build commit REF (git archive into a temporary directory, node_modules',
      '              linked, npm run build there) and measure its gateway beside this one, phase by',
      '              phase in the same run: every gateway figure and verdict in two columns',
      '  --latency-events=N  renames in phase latency (default 100; 50 with --quick): more, for a',
      '              finer CPU per event (/proc counts 10 ms ticks); at 20 ms apart, ≤ 400 fit its bound',
      'reports: bench/results/latest.{json,md} (full runs; committed), quick.{json,md} (--quick)',
    ].join('\n'),
  )
  process.exit(0)
}
const QUICK = argv.has('--quick')
const ENTRY = process.argv.find((a) => a.startsWith('--entry='))?.slice('--entry='.length)
const LATENCY_EVENTS = Number(
  process.argv.find((a) => a.startsWith('--latency-events='))?.slice('--latency-events='.length) ??
    Number.NaN,
)
const COMPARE = process.argv.find((a) => a.startsWith('--compare='))?.slice('--compare='.length)

/** The phases `--only=a,b` asks for, or every phase. */
function onlyPhases(args) {
  const arg = args.find((a) => a.startsWith('--only='))
  if (!arg) return new Set(PHASES)
  const names = arg.slice('--only='.length).split(',').filter(Boolean)
  const unknown = names.filter((n) => !PHASES.includes(n))
  if (unknown.length > 0 || names.length === 0) {
    console.error(
      `bench: --only takes phases among ${PHASES.join(', ')}; not: ${unknown.join(', ')}`,
    )
    process.exit(2)
  }
  return new Set(names)
}
const PARTIAL = only.size < PHASES.length

/** What each mode measures, and the planned time of each phase (ms). */
const PROFILE = QUICK
  ? {
      mode: 'quick',
      boundMs: 130_000,
      sizes: [20],
      connections: [1, 10],
      durationS: 0.6,
      reps: 2,
      cpuReps: 2,
      cpuWarmupS: 1,
      cpuExtras: false,
      logMb: 20,
      shortLogMb: 5,
      logReps: 2,
      pipelineMb: 32,
      pipelineReps: 2,
      latencyEvents: 50,
      engineEvents: 30,
      engineReps: 2,
      memoryStreams: 200,
      eventLevels: [100, 1_000],
      directEventLevels: [100],
      topLevelPairs: 1,
      clusterSubscribers: 1_000,
      bursts: 3,
      burstSize: 5,
      coldReps: 3,
      pullMb: 5,
      pullReps: 2,
      execs: 8,
      execMb: 10,
      execReps: 3,
      serviceLogLines: 5_000,
      serviceLogReps: 2,
      marginMs: 2_500,
      plan: {
        pull: 8_000,
        exec: 6_000,
        servicelogs: 8_000,
        throughput: 12_000,
        cpu: 10_000,
        storeCpu: 5_000,
        logs: 10_000,
        pipeline: 4_000,
        latency: 16_000,
        engines: 7_000,
        memory: 7_000,
        events: 22_000,
        cluster: 18_000,
        cold: 16_000,
      },
    }
  : {
      mode: 'full',
      boundMs: 445_000,
      sizes: [20, 200],
      connections: [1, 10, 50],
      durationS: 1.5,
      reps: 3,
      cpuReps: 5,
      cpuWarmupS: 3,
      cpuExtras: true,
      logMb: 200,
      shortLogMb: 30,
      logReps: 3,
      pipelineMb: 256,
      pipelineReps: 3,
      latencyEvents: 100,
      engineEvents: 100,
      engineReps: 6,
      memoryStreams: 1_000,
      eventLevels: [100, 1_000, 10_000],
      directEventLevels: [100, 1_000],
      topLevelPairs: 3,
      clusterSubscribers: 10_000,
      bursts: 3,
      burstSize: 5,
      coldReps: 5,
      pullMb: 30,
      pullReps: 21,
      execs: 40,
      execMb: 50,
      execReps: 7,
      serviceLogLines: 50_000,
      serviceLogReps: 3,
      marginMs: 6_000,
      plan: {
        pull: 40_000,
        exec: 30_000,
        servicelogs: 30_000,
        throughput: 65_000,
        cpu: 45_000,
        storeCpu: 20_000,
        logs: 50_000,
        pipeline: 12_000,
        latency: 24_000,
        engines: 25_000,
        memory: 30_000,
        events: 80_000,
        // Its own floor when 4c did not measure one, three instances and HAProxy to start.
        cluster: 80_000,
        cold: 50_000,
      },
    }

/** Every target a ratio to a baseline measured in the same run (bench/README.md). */
const TARGETS = {
  cpuToHono: 1.5,
  cpuToPing: 3,
  redisStoreCpuToMemory: 1.5,
  ticketAcrossAddedMs: 1,
  list20ToHono: 2,
  containersRatioAt10: 1.0,
  sseLogRatio: 0.8,
  pipelineToCopy: 0.5,
  subscribers: 10_000,
  subscriberP99ToFloor: 1.3,
  coldStartToBare: 4,
  addedLatencyToPassThrough: 1,
  pullToDirect: 1.05,
  execJsonToDirect: 1.2,
  execSseToRaw: 0.8,
  mergedEventsAddedMs: 1,
  prefixedListRatio: 1.05,
  serviceLogRatio: 0.8,
}
// With --compare every phase measures two gateways: more time.
if (COMPARE) {
  PROFILE.boundMs = Math.round(PROFILE.boundMs * 1.8)
  for (const key of Object.keys(PROFILE.plan))
    PROFILE.plan[key] = Math.round(PROFILE.plan[key] * 1.8)
}

// The bound counts from when the engine answers (bringing a stopped engine up may install
// packages first). Hard stop a little before it; phases shrink themselves long before this.
let budget = new Budget(PROFILE.boundMs - 4_000)
let watchdog
const runId = `${process.pid}-${Date.now().toString(36)}`
const token = `dgt_bench-${randomBytes(18).toString('base64url')}`
/** A config token that may exec in this run's containers (phase 3d). */
const execToken = `dgt_bench-exec-${randomBytes(18).toString('base64url')}`
const workDir = mkdtempSync(join(tmpdir(), 'dockgate-bench-'))
const configPath = join(workDir, 'config.json')
const resultsDir = join(ROOT, 'bench', 'results')

let engine
/** Phase 4e's second engine: its socket's client, and how to stop it if this run started it. */
let engineB
/** Stops the loopback registries when this run started them (`registryEnv`). */
let stopRegistries = () => {}
/** Stops the engine when this run started it (`engineEnv`). */
let stopEngine = () => {}
/** Undoes phase 3e's swarm when this run made it and the phase is still under way (`ownSwarm`). */
let stopSwarm = () => {}
/** The cluster of phase 4d while it runs (scripts/cluster.sh; stopped on the way out too). */
let clusterRun
/** Phase 4d's HAProxy in front of the floor while it runs (stopped on the way out too). */
let balancerRun
let cleaning
let compareVariant
const errors = []

/** One step of the cleanup: a failure is said, and the cleanup goes on. */
function cleanupStep(what, step) {
  try {
    step()
  } catch (error) {
    console.error(`cleanup: ${what} failed:`, error.message)
  }
}

async function cleanup() {
  cleaning ??= (async () => {
    await Promise.race([Promise.all([stopAll(), balancerRun?.stop()]), sleep(5_000)])
    killAll()
    cleanupStep('scripts/cluster.sh down', () => clusterRun?.stop())
    if (engine) {
      try {
        const ids = await engine.containerIds(`dockgate-bench=${runId}`)
        await Promise.race([engine.removeAll(ids.map((c) => c.id)), sleep(15_000)])
        log(`cleanup: removed ${ids.length} bench containers`)
      } catch (error) {
        console.error('cleanup: could not remove the bench containers:', error.message)
      }
      engine.close()
    }
    cleanupStep('scripts/engine.sh down --swarm', stopSwarm)
    cleanupStep('scripts/engine.sh down', stopEngine)
    if (engineB) {
      try {
        const ids = await engineB.engine.containerIds(`dockgate-bench=${runId}`)
        await Promise.race([engineB.engine.removeAll(ids.map((c) => c.id)), sleep(15_000)])
      } catch (error) {
        console.error('cleanup: could not remove the bench containers on engine b:', error.message)
      }
      engineB.engine.close()
      cleanupStep('scripts/engine.sh down (engine b)', engineB.stop)
    }
    cleanupStep('scripts/registry.sh down', stopRegistries)
    rmSync(workDir, { recursive: true, force: true })
    compareVariant?.remove()
  })()
  return cleaning
}

let interrupted = false
for (const signal of ['SIGINT', 'SIGTERM']) {
  process.on(signal, () => {
    if (interrupted) process.exit(130)
    interrupted = true
    console.error(`\n${signal}: cleaning up…`)
    cleanup().finally(() => process.exit(130))
  })
}
function startClock() {
  budget = new Budget(PROFILE.boundMs - 4_000)
  watchdog = setTimeout(() => {
    console.error(`bench: the ${PROFILE.boundMs / 1000} s bound is near; stopping`)
    errors.push('time bound hit')
    cleanup().finally(() => process.exit(1))
  }, PROFILE.boundMs - 2_500)
  watchdog.unref()
}

/** A deadline for a phase: its plan, cut to what is left before the hard stop. */
function phaseBudget(name, reserveMs = reserveAfter(name)) {
  const planned = PROFILE.plan[name] ?? 10_000
  const deadline = Date.now() + Math.min(planned, Math.max(1_000, budget.leftMs() - reserveMs))
  return { deadline, leftForPhase: () => deadline - Date.now() }
}

/** The planned phases (`PROFILE.plan`'s keys) in the order they run: 2b runs with `cpu`. */
const RUN_ORDER = PHASES.flatMap((name) => (name === 'cpu' ? ['cpu', 'storeCpu'] : [name]))

/**
 * Time the phases after this one need, at least half their plan each (so an early overrun cannot
 * starve them).
 */
function reserveAfter(name) {
  const later = RUN_ORDER.slice(RUN_ORDER.indexOf(name) + 1)
  return later.reduce((sum, n) => sum + (PROFILE.plan[n] ?? 0) * 0.5, 0) + PROFILE.marginMs
}

/** The project's formatter lays the JSON out as `biome ci` expects it (the file is committed). */
function formatJson(path) {
  try {
    execFileSync(join(ROOT, 'node_modules/.bin/biome'), ['format', '--write', path], {
      cwd: ROOT,
      stdio: 'ignore',
    })
  } catch {
    // Unformatted JSON is still JSON.
  }
}

function newestMtime(dir) {
  let newest = 0
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name)
    newest = Math.max(newest, entry.isDirectory() ? newestMtime(path) : statSync(path).mtimeMs)
  }
  return newest
}

function build() {
  if (argv.has('--no-build')) return 'skipped (--no-build)'
  let fresh = false
  try {
    // dist/node.js and the rest of dist/ (tsc) for the pipeline phase; the bundle for the gateway;
    // the Deno bundle that scripts/deno-start.sh runs; the edge bundle for workerd's cold start.
    const mtime = (f) => statSync(join(ROOT, f)).mtimeMs
    // The Bun entry where the pinned Bun is installed (scripts/build-bun.mjs writes none without).
    const bun = existsSync(join(ROOT, 'node_modules/.bin/bun'))
      ? ['dist/dockgate-bun/dockgate']
      : []
    const built = ['dist/node.js', 'dist/dockgate.mjs', 'dist/deno.js', 'dist/edge.js', ...bun].map(
      mtime,
    )
    fresh = Math.min(...built) >= newestMtime(join(ROOT, 'src'))
  } catch {
    fresh = false
  }
  if (fresh) return 'dist/ is newer than src/: not rebuilt'
  execFileSync('npx', ['tsc', '-p', 'tsconfig.build.json'], { cwd: ROOT, stdio: 'inherit' })
  execFileSync(process.execPath, ['scripts/build-node.mjs'], { cwd: ROOT, stdio: 'inherit' })
  execFileSync(process.execPath, ['scripts/build-deno.mjs'], { cwd: ROOT, stdio: 'inherit' })
  execFileSync(process.execPath, ['scripts/build-bun.mjs'], { cwd: ROOT, stdio: 'inherit' })
  execFileSync(process.execPath, ['scripts/build-edge.mjs'], { cwd: ROOT, stdio: 'inherit' })
  return 'built'
}

const ENGINE_UP_MS = 600_000

/**
 * The engine: DOCKER_HOST when it is set, else whatever scripts/engine.sh up brings up, stopped
 * on the way out when this run started it (as `npm test` does; `KEEP_ENGINE=1` keeps it).
 */
function engineEnv() {
  if (process.env.DOCKER_HOST) {
    return {
      dockerHost: process.env.DOCKER_HOST,
      // The engine's plain TCP port on loopback, for workerd (cold start); none: workerd fails alone.
      tcpHost: process.env.DOCKGATE_TEST_TCP_HOST || undefined,
      image: process.env.DOCKGATE_FIXTURE_IMAGE ?? 'dockgate-fixture:busybox',
    }
  }
  const { vars: env, stop } = partUp('engine.sh', { timeout: ENGINE_UP_MS })
  if (!process.env.KEEP_ENGINE) stopEngine = stop
  return {
    dockerHost: env.DOCKER_HOST,
    tcpHost: env.DOCKGATE_TEST_TCP_HOST || undefined,
    image: env.DOCKGATE_FIXTURE_IMAGE ?? 'dockgate-fixture:busybox',
  }
}

/**
 * Phase 3e's swarm on the bench's own engine: `scripts/engine.sh up --swarm` (the manager and a
 * second, private dockerd as its worker; seconds once the engine runs), left again after the
 * phase when this run made it, so that no other phase runs beside a swarm. On an engine given by
 * DOCKER_HOST, or one the script will not turn into a manager, the phase is skipped: the answer
 * says why (undefined once the swarm is up).
 */
function ownSwarm() {
  const notManager = 'the engine is not a Swarm manager (scripts/engine.sh up --swarm)'
  if (process.env.DOCKER_HOST) return `${notManager}, and DOCKER_HOST names it`
  try {
    const { stop } = partUp('engine.sh', { timeout: ENGINE_UP_MS, args: ['--swarm'] })
    // Once: at the phase's end, or on the way out when the run is stopped during the phase.
    stopSwarm = () => {
      stopSwarm = () => {}
      stop()
    }
    return undefined
  } catch (error) {
    return `${notManager}: up --swarm failed (${error.message.split('\n')[0]})`
  }
}

/**
 * The second engine of phase 4e: another private dockerd with its own state dir
 * (`.state/engine-b`, as scripts/test.sh uses it), brought up before the clock like the main one
 * and stopped on the way out when this run started it. Its socket (for the bench's own renames)
 * and its TLS endpoint (the gateway's way to it).
 */
function engineBEnv() {
  const state = join(process.env.DOCKGATE_STATE_DIR || join(ROOT, '.state'), 'engine-b')
  const env = {
    ...process.env,
    DOCKGATE_STATE_DIR: state,
    DOCKGATE_PRIVATE_ENGINE: '1',
    DOCKGATE_CONTAINERD_NAMESPACE: 'dockgate-b',
  }
  const { vars, stop } = partUp('engine.sh', { env, timeout: ENGINE_UP_MS })
  return {
    socketPath: vars.DOCKER_HOST.slice('unix://'.length),
    tlsHost: vars.DOCKGATE_TEST_TLS_HOST,
    certPath: vars.DOCKGATE_TEST_TLS_CERT_PATH,
    stop,
  }
}

/**
 * The loopback registries (scripts/registry.sh up: started unless they run, the fixture pushed);
 * stopped on the way out when this run started them, as engine b is.
 */
function registryEnv() {
  const { vars, stop } = partUp('registry.sh', { timeout: 300_000 })
  stopRegistries = stop
  return vars
}

/**
 * Waits until the gateway's read model lists `size` bench containers and its engine calls settle
 * (`bearer`: the token it takes; a cluster has its own; `upstreams`: its engines, each holding
 * one events upstream).
 */
async function waitSettled(gateway, sizes, timeoutMs, bearer = token, upstreams = 1) {
  const deadline = Date.now() + timeoutMs
  const auth = { authorization: `Bearer ${bearer}` }
  for (const size of sizes) {
    const label = encodeURIComponent(`dockgate-bench-list${size}=${runId}`)
    for (;;) {
      const { status, text } = await getText(
        `${gateway.url}/v1/containers?all=true&label=${label}`,
        auth,
      )
      if (status === 200 && JSON.parse(text).containers.length === size) break
      if (Date.now() > deadline) throw new Error(`the gateway does not list ${size} containers`)
      await sleep(100)
    }
  }
  // The read model loads every container of the engine: wait until only the events upstream is left.
  let quiet = 0
  while (Date.now() < deadline && quiet < 3) {
    const gauges = await gatewayGauges(gateway.url, bearer)
    quiet = (gauges.dockgate_engine_connections ?? 0) <= upstreams ? quiet + 1 : 0
    await sleep(100)
  }
}

async function phase(name, fn) {
  if (interrupted || !only.has(PHASE_KEYS[name])) return undefined
  log(`== ${name}`)
  try {
    return await fn()
  } catch (error) {
    errors.push(`${name}: ${error.message ?? error}`)
    log(`!! ${name} failed: ${error.stack ?? error}`)
    return { error: String(error.message ?? error) }
  }
}

/** The `--only` name of each phase. */
const PHASE_KEYS = {
  '1. throughput and latency': 'throughput',
  '2. gateway CPU per request': 'cpu',
  '2b. gateway CPU per request: Redis store vs memory': 'cpu',
  '3a. logs: SSE vs raw': 'logs',
  '3b. in-process pipeline': 'pipeline',
  '3c. image pull': 'pull',
  '3d. exec: JSON and SSE beside the engine': 'exec',
  '3e. service logs: SSE vs raw': 'servicelogs',
  '4a. added event latency, one subscriber': 'latency',
  '4e. several engines: merged events, prefixed routes': 'engines',
  '4b. memory per open stream': 'memory',
  '4c. events fan-out': 'events',
  '4d. events fan-out through the balancer': 'cluster',
  '5. cold start': 'cold',
}

async function main() {
  const context = {
    mode: PROFILE.mode,
    runId,
    startedAt: new Date().toISOString(),
    node: process.version,
    cpus: cpus().length,
    loadAverageAtStart: loadavg().map((x) => round(x, 2)),
    phases: [...only],
  }
  log(`dockgate bench (${PROFILE.mode}), run ${runId}`)
  const { dockerHost, tcpHost, image } = engineEnv()
  if (!dockerHost?.startsWith('unix://')) {
    throw new Error(
      `the bench needs the engine on a Unix socket (DOCKER_HOST=unix://…), not ${dockerHost}`,
    )
  }
  const socketPath = dockerHost.slice('unix://'.length)
  engine = new Engine(socketPath)
  const ping = await engine.request('GET', '/_ping')
  if (ping.status !== 200) throw new Error(`the engine at ${dockerHost} does not answer /_ping`)
  context.engineUpSeconds = round(budget.elapsedMs() / 1000, 1)
  context.build = build()
  log(`build: ${context.build}`)
  // The other commit's build, like the engine's start, comes before the clock.
  if (COMPARE) {
    const started = Date.now()
    compareVariant = buildCompareVariant(COMPARE)
    context.compare = {
      ref: COMPARE,
      sha: compareVariant.sha,
      buildSeconds: round((Date.now() - started) / 1000, 1),
    }
  }
  // Phase 4e's second engine, like the main one, before the clock.
  let engineBError
  if (only.has('engines')) {
    try {
      const b = engineBEnv()
      engineB = { ...b, engine: new Engine(b.socketPath) }
    } catch (error) {
      engineBError = `the second engine (scripts/engine.sh, .state/engine-b) did not come up: ${error.message}`
    }
  }
  startClock()
  const variants = [
    {
      key: 'this',
      label: ENTRY ? `\`${ENTRY}\`` : 'this tree',
      root: ROOT,
      entry: ENTRY,
      dist: join(ROOT, 'dist'),
    },
    ...(compareVariant ? [compareVariant] : []),
  ]
  context.variants = variants.map((v) => ({ key: v.key, label: v.label }))
  const enginePid = listenerPid(socketPath)
  const info = await engine.json('GET', '/info')
  context.engine = {
    dockerHost,
    version: info.ServerVersion,
    containersOnEngine: info.Containers,
    pid: enginePid,
  }
  const stale = await removeStaleBenchContainers(engine)
  if (stale) log(`removed ${stale} containers left by earlier bench runs`)
  // The pull phase pulls from the open loopback registry (scripts/registry.sh), which the config lists.
  let pullRegistry
  let pullSetupError
  if (only.has('pull')) {
    try {
      pullRegistry = registryEnv().DOCKGATE_TEST_REGISTRY
    } catch (error) {
      pullSetupError = `scripts/registry.sh up failed: ${error.message}`
    }
  }
  const { execTokenEntry } = await import('./exec.mjs')
  writeFileSync(
    configPath,
    JSON.stringify({
      tokens: [await execTokenEntry(execToken, runId)],
      ...(pullRegistry ? { registries: { [pullRegistry]: {} } } : {}),
      limits: {
        requestsPerSecond: 1_000_000,
        burst: 1_000_000,
        streamsPerClient: 100_000,
        engineCallsPerClient: 100_000,
      },
    }),
  )

  // --- setup: the listed containers, the log containers (written meanwhile), a quiet one -------
  const maxSize = Math.max(...PROFILE.sizes)
  const t0 = Date.now()
  const logs = await import('./logs.mjs')
  const logIds = only.has('logs')
    ? {
        long: await logs.createLogContainer(engine, { image, runId, mb: PROFILE.logMb }),
        short: await logs.createLogContainer(engine, {
          image,
          runId,
          mb: PROFILE.shortLogMb,
          lineBytes: logs.SHORT_LINE_BYTES,
        }),
      }
    : undefined
  // Memory: log streams follow a running container that says nothing.
  const quietId = only.has('memory')
    ? await engine.createContainer({
        name: `dockgate-bench-quiet-${runId}`,
        image,
        cmd: ['sleep', '3600'],
        labels: { 'dockgate-bench': runId },
      })
    : undefined
  if (quietId) await engine.json('POST', `/containers/${quietId}/start`)
  const listed = await mapLimit(
    Array.from({ length: maxSize }, (_, i) => i),
    4,
    async (i) => {
      const labels = { 'dockgate-bench': runId }
      for (const size of PROFILE.sizes) if (i < size) labels[`dockgate-bench-list${size}`] = runId
      const name = `dockgate-bench-${runId}-c${i}`
      return { id: await engine.createContainer({ name, image, cmd: ['true'], labels }), name }
    },
  )
  for (const id of Object.values(logIds ?? {})) {
    const exit = await logs.waitExited(engine, id, 60_000)
    if (exit !== 0) throw new Error(`a log container exited with ${exit}`)
  }
  context.setupSeconds = round((Date.now() - t0) / 1000, 1)
  log(
    `setup: ${maxSize} containers${logIds ? `, logs of ${PROFILE.logMb} MB and ${PROFILE.shortLogMb} MB` : ''} in ${context.setupSeconds} s`,
  )

  const gatewayOptions = { dockerHost, token, configPath, quiet: true }
  if (ENTRY) context.gatewayEntry = ENTRY
  if (argv.has('--cpu-prof')) {
    const dir = join(resultsDir, 'profiles', runId)
    mkdirSync(dir, { recursive: true })
    gatewayOptions.nodeArgs = ['--cpu-prof', `--cpu-prof-dir=${dir}`]
    context.cpuProfiles = dir
    log(`gateway CPU profiles go to ${dir}`)
  }
  const startGateway = (v) => startNodeGateway({ ...gatewayOptions, entry: v.entry, root: v.root })
  // One long-lived gateway per variant for phases 1–3a (the events phase starts fresh ones).
  for (const v of variants) {
    v.gateway = await startGateway(v)
    await waitSettled(v.gateway, PROFILE.sizes, 30_000)
    log(`gateway ${v.key}: pid ${v.gateway.pid} at ${v.gateway.url}, read model loaded`)
  }
  const gateway = variants[0].gateway
  const gateways = () =>
    variants.map((v) => ({
      key: v.key,
      url: v.gateway.url,
      pid: v.gateway.pid,
      port: v.gateway.port,
    }))
  // The bare Hono app: the CPU floor of a route (answering the gateway's own version body) and
  // the plain pass-through of engine events.
  let hono
  if (only.has('cpu') || only.has('latency')) {
    const version = await getText(`${gateway.url}/v1/system/version`, {
      authorization: `Bearer ${token}`,
    })
    hono = await startHonoBaseline({ dockerHost, constJson: version.text })
    log(`bare Hono app: pid ${hono.pid} at ${hono.url}`)
  }
  const ctx = {
    runId,
    token,
    socketPath,
    dockerHost,
    tcpHost,
    configPath,
    entry: ENTRY,
    engine,
    enginePid,
    gauges: (g) => gatewayGauges(g.url, token),
  }
  const results = { context, targets: TARGETS }

  results.throughput = await phase('1. throughput and latency', async () => {
    const { runThroughput, throughputCases } = await import('./throughput.mjs')
    const cases = throughputCases(ctx, { sizes: PROFILE.sizes })
    return runThroughput(ctx, {
      cases,
      gateways: gateways(),
      connectionCounts: PROFILE.connections,
      durationS: PROFILE.durationS,
      reps: PROFILE.reps,
      budget: phaseBudget('throughput'),
    })
  })

  results.cpu = await phase('2. gateway CPU per request', async () => {
    const { runCpu } = await import('./cpu.mjs')
    return runCpu(ctx, {
      variants,
      hono,
      listLabel: `dockgate-bench-list20=${runId}`,
      durationS: PROFILE.durationS,
      reps: PROFILE.cpuReps,
      warmupS: PROFILE.cpuWarmupS,
      extras: PROFILE.cpuExtras,
      budget: phaseBudget('cpu'),
    })
  })

  results.storeCpu = await phase('2b. gateway CPU per request: Redis store vs memory', async () => {
    const { runStoreCpu } = await import('./store.mjs')
    return runStoreCpu(ctx, {
      memory: gateway,
      gatewayOptions: { ...gatewayOptions, entry: variants[0].entry, root: variants[0].root },
      durationS: PROFILE.durationS,
      reps: PROFILE.cpuReps,
      budget: phaseBudget('storeCpu'),
    })
  })

  results.logs = await phase('3a. logs: SSE vs raw', async () => {
    const { runLogs, LOG_LINE_BYTES, SHORT_LINE_BYTES } = await import('./logs.mjs')
    const out = {}
    // One budget for both logs: the long one may take 3/4 of it, the short one what is left.
    const b = phaseBudget('logs')
    for (const [name, lineBytes, mb, share] of [
      ['long', LOG_LINE_BYTES, PROFILE.logMb, 0.75],
      ['short', SHORT_LINE_BYTES, PROFILE.shortLogMb, 1],
    ]) {
      const deadline = Date.now() + (b.deadline - Date.now()) * share
      out[name] = await runLogs(ctx, {
        id: logIds[name],
        lineBytes,
        expectedLines: Math.floor((mb * 1_000_000) / lineBytes),
        reps: PROFILE.logReps,
        gateways: gateways(),
        budget: { deadline, leftForPhase: () => deadline - Date.now() },
      })
    }
    return out
  })

  results.pipeline = await phase('3b. in-process pipeline', async () => {
    const { runPipeline } = await import('./pipeline.mjs')
    return runPipeline({ totalMb: PROFILE.pipelineMb, reps: PROFILE.pipelineReps, variants })
  })

  results.pull = await phase('3c. image pull', async () => {
    if (!pullRegistry) throw new Error(pullSetupError ?? 'no registry')
    const { pushPullImage, runPull } = await import('./pull.mjs')
    const b = phaseBudget('pull')
    const ref = await pushPullImage(engine, {
      image,
      runId,
      registry: pullRegistry,
      mb: PROFILE.pullMb,
    })
    return runPull(ctx, {
      ref,
      gateways: gateways(),
      reps: PROFILE.pullReps,
      deadline: b.deadline - 1_000,
    })
  })

  results.exec = await phase('3d. exec: JSON and SSE beside the engine', async () => {
    const { runExec } = await import('./exec.mjs')
    const b = phaseBudget('exec')
    return runExec(ctx, {
      image,
      gateways: gateways(),
      execToken,
      execs: PROFILE.execs,
      mb: PROFILE.execMb,
      reps: PROFILE.execReps,
      deadline: b.deadline,
    })
  })

  results.serviceLogs = await phase('3e. service logs: SSE vs raw', async () => {
    const { isManager, runServiceLogs } = await import('./service-logs.mjs')
    const skipped = (await isManager(engine)) ? undefined : ownSwarm()
    if (skipped) {
      log(`  skipped: ${skipped}`)
      return { skipped }
    }
    try {
      const nodes = await engine.json('GET', '/nodes')
      return await runServiceLogs(ctx, {
        image,
        // One task per node: the gateway gathers lines from both
        replicas: Math.max(1, nodes.length),
        lines: PROFILE.serviceLogLines,
        reps: PROFILE.serviceLogReps,
        gateways: gateways(),
        budget: phaseBudget('servicelogs'),
      })
    } finally {
      stopSwarm()
    }
  })

  // No phase from here on uses the long-lived gateways. Their upstreams would stand among the
  // engine's subscribers in phase 4a, and each would take every event beside its paths.
  for (const v of variants) await stopProcess(v.gateway.child)

  results.latency = await phase('4a. added event latency, one subscriber', async () => {
    const { runLatency } = await import('./latency.mjs')
    const b = phaseBudget('latency')
    return runLatency(ctx, {
      // Fresh gateways per arrangement (bench/latency.mjs): their upstreams' places at the engine.
      startGateways: async () => {
        const started = []
        try {
          for (const v of variants) {
            const g = await startGateway(v)
            started.push({ key: v.key, pid: g.pid, port: g.port, stop: () => stopProcess(g.child) })
            await waitSettled(g, PROFILE.sizes, 30_000)
          }
          return started
        } catch (error) {
          for (const g of started) await g.stop()
          throw error
        }
      },
      passThrough: hono,
      containers: listed.slice(0, 2),
      events: Number.isNaN(LATENCY_EVENTS) ? PROFILE.latencyEvents : LATENCY_EVENTS,
      gapMs: 20,
      deadline: b.deadline - 2_500,
    })
  })
  results.engines = await phase('4e. several engines: merged events, prefixed routes', async () => {
    if (!engineB) throw new Error(engineBError ?? 'no second engine')
    const { runEngines } = await import('./engines.mjs')
    const b = phaseBudget('engines')
    // A config of its own: engine b, and a token whose policy may use every engine.
    const enginesToken = `dgt_bench-engines-${randomBytes(18).toString('base64url')}`
    const enginesConfig = join(workDir, 'engines-config.json')
    writeFileSync(
      enginesConfig,
      JSON.stringify({
        engines: { b: { host: engineB.tlsHost, tlsVerify: true, certPath: engineB.certPath } },
        tokens: [
          {
            name: 'bench-engines',
            hash: `sha256:${createHash('sha256').update(enginesToken).digest('hex')}`,
            scopes: ['admin'],
            policy: { engines: ['*'] },
          },
        ],
        limits: {
          requestsPerSecond: 1_000_000,
          burst: 1_000_000,
          streamsPerClient: 100_000,
          engineCallsPerClient: 100_000,
        },
      }),
    )
    const onB = await mapLimit([0, 1], 2, async (i) => {
      const name = `dockgate-bench-${runId}-b${i}`
      const id = await engineB.engine.createContainer({
        name,
        image,
        cmd: ['true'],
        labels: { 'dockgate-bench': runId },
      })
      return { id, name }
    })
    const renamer = (on, c) => ({
      rename: (n) =>
        on.json('POST', `/containers/${c.id}/rename?name=${encodeURIComponent(`${c.name}-e${n}`)}`),
    })
    const g = await startNodeGateway({ ...gatewayOptions, configPath: enginesConfig })
    try {
      // Two engines: two events upstreams once both read models are loaded.
      await waitSettled(g, [20], 30_000, token, 2)
      return await runEngines(ctx, {
        gateway: g,
        token: enginesToken,
        renamesA: listed.slice(2, 4).map((c) => renamer(engine, c)),
        renamesB: onB.map((c) => renamer(engineB.engine, c)),
        listLabel: `dockgate-bench-list20=${runId}`,
        events: PROFILE.engineEvents,
        gapMs: 20,
        durationS: PROFILE.durationS,
        reps: PROFILE.engineReps,
        deadline: b.deadline - 1_000,
      })
    } finally {
      await stopProcess(g.child)
    }
  })

  if (hono) await stopProcess(hono.child)

  results.memory = await phase('4b. memory per open stream', async () => {
    const { runMemory } = await import('./memory.mjs')
    const b = phaseBudget('memory')
    const out = {}
    for (const [i, v] of variants.entries()) {
      const left = b.deadline - Date.now()
      out[v.key] = await runMemory(ctx, {
        start: async () => {
          const g = await startGateway(v)
          await waitSettled(g, [], 15_000)
          return g
        },
        count: PROFILE.memoryStreams,
        logContainerId: quietId,
        deadline: Date.now() + left / (variants.length - i),
      })
    }
    return out
  })

  results.events = await phase('4c. events fan-out', async () => {
    const { runEventsLevel } = await import('./events.mjs')
    const b = phaseBudget('events')
    const top = PROFILE.eventLevels.at(-1)
    const gatewayAt = (count, rep) =>
      variants.map((v) => ({ target: 'gateway', count, variant: v, rep }))
    const levels = [
      ...PROFILE.directEventLevels.map((count) => ({ target: 'direct', count })),
      ...PROFILE.eventLevels.slice(0, -1).flatMap((count) => gatewayAt(count)),
      // The target's two sides at the top count in pairs, which goes first alternating: the
      // verdict is the median of the pairs' ratios, so a change of the machine's load between two
      // levels moves one pair, not the verdict (bench/README.md, "10,000 subscribers in pairs").
      ...Array.from({ length: PROFILE.topLevelPairs }, (_, i) => {
        const pair = [...gatewayAt(top, i + 1), { target: 'floor', count: top, rep: i + 1 }]
        return i % 2 === 0 ? pair : pair.reverse()
      }).flat(),
    ]
    const out = []
    for (let i = 0; i < levels.length; i++) {
      const { target, count, variant, rep } = levels[i]
      const tag = { ...(variant ? { variant: variant.key } : {}), ...(rep ? { rep } : {}) }
      // Share what is left among the levels still to run, weighted by their size (about what each
      // took here: 10,000 subscribers 3–8 s with their bursts, a level of 100 under 2 s).
      const weights = levels.slice(i).map((l) => 2_000 + l.count * 0.8)
      const share = (b.leftForPhase() * weights[0]) / weights.reduce((a, x) => a + x, 0)
      if (share < 1_500) {
        log(`  events ${target} ${count}: skipped (time budget)`)
        out.push({ target, requested: count, ...tag, skipped: 'time budget' })
        continue
      }
      let levelServer
      // A fresh gateway per level: its memory grows from a clean start.
      if (target === 'gateway') {
        levelServer = await startGateway(variant)
        await waitSettled(levelServer, [], 15_000)
      } else if (target === 'floor') {
        levelServer = await startSseFloor()
      }
      try {
        const r = await runEventsLevel(ctx, {
          target,
          count,
          bursts: PROFILE.bursts,
          burstSize: PROFILE.burstSize,
          containers: listed,
          deadline: Date.now() + share,
          gateway: levelServer,
        })
        out.push({ ...r, ...tag })
      } catch (error) {
        errors.push(`events ${target} ${count}: ${error.message ?? error}`)
        log(`!! events ${target} ${count} failed: ${error.stack ?? error}`)
        out.push({ target, requested: count, ...tag, error: String(error.message ?? error) })
      } finally {
        if (levelServer) await stopProcess(levelServer.child)
      }
      // Let the closed connections drain before the next level.
      await sleep(500)
    }
    return out
  })

  results.cluster = await phase('4d. events fan-out through the balancer', async () => {
    const { runEventsLevel } = await import('./events.mjs')
    const { startBalancer, startCluster } = await import('./lib/cluster.mjs')
    const b = phaseBudget('cluster')
    const count = PROFILE.clusterSubscribers
    const level = {
      bursts: PROFILE.bursts,
      burstSize: PROFILE.burstSize,
      containers: listed,
      count,
    }
    // The floor at the same count in this run: the events phase's (the pair with the median
    // p99), else one measured here.
    let floor = medianP99Level(
      (Array.isArray(results.events) ? results.events : []).filter(
        (e) => e.target === 'floor' && e.requested === count && !e.error && !e.skipped,
      ),
    )
    if (!floor) {
      const server = await startSseFloor()
      try {
        const deadline = Date.now() + b.leftForPhase() * 0.4
        floor = await runEventsLevel(ctx, {
          ...level,
          target: 'floor',
          deadline,
          gateway: { ...server, parts: { floor: [server.pid] } },
        })
      } finally {
        await stopProcess(server.child)
      }
      await sleep(500)
    }
    clusterRun = startCluster({ workDir, dockerHost, configPath, clients: count })
    const { balancers } = clusterRun
    log(
      `cluster: ${clusterRun.url} (${balancers} HAProxy process(es), pids ${clusterRun.haproxyPids.join(', ')}), instances ${clusterRun.pids.join(', ')}`,
    )
    let measured
    try {
      const clusterCtx = {
        ...ctx,
        token: clusterRun.token,
        gauges: (g) => gatewayGauges(g.url, clusterRun.token),
      }
      // Each instance's read model loaded: only its events upstream left in flight.
      for (const instance of clusterRun.instances)
        await waitSettled(instance, [], 15_000, clusterRun.token)
      measured = await runEventsLevel(clusterCtx, {
        ...level,
        target: 'cluster',
        // Leave time for the floor behind HAProxy, when the phase has time enough for both (a
        // quick run's cluster keeps all of it: the target comes first).
        deadline:
          b.deadline - (b.leftForPhase() > 45_000 ? Math.min(20_000, b.leftForPhase() * 0.3) : 0),
        gateway: {
          ...clusterRun,
          parts: { instances: clusterRun.pids, haproxy: clusterRun.haproxyPids },
        },
      })
    } finally {
      clusterRun.stop()
      clusterRun = undefined
    }
    // Not a target: the floor behind the same HAProxy (the cluster's haproxy.cfg, as many
    // processes), which shows HAProxy's own share of the cluster's figure.
    let floorBehindBalancer
    if (b.leftForPhase() < 8_000) {
      floorBehindBalancer = { target: 'floor behind HAProxy', skipped: 'time budget' }
    } else {
      await sleep(500)
      const server = await startSseFloor()
      try {
        balancerRun = await startBalancer({
          cfgPath: join(workDir, 'cluster', 'haproxy.cfg'),
          servers: [server.port],
          balancers,
          name: 'floor',
        })
        floorBehindBalancer = await runEventsLevel(ctx, {
          ...level,
          target: 'floor',
          deadline: b.deadline - 500,
          gateway: {
            port: balancerRun.port,
            burstPort: server.port,
            pids: [server.pid],
            parts: { floor: [server.pid], haproxy: balancerRun.pids },
          },
        })
        floorBehindBalancer.target = 'floor behind HAProxy'
      } catch (error) {
        floorBehindBalancer = { target: 'floor behind HAProxy', error: String(error.message) }
      } finally {
        await balancerRun?.stop()
        balancerRun = undefined
        await stopProcess(server.child)
      }
    }
    return { floor, cluster: measured, floorBehindBalancer, balancers, instances: 3 }
  })

  results.coldStart = await phase('5. cold start', async () => {
    const b = phaseBudget('cold', 3_000)
    return runColdStart(ctx, { reps: PROFILE.coldReps, deadline: b.deadline, variants })
  })

  results.errors = errors
  results.finishedAt = new Date().toISOString()
  results.seconds = round(budget.elapsedMs() / 1000, 1)
  return results
}

let exitCode = 0
try {
  const results = await main()
  await cleanup()
  results.secondsWithCleanup = round(budget.elapsedMs() / 1000, 1)
  const { evaluate, renderMarkdown } = await import('./report.mjs')
  results.verdicts = evaluate(results, TARGETS)
  const markdown = renderMarkdown(results)
  mkdirSync(resultsDir, { recursive: true })
  // A quick run (every `npm test` makes one) leaves the committed full run's report alone.
  const name = PARTIAL ? 'partial' : QUICK ? 'quick' : 'latest'
  const jsonPath = join(resultsDir, `${name}.json`)
  writeFileSync(jsonPath, `${JSON.stringify(results, null, 2)}\n`)
  formatJson(jsonPath)
  writeFileSync(join(resultsDir, `${name}.md`), markdown)
  console.log(`\n${markdown}`)
  console.log(`wrote bench/results/${name}.json and ${name}.md (${results.secondsWithCleanup} s)`)
  if (errors.length > 0) exitCode = 1
} catch (error) {
  console.error(`bench failed: ${error.stack ?? error}`)
  exitCode = 1
  await cleanup()
}
if (watchdog) clearTimeout(watchdog)
process.exit(exitCode)
