/**
 * 2b. What the shared state store costs a small request: the gateway's CPU per authenticated
 * `GET /v1/system/version` (answered from its cache; every request takes a rate-limit token
 * and a place in its engine budget, one Lua script in Redis, and gives the place back) with
 * `DOCKGATE_STORE` on the project's Redis (scripts/redis.sh), beside the same gateway with the
 * memory store, rep by rep in turn; the ratio is the median of the reps' own ratios, as phase 2's
 * (the ratio of the two medians beside it). Then a stream ticket across instances: a second Redis
 * gateway beside the first, each ticket issued on the first and its stream opened on the first
 * or the second in turn; the time from the request to the stream's headers, medians.
 * A Redis this phase started (none was up) is stopped at its end.
 */
import { randomBytes } from 'node:crypto'
import http from 'node:http'
import { cpuInTurn } from './cpu.mjs'
import { projectRedis } from './lib/parts.mjs'
import { startNodeGateway, stopProcess } from './lib/processes.mjs'
import { log, median, nowMs, round } from './lib/util.mjs'
import { load } from './throughput.mjs'

export async function runStoreCpu(
  ctx,
  { memory, gatewayOptions, durationS, reps, budget, tickets = 40 },
) {
  const store = projectRedis()
  const env = { DOCKGATE_STORE: store.url, DOCKGATE_SECRET: randomBytes(24).toString('base64url') }
  const redis = await startNodeGateway({ ...gatewayOptions, env })
  let other
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
    const { memory: memoryRuns, redis: redisRuns } = await cpuInTurn(targets, {
      reps,
      durationS,
      budget,
    })
    // Each rep's two figures were measured back to back: their ratio is freer of the load's
    // drift between reps than the medians' (one run's pairs read 1.77, 1.26 and 1.55×).
    const pairRatios = redisRuns.all.map((us, i) => us / memoryRuns.all[i]).filter(Number.isFinite)
    const redisToMemory = pairRatios.length ? median(pairRatios) : null
    const mediansRedisToMemory = memoryRuns.us ? redisRuns.us / memoryRuns.us : null
    log(
      `  store cpu: memory ${round(memoryRuns.us, 1)} µs, redis ${round(redisRuns.us, 1)} µs per small request (${round(redisToMemory, 2)}×, median of rep pairs ${pairRatios.map((r) => round(r, 2)).join(', ')}; medians ${round(mediansRedisToMemory, 2)}×)`,
    )
    other = await startNodeGateway({ ...gatewayOptions, env })
    // Unmeasured: the second gateway is fresh, the first has served the runs above.
    await load(
      { url: `${other.url}/v1/system/version`, headers: auth },
      { connections: 10, durationS: 1 },
    )
    const ticketsAcross = await ticketLatency(ctx.token, redis.url, other.url, tickets)
    return {
      connections: 10,
      memory: memoryRuns,
      redis: redisRuns,
      redisToMemory,
      mediansRedisToMemory,
      pairRatios: pairRatios.map((r) => round(r, 3)),
      ticketsAcross,
    }
  } finally {
    await stopProcess(redis.child)
    if (other) await stopProcess(other.child)
    store.stop()
  }
}

/** Tickets issued and opened first, unmeasured: both paths' code gets compiled. */
const WARM_TICKETS = 20

/**
 * Tickets issued on `issuer`, their stream (`/v1/events`) opened on `issuer` and on `other` in
 * turn: the time from the request to the stream's response headers, in ms.
 */
async function ticketLatency(token, issuer, other, count) {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 })
  const same = []
  const across = []
  try {
    for (let i = 0; i < count + WARM_TICKETS; i++) {
      const target = i % 2 === 0 ? issuer : other
      const t0 = nowMs()
      const issued = await send(`${issuer}/v1/stream-tickets`, {
        method: 'POST',
        agent,
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
        body: JSON.stringify({ stream: '/v1/events' }),
      })
      if (issued.status !== 201) throw new Error(`ticket: ${issued.status} ${issued.text}`)
      const { ticket } = JSON.parse(issued.text)
      const opened = await openStream(`${target}/v1/events?ticket=${encodeURIComponent(ticket)}`)
      if (opened !== 200) throw new Error(`stream with a ticket: ${opened}`)
      if (i >= WARM_TICKETS) (target === issuer ? same : across).push(nowMs() - t0)
    }
  } finally {
    agent.destroy()
  }
  const sameMs = median(same)
  const acrossMs = median(across)
  log(
    `  tickets: issued and opened on one instance ${round(sameMs, 2)} ms, opened on another ${round(acrossMs, 2)} ms (median; +${round(acrossMs - sameMs, 2)} ms)`,
  )
  return { count, sameMs, acrossMs, addedMs: acrossMs - sameMs }
}

function send(url, { method, agent, headers, body }) {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method, agent, headers }, (res) => {
      let text = ''
      res.setEncoding('utf8')
      res.on('data', (chunk) => {
        text += chunk
      })
      res.on('end', () => resolve({ status: res.statusCode, text }))
      res.on('error', reject)
    })
    req.on('error', reject)
    req.end(body)
  })
}

/** Opens an event stream, answers its status once the headers arrive, and closes it. */
function openStream(url) {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { agent: false }, (res) => {
      resolve(res.statusCode)
      req.destroy()
    })
    req.on('error', (error) => (error.code === 'ECONNRESET' ? undefined : reject(error)))
  })
}
