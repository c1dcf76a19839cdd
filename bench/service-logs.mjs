/**
 * 3d. A Swarm service's log end to end: a service whose tasks (one per node of the project's
 * two-node swarm, `scripts/engine.sh up --swarm`) have written N lines each; the gateway's SSE
 * stream of them (`/v1/services/{id}/logs/stream`) is read until every line is in, against the
 * raw read of `/services/{id}/logs` straight from the manager's socket with the same query the
 * gateway makes (follow, timestamps, details). A followed service log never ends by itself, so
 * both reads stop at the expected line count.
 */
import http from 'node:http'
import { frameCounter, perLine, sseLineCounter, withCpu } from './lib/counters.mjs'
import { log, median, nowMs, round, sleep } from './lib/util.mjs'

/** Each line is this many bytes with its newline. */
export const SERVICE_LINE_BYTES = 100

/** Whether the engine is a Swarm manager (else the phase is skipped, and says why). */
export async function isManager(engine) {
  const info = await engine.json('GET', '/info')
  return info?.Swarm?.ControlAvailable === true
}

/**
 * A service of `replicas` tasks that each write `lines` lines of SERVICE_LINE_BYTES and then
 * sleep; answers its id once every task's lines are in the service's log.
 */
export async function createLogService(engine, { image, runId, replicas, lines }) {
  const line = 'x'.repeat(SERVICE_LINE_BYTES - 1)
  // By id, as the gateway does: a task of an image named by reference first tries a pull
  const { Id: imageId } = await engine.json('GET', `/images/${encodeURIComponent(image)}/json`)
  const answer = await engine.request('POST', '/services/create', {
    Name: `dockgate-bench-svclog-${runId}`.replaceAll('.', '-'),
    Labels: { 'dockgate-bench': runId },
    TaskTemplate: {
      ContainerSpec: {
        Image: imageId,
        Args: ['sh', '-c', `yes ${line} | head -n ${lines}; exec sleep 3600`],
        Labels: { 'dockgate-bench': runId },
      },
      RestartPolicy: { Condition: 'none' },
    },
    Mode: { Replicated: { Replicas: replicas } },
  })
  if (answer.status !== 201) throw new Error(`service create: ${answer.status} ${answer.text}`)
  return JSON.parse(answer.text).ID
}

export async function removeService(engine, id) {
  await engine.request('DELETE', `/services/${id}`)
}

/** Reads until `expected` units (frames or SSE line events) are in, or `timeoutMs`. */
function readUntil(options, countIn, expected, timeoutMs) {
  return new Promise((resolve, reject) => {
    const t0 = nowMs()
    let bytes = 0
    let units = 0
    let status = 0
    let settled = false
    const done = (truncated) => {
      if (settled) return
      settled = true
      clearTimeout(timer)
      resolve({ status, bytes, units, seconds: (nowMs() - t0) / 1000, truncated })
      req.destroy()
    }
    const req = http.get({ ...options, agent: false }, (res) => {
      status = res.statusCode
      if (status !== 200) return done(true)
      const counter = countIn()
      res.on('data', (chunk) => {
        bytes += chunk.length
        units += counter(chunk)
        if (units >= expected) done(false)
      })
      res.on('end', () => done(true))
      res.on('error', () => done(true))
    })
    const timer = setTimeout(() => done(true), timeoutMs)
    req.on('error', (error) => (status ? done(true) : reject(error)))
  })
}

const rawRead = (ctx, id, expected, timeoutMs) =>
  readUntil(
    {
      socketPath: ctx.socketPath,
      path: `/services/${id}/logs?stdout=1&stderr=1&follow=1&timestamps=1&details=1`,
    },
    frameCounter,
    expected,
    timeoutMs,
  )

const sseRead = (ctx, gatewayUrl, id, expected, timeoutMs) => {
  const url = new URL(`${gatewayUrl}/v1/services/${id}/logs/stream`)
  return readUntil(
    {
      host: url.hostname,
      port: url.port,
      path: url.pathname,
      headers: { authorization: `Bearer ${ctx.token}`, accept: 'text/event-stream' },
    },
    sseLineCounter,
    expected,
    timeoutMs,
  )
}

/** Waits until the raw log holds every line (the tasks write them right after they start). */
async function waitWritten(ctx, id, expected, timeoutMs) {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const r = await rawRead(ctx, id, expected, 5_000)
    if (r.units >= expected) return
    if (Date.now() > deadline) throw new Error(`only ${r.units} of ${expected} service log lines`)
    await sleep(500)
  }
}

/**
 * Reads the service's log raw, then as SSE through each gateway variant, rep after rep; the
 * first variant's figures are `sse` and `ratio`.
 */
export async function runServiceLogs(ctx, { image, replicas, lines, reps, budget, gateways }) {
  const id = await createLogService(ctx.engine, { image, runId: ctx.runId, replicas, lines })
  try {
    const expected = replicas * lines
    await waitWritten(ctx, id, expected, Math.max(5_000, budget.leftForPhase() / 2))
    const raw = []
    const sseBy = Object.fromEntries(gateways.map((g) => [g.key, []]))
    for (let rep = 0; rep < reps; rep++) {
      const last = (runs) => runs.at(-1)?.seconds ?? 0
      if (rep > 0 && budget.leftForPhase() < (last(raw) + last(sseBy[gateways[0].key])) * 1500) {
        log(`  service logs: stopping after ${rep} reps (time budget)`)
        break
      }
      const timeoutMs = Math.max(2_000, budget.leftForPhase() / (1 + gateways.length))
      raw.push(await withCpu(ctx, null, () => rawRead(ctx, id, expected, timeoutMs)))
      const parts = []
      for (const g of gateways) {
        sseBy[g.key].push(
          await withCpu(ctx, g.pid, () => sseRead(ctx, g.url, id, expected, timeoutMs)),
        )
        const s = sseBy[g.key].at(-1)
        parts.push(
          `SSE ${g.key} ${round(s.units / s.seconds, 0)} lines/s (${s.units}/${expected}${s.truncated ? ', stopped early' : ''})`,
        )
      }
      const r = raw.at(-1)
      log(
        `  service logs rep ${rep + 1}: raw ${round(r.units / r.seconds, 0)} lines/s (${r.units}/${expected}) | ${parts.join(' | ')}`,
      )
    }
    const side = (runs) => ({
      linesPerS: median(runs.map((r) => r.units / r.seconds)),
      mbPerS: median(runs.map((r) => r.bytes / 1e6 / r.seconds)),
      seconds: median(runs.map((r) => r.seconds)),
      engineCpuUsPerLine: median(runs.map((r) => perLine(r.engineCpuMs, r.units))),
      gatewayCpuUsPerLine: median(runs.map((r) => perLine(r.gatewayCpuMs, r.units))),
      reps: runs.length,
    })
    const r = side(raw)
    const variants = Object.fromEntries(
      gateways.map((g) => {
        const v = side(sseBy[g.key])
        return [g.key, { sse: v, ratio: r.linesPerS ? v.linesPerS / r.linesPerS : null }]
      }),
    )
    const first = variants[gateways[0].key]
    return {
      replicas,
      linesPerTask: lines,
      lineBytes: SERVICE_LINE_BYTES,
      raw: r,
      sse: first.sse,
      ratio: first.ratio,
      variants,
      complete: [...raw, ...Object.values(sseBy).flat()].every((x) => !x.truncated),
    }
  } finally {
    await removeService(ctx.engine, id).catch(() => {})
  }
}
