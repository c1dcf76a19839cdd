/**
 * 1. Throughput and latency (autocannon as a library), and 2. CPU per request from the serving
 * process's own accounting (/proc/<pid>/stat) around the same runs.
 *
 * Every case runs the gateway and the direct socket alternately, rep after rep, so that noise
 * from the machine falls on both sides alike; figures are medians over the reps.
 */
import autocannon from 'autocannon'
import { cpuMs, log, median, nowMs, percentile, round, Samples } from './lib/util.mjs'

/**
 * One autocannon run. `target` is `{ url, headers }` (gateway, TCP) or `{ socketPath, path }`
 * (the engine's Unix socket). Latencies are taken per response with sub-millisecond precision
 * (autocannon's own histogram keeps whole milliseconds).
 */
export async function load(target, { connections, durationS, cpuPid }) {
  const latencies = new Samples()
  let ok = 0
  let other = 0
  const options = {
    connections,
    pipelining: 1,
    duration: durationS,
    timeout: 10,
    headers: target.headers ?? {},
    renderProgressBar: false,
    renderResultsTable: false,
    renderLatencyTable: false,
  }
  if (target.socketPath) {
    options.socketPath = target.socketPath
    options.url = `http://localhost${target.path}`
  } else {
    options.url = target.url
  }
  const cpuBefore = cpuPid ? cpuMs(cpuPid) : null
  const t0 = nowMs()
  const result = await new Promise((resolve, reject) => {
    const instance = autocannon(options, (error, res) => (error ? reject(error) : resolve(res)))
    instance.on('response', (_client, status, _bytes, responseTimeMs) => {
      if (status >= 200 && status < 300) {
        ok += 1
        latencies.push(responseTimeMs)
      } else {
        other += 1
      }
    })
  })
  const seconds = (nowMs() - t0) / 1000
  const cpuAfter = cpuPid ? cpuMs(cpuPid) : null
  const values = latencies.values()
  const cpu = cpuBefore === null || cpuAfter === null ? null : cpuAfter - cpuBefore
  return {
    rps: ok / seconds,
    p50Ms: percentile(values, 50),
    p99Ms: percentile(values, 99),
    ok,
    non2xx: other,
    errors: result.errors + result.timeouts,
    cpuUsPerRequest: cpu === null || ok === 0 ? null : (cpu * 1000) / ok,
  }
}

/**
 * The cases: each pairs a gateway request (the same path on every variant's gateway) with its
 * direct equivalent.
 * @param ctx { token, socketPath, runId, enginePid }
 */
export function throughputCases(ctx, { sizes }) {
  const auth = { authorization: `Bearer ${ctx.token}` }
  const cases = []
  for (const size of sizes) {
    const label = `dockgate-bench-list${size}=${ctx.runId}`
    const filters = encodeURIComponent(JSON.stringify({ label: [label] }))
    cases.push({
      name: `containers-${size}`,
      title: `GET /v1/containers (${size} containers) vs /containers/json`,
      gateway: (url) => ({
        url: `${url}/v1/containers?all=true&label=${encodeURIComponent(label)}`,
        headers: auth,
      }),
      direct: { socketPath: ctx.socketPath, path: `/containers/json?all=1&filters=${filters}` },
      expect: size,
    })
  }
  cases.push({
    name: 'version',
    title: 'GET /v1/system/version vs /version',
    gateway: (url) => ({ url: `${url}/v1/system/version`, headers: auth }),
    direct: { socketPath: ctx.socketPath, path: '/version' },
  })
  return cases
}

/** `gateways`: [{ key, url, pid }], the first the one measured; the others side by side. */
export async function runThroughput(
  ctx,
  { cases, gateways, connectionCounts, durationS, reps, budget },
) {
  const results = []
  // Warm-up: JIT, connection pools, the read model's first answers.
  for (const c of cases) {
    for (const g of gateways) await load(c.gateway(g.url), { connections: 10, durationS: 0.5 })
    await load(c.direct, { connections: 4, durationS: 0.3 })
  }
  const runsLeft = cases.length * connectionCounts.length * reps * (1 + gateways.length)
  let done = 0
  for (const c of cases) {
    for (const connections of connectionCounts) {
      const byGateway = Object.fromEntries(gateways.map((g) => [g.key, []]))
      const direct = []
      for (let rep = 0; rep < reps; rep++) {
        // Shrink the runs when the budget is short (never below 0.5 s).
        const remainingRuns = runsLeft - done
        const allowance = (budget.leftForPhase() / Math.max(1, remainingRuns)) * 0.8
        const d = Math.max(0.5, Math.min(durationS, allowance / 1000))
        for (const g of gateways) {
          byGateway[g.key].push(
            await load(c.gateway(g.url), { connections, durationS: d, cpuPid: g.pid }),
          )
        }
        direct.push(await load(c.direct, { connections, durationS: d, cpuPid: ctx.enginePid }))
        done += 1 + gateways.length
      }
      const summary = summarize(c, connections, byGateway[gateways[0].key], direct)
      summary.variants = Object.fromEntries(
        gateways.map((g) => {
          const v = summarize(c, connections, byGateway[g.key], direct)
          return [g.key, { gateway: v.gateway, ratio: v.ratio }]
        }),
      )
      results.push(summary)
      log(
        `  ${c.name} @${connections}: gateway ${round(summary.gateway.rps, 0)} req/s p99 ${round(summary.gateway.p99Ms, 2)} ms | direct ${round(summary.direct.rps, 0)} req/s p99 ${round(summary.direct.p99Ms, 2)} ms | ratio ${round(summary.ratio.rps, 2)}`,
      )
    }
  }
  return results
}

function summarize(c, connections, gateway, direct) {
  const side = (runs) => ({
    rps: median(runs.map((r) => r.rps)),
    p50Ms: median(runs.map((r) => r.p50Ms)),
    p99Ms: median(runs.map((r) => r.p99Ms)),
    cpuUsPerRequest: median(runs.map((r) => r.cpuUsPerRequest)),
    non2xx: runs.reduce((n, r) => n + r.non2xx, 0),
    errors: runs.reduce((n, r) => n + r.errors, 0),
    reps: runs.map((r) => round(r.rps, 0)),
  })
  const g = side(gateway)
  const d = side(direct)
  return {
    case: c.name,
    title: c.title,
    connections,
    gateway: g,
    direct: d,
    ratio: {
      // throughput: > 1 is better for the gateway; latency and CPU: < 1 is better
      rps: d.rps ? g.rps / d.rps : null,
      p50: d.p50Ms ? g.p50Ms / d.p50Ms : null,
      p99: d.p99Ms ? g.p99Ms / d.p99Ms : null,
      // ratios of medians of each side
      cpuPerRequest: d.cpuUsPerRequest ? g.cpuUsPerRequest / d.cpuUsPerRequest : null,
    },
  }
}
