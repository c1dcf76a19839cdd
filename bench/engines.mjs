/**
 * 4e. Several engines: one gateway configured with a second engine (`b`: another private dockerd,
 * reached over TLS, scripts/engine.sh with its own state dir), measuring what reaching more than
 * one engine costs, in one run:
 *
 * - **merged events**: one subscriber on `/v1/events` (the `default` engine's stream) and one on
 *   `/v1/events?engine=*` (both engines merged), open at once with the same filter, while
 *   containers are renamed on both engines in turn. Paired per `default` event: the merged
 *   stream's receipt minus the one-engine stream's. Target: ≤ 1 ms at the median.
 * - **prefixed routes**: the gateway's CPU per request of `GET /v1/engines/default/containers`
 *   beside `GET /v1/containers` (the same list of 20 from the read model), rep by rep in turn.
 *   Target: the same cost (a ratio ≤ 1.05).
 */
import { rawSubscriber } from './lib/raw-subscriber.mjs'
import { log, median, percentile, round, sleep } from './lib/util.mjs'
import { load } from './throughput.mjs'

/** A `default` event's timeNano in the data both streams send (its `engine` follows it). */
const DEFAULT_EVENT = /"timeNano":"(\d+)","engine":"default"/g

function subscribe({ port, path, token, onEvent }) {
  return rawSubscriber({
    connect: { host: '127.0.0.1', port },
    request: `GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${token}\r\nAccept: text/event-stream\r\n\r\n`,
    pattern: new RegExp(DEFAULT_EVENT),
    onEvent,
    carryBytes: 300,
  })
}

/**
 * `gateway`: the gateway with engine `b` configured; `token`: one whose policy allows `*`;
 * `renames`: per engine, two { rename(n) } containers; `listLabel`: the 20 listed containers.
 */
export async function runEngines(
  ctx,
  { gateway, token, renamesA, renamesB, listLabel, events, gapMs, durationS, reps, deadline },
) {
  const label = `dockgate-bench=${ctx.runId}`
  const filter = `type=container&label=${encodeURIComponent(label)}`
  const received = new Map() // timeNano → { one, merged }
  const record = (key) => (id, t) => {
    const entry = received.get(id) ?? {}
    entry[key] ??= t
    received.set(id, entry)
  }
  const sockets = []
  let merged
  try {
    sockets.push(
      await subscribe({
        port: gateway.port,
        path: `/v1/events?${filter}`,
        token,
        onEvent: record('one'),
      }),
      await subscribe({
        port: gateway.port,
        path: `/v1/events?engine=*&${filter}`,
        token,
        onEvent: record('merged'),
      }),
    )
    await sleep(300)
    received.clear()
    // Renames on `default` and on `b` in turn: the merged stream carries both engines' events.
    const pairs = Math.max(10, Math.floor(events / 2))
    // What the CPU comparison after this needs: its warm-up and its reps.
    const renamesUntil = deadline - (1_500 + reps * 2 * durationS * 1000)
    let made = 0
    for (let n = 0; n < pairs && (n < 5 || Date.now() < renamesUntil); n++) {
      await Promise.all([renamesA[n % 2].rename(n), renamesB[n % 2].rename(n)])
      made += 1
      await sleep(gapMs)
    }
    const settle = Date.now() + 1_500
    while (Date.now() < settle && [...received.values()].some((e) => !e.one || !e.merged)) {
      await sleep(20)
    }
    const added = [...received.values()]
      .filter((e) => e.one !== undefined && e.merged !== undefined)
      .map((e) => e.merged - e.one)
    merged = {
      renamesPerEngine: made,
      paired: added.length,
      addedP50Ms: median(added),
      addedP99Ms: percentile(added, 99),
    }
    log(
      `  merged events (2 engines) over one engine's stream: +${round(merged.addedP50Ms, 3)} ms median (p99 +${round(merged.addedP99Ms, 2)}), ${added.length} events paired`,
    )
  } finally {
    for (const s of sockets) s.destroy()
  }

  // Prefixed vs plain: the same list, from the same read model, in turn.
  const auth = { authorization: `Bearer ${token}` }
  const query = `?all=true&label=${encodeURIComponent(listLabel)}`
  const targets = {
    plain: { url: `${gateway.url}/v1/containers${query}`, headers: auth },
    prefixed: { url: `${gateway.url}/v1/engines/default/containers${query}`, headers: auth },
  }
  for (const t of Object.values(targets)) await load(t, { connections: 10, durationS: 0.5 })
  const runs = { plain: [], prefixed: [] }
  for (let rep = 0; rep < reps; rep++) {
    const left = deadline - Date.now()
    if (rep > 0 && left < 2_000) break
    const d = Math.max(0.4, Math.min(durationS, (left * 0.8) / ((reps - rep) * 2) / 1000))
    for (const key of rep % 2 === 0 ? ['plain', 'prefixed'] : ['prefixed', 'plain']) {
      const r = await load(targets[key], { connections: 10, durationS: d, cpuPid: gateway.pid })
      if (r.non2xx + r.errors > 0)
        throw new Error(`${key}: ${r.non2xx} non-2xx, ${r.errors} errors`)
      runs[key].push(r.cpuUsPerRequest)
    }
  }
  const plainUs = median(runs.plain)
  const prefixedUs = median(runs.prefixed)
  // The target's ratio is the median of each rep's pair (measured back to back, which goes first
  // alternating), as phase 3d's exec rate is: a rep that the machine slowed on one side only (a
  // 95 µs plain rep among 43–47 in the 20:16 run of 2026-12-04) moves one pair, not the
  // median of one side.
  const pairRatios = runs.plain.map((p, i) => runs.prefixed[i] / p).filter(Number.isFinite)
  const prefixed = {
    plainUs,
    prefixedUs,
    ratio: pairRatios.length ? median(pairRatios) : null,
    mediansRatio: plainUs ? prefixedUs / plainUs : null,
    reps: {
      plain: runs.plain.map((x) => round(x, 1)),
      prefixed: runs.prefixed.map((x) => round(x, 1)),
    },
  }
  log(
    `  list of 20: /v1/engines/default/containers ${round(prefixedUs, 1)} µs, /v1/containers ${round(plainUs, 1)} µs (${round(prefixed.ratio, 3)}×, median of rep pairs; medians ${round(prefixed.mediansRatio, 3)}×)`,
  )
  return { merged, prefixed }
}
