/**
 * 2. CPU per request, with its baselines measured in the same run: the serving process's user +
 * system time (/proc/<pid>/stat, every thread) over an autocannon run at 10 connections, divided
 * by its 2xx answers.
 *
 * Measured rep by rep in turn, so that machine noise falls on every side alike:
 * - each gateway variant: authenticated `GET /v1/system/version` (answered from its cache) and
 *   `GET /v1/containers` listing 20 containers (answered from the read model);
 * - the framework's floor: a bare Hono app on @hono/node-server with the same Node flags
 *   answering the same JSON body from a constant route (bench/lib/hono-baseline.mjs);
 * - the engine's own `/_ping` (dockerd's CPU);
 * - with `extras`: the gateway's `/healthz` (no auth) and the engine's `/version`.
 */

import { log, median, round } from './lib/util.mjs'
import { load } from './throughput.mjs'

export async function runCpu(ctx, { variants, hono, listLabel, durationS, reps, extras, budget }) {
  const auth = { authorization: `Bearer ${ctx.token}` }
  const targets = []
  for (const v of variants) {
    const g = v.gateway
    targets.push(
      {
        key: `${v.key}:version`,
        target: { url: `${g.url}/v1/system/version`, headers: auth },
        pid: g.pid,
      },
      {
        key: `${v.key}:list20`,
        target: {
          url: `${g.url}/v1/containers?all=true&label=${encodeURIComponent(listLabel)}`,
          headers: auth,
        },
        pid: g.pid,
      },
    )
    if (extras)
      targets.push({ key: `${v.key}:healthz`, target: { url: `${g.url}/healthz` }, pid: g.pid })
  }
  targets.push(
    { key: 'hono', target: { url: `${hono.url}/const` }, pid: hono.pid },
    { key: 'ping', target: { socketPath: ctx.socketPath, path: '/_ping' }, pid: ctx.enginePid },
  )
  if (extras) {
    targets.push({
      key: 'engineVersion',
      target: { socketPath: ctx.socketPath, path: '/version' },
      pid: ctx.enginePid,
    })
  }
  // Unmeasured: a fresh process's first requests pay for the JIT.
  for (const t of targets) {
    if (!t.target.socketPath) await load(t.target, { connections: 10, durationS: 0.5 })
  }
  const us = await cpuInTurn(targets, { reps, durationS, budget })
  const hono_ = us.hono.us
  const ping = us.ping.us
  const byVariant = {}
  for (const v of variants) {
    const version = us[`${v.key}:version`].us
    const list20 = us[`${v.key}:list20`].us
    byVariant[v.key] = {
      versionUs: version,
      list20Us: list20,
      healthzUs: us[`${v.key}:healthz`]?.us ?? null,
      versionToHono: hono_ ? version / hono_ : null,
      versionToPing: ping ? version / ping : null,
      list20ToHono: hono_ ? list20 / hono_ : null,
    }
    log(
      `  cpu ${v.key}: version ${round(version, 1)} µs (${round(byVariant[v.key].versionToHono, 2)}× Hono, ${round(byVariant[v.key].versionToPing, 2)}× /_ping), list of 20 ${round(list20, 1)} µs (${round(byVariant[v.key].list20ToHono, 2)}× Hono)`,
    )
  }
  log(
    `  cpu baselines: Hono constant route ${round(hono_, 1)} µs, engine /_ping ${round(ping, 1)} µs`,
  )
  return {
    connections: 10,
    honoConstUs: hono_,
    enginePingUs: ping,
    engineVersionUs: us.engineVersion?.us ?? null,
    variants: byVariant,
    runs: us,
  }
}

/**
 * CPU per 2xx answer of every target, measured in turn rep by rep (each run at 10 connections;
 * the runs share what is left of the phase's budget), keyed by target: the median in µs, every
 * rep's figure, the median req/s, and the non-2xx answers and errors of all reps.
 */
export async function cpuInTurn(targets, { reps, durationS, budget }) {
  const runs = Object.fromEntries(targets.map((t) => [t.key, []]))
  for (let rep = 0; rep < reps; rep++) {
    const runsLeft = (reps - rep) * targets.length
    const d = Math.max(0.5, Math.min(durationS, (budget.leftForPhase() * 0.8) / runsLeft / 1000))
    for (const t of targets) {
      const r = await load(t.target, { connections: 10, durationS: d, cpuPid: t.pid })
      runs[t.key].push({ us: r.cpuUsPerRequest, rps: r.rps, bad: r.non2xx + r.errors })
    }
  }
  return Object.fromEntries(
    Object.entries(runs).map(([key, r]) => [
      key,
      {
        us: median(r.map((x) => x.us)),
        reps: r.map((x) => round(x.us, 1)),
        rps: median(r.map((x) => x.rps)),
        bad: r.reduce((n, x) => n + x.bad, 0),
      },
    ]),
  )
}
