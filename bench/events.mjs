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
import { readFileSync } from 'node:fs'
import http from 'node:http'
import net from 'node:net'
import { IdScanner } from './lib/id-scanner.mjs'
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
  wallClockMs,
} from './lib/util.mjs'

/** Where an event's id is: a gateway's `id:` line (its timeNano), the engine's `"timeNano":`. */
const GATEWAY_ID = { marker: 'id: ', lineStart: true }
const ENGINE_ID = { marker: '"timeNano":', lineStart: false }
const STATUS_OK = Buffer.from('HTTP/1.1 200', 'latin1')
/**
 * One buffer every subscriber socket reads into (`onread`): the client is one process reading
 * 10,000 sockets, and a fresh buffer per read was part of its cost (each read is scanned at once).
 */
const READ_BUFFER = Buffer.allocUnsafe(256 * 1024)

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
    const sub = { socket: null, subscribed: false, count: 0, head: null, failed: false }
    const scanner = new IdScanner(idPattern.marker, { lineStart: idPattern.lineStart })
    const found = (ms) => {
      sub.count += 1
      state.latencies?.push(receivedAt - ms)
    }
    let receivedAt = 0
    const onBytes = (length, buffer) => {
      receivedAt = wallClockMs()
      let bytes = buffer.subarray(0, length)
      if (!sub.subscribed) {
        if (sub.head) bytes = Buffer.concat([sub.head, bytes])
        if (bytes.length < STATUS_OK.length) {
          sub.head = Buffer.from(bytes)
          return true
        }
        sub.head = null
        if (!bytes.subarray(0, STATUS_OK.length).equals(STATUS_OK)) {
          sub.failed = true
          state.failures += 1
          socket.destroy()
          onSubscribed()
          return false
        }
        sub.subscribed = true
        onSubscribed()
      }
      scanner.scan(bytes, found)
      return true
    }
    const socket = connect({ buffer: READ_BUFFER, callback: onBytes })
    sub.socket = socket
    socket.setNoDelay(true)
    socket.on('connect', () => socket.write(request))
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
async function burst({ trigger, live, state, size, round: n, waitMs, pids, parts = {} }) {
  for (const s of live) s.count = 0
  const latencies = new Samples()
  state.latencies = latencies
  const cpu0 = sumOf(pids, cpuMs)
  const parts0 = partsCpu(parts)
  const io0 = partsIo(parts)
  const t0 = nowMs()
  await trigger(size, n)
  const issueMs = nowMs() - t0
  const deadline = Date.now() + waitMs
  while (Date.now() < deadline && live.some((s) => s.count < size)) await sleep(10)
  state.latencies = null
  const cpu1 = sumOf(pids, cpuMs)
  const parts1 = partsCpu(parts)
  const io1 = partsIo(parts)
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
    // Every part's read and write system calls per subscriber over the same time.
    ioPerSubscriber: Object.fromEntries(
      Object.keys(io1).map((name) => [
        name,
        io0[name] && io1[name]
          ? `${round((io1[name].reads - io0[name].reads) / live.length, 2)}r/${round((io1[name].writes - io0[name].writes) / live.length, 2)}w`
          : null,
      ]),
    ),
    // Every part's CPU (the client: this process) over the same time, per delivery.
    cpuPartsUsPerDelivery: Object.fromEntries(
      Object.keys(parts1).map((name) => [
        name,
        parts0[name] === null || parts1[name] === null || values.length === 0
          ? null
          : round(((parts1[name] - parts0[name]) * 1000) / values.length, 2),
      ]),
    ),
  }
}

/** CPU milliseconds of each named group of pids, and of this process (the subscribers' client). */
function partsCpu(parts) {
  const own = process.cpuUsage()
  const out = { client: (own.user + own.system) / 1000 }
  for (const [name, pids] of Object.entries(parts)) {
    out[name] = sumOf(pids, cpuMs)
    out[`${name} (sys)`] = sumOf(pids, systemCpuMs)
  }
  return out
}

/** The system (kernel) part of a process's CPU time in milliseconds. */
function systemCpuMs(pid) {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    return (Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[12]) * 1000) / 100
  } catch {
    return null
  }
}

/** Read and write system calls of each named group of pids and of this process (/proc/PID/io). */
function partsIo(parts) {
  const out = { client: ioCalls(process.pid) }
  for (const [name, pids] of Object.entries(parts)) {
    const each = pids.map(ioCalls)
    out[name] = each.includes(null)
      ? null
      : {
          reads: each.reduce((n, x) => n + x.reads, 0),
          writes: each.reduce((n, x) => n + x.writes, 0),
        }
  }
  return out
}

function ioCalls(pid) {
  try {
    const text = readFileSync(`/proc/${pid}/io`, 'utf8')
    return {
      reads: Number(/^syscr: (\d+)/m.exec(text)?.[1]),
      writes: Number(/^syscw: (\d+)/m.exec(text)?.[1]),
    }
  } catch {
    return null
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
  // `ports`: subscribers spread round robin over these instead (the instances, bypassing HAProxy).
  const ports = gateway?.ports ?? [gateway?.port]
  let nextPort = 0
  const connect =
    target === 'direct'
      ? (onread) => net.connect({ path: ctx.socketPath, onread })
      : (onread) =>
          net.connect({ host: '127.0.0.1', port: ports[nextPort++ % ports.length], onread })
  const gatewayRequest = `GET /v1/events?type=container&label=${encodeURIComponent(label)} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${ctx.token}\r\nAccept: text/event-stream\r\n\r\n`
  const request = {
    gateway: gatewayRequest,
    cluster: gatewayRequest,
    floor: 'GET /events HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n\r\n',
    direct: `GET /events?filters=${encodeURIComponent(JSON.stringify({ type: ['container'], label: [label] }))} HTTP/1.1\r\nHost: docker\r\n\r\n`,
  }[target]
  // The floor's bursts are asked of the floor itself, also when its subscribers go through HAProxy.
  const trigger =
    target === 'floor'
      ? floorBurst(gateway.burstPort ?? gateway.port)
      : renames(ctx.engine, containers)
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
        // The serving process's own share and its writes per subscriber, in the log line (a
        // gateway writes a subscriber again for the events of a burst that came after its first
        // write: bench/README.md, "10,000 subscribers in pairs").
        parts: gateway?.parts ?? (target === 'direct' ? undefined : { server: pids }),
      })
      results.push(r)
      lastMs = Date.now() - started
      log(
        `    burst ${n + 1}: ${burstSize} events → p50 ${round(r.p50Ms, 1)} ms, p99 ${round(r.p99Ms, 1)} ms, max ${round(r.maxMs, 1)} ms; ${r.deliveries}/${r.expected} deliveries; ${round(r.cpuUsPerDelivery, 1)} µs CPU per delivery` +
          ` (${Object.entries(r.cpuPartsUsPerDelivery)
            .map(([name, us]) => `${name} ${us}`)
            .join(', ')}; syscalls per subscriber ${Object.entries(r.ioPerSubscriber)
            .map(([name, io]) => `${name} ${io}`)
            .join(', ')})`,
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
      cpuPartsUsPerDelivery: Object.fromEntries(
        Object.keys(results[0]?.cpuPartsUsPerDelivery ?? {}).map((name) => [
          name,
          median(results.map((r) => r.cpuPartsUsPerDelivery[name])),
        ]),
      ),
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
