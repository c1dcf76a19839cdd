/**
 * Added event latency with one subscriber: one subscriber each on the engine's `/events`
 * (direct), on a plain Hono + undici pass-through of it (bench/lib/hono-baseline.mjs) and on each
 * gateway variant's `/v1/events`, all open at once with the same filter. Container renames are
 * made one at a time, spaced out; each path's receipt time of each event is taken as its bytes
 * arrive. What a path adds is its receipt minus the direct subscriber's receipt of the same event
 * (paired per event); median and p99 over the events. Beside it, each server's CPU time (from
 * /proc) over the renames per event made: on two shared cores a server that works more per event
 * is woken later for the next one (bench/README.md, Findings 5), and load moves this figure less
 * than the latency.
 *
 * **Two mirrored arrangements.** The engine does not hand an event to all its `/events`
 * connections at once: when it reaches a connection depends on where that connection stands
 * among the engine's subscribers, by up to 0.3 ms here (bench/README.md, "One subscriber's
 * latency, ninth look"), as much as the figures judged. A gateway opens its upstream when it
 * starts, before any client, so it always stood first and the pass-through's last. The phase
 * therefore measures twice, with fresh gateways each time: the gateways' upstreams opened first,
 * then the direct subscriber, then the pass-through's; and the mirror, the pass-through's first,
 * the direct one, then the gateways' in reverse order. Each path holds each place once; the
 * figures pool the events of both.
 *
 * Also given, not a target: a gateway's receipt of each event minus the pass-through's, paired per
 * event. Each path either takes an event at once or a turn of the two cores later, and a median
 * that falls between those two modes swings between runs; the paired difference does not.
 */
import { rawSubscriber } from './lib/raw-subscriber.mjs'
import { cpuMs, log, median, percentile, round, sleep } from './lib/util.mjs'

const SSE_ID = /(?:^|\n)id: (\d+)\r?\n/g
const ENGINE_TIME = /"timeNano":(\d+)[,}]/g

/**
 * `startGateways()` starts one fresh gateway per variant and resolves to [{ key, pid, port,
 * stop() }], their upstreams open (the read model's); it is called once per arrangement.
 * `passThrough`: { port, pid }. `containers`: two { id, name }, renamed in turn `gapMs` apart:
 * `WARM_UP` times, not counted, then `events` times, in each arrangement.
 */
export async function runLatency(
  ctx,
  { startGateways, passThrough, containers, events, gapMs, deadline },
) {
  const label = `dockgate-bench=${ctx.runId}`
  const engineQuery = `filters=${encodeURIComponent(JSON.stringify({ type: ['container'], label: [label] }))}`
  const direct = {
    key: 'direct',
    connect: { path: ctx.socketPath },
    request: `GET /events?${engineQuery} HTTP/1.1\r\nHost: docker\r\n\r\n`,
    pattern: ENGINE_TIME,
  }
  const viaPassThrough = {
    key: 'passThrough',
    connect: { host: '127.0.0.1', port: passThrough.port },
    request: `GET /events?${engineQuery} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n`,
    pattern: ENGINE_TIME,
    pid: passThrough.pid,
  }
  const viaGateway = (g) => ({
    key: g.key,
    pid: g.pid,
    connect: { host: '127.0.0.1', port: g.port },
    request: `GET /v1/events?type=container&label=${encodeURIComponent(label)} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${ctx.token}\r\nAccept: text/event-stream\r\n\r\n`,
    pattern: SSE_ID,
  })
  const arrangements = [
    {
      name: 'gateways first',
      // A gateway's upstream opened when it started: it stands before the two opened here.
      open: async () => {
        const gateways = await startGateways()
        return { gateways, paths: [...gateways.map(viaGateway), direct, viaPassThrough] }
      },
    },
    {
      name: 'pass-through first',
      open: async (subscribeAll) => {
        const opened = await subscribeAll([viaPassThrough, direct])
        const gateways = (await startGateways()).reverse()
        return { gateways, paths: [viaPassThrough, direct, ...gateways.map(viaGateway)], opened }
      },
    },
  ]
  const perArrangement = []
  // Every rename gives a new name: the count so far, warm-ups included.
  let renamesSoFar = 0
  for (const [index, arrangement] of arrangements.entries()) {
    // The second arrangement's renames get what is left of the time, the first half of it.
    const share = index === 0 ? (deadline - Date.now()) / 2 : deadline - Date.now()
    const measured = await measureArrangement(ctx, {
      arrangement,
      containers,
      events,
      gapMs,
      deadline: Date.now() + share,
      firstRename: renamesSoFar,
    })
    renamesSoFar += measured.renamed
    perArrangement.push(measured)
  }
  const renamed = sum(perArrangement.map((a) => a.made))
  const keys = perArrangement[0].paths.map((p) => p.key)
  const stats = {}
  for (const key of keys) {
    const total = perArrangement.flatMap((a) => a.total[key])
    const added = perArrangement.flatMap((a) => a.added[key])
    const cpu = perArrangement.map((a) => a.cpuMs[key])
    stats[key] = {
      totalP50Ms: median(total),
      totalP99Ms: percentile(total, 99),
      addedP50Ms: key === 'direct' ? 0 : median(added),
      addedP99Ms: key === 'direct' ? 0 : percentile(added, 99),
      cpuPerEventMs: cpu.some((ms) => ms === null) || renamed === 0 ? null : sum(cpu) / renamed,
    }
    if (isGateway(key)) {
      stats[key].minusPassThroughP50Ms = median(
        perArrangement.flatMap((a) => minusPassThrough(a, key)),
      )
    }
  }
  const complete = sum(perArrangement.map((a) => a.complete))
  log(`  latency over ${complete}/${renamed} events, both arrangements: ${describe(keys, stats)}`)
  return {
    events: renamed,
    complete,
    gapMs,
    paths: stats,
    arrangements: perArrangement.map((a) => ({
      name: a.name,
      events: a.made,
      complete: a.complete,
      addedP50Ms: Object.fromEntries(
        keys.filter((k) => k !== 'direct').map((k) => [k, median(a.added[k])]),
      ),
      minusPassThroughP50Ms: Object.fromEntries(
        keys.filter(isGateway).map((k) => [k, median(minusPassThrough(a, k))]),
      ),
    })),
  }
}

/** One arrangement: its gateways started and every path opened in its order, then the renames. */
async function measureArrangement(
  ctx,
  { arrangement, containers, events, gapMs, deadline, firstRename },
) {
  const received = new Map() // timeNano → { path: ms }
  const record = (path) => (id, t) => {
    const entry = received.get(id) ?? {}
    entry[path] ??= t
    received.set(id, entry)
  }
  const sockets = []
  const subscribeAll = async (paths) => {
    for (const p of paths) {
      sockets.push(
        await rawSubscriber({ ...p, pattern: new RegExp(p.pattern), onEvent: record(p.key) }),
      )
    }
    return paths.map((p) => p.key)
  }
  let gateways = []
  try {
    const opened = await arrangement.open(subscribeAll)
    gateways = opened.gateways
    const paths = opened.paths
    await subscribeAll(paths.filter((p) => !(opened.opened ?? []).includes(p.key)))
    // Not counted: the fresh gateways' event path runs, and compiles, for the first time here.
    await renameInTurn(ctx, containers, firstRename, WARM_UP, gapMs, deadline)
    await sleep(300)
    received.clear()
    const cpuBefore = paths.map((p) => (p.pid ? cpuMs(p.pid) : null))
    const made = await renameInTurn(ctx, containers, firstRename + WARM_UP, events, gapMs, deadline)
    // The last event's arrivals.
    const settle = Date.now() + 2_000
    while (
      Date.now() < settle &&
      [...received.values()].some((e) => Object.keys(e).length < paths.length)
    ) {
      await sleep(20)
    }
    const cpuMsOf = {}
    for (const [i, p] of paths.entries()) {
      const after = p.pid ? cpuMs(p.pid) : null
      cpuMsOf[p.key] = after === null || cpuBefore[i] === null ? null : after - cpuBefore[i]
    }
    const complete = [...received.entries()].filter(
      ([, e]) => Object.keys(e).length === paths.length,
    )
    const total = {}
    const added = {}
    for (const p of paths) {
      // The engine's timeNano to receipt: what each path takes in all.
      total[p.key] = complete.map(([id, e]) => e[p.key] - Number(BigInt(id) / 1000n) / 1000)
      added[p.key] = complete.map(([, e]) => e[p.key] - e.direct)
    }
    const medians = Object.fromEntries(
      paths.map((p) => [
        p.key,
        { addedP50Ms: median(added[p.key]), addedP99Ms: percentile(added[p.key], 99) },
      ]),
    )
    log(
      `  ${arrangement.name} (${paths.map((p) => p.key).join(', ')}): ${complete.length}/${made} events: ${describe(
        paths.map((p) => p.key),
        medians,
      )}`,
    )
    return {
      name: arrangement.name,
      paths,
      made,
      renamed: WARM_UP + made,
      complete: complete.length,
      total,
      added,
      cpuMs: cpuMsOf,
    }
  } finally {
    for (const s of sockets) s.destroy()
    for (const g of gateways) await g.stop()
  }
}

/** Renames before each arrangement's measured ones (bench/README.md, phase 4a). */
const WARM_UP = 20

/**
 * `count` renames (or as many as `deadline` allows) one every `gapMs`, with at most two in
 * flight (two containers in turn, so that no two renames of one container overlap): on a quiet
 * engine they go one at a time; on a busy one (a rename then takes 100s of ms) the count still
 * fits the time. Resolves to how many were made, once all are answered.
 */
async function renameInTurn(ctx, containers, first, count, gapMs, deadline) {
  let made = 0
  const inFlight = new Set()
  for (let n = first; made < count && Date.now() < deadline; n++) {
    while (inFlight.size >= 2) await Promise.race(inFlight)
    const { id, name } = containers[n % 2]
    const rename = ctx.engine
      .json('POST', `/containers/${id}/rename?name=${encodeURIComponent(`${name}-l${n}`)}`)
      .finally(() => inFlight.delete(rename))
    inFlight.add(rename)
    made += 1
    await sleep(gapMs)
  }
  await Promise.all(inFlight)
  return made
}

const isGateway = (key) => key !== 'direct' && key !== 'passThrough'

/**
 * A gateway's receipt of each event minus the pass-through's receipt of the same event: the
 * direct reference drops out, and with it the noise both paths share (not a target; the report
 * prints it beside the verdict).
 */
const minusPassThrough = (arrangement, key) =>
  arrangement.added[key].map((ms, i) => ms - arrangement.added.passThrough[i])

const sum = (values) => values.reduce((a, b) => a + b, 0)

function describe(keys, stats) {
  return keys
    .filter((k) => k !== 'direct')
    .map((k) => {
      const s = stats[k]
      const cpu = s.cpuPerEventMs === undefined ? '' : `; CPU ${round(s.cpuPerEventMs, 2)} ms/event`
      return `${k} +${round(s.addedP50Ms, 2)} ms (p99 +${round(s.addedP99Ms, 2)}${cpu})`
    })
    .join(', ')
}
