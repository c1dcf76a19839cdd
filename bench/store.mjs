/**
 * 2b. What the shared state store costs a small request: the gateway's CPU per authenticated
 * `GET /v1/system/version` (answered from its cache; every request takes a rate-limit token
 * and a place in its engine budget, one Lua script in Redis, and gives the place back) with
 * `DOCKGATE_STORE` on the project's Redis (scripts/redis.sh), beside the same gateway with the
 * memory store, rep by rep in turn.
 */
import { execFileSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { ROOT, startNodeGateway, stopProcess } from './lib/processes.mjs'
import { log, median, round } from './lib/util.mjs'
import { load } from './throughput.mjs'

/** The project's Redis (started when it is not up), as `DOCKGATE_STORE` names it. */
export function benchRedisUrl() {
  const text = execFileSync('bash', ['scripts/redis.sh', 'up'], {
    cwd: ROOT,
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
  })
  const url = /DOCKGATE_TEST_STORE=(\S+)/.exec(text)?.[1]
  if (!url) throw new Error(`scripts/redis.sh up printed no DOCKGATE_TEST_STORE:\n${text}`)
  return url
}

export async function runStoreCpu(ctx, { memory, gatewayOptions, durationS, reps, budget }) {
  const url = benchRedisUrl()
  const redis = await startNodeGateway({
    ...gatewayOptions,
    env: { DOCKGATE_STORE: url, DOCKGATE_SECRET: randomBytes(24).toString('base64url') },
  })
  try {
    const auth = { authorization: `Bearer ${ctx.token}` }
    const targets = [
      {
        key: 'memory',
        target: { url: `${memory.url}/v1/system/version`, headers: auth },
        pid: memory.pid,
      },
      {
        key: 'redis',
        target: { url: `${redis.url}/v1/system/version`, headers: auth },
        pid: redis.pid,
      },
    ]
    // Unmeasured: the JIT, the version cache, the Redis connection and its scripts. The Redis
    // gateway is fresh (the memory one has served the phases before): it warms up longer.
    await load(targets[1].target, { connections: 10, durationS: 2 })
    for (const t of targets) await load(t.target, { connections: 10, durationS: 0.5 })
    const runs = { memory: [], redis: [] }
    for (let rep = 0; rep < reps; rep++) {
      const runsLeft = (reps - rep) * targets.length
      const d = Math.max(0.5, Math.min(durationS, (budget.leftForPhase() * 0.8) / runsLeft / 1000))
      for (const t of targets) {
        const r = await load(t.target, { connections: 10, durationS: d, cpuPid: t.pid })
        runs[t.key].push({ us: r.cpuUsPerRequest, rps: r.rps, bad: r.non2xx + r.errors })
      }
    }
    const summary = (r) => ({
      us: median(r.map((x) => x.us)),
      reps: r.map((x) => round(x.us, 1)),
      rps: median(r.map((x) => x.rps)),
      bad: r.reduce((n, x) => n + x.bad, 0),
    })
    const memoryRuns = summary(runs.memory)
    const redisRuns = summary(runs.redis)
    const redisToMemory = memoryRuns.us ? redisRuns.us / memoryRuns.us : null
    log(
      `  store cpu: memory ${round(memoryRuns.us, 1)} µs, redis ${round(redisRuns.us, 1)} µs per small request (${round(redisToMemory, 2)}×)`,
    )
    return { connections: 10, memory: memoryRuns, redis: redisRuns, redisToMemory }
  } finally {
    await stopProcess(redis.child)
  }
}
