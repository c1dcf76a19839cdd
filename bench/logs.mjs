/**
 * 3a. Logs end to end: one container has written N MB of lines; the gateway's SSE stream of
 * them is read to its end, against the raw multiplexed log read straight from the socket with
 * the same query the gateway makes (follow, timestamps).
 */
import http from 'node:http'
import { frameCounter, perLine, sseLineCounter, withCpu } from './lib/counters.mjs'
import { log, median, nowMs, round } from './lib/util.mjs'

/** The line of the first log container, 1,000 bytes with its newline; the second's is ~100. */
export const LOG_LINE_BYTES = 1000
export const SHORT_LINE_BYTES = 100

/** A container that writes `mb` MB of `lineBytes`-byte lines to stdout and exits. */
export async function createLogContainer(engine, { image, runId, mb, lineBytes = LOG_LINE_BYTES }) {
  const line = 'x'.repeat(lineBytes - 1)
  const bytes = mb * 1_000_000
  const id = await engine.createContainer({
    name: `dockgate-bench-log${lineBytes}-${runId}`,
    image,
    cmd: ['sh', '-c', `yes ${line} | head -c ${bytes}`],
    labels: { 'dockgate-bench': runId },
  })
  await engine.json('POST', `/containers/${id}/start`)
  return id
}

export async function waitExited(engine, id, timeoutMs) {
  const answer = await engine.json('POST', `/containers/${id}/wait`, undefined, timeoutMs)
  return answer?.StatusCode
}

/**
 * Reads a whole HTTP response body and counts its bytes and what `countIn` says about each
 * chunk. Resolves with { status, bytes, units, seconds, truncated }: after `timeoutMs` the read
 * stops and what was read so far counts (a rate is still a rate), marked `truncated`.
 */
function readAll(options, countIn, timeoutMs) {
  return new Promise((resolve, reject) => {
    const t0 = nowMs()
    let bytes = 0
    let units = 0
    let status = 0
    const done = (truncated) => {
      clearTimeout(timer)
      resolve({ status, bytes, units, seconds: (nowMs() - t0) / 1000, truncated })
    }
    const req = http.get({ ...options, agent: false }, (res) => {
      status = res.statusCode
      const counter = countIn()
      res.on('data', (chunk) => {
        bytes += chunk.length
        units += counter(chunk)
      })
      res.on('end', () => done(false))
      res.on('error', (error) => (status ? done(true) : reject(error)))
    })
    const timer = setTimeout(() => {
      done(true)
      req.destroy()
    }, timeoutMs)
    req.on('error', (error) => {
      if (status) return done(true)
      clearTimeout(timer)
      reject(error)
    })
  })
}

export async function readRawLog({ socketPath, id, timeoutMs }) {
  const r = await readAll(
    {
      socketPath,
      path: `/containers/${id}/logs?stdout=1&stderr=1&follow=1&timestamps=1`,
    },
    frameCounter,
    timeoutMs,
  )
  if (r.status !== 200) throw new Error(`raw log read: ${r.status}`)
  return r
}

export async function readSseLog({ gatewayUrl, token, id, timeoutMs }) {
  const url = new URL(`${gatewayUrl}/v1/containers/${id}/logs/stream`)
  const r = await readAll(
    {
      host: url.hostname,
      port: url.port,
      path: url.pathname,
      headers: { authorization: `Bearer ${token}`, accept: 'text/event-stream' },
    },
    sseLineCounter,
    timeoutMs,
  )
  if (r.status !== 200) throw new Error(`SSE log read: ${r.status}`)
  return r
}

/**
 * Reads the log raw, then as SSE through each gateway variant (`gateways`: [{ key, url, pid }]),
 * rep after rep. The first variant's figures are `sse` and `ratio`; every variant's are in
 * `variants`.
 */
export async function runLogs(ctx, { id, lineBytes, expectedLines, reps, budget, gateways }) {
  const raw = []
  const sseBy = Object.fromEntries(gateways.map((g) => [g.key, []]))
  const readsPerRep = 1 + gateways.length
  for (let rep = 0; rep < reps; rep++) {
    if (
      rep > 0 &&
      budget.leftForPhase() < estimate(raw, sseBy[gateways[0].key]) * 1.2 * (readsPerRep / 2)
    ) {
      log(`  logs ${lineBytes}: stopping after ${rep} reps (time budget)`)
      break
    }
    // Each read gets at most its share of what is left: a machine too busy to finish reads in
    // time still gets a rate from what was read (marked truncated).
    const timeoutMs = Math.max(2_000, budget.leftForPhase() / readsPerRep)
    raw.push(
      await withCpu(ctx, null, () => readRawLog({ socketPath: ctx.socketPath, id, timeoutMs })),
    )
    const r = raw.at(-1)
    const parts = []
    for (const g of gateways) {
      sseBy[g.key].push(
        await withCpu(ctx, g.pid, () =>
          readSseLog({ gatewayUrl: g.url, token: ctx.token, id, timeoutMs }),
        ),
      )
      const s = sseBy[g.key].at(-1)
      parts.push(
        `SSE ${g.key} ${round(s.bytes / 1e6 / s.seconds, 1)} MB/s ${round(s.units / s.seconds, 0)} lines/s (${s.units}/${r.units} lines${s.truncated ? ', stopped early' : ''})`,
      )
    }
    log(
      `  logs ${lineBytes} rep ${rep + 1}: raw ${round(r.bytes / 1e6 / r.seconds, 1)} MB/s ${round(r.units / r.seconds, 0)} lines/s${r.truncated ? ' (stopped early)' : ''} | ${parts.join(' | ')}`,
    )
  }
  const sse = sseBy[gateways[0].key]
  const side = (runs) => ({
    mbPerS: median(runs.map((r) => r.bytes / 1e6 / r.seconds)),
    linesPerS: median(runs.map((r) => r.units / r.seconds)),
    seconds: median(runs.map((r) => r.seconds)),
    // CPU time per line and share of one core, of dockerd and of the gateway, during the read
    engineCpuUsPerLine: median(runs.map((r) => perLine(r.engineCpuMs, r.units))),
    gatewayCpuUsPerLine: median(runs.map((r) => perLine(r.gatewayCpuMs, r.units))),
    engineCpuShare: median(runs.map((r) => share(r.engineCpuMs, r.seconds))),
    gatewayCpuShare: median(runs.map((r) => share(r.gatewayCpuMs, r.seconds))),
    bytes: runs[0]?.bytes ?? 0,
    lines: runs[0]?.units ?? 0,
    reps: runs.length,
  })
  const r = side(raw)
  const s = side(sse)
  const variants = Object.fromEntries(
    gateways.map((g) => {
      const v = side(sseBy[g.key])
      return [g.key, { sse: v, ratio: r.linesPerS ? v.linesPerS / r.linesPerS : null }]
    }),
  )
  return {
    lineBytes,
    variants,
    expectedLines,
    raw: r,
    sse: s,
    complete: [...raw, ...Object.values(sseBy).flat()].every(
      (x) => !x.truncated && x.units === raw[0]?.units,
    ),
    truncatedReads: [...raw, ...Object.values(sseBy).flat()].filter((x) => x.truncated).length,
    ratio: {
      linesPerS: r.linesPerS ? s.linesPerS / r.linesPerS : null,
      bytesPerS: r.mbPerS ? s.mbPerS / r.mbPerS : null,
    },
  }
}

const share = (ms, seconds) => (ms === null || !seconds ? null : ms / 1000 / seconds)

function estimate(raw, sse) {
  const last = (runs) => runs.at(-1)?.seconds ?? 0
  return (last(raw) + last(sse)) * 1000
}
