/**
 * 4. Events fan-out: N subscribers hold `/v1/events` open (raw sockets, one client process);
 * a burst of container events (renames of bench containers) is made on the engine; each
 * subscriber's receive time minus the event's `timeNano` is its delivery latency.
 *
 * Direct baseline: N subscribers on the engine's own `/events` with the same filter, each an
 * engine connection of its own. The gateway serves every subscriber from one upstream
 * connection: checked with its `dockgate_engine_connections` gauge (engine requests in flight)
 * and the count of its connected Unix sockets. Floor: N subscribers on a bare node:http server
 * (bench/lib/sse-floor.mjs) that writes a burst to each in one write: what Node itself needs on
 * this machine to reach that many sockets, whatever the gateway does.
 *
 * Through the balancer ('cluster'): the same subscribers on HAProxy in front of three gateway
 * instances (scripts/cluster.sh), which spreads them round robin; each instance should still
 * hold one upstream connection (its own gauge, asked directly), CPU and RSS are the instances'
 * sum (HAProxy's own cost is in the latency, not in these).
 */
import http from 'node:http'
import net from 'node:net'
import {
  connectedUnixSockets,
  cpuMs,
  log,
  median,
  nowMs,
  percentile,
  round,
  rssBytes,
  Samples,
  sleep,
} from './lib/util.mjs'

const GATEWAY_ID = /(?:^|\n)id: (\d+)\r?\n/g
const ENGINE_ID = /"timeNano":(\d+)[,}]/g

/** Milliseconds since the epoch of a nanosecond timestamp string, with µs precision. */
const nanosToMs = (text) => Number(BigInt(text) / 1000n) / 1000

/**
 * Opens `count` subscribers. Resolves once each has its response headers (a subscription in
 * place), or when `deadline` passes: with as many as made it.
 */
async function openSubscribers({ count, connect, request, idPattern, deadline, inFlight = 200 }) {
  const subscribers = []
  const state = { latencies: null, failures: 0 }
  let opened = 0
  let pending = 0
  let wakeOpener
  const onSubscribed = () => {
    pending -= 1
    wakeOpener?.()
  }
  const open = () => {
    const sub = { socket: null, subscribed: false, count: 0, carry: '', failed: false }
    const socket = connect()
    sub.socket = socket
    socket.setNoDelay(true)
    socket.on('connect', () => socket.write(request))
    socket.on('data', (chunk) => {
      const t = nowMs()
      let text = sub.carry + chunk.toString('latin1')
      if (!sub.subscribed) {
        if (!text.startsWith('HTTP/1.1 200')) {
          if (text.length < 12) {
            sub.carry = text
            return
          }
          sub.failed = true
          state.failures += 1
          socket.destroy()
          onSubscribed()
          return
        }
        sub.subscribed = true
        onSubscribed()
      }
      idPattern.lastIndex = 0
      let lastEnd = 0
      for (let m = idPattern.exec(text); m; m = idPattern.exec(text)) {
        sub.count += 1
        state.latencies?.push(t - nanosToMs(m[1]))
        lastEnd = idPattern.lastIndex
      }
      // Keep what may be the start of an id split across reads (short: a line at most).
      const cut = Math.max(lastEnd, text.lastIndexOf('\n'))
      text = text.slice(cut)
      sub.carry = text.length > 200 ? text.slice(-200) : text
    })
    socket.on('error', () => {
      if (!sub.subscribed && !sub.failed) {
        sub.failed = true
        state.failures += 1
        onSubscribed()
      }
    })
    subscribers.push(sub)
  }
  while (opened < count && Date.now() < deadline) {
    while (pending < inFlight && opened < count) {
      pending += 1
      opened += 1
      open()
    }
    await new Promise((resolve) => {
      wakeOpener = resolve
      setTimeout(resolve, 50)
    })
  }
  while (pending > 0 && Date.now() < deadline) await sleep(20)
  const live = subscribers.filter((s) => s.subscribed && !s.failed)
  return { subscribers, live, state }
}

function closeAll(subscribers) {
  for (const s of subscribers) s.socket.destroy()
}

/** Makes `size` container events at once: renames. */
const renames = (engine, containers) => (size, n) =>
  Promise.all(
    containers
      .slice(0, size)
      .map((c) =>
        engine.json(
          'POST',
          `/containers/${c.id}/rename?name=${encodeURIComponent(`${c.name}-r${n}`)}`,
        ),
      ),
  )

/** Asks the floor server for a burst of `size` messages. */
const floorBurst = (port) => (size) =>
  new Promise((resolve, reject) => {
    const request = http.request(
      { host: '127.0.0.1', port, method: 'POST', path: `/burst?size=${size}`, agent: false },
      (response) => response.resume().on('end', resolve),
    )
    request.on('error', reject)
    request.end()
  })

/**
 * Makes a burst of `size` events (`trigger`) and waits until every live subscriber has received
 * them (or `waitMs` passes). Answers the latencies of this burst.
 */
async function burst({ trigger, live, state, size, round: n, waitMs, pids }) {
  for (const s of live) s.count = 0
  const latencies = new Samples()
  state.latencies = latencies
  const cpu0 = sumOf(pids, cpuMs)
  const t0 = nowMs()
  await trigger(size, n)
  const issueMs = nowMs() - t0
  const deadline = Date.now() + waitMs
  while (Date.now() < deadline && live.some((s) => s.count < size)) await sleep(10)
  state.latencies = null
  const cpu1 = sumOf(pids, cpuMs)
  const values = latencies.values()
  const complete = live.filter((s) => s.count >= size).length
  return {
    p50Ms: percentile(values, 50),
    p99Ms: percentile(values, 99),
    maxMs: percentile(values, 100),
    deliveries: values.length,
    expected: live.length * size,
    complete,
    issueMs,
    // The serving process's CPU for the whole burst (its re-inspections included), per delivery
    cpuUsPerDelivery:
      cpu0 === null || cpu1 === null || values.length === 0
        ? null
        : ((cpu1 - cpu0) * 1000) / values.length,
  }
}

/** The sum of `measure(pid)` over `pids`, or null when there is none or one is unknown. */
function sumOf(pids, measure) {
  if (pids.length === 0) return null
  let sum = 0
  for (const pid of pids) {
    const value = measure(pid)
    if (value === null) return null
    sum += value
  }
  return sum
}

/**
 * A gateway's engine connections: the lowest of its engine requests in flight over a few
 * samples (the long-lived ones, the events upstream, not an inspection the read model happens to
 * be making), with its other gauges and its connected Unix sockets.
 */
async function upstreamOf(ctx, gateway) {
  let gauges
  let lowest = Number.POSITIVE_INFINITY
  for (let i = 0; i < 5; i++) {
    gauges = await ctx.gauges(gateway)
    lowest = Math.min(lowest, gauges.dockgate_engine_connections ?? Number.POSITIVE_INFINITY)
    await sleep(50)
  }
  return {
    engineRequestsInFlight: Number.isFinite(lowest) ? lowest : null,
    upstreamConnected: gauges.dockgate_events_upstream_connected ?? null,
    openStreams: gauges.dockgate_open_streams ?? null,
    unixSockets: gateway.pid ? connectedUnixSockets(gateway.pid) : null,
  }
}

/**
 * One level: `count` subscribers on `target` ('gateway', 'direct', 'floor' or 'cluster'),
 * `bursts` bursts. For the gateway and the floor, `gateway` is a fresh process (its memory is
 * measured from a clean start); for the cluster it is `{ port, pids, instances: [{ url, pid }] }`
 * (the balancer's port, the instances).
 */
export async function runEventsLevel(
  ctx,
  { target, count, bursts, burstSize, containers, deadline, gateway },
) {
  const label = `dockgate-bench=${ctx.runId}`
  const connect =
    target === 'direct'
      ? () => net.connect({ path: ctx.socketPath })
      : () => net.connect({ host: '127.0.0.1', port: gateway.port })
  const gatewayRequest = `GET /v1/events?type=container&label=${encodeURIComponent(label)} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${ctx.token}\r\nAccept: text/event-stream\r\n\r\n`
  const request = {
    gateway: gatewayRequest,
    cluster: gatewayRequest,
    floor: 'GET /events HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n\r\n',
    direct: `GET /events?filters=${encodeURIComponent(JSON.stringify({ type: ['container'], label: [label] }))} HTTP/1.1\r\nHost: docker\r\n\r\n`,
  }[target]
  const trigger = target === 'floor' ? floorBurst(gateway.port) : renames(ctx.engine, containers)
  const pids = gateway?.pids ?? (gateway?.pid ? [gateway.pid] : [])
  const rssBefore = sumOf(pids, rssBytes)
  const t0 = nowMs()
  // Leave time for the bursts after connecting.
  const connectDeadline = t0 + Math.max(1_000, (deadline - Date.now()) * 0.6)
  const { subscribers, live, state } = await openSubscribers({
    count,
    connect,
    request,
    idPattern: target === 'direct' ? ENGINE_ID : GATEWAY_ID,
    deadline: connectDeadline,
  })
  const connectSeconds = (nowMs() - t0) / 1000
  try {
    await sleep(300)
    const rssAfter = sumOf(pids, rssBytes)
    let upstream = null
    if (target === 'gateway') upstream = await upstreamOf(ctx, gateway)
    if (target === 'cluster') {
      const instances = await Promise.all(gateway.instances.map((i) => upstreamOf(ctx, i)))
      const inFlight = instances.map((i) => i.engineRequestsInFlight)
      upstream = {
        // The most any instance holds: 1 when each has its one events upstream and no more.
        engineRequestsInFlight: inFlight.includes(null) ? null : Math.max(...inFlight),
        unixSockets: instances.reduce((n, i) => n + (i.unixSockets ?? 0), 0),
        instances,
      }
    }
    log(
      `  events ${target} ${live.length}/${count} subscribed in ${round(connectSeconds, 1)} s` +
        (upstream
          ? `; engine requests in flight ${upstream.engineRequestsInFlight}, unix sockets ${upstream.unixSockets}, RSS +${round((rssAfter - rssBefore) / 1e6, 1)} MB`
          : ''),
    )
    const results = []
    let lastMs = 0
    for (let n = 0; n < bursts && live.length > 0; n++) {
      const left = deadline - Date.now()
      if (n > 0 && left < lastMs * 1.5 + 300) break
      const started = Date.now()
      const r = await burst({
        trigger,
        live,
        state,
        size: burstSize,
        round: `${target[0]}${count}-${n}`,
        waitMs: Math.max(1_000, Math.min(10_000, left - 500)),
        pids: target === 'direct' ? [ctx.enginePid] : pids,
      })
      results.push(r)
      lastMs = Date.now() - started
      log(
        `    burst ${n + 1}: ${burstSize} events → p50 ${round(r.p50Ms, 1)} ms, p99 ${round(r.p99Ms, 1)} ms, max ${round(r.maxMs, 1)} ms; ${r.deliveries}/${r.expected} deliveries; ${round(r.cpuUsPerDelivery, 1)} µs CPU per delivery`,
      )
      await sleep(200)
    }
    return {
      target,
      requested: count,
      subscribed: live.length,
      failed: state.failures,
      connectSeconds,
      p50Ms: median(results.map((r) => r.p50Ms)),
      p99Ms: median(results.map((r) => r.p99Ms)),
      maxMs: median(results.map((r) => r.maxMs)),
      cpuUsPerDelivery: median(results.map((r) => r.cpuUsPerDelivery)),
      deliveries: results.reduce((n, r) => n + r.deliveries, 0),
      expectedDeliveries: results.reduce((n, r) => n + r.expected, 0),
      bursts: results.length,
      burstSize,
      rssBeforeBytes: rssBefore,
      rssAfterBytes: rssAfter,
      bytesPerSubscriber:
        rssBefore && rssAfter && live.length ? (rssAfter - rssBefore) / live.length : null,
      upstream,
    }
  } finally {
    closeAll(subscribers)
  }
}
