#!/usr/bin/env node
/**
 * The gateway's CPU per MB of an exec's output as SSE, bundles side by side (not a phase of
 * `npm run bench`: a tool for the work on phase 3d, whose rate ratio this machine's load moves
 * more than the gateway's own cost does). Each bundle runs as a gateway process; in every rep
 * each one streams the same `cat` of an `--mb` MB file (100-byte lines, as in phase 3d), in
 * alternating order, and its CPU time for it is read from /proc.
 *
 *   node bench/exec-cpu.mjs [--entry=FILE,FILE…] [--mb=50] [--reps=8] [--warmup=4] [--cpu-prof]
 *     [--pass-through]
 *
 * `--pass-through` measures phase 3d's pass-through floor (bench/lib/exec-pass-through.mjs) too:
 * what reading the engine's socket and writing the client's costs a bare Node process.
 * Default entry: this tree's dist/dockgate.mjs (build it first); another commit's bundle comes from
 * `node scripts/build-node.mjs --outfile=/tmp/other/dockgate.mjs` in its tree (every bundle runs
 * with this tree's Node flags). `--cpu-prof` runs the gateways
 * under `node --cpu-prof` (profiles in bench/results/profiles/exec-cpu-<run id>/, read with
 * bench/profile-summary.mjs). Needs DOCKER_HOST=unix://… (scripts/engine.sh env) and the fixture
 * image; removes its container and stops its gateways by pid on the way out.
 */
import { randomBytes } from 'node:crypto'
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import http from 'node:http'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { execTokenEntry } from './exec.mjs'
import { Engine } from './lib/engine.mjs'
import {
  freePort,
  killAll,
  NODE_FLAGS,
  ROOT,
  startNodeGateway,
  startServer,
} from './lib/processes.mjs'
import { median, nowMs, option, round } from './lib/util.mjs'

const args = process.argv.slice(2)
const entries = option('entry', join(ROOT, 'dist/dockgate.mjs'))
  .split(',')
  .map((file) => resolve(file))
const mb = Number(option('mb', '50'))
const reps = Number(option('reps', '8'))
const warmup = Number(option('warmup', '4'))
const profile = args.includes('--cpu-prof')

const dockerHost = process.env.DOCKER_HOST ?? ''
if (!dockerHost.startsWith('unix://')) {
  console.error('DOCKER_HOST=unix://… is needed: eval "$(bash scripts/engine.sh env)"')
  process.exit(2)
}
const image = process.env.DOCKGATE_FIXTURE_IMAGE ?? 'dockgate-fixture:busybox'
const runId = `${process.pid}-${Date.now().toString(36)}`
const engine = new Engine(dockerHost.slice('unix://'.length))
const workDir = mkdtempSync(join(tmpdir(), 'dockgate-exec-cpu-'))
const token = `dgt_bench-admin-${randomBytes(18).toString('base64url')}`
const execToken = `dgt_bench-exec-${randomBytes(18).toString('base64url')}`
const configPath = join(workDir, 'config.json')
writeFileSync(
  configPath,
  JSON.stringify({
    tokens: [await execTokenEntry(execToken, runId)],
    limits: { requestsPerSecond: 1_000_000, burst: 1_000_000, streamsPerClient: 100_000 },
  }),
)
const profileDir = join(ROOT, `bench/results/profiles/exec-cpu-${runId}`)
if (profile) mkdirSync(profileDir, { recursive: true })

/** The exec's whole body (SSE from a gateway, raw bytes from the pass-through): the call's time. */
function streamExec(server, box) {
  const url = server.passThrough
    ? `${server.url}/exec/${box}`
    : `${server.url}/v1/containers/${box}/exec`
  const body = server.passThrough ? ['cat', '/tmp/out'] : { cmd: ['cat', '/tmp/out'] }
  return new Promise((resolve, reject) => {
    const started = nowMs()
    const request = http.request(
      url,
      {
        method: 'POST',
        agent: false,
        headers: {
          authorization: `Bearer ${execToken}`,
          'content-type': 'application/json',
          accept: 'text/event-stream',
        },
      },
      (response) => {
        if (response.statusCode !== 200) reject(new Error(`exec: ${response.statusCode}`))
        let bytes = 0
        response.on('data', (chunk) => {
          bytes += chunk.length
        })
        response.on('end', () => resolve({ ms: nowMs() - started, bytes }))
        response.on('error', reject)
      },
    )
    request.on('error', reject)
    request.end(JSON.stringify(body))
  })
}

/** User and system CPU time of a process in ms (see `cpuMs`). */
function cpuSplit(pid) {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  return { user: Number(fields[11]) * 10, system: Number(fields[12]) * 10 }
}

const servers = []
let box
try {
  for (const [i, entry] of entries.entries()) {
    const nodeArgs = profile ? ['--cpu-prof', `--cpu-prof-dir=${profileDir}/g${i}`] : []
    const gateway = await startNodeGateway({
      dockerHost,
      token,
      configPath,
      entry,
      nodeArgs,
      quiet: true,
    })
    servers.push({ ...gateway, name: entry, user: [], system: [], rates: [] })
  }
  if (args.includes('--pass-through')) {
    const port = await freePort()
    const server = await startServer({
      file: process.execPath,
      args: [...NODE_FLAGS, join(ROOT, 'bench/lib/exec-pass-through.mjs')],
      env: { PATH: process.env.PATH ?? '', PORT: String(port), DOCKER_SOCKET: engine.socketPath },
      port,
      timeoutMs: 10_000,
      quiet: true,
    })
    servers.push({
      ...server,
      name: 'pass-through',
      passThrough: true,
      user: [],
      system: [],
      rates: [],
    })
  }
  box = await engine.createContainer({
    name: `dockgate-bench-exec-cpu-${runId}`,
    image,
    cmd: ['sleep', '3600'],
    labels: { 'dockgate-bench': runId },
  })
  await engine.json('POST', `/containers/${box}/start`)
  const exec = await engine.json('POST', `/containers/${box}/exec`, {
    Cmd: ['sh', '-c', `yes ${'x'.repeat(99)} | head -c ${mb * 1_000_000} > /tmp/out`],
  })
  await engine.request('POST', `/exec/${exec.Id}/start`, { Detach: false, Tty: false }, 120_000)
  for (let i = 0; i < warmup; i++) for (const s of servers) await streamExec(s, box)
  for (let i = 0; i < reps; i++) {
    const order = i % 2 === 0 ? servers : [...servers].reverse()
    for (const s of order) {
      const before = cpuSplit(s.pid)
      const run = await streamExec(s, box)
      const after = cpuSplit(s.pid)
      s.user.push((after.user - before.user) / mb)
      s.system.push((after.system - before.system) / mb)
      s.rates.push(mb / (run.ms / 1000))
    }
  }
  const mean = (values) => round(values.reduce((a, b) => a + b, 0) / values.length, 2)
  for (const s of servers) {
    const total = s.user.map((u, i) => u + (s.system[i] ?? 0))
    console.log(
      `${s.name}: CPU ${round(median(total), 2)} ms/MB median, ${mean(total)} mean` +
        ` (user ${mean(s.user)}, system ${mean(s.system)}; reps ${total.map((c) => round(c, 1)).join(', ')});` +
        ` ${round(median(s.rates), 1)} MB/s whole call, ${reps} × ${mb} MB`,
    )
  }
} finally {
  if (box) await engine.request('DELETE', `/containers/${box}?force=1`).catch(() => {})
  for (const s of servers) await s.stop()
  killAll()
  engine.close()
  rmSync(workDir, { recursive: true, force: true })
  if (profile) console.log(`profiles: ${profileDir}`)
}
