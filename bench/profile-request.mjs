#!/usr/bin/env node
/**
 * Where one request's CPU goes: starts the gateway bundle under `node --cpu-prof` beside the
 * engine, with N labelled containers (created, never started), loads one authenticated GET at 10
 * connections (1 s unmeasured, then `--seconds`), stops the gateway and prints
 * bench/profile-summary.mjs over the measured seconds. Everything it created is removed, the
 * gateway stopped by pid.
 *
 *   node bench/profile-request.mjs [PATH] [--containers=20] [--seconds=5] [--entry=FILE] [--top=30]
 *
 * PATH defaults to the list of the bench's containers (`/v1/containers?all=true&label=…`, the
 * target "a list of 20 from the read model"); `{label}` in PATH is replaced by that label filter.
 * Needs DOCKER_HOST=unix://… (scripts/engine.sh env) and a built bundle (npm run build).
 */
import { execFileSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Engine } from './lib/engine.mjs'
import { getText, ROOT, startNodeGateway, stopProcess } from './lib/processes.mjs'
import { mapLimit, option, round, sleep } from './lib/util.mjs'
import { load } from './throughput.mjs'

const args = process.argv.slice(2)
const count = Number(option('containers', 20))
const seconds = Number(option('seconds', 5))
const entry = option('entry', undefined)
const top = option('top', '30')
const dockerHost = process.env.DOCKER_HOST ?? ''
if (!dockerHost.startsWith('unix://')) {
  console.error(
    'profile-request: needs DOCKER_HOST=unix://… (eval "$(bash scripts/engine.sh env)")',
  )
  process.exit(2)
}
const runId = `${process.pid}-${Date.now().toString(36)}`
const label = `dockgate-bench-profile=${runId}`
const path = (
  args.find((a) => !a.startsWith('--')) ?? '/v1/containers?all=true&label={label}'
).replace('{label}', encodeURIComponent(label))
const token = `dgt_bench-${randomBytes(18).toString('base64url')}`
const dir = mkdtempSync(join(tmpdir(), 'dockgate-profile-'))
const configPath = join(dir, 'config.json')
writeFileSync(
  configPath,
  JSON.stringify({ limits: { requestsPerSecond: 1e6, burst: 1e6, streamsPerClient: 1e5 } }),
)
const engine = new Engine(dockerHost.slice('unix://'.length))
const image = process.env.DOCKGATE_FIXTURE_IMAGE ?? 'dockgate-fixture:busybox'
const ids = []
let gateway
try {
  ids.push(
    ...(await mapLimit(
      Array.from({ length: count }, (_, i) => i),
      4,
      (i) =>
        engine.createContainer({
          name: `dockgate-bench-profile-${runId}-c${i}`,
          image,
          cmd: ['true'],
          labels: { 'dockgate-bench': runId, 'dockgate-bench-profile': runId },
        }),
    )),
  )
  gateway = await startNodeGateway({
    dockerHost,
    token,
    configPath,
    entry,
    quiet: true,
    nodeArgs: ['--cpu-prof', `--cpu-prof-dir=${dir}`],
  })
  const target = { url: `${gateway.url}${path}`, headers: { authorization: `Bearer ${token}` } }
  // The read model lists every container once loaded.
  for (let i = 0; i < 100; i++) {
    const { status, text } = await getText(target.url, target.headers)
    if (status === 200 && (JSON.parse(text).containers?.length ?? count) >= count) break
    await sleep(100)
  }
  await load(target, { connections: 10, durationS: 1 })
  const r = await load(target, { connections: 10, durationS: seconds, cpuPid: gateway.pid })
  const body = await getText(target.url, target.headers)
  console.log(
    `GET ${path}: ${round(r.rps, 0)} req/s, ${round(r.cpuUsPerRequest, 1)} µs of gateway CPU per request (profiler included), ${body.text.length} bytes per answer\n`,
  )
  await stopProcess(gateway.child)
  const profile = readdirSync(dir).find((f) => f.endsWith('.cpuprofile'))
  if (!profile) throw new Error('the gateway wrote no profile')
  // The measured seconds are the profile's last ones, but for the shutdown after them.
  console.log(
    execFileSync(
      process.execPath,
      [join(ROOT, 'bench/profile-summary.mjs'), join(dir, profile), top, `--last=${seconds + 0.5}`],
      { encoding: 'utf8' },
    ),
  )
} finally {
  if (gateway) await stopProcess(gateway.child)
  await engine.removeAll(ids)
  engine.close()
  rmSync(dir, { recursive: true, force: true })
}
