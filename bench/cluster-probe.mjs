#!/usr/bin/env node
/**
 * Where the cluster's fan-out time goes (ad hoc, beside `--only=cluster`): in one sitting, rounds
 * of the same subscribers and bursts as phase 4d on
 *   floor          the bare node:http floor, directly;
 *   floor+haproxy  the same floor behind HAProxy as the cluster runs it (its haproxy.cfg);
 *   direct         the three instances, subscribers spread over their ports (no HAProxy);
 *   cluster:NAME   the three instances behind HAProxy, one row per HAProxy variant (`--variants=`);
 * each burst's CPU split by part (client: this process; haproxy; instances or floor; engine).
 *
 *   node bench/cluster-probe.mjs [--subscribers=10000] [--rounds=3] [--bursts=3]
 *     [--rows=floor,floor+haproxy,direct,cluster:default,cluster:nbthread1]
 *
 * Needs the engine (DOCKER_HOST=unix://…) and a Redis (DOCKGATE_TEST_STORE or DOCKGATE_STORE);
 * the cluster folder is under the system's temporary directory; everything it starts is
 * stopped by pid on the way out, and its containers removed.
 */
import { randomBytes } from 'node:crypto'
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs'
import { loadavg, tmpdir } from 'node:os'
import { join } from 'node:path'
import { startBalancer, startCluster } from './lib/cluster.mjs'
import { Engine } from './lib/engine.mjs'
import { startNodeGateway, startSseFloor, stopProcess } from './lib/processes.mjs'
import { listenerPid, log, median, option, round, sleep } from './lib/util.mjs'

const COUNT = Number(option('subscribers', '10000'))
const ROUNDS = Number(option('rounds', '3'))
const BURSTS = Number(option('bursts', '3'))
const ROWS = option('rows', 'floor,floor+haproxy,direct,cluster:default,cluster:nbthread1').split(
  ',',
)

/** HAProxy variants: lines added to the global (and defaults) section of the cluster's config. */
const VARIANTS = {
  default: { global: [] },
  nbthread1: { global: ['nbthread 1'] },
  nbthread2: { global: ['nbthread 2'] },
  bufsize64k: { global: ['tune.bufsize 65536'] },
  maxpollevents: { global: ['tune.maxpollevents 1000'] },
  splice: { defaults: ['option splice-auto'] },
  'no-http-no-delay': { defaults: ['no option http-no-delay'] },
}

// `--events=FILE`: another copy of events.mjs (e.g. the bench's client as it was), for an A/B.
const { runEventsLevel } = await import(option('events', './events.mjs'))

const runId = `${process.pid}-${Date.now().toString(36)}`
const workDir = mkdtempSync(join(tmpdir(), 'dockgate-probe-'))
const configPath = join(workDir, 'config.json')
writeFileSync(
  configPath,
  JSON.stringify({
    limits: {
      requestsPerSecond: 1_000_000,
      burst: 1_000_000,
      streamsPerClient: 100_000,
      engineCallsPerClient: 100_000,
    },
  }),
)
const dockerHost = process.env.DOCKER_HOST
const socketPath = dockerHost.slice('unix://'.length)
const engine = new Engine(socketPath)
const enginePid = listenerPid(socketPath)
const image = process.env.DOCKGATE_FIXTURE_IMAGE ?? 'dockgate-fixture:busybox'
const containers = []
let cluster
const balancers = []

async function cleanup() {
  for (const b of balancers.splice(0)) await b.stop().catch(() => {})
  try {
    cluster?.stop()
  } catch (error) {
    console.error('cluster down failed', error.message)
  }
  cluster = undefined
  await engine.removeAll(containers.map((c) => c.id))
  engine.close()
  rmSync(workDir, { recursive: true, force: true })
}
for (const signal of ['SIGINT', 'SIGTERM']) {
  process.on(signal, () => cleanup().finally(() => process.exit(130)))
}

/** A process's main thread and its other threads (V8's workers, libuv's pool) as two parts. */
function threadsOf(pid) {
  const others = readdirSync(`/proc/${pid}/task`).filter((tid) => tid !== String(pid))
  return {
    'main thread': [`${pid}/task/${pid}`],
    'other threads': others.map((tid) => `${pid}/task/${tid}`),
  }
}

const results = {}
const record = (row, r) => {
  results[row] ??= []
  results[row].push(r)
  log(
    `  == ${row}: p50 ${round(r.p50Ms, 1)} p99 ${round(r.p99Ms, 1)} ms, ${r.subscribed}/${r.requested}, CPU/delivery ${JSON.stringify(r.cpuPartsUsPerDelivery)}`,
  )
}

try {
  for (let i = 0; i < 5; i++) {
    const name = `dockgate-probe-${runId}-c${i}`
    containers.push({
      id: await engine.createContainer({
        name,
        image,
        cmd: ['true'],
        labels: { 'dockgate-bench': runId },
      }),
      name,
    })
  }
  const ctx = { runId, socketPath, engine, enginePid }
  cluster = startCluster({ workDir, dockerHost, configPath, clients: COUNT })
  const clusterCfg = join(workDir, 'cluster', 'haproxy.cfg')
  const clusterCtx = { ...ctx, token: cluster.token, gauges: async () => ({}) }
  log(`cluster up: instances ${cluster.pids.join(', ')}, ${cluster.balancers} balancer(s)`)
  // The cluster's own HAProxy stays for the whole run but idle; the rows use their own.
  const level = { count: COUNT, bursts: BURSTS, burstSize: 5, containers }
  for (let round_ = 0; round_ < ROUNDS; round_++) {
    // Alternate the order of the rows from round to round.
    const rows = round_ % 2 === 0 ? ROWS : [...ROWS].reverse()
    log(`round ${round_ + 1}, load ${loadavg()[0].toFixed(2)}: ${rows.join(', ')}`)
    for (const row of rows) {
      const deadline = Date.now() + 60_000
      if (row.startsWith('gateway')) {
        // One instance alone with a third of the subscribers (`gateway-prof`: under --cpu-prof).
        const token = `dgt_probe-${randomBytes(12).toString('hex')}`
        const nodeArgs =
          row === 'gateway-prof'
            ? ['--cpu-prof', `--cpu-prof-dir=${option('prof-dir', workDir)}`]
            : []
        const g = await startNodeGateway({ dockerHost, token, configPath, quiet: true, nodeArgs })
        try {
          await sleep(2_000)
          const r = await runEventsLevel(
            { ...ctx, token, gauges: async () => ({}) },
            {
              ...level,
              count: Math.round(COUNT / 3),
              target: 'gateway',
              deadline,
              gateway: { ...g, parts: { gateway: [g.pid], ...threadsOf(g.pid) } },
            },
          )
          record(row, { ...r, load: loadavg()[0] })
        } finally {
          await stopProcess(g.child)
        }
      } else if (row === 'floor' || row === 'floor+haproxy') {
        const floor = await startSseFloor()
        let balancer
        try {
          if (row === 'floor+haproxy') {
            balancer = await startBalancer({
              cfgPath: clusterCfg,
              servers: [floor.port],
              balancers: cluster.balancers,
              name: 'floor',
            })
            balancers.push(balancer)
          }
          const server = balancer
            ? {
                port: balancer.port,
                burstPort: floor.port,
                pids: [floor.pid],
                parts: { floor: [floor.pid], haproxy: balancer.pids, engine: [enginePid] },
              }
            : { ...floor, parts: { floor: [floor.pid], engine: [enginePid] } }
          const r = await runEventsLevel(ctx, {
            ...level,
            target: 'floor',
            deadline,
            gateway: server,
          })
          record(row, { ...r, load: loadavg()[0] })
        } finally {
          if (balancer) {
            await balancer.stop()
            balancers.splice(balancers.indexOf(balancer), 1)
          }
          await stopProcess(floor.child)
        }
      } else {
        const variant = row === 'direct' ? undefined : row.slice('cluster:'.length)
        let balancer
        try {
          if (variant) {
            balancer = await startBalancer({
              cfgPath: clusterCfg,
              servers: cluster.instances.map((i) => Number(new URL(i.url).port)),
              balancers: cluster.balancers,
              ...VARIANTS[variant],
              name: variant,
            })
            balancers.push(balancer)
          }
          const target = {
            pids: cluster.pids,
            instances: [],
            ...(balancer
              ? { port: balancer.port }
              : { ports: cluster.instances.map((i) => Number(new URL(i.url).port)) }),
            parts: {
              instances: cluster.pids,
              ...(balancer ? { haproxy: balancer.pids } : {}),
              engine: [enginePid],
            },
          }
          const r = await runEventsLevel(clusterCtx, {
            ...level,
            target: 'cluster',
            deadline,
            gateway: target,
          })
          record(row, { ...r, load: loadavg()[0] })
        } finally {
          if (balancer) {
            await balancer.stop()
            balancers.splice(balancers.indexOf(balancer), 1)
          }
        }
      }
      await sleep(1_000)
    }
  }
  log('summary (medians over rounds of each round’s median burst):')
  for (const [row, rs] of Object.entries(results)) {
    const parts = Object.keys(rs[0].cpuPartsUsPerDelivery ?? {})
    log(
      `  ${row.padEnd(28)} p50 ${round(median(rs.map((r) => r.p50Ms)), 1)} ms, p99 ${round(median(rs.map((r) => r.p99Ms)), 1)} ms [${rs.map((r) => round(r.p99Ms, 0)).join(', ')}]; CPU µs/delivery ${parts.map((p) => `${p} ${round(median(rs.map((r) => r.cpuPartsUsPerDelivery[p])), 2)}`).join(', ')}; load ${rs.map((r) => round(r.load, 1)).join(', ')}`,
    )
  }
} finally {
  await cleanup()
}
