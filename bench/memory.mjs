/**
 * Memory: the RSS of an idle gateway (fresh, read model loaded, nothing open), then the RSS each
 * open stream adds: N event streams (`/v1/events`, one filter), closed, then N followed log streams
 * of one running, quiet container (`/v1/containers/{id}/logs/stream`, each an engine connection of
 * its own). VmRSS from /proc/<pid>/status, the median of three samples, 500 ms after the last
 * stream opened; per stream = (open − before) ÷ streams open.
 */
import net from 'node:net'
import { log, median, round, rssBytes, sleep } from './lib/util.mjs'

async function sampleRss(pid) {
  const samples = []
  for (let i = 0; i < 3; i++) {
    samples.push(rssBytes(pid))
    await sleep(100)
  }
  return median(samples)
}

/** Opens `count` raw HTTP streams (at most `inFlight` waiting for their head); resolves with the sockets that got a 200. */
async function openStreams({ port, request, count, deadline, inFlight = 50 }) {
  const open = []
  let started = 0
  let pending = 0
  let failed = 0
  await new Promise((resolve) => {
    const next = () => {
      while (pending < inFlight && started < count && Date.now() < deadline) {
        started += 1
        pending += 1
        const socket = net.connect({ host: '127.0.0.1', port })
        let head = ''
        let settled = false
        const settle = (ok) => {
          if (settled) return
          settled = true
          pending -= 1
          if (ok) open.push(socket)
          else {
            failed += 1
            socket.destroy()
          }
          if (pending === 0 && (started >= count || Date.now() >= deadline)) resolve()
          else next()
        }
        socket.on('connect', () => socket.write(request))
        socket.on('data', (chunk) => {
          if (settled) return
          head += chunk.toString('latin1')
          if (head.length >= 12) settle(head.startsWith('HTTP/1.1 200'))
        })
        socket.on('error', () => settle(false))
        socket.on('close', () => settle(false))
      }
      if (pending === 0) resolve()
    }
    next()
  })
  return { open, failed }
}

async function streamsRss({ gateway, request, count, deadline }) {
  const before = await sampleRss(gateway.pid)
  const { open, failed } = await openStreams({ port: gateway.port, request, count, deadline })
  await sleep(500)
  const after = await sampleRss(gateway.pid)
  for (const s of open) s.destroy()
  return {
    requested: count,
    open: open.length,
    failed,
    rssBeforeBytes: before,
    rssOpenBytes: after,
    bytesPerStream: open.length ? (after - before) / open.length : null,
  }
}

/** `start()` gives a fresh gateway of the variant; `logContainerId` a running, quiet container. */
export async function runMemory(ctx, { start, count, logContainerId, deadline }) {
  const gateway = await start()
  try {
    await sleep(1_000)
    const idleRssBytes = await sampleRss(gateway.pid)
    // Half of what is left for each kind of stream.
    const half = () => Date.now() + Math.max(1_500, (deadline - Date.now()) / 2)
    const auth = `Authorization: Bearer ${ctx.token}\r\nAccept: text/event-stream\r\n`
    const label = encodeURIComponent(`dockgate-bench=${ctx.runId}`)
    const events = await streamsRss({
      gateway,
      count,
      deadline: half(),
      request: `GET /v1/events?type=container&label=${label} HTTP/1.1\r\nHost: 127.0.0.1\r\n${auth}\r\n`,
    })
    await sleep(1_000)
    const logs = await streamsRss({
      gateway,
      count,
      deadline: Math.max(deadline, Date.now() + 1_500),
      request: `GET /v1/containers/${logContainerId}/logs/stream HTTP/1.1\r\nHost: 127.0.0.1\r\n${auth}\r\n`,
    })
    log(
      `  memory: idle RSS ${round(idleRssBytes / 2 ** 20, 1)} MiB; ${events.open} event streams ${round(events.bytesPerStream / 1024, 1)} KiB each; ${logs.open} log streams ${round(logs.bytesPerStream / 1024, 1)} KiB each`,
    )
    return { idleRssBytes, events, logs }
  } finally {
    await gateway.stop()
  }
}
