/**
 * 2. CPU per request, with its baselines measured in the same run: the serving process's user +
 * system time (/proc/<pid>/stat, every thread) over an autocannon run at 10 connections, divided
 * by its 2xx answers.
 *
 * Measured rep by rep in turn, so that machine noise falls on every side alike; a ratio is the
 * median of the reps' own ratios (each rep's figure over its baseline's in the same rep, measured
 * back to back), as phase 4e's is. The ratio of the two medians is kept beside it: it moves with
 * one rep (three reps whose pairs read 1.54, 1.35 and 1.36× gave a medians' ratio of 1.52×,
 * bench/README.md, Results). What is measured:
 * - each gateway variant: authenticated `GET /v1/system/version` (answered from its cache) and
 *   `GET /v1/containers` listing 20 containers (answered from the read model);
 * - the framework's floor: a bare Hono app on @hono/node-server with the same Node flags
 *   answering the same JSON body from a constant route (bench/lib/hono-baseline.mjs);
 * - the engine's own `/_ping` (dockerd's CPU);
 * - with `extras`: the gateway's `/healthz` (no auth) and the engine's `/version`.
 */

import { log, median, round } from './lib/util.mjs'
import { load } from './throughput.mjs'

export async function runCpu(
  ctx,
  { variants, hono, listLabel, durationS, reps, extras, warmupS, budget },
) {
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
  // Unmeasured load on each HTTP server first (`warmupS`): what a fresh process pays for the JIT,
  // and the young generation grown to what a server under load keeps. After 0.5 s a bare Hono
  // answered for 17.5–18 µs and after 3 s for 23.4 (the gateway 30.6–31.3 and 33.2): `--only=cpu`
  // then read 1.71–1.74× where full runs, whose phase 1 loads every server for a minute first, read
  // 1.36–1.55× (bench/README.md, "Per-request CPU, the request's headers on Node").
  for (const t of targets) {
    if (!t.target.socketPath) await load(t.target, { connections: 10, durationS: warmupS })
  }
  const us = await cpuInTurn(targets, { reps, durationS, budget })
  const hono_ = us.hono.us
  const ping = us.ping.us
  const byVariant = {}
  for (const v of variants) {
    const version = us[`${v.key}:version`]
    const list20 = us[`${v.key}:list20`]
    byVariant[v.key] = {
      versionUs: version.us,
      list20Us: list20.us,
      healthzUs: us[`${v.key}:healthz`]?.us ?? null,
      versionToHono: pairedRatio(version, us.hono),
      versionToPing: pairedRatio(version, us.ping),
      list20ToHono: pairedRatio(list20, us.hono),
      mediansVersionToHono: hono_ ? version.us / hono_ : null,
      mediansList20ToHono: hono_ ? list20.us / hono_ : null,
    }
    const b = byVariant[v.key]
    log(
      `  cpu ${v.key}: version ${round(b.versionUs, 1)} µs (${round(b.versionToHono, 2)}× Hono, medians ${round(b.mediansVersionToHono, 2)}×; ${round(b.versionToPing, 2)}× /_ping), list of 20 ${round(b.list20Us, 1)} µs (${round(b.list20ToHono, 2)}× Hono, medians ${round(b.mediansList20ToHono, 2)}×)`,
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

/** The median over reps of `a`'s figure over `b`'s in the same rep; null without a pair. */
function pairedRatio(a, b) {
  const ratios = a.all.flatMap((us, i) => (b.all[i] ? [us / b.all[i]] : []))
  return ratios.length > 0 ? median(ratios) : null
}

/**
 * CPU per 2xx answer of every target, measured in turn rep by rep (each run at 10 connections;
 * the runs share what is left of the phase's budget), keyed by target: the median in µs, every
 * rep's figure (rounded, and `all` as measured), the median req/s, and the non-2xx answers and
 * errors of all reps.
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
        all: r.map((x) => x.us),
        rps: median(r.map((x) => x.rps)),
        bad: r.reduce((n, x) => n + x.bad, 0),
      },
    ]),
  )
}
