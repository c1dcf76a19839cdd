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
 */
import net from 'node:net'
import { cpuMs, log, median, nowMs, percentile, round, sleep } from './lib/util.mjs'

const SSE_ID = /(?:^|\n)id: (\d+)\r?\n/g
const ENGINE_TIME = /"timeNano":(\d+)[,}]/g

/** One raw HTTP subscriber; calls `onEvent(timeNano, receivedAtMs)` for each event read. */
function subscribe({ connect, request, pattern, onEvent }) {
  return new Promise((resolve, reject) => {
    const socket = connect()
    socket.setNoDelay(true)
    let carry = ''
    let open = false
    socket.on('connect', () => socket.write(request))
    socket.on('data', (chunk) => {
      const t = nowMs()
      let text = carry + chunk.toString('latin1')
      if (!open) {
        if (text.length < 12) {
          carry = text
          return
        }
        if (!text.startsWith('HTTP/1.1 200')) {
          socket.destroy()
          reject(new Error(`subscribe: ${text.slice(0, 120)}`))
          return
        }
        open = true
        resolve(socket)
      }
      pattern.lastIndex = 0
      let lastEnd = 0
      for (let m = pattern.exec(text); m; m = pattern.exec(text)) {
        onEvent(m[1], t)
        lastEnd = pattern.lastIndex
      }
      text = text.slice(Math.max(lastEnd, text.lastIndexOf('\n')))
      carry = text.length > 200 ? text.slice(-200) : text
    })
    socket.on('error', (error) => (open ? undefined : reject(error)))
  })
}

/**
 * `paths`: [{ key, port }] for the gateways and the pass-through, beside the direct subscriber.
 * `containers`: two { id, name }, renamed in turn `events` times in all, `gapMs` apart.
 */
export async function runLatency(
  ctx,
  { gateways, passThrough, containers, events, gapMs, deadline },
) {
  const label = `dockgate-bench=${ctx.runId}`
  const engineQuery = `filters=${encodeURIComponent(JSON.stringify({ type: ['container'], label: [label] }))}`
  const received = new Map() // timeNano → { path: ms }
  const record = (path) => (id, t) => {
    const entry = received.get(id) ?? {}
    entry[path] ??= t
    received.set(id, entry)
  }
  const paths = [
    {
      key: 'direct',
      connect: () => net.connect({ path: ctx.socketPath }),
      request: `GET /events?${engineQuery} HTTP/1.1\r\nHost: docker\r\n\r\n`,
      pattern: ENGINE_TIME,
    },
    {
      key: 'passThrough',
      connect: () => net.connect({ host: '127.0.0.1', port: passThrough.port }),
      request: `GET /events?${engineQuery} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n`,
      pattern: ENGINE_TIME,
      pid: passThrough.pid,
    },
    ...gateways.map((g) => ({
      key: g.key,
      pid: g.pid,
      connect: () => net.connect({ host: '127.0.0.1', port: g.port }),
      request: `GET /v1/events?type=container&label=${encodeURIComponent(label)} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${ctx.token}\r\nAccept: text/event-stream\r\n\r\n`,
      pattern: SSE_ID,
    })),
  ]
  const sockets = []
  try {
    for (const p of paths) {
      sockets.push(
        await subscribe({ ...p, pattern: new RegExp(p.pattern), onEvent: record(p.key) }),
      )
    }
    await sleep(300)
    received.clear()
    // One rename every `gapMs`, with at most two in flight (two containers in turn, so that no two
    // renames of one container overlap): on a quiet engine they go one at a time; on a busy one
    // (a rename then takes 100s of ms) the count still fits the time.
    let made = 0
    const inFlight = new Set()
    const cpuBefore = paths.map((p) => (p.pid ? cpuMs(p.pid) : null))
    for (let n = 0; n < events && Date.now() < deadline; n++) {
      while (inFlight.size >= 2) await Promise.race(inFlight)
      const rename = ctx.engine
        .json(
          'POST',
          `/containers/${containers[n % 2].id}/rename?name=${encodeURIComponent(`${containers[n % 2].name}-l${n}`)}`,
        )
        .finally(() => inFlight.delete(rename))
      inFlight.add(rename)
      made += 1
      await sleep(gapMs)
    }
    await Promise.all(inFlight)
    // The last event's arrivals.
    const settle = Date.now() + 2_000
    while (
      Date.now() < settle &&
      [...received.values()].some((e) => Object.keys(e).length < paths.length)
    ) {
      await sleep(20)
    }
    const cpuPerEventMs = paths.map((p, i) => {
      const after = p.pid ? cpuMs(p.pid) : null
      return after === null || cpuBefore[i] === null || made === 0
        ? null
        : (after - cpuBefore[i]) / made
    })
    const complete = [...received.entries()].filter(
      ([, e]) => Object.keys(e).length === paths.length,
    )
    const stats = {}
    for (const [i, p] of paths.entries()) {
      // The engine's timeNano to receipt: what each path takes in all.
      const total = complete.map(([id, e]) => e[p.key] - Number(BigInt(id) / 1000n) / 1000)
      const added = complete.map(([, e]) => e[p.key] - e.direct)
      stats[p.key] = {
        totalP50Ms: median(total),
        totalP99Ms: percentile(total, 99),
        addedP50Ms: p.key === 'direct' ? 0 : median(added),
        addedP99Ms: p.key === 'direct' ? 0 : percentile(added, 99),
        cpuPerEventMs: cpuPerEventMs[i],
      }
    }
    log(
      `  latency over ${complete.length}/${made} events: ` +
        paths
          .filter((p) => p.key !== 'direct')
          .map(
            (p) =>
              `${p.key} +${round(stats[p.key].addedP50Ms, 2)} ms (p99 +${round(stats[p.key].addedP99Ms, 2)}; CPU ${round(stats[p.key].cpuPerEventMs, 2)} ms/event)`,
          )
          .join(', ') +
        `; direct ${round(stats.direct.totalP50Ms, 2)} ms after timeNano`,
    )
    return { events: made, complete: complete.length, gapMs, paths: stats }
  } finally {
    for (const s of sockets) s.destroy()
  }
}
