/**
 * Phase 3d: exec (issue 16's two targets), each gateway beside the engine's own calls in the
 * same run:
 *
 * - An exec of `true` answered as JSON (`POST /v1/containers/{id}/exec`), median latency, against
 *   a direct exec on the engine's socket: create + start (the hijacked output read to its end) +
 *   inspect. Target: ≤ 1.2×.
 * - An exec answered as SSE delivering `mb` MB of output, against the raw attach rate: the same
 *   command's hijacked start read straight from the socket. Target: ≥ 0.8× the raw rate. Beside
 *   it, not a target: the pass-through floor (bench/lib/exec-pass-through.mjs, one more process
 *   handing the raw output on, measured in the same pairs) and the SSE rate to the last output
 *   byte (without the exec's inspect, which the `end` event waits for and the raw window leaves out).
 *
 * Why the SSE ratio wobbled (0.77–1.17 between runs of the first, stand-alone version), and what
 * this measures instead (bench/README.md, "Exec"):
 * - The command made its output as it went (`head -c N /dev/zero | tr '\000' x`): busybox `tr`
 *   on the 2 shared cores ran at 20–70 MB/s from one rep to the next, so each rep measured the
 *   producer of that moment. Now the output is a file written once (`cat` of it in the page
 *   cache): a producer far faster than either reader, the same for both sides.
 * - A rate over the whole call counted the fixed calls (create, ownership, inspect: 60–90 ms on
 *   this loaded engine) inside a 0.3–0.6 s window. Now the rate is over the streaming window:
 *   from the first output byte to the last (SSE: from the first `stdout` event to `end`); the
 *   whole-call rate is reported beside it.
 * - One rep of each, gateway always first, medians of each side taken apart: a change of load
 *   between the two halves of a pair moved the ratio. Now one uncounted rep each way (warm-up: the
 *   gateway's first SSE exec compiles its path), then pairs in alternating order (ABBA), and the
 *   ratio is the median of the pairs' own ratios.
 */
import { Agent, fetch } from 'undici'
import { freePort, NODE_FLAGS, startServer } from './lib/processes.mjs'
import { cpuMs, log, median, nowMs, ratio, round } from './lib/util.mjs'

const encoder = new TextEncoder()

/** The exec token's config entry: may exec in this run's containers only (by their label). */
export async function execTokenEntry(token, runId) {
  const digest = await crypto.subtle.digest('SHA-256', encoder.encode(token))
  return {
    name: 'bench-exec',
    hash: `sha256:${Buffer.from(digest).toString('hex')}`,
    scopes: ['containers:read', 'exec'],
    policy: {
      images: [],
      visibleLabels: [`dockgate-bench=${runId}`],
      exec: { allowed: true, user: '65534:65534', maxTimeoutSeconds: 600 },
    },
  }
}

/**
 * Runs both measurements against each gateway (`gateways`: `{ key, url, pid }`), in a running
 * container of this run whose `/tmp/out` holds `mb` MB of `x`.
 */
export async function runExec(ctx, { image, gateways, execToken, execs, mb, reps, deadline }) {
  const agent = new Agent({ connect: { socketPath: ctx.socketPath } })
  const direct = (method, path, body) =>
    fetch(`http://docker/v1.41${path}`, {
      method,
      dispatcher: agent,
      headers: body ? { 'content-type': 'application/json' } : {},
      body: body && JSON.stringify(body),
    })
  const box = await ctx.engine.createContainer({
    name: `dockgate-bench-exec-${ctx.runId}`,
    image,
    cmd: ['sleep', '3600'],
    labels: { 'dockgate-bench': ctx.runId },
  })
  try {
    await ctx.engine.json('POST', `/containers/${box}/start`)
    const file = await directExec(direct, box, [
      'sh',
      '-c',
      // Lines of 100 bytes, as a command's output has them (each newline escaped in the JSON).
      `yes ${'x'.repeat(99)} | head -c ${mb * 1_000_000} > /tmp/out && chmod 644 /tmp/out`,
    ])
    if (file.exitCode !== 0) throw new Error(`writing /tmp/out: exit ${file.exitCode}`)
    const headers = { authorization: `Bearer ${execToken}`, 'content-type': 'application/json' }
    // 40 % of the phase for the JSON execs, the rest for the SSE pairs.
    const jsonUntil = Date.now() + (deadline - Date.now()) * 0.4
    const json = await measureJson({ direct, box, gateways, headers, execs, deadline: jsonUntil })
    const passThrough = await startPassThrough(ctx.socketPath)
    try {
      const sse = await measureSse({
        direct,
        box,
        gateways,
        headers,
        mb,
        reps,
        deadline,
        passThrough,
      })
      return { json, sse }
    } finally {
      await passThrough.stop()
    }
  } finally {
    await ctx.engine.request('DELETE', `/containers/${box}?force=1`).catch(() => {})
    await agent.close()
  }
}

/** create + start (read to the end) + inspect, straight on the socket. */
async function directExec(direct, id, cmd, onChunk) {
  const created = await (
    await direct('POST', `/containers/${id}/exec`, {
      Cmd: cmd,
      User: '65534:65534',
      AttachStdout: true,
      AttachStderr: true,
    })
  ).json()
  if (!created.Id) throw new Error(`exec create: ${JSON.stringify(created)}`)
  const started = await direct('POST', `/exec/${created.Id}/start`, { Detach: false, Tty: false })
  for await (const chunk of started.body) onChunk?.(chunk)
  const end = await (await direct('GET', `/exec/${created.Id}/json`)).json()
  return { exitCode: end.ExitCode }
}

async function gatewayJsonExec(gateway, box, headers) {
  const answer = await fetch(`${gateway.url}/v1/containers/${box}/exec`, {
    method: 'POST',
    headers,
    body: JSON.stringify({ cmd: ['true'] }),
  })
  const text = await answer.text()
  if (answer.status !== 200) throw new Error(`gateway exec: ${answer.status} ${text}`)
}

/** Latency of an exec of `true`: medians, gateway over direct, alternating who goes first. */
async function measureJson({ direct, box, gateways, headers, execs, deadline }) {
  const sides = ['direct', ...gateways]
  const runs = new Map(sides.map((side) => [side, []]))
  const once = async (side) => {
    const started = nowMs()
    if (side === 'direct') await directExec(direct, box, ['true'])
    else await gatewayJsonExec(side, box, headers)
    return nowMs() - started
  }
  // Uncounted: connections opened, routes compiled.
  for (let i = 0; i < 3; i++) for (const side of sides) await once(side)
  for (let i = 0; i < execs && (i < 5 || Date.now() < deadline); i++) {
    const order = i % 2 === 0 ? sides : [...sides].reverse()
    for (const side of order) runs.get(side).push(await once(side))
  }
  const directMs = median(runs.get('direct'))
  return {
    execs: runs.get('direct').length,
    directMs: round(directMs, 2),
    variants: Object.fromEntries(
      gateways.map((g) => {
        const ms = median(runs.get(g))
        return [g.key, { gatewayMs: round(ms, 2), ratio: round(ratio(ms, directMs), 3) }]
      }),
    ),
  }
}

/** The pass-through floor (bench/lib/exec-pass-through.mjs), with this run's Node flags. */
async function startPassThrough(socketPath) {
  const port = await freePort()
  return startServer({
    file: process.execPath,
    args: [...NODE_FLAGS, new URL('./lib/exec-pass-through.mjs', import.meta.url).pathname],
    env: { PATH: process.env.PATH ?? '', PORT: String(port), DOCKER_SOCKET: socketPath },
    port,
    timeoutMs: 10_000,
    quiet: true,
  })
}

/** The command's raw output through the pass-through floor: the window from first to last byte. */
async function passExec(passThrough, box) {
  const started = nowMs()
  const response = await fetch(`${passThrough.url}/exec/${box}`, {
    method: 'POST',
    body: JSON.stringify(['cat', '/tmp/out']),
  })
  if (response.status !== 200) throw new Error(`pass-through: ${response.status}`)
  let first
  let last
  let bytes = 0
  for await (const chunk of response.body) {
    first ??= nowMs()
    last = nowMs()
    bytes += chunk.length
  }
  return { windowMs: last - first, wholeMs: nowMs() - started, bytes }
}

/** The command's output through the gateway as SSE: the streaming window and the whole call. */
async function sseExec(gateway, box, headers) {
  const started = nowMs()
  const response = await fetch(`${gateway.url}/v1/containers/${box}/exec`, {
    method: 'POST',
    headers: { ...headers, accept: 'text/event-stream' },
    body: JSON.stringify({ cmd: ['cat', '/tmp/out'] }),
  })
  if (response.status !== 200) throw new Error(`gateway SSE exec: ${response.status}`)
  let first
  let bytes = 0
  let tail = ''
  let at
  let before
  const decoder = new TextDecoder()
  // Bytes counted only, as on the raw side; text looked at only until the first output event,
  // and the last chunk's end for `end`.
  for await (const chunk of response.body) {
    before = at
    at = nowMs()
    bytes += chunk.length
    if (first === undefined && decoder.decode(chunk).includes('event: stdout')) first = at
    tail = chunk
  }
  const ended = nowMs()
  const last = decoder.decode(tail.subarray(-200))
  if (!last.includes('event: end')) throw new Error(`no end event: ${last}`)
  // The last output byte: the chunk before the one that holds only the `end` event (which waits
  // for the exec's inspect), or that chunk when it holds output too.
  const outputEnd = decoder.decode(tail.subarray(0, 10)) === 'event: end' && before ? before : at
  return {
    windowMs: ended - (first ?? started),
    outputMs: outputEnd - (first ?? started),
    wholeMs: ended - started,
    bytes,
  }
}

/**
 * MB/s over the streaming window, each gateway against the raw attach rate, pair by pair in
 * alternating order after one uncounted rep each way; the gateway's CPU per MB beside it.
 */
async function measureSse({ direct, box, gateways, headers, mb, reps, deadline, passThrough }) {
  const raw = async () => {
    const started = nowMs()
    let first
    let last
    let bytes = 0
    await directExec(direct, box, ['cat', '/tmp/out'], (chunk) => {
      first ??= nowMs()
      last = nowMs()
      bytes += chunk.length
    })
    return { windowMs: last - first, wholeMs: nowMs() - started, bytes }
  }
  const rate = (ms) => mb / (ms / 1000)
  await raw()
  await passExec(passThrough, box)
  for (const g of gateways) await sseExec(g, box, headers)
  const rawRuns = []
  const passRuns = []
  const passPairs = []
  const through = Object.fromEntries(
    gateways.map((g) => [
      g.key,
      { runs: [], pairs: [], outputPairs: [], passPairs: [], cpu: 0, clientCpu: 0 },
    ]),
  )
  // The bench's own CPU per rep (it reads both sides): SSE costs the client more than raw bytes.
  const clientCpu = { raw: 0 }
  const cpuSince = (before) => {
    const used = process.cpuUsage(before)
    return (used.user + used.system) / 1000
  }
  // Two pairs at least, whatever the clock says: one pair's ratio says nothing of its spread.
  for (let i = 0; i < reps && (i < 2 || Date.now() < deadline); i++) {
    const results = new Map()
    const order = i % 2 === 0 ? ['raw', 'pass', ...gateways] : [...gateways, 'pass', 'raw']
    for (const side of order) {
      const clientBefore = process.cpuUsage()
      if (side === 'raw') {
        results.set('raw', await raw())
        clientCpu.raw += cpuSince(clientBefore)
      } else if (side === 'pass') {
        results.set('pass', await passExec(passThrough, box))
      } else {
        const cpuBefore = cpuMs(side.pid)
        results.set(side.key, await sseExec(side, box, headers))
        through[side.key].cpu += (cpuMs(side.pid) ?? 0) - (cpuBefore ?? 0)
        through[side.key].clientCpu += cpuSince(clientBefore)
      }
    }
    const r = results.get('raw')
    const p = results.get('pass')
    rawRuns.push(r)
    passRuns.push(p)
    passPairs.push(rate(p.windowMs) / rate(r.windowMs))
    for (const g of gateways) {
      const s = results.get(g.key)
      through[g.key].runs.push(s)
      through[g.key].pairs.push(rate(s.windowMs) / rate(r.windowMs))
      through[g.key].outputPairs.push(rate(s.outputMs) / rate(r.windowMs))
      through[g.key].passPairs.push(rate(s.windowMs) / rate(p.windowMs))
    }
    log(
      `  exec SSE rep ${i + 1}: raw ${round(rate(r.windowMs), 1)} MB/s, pass-through ${round(rate(p.windowMs), 1)} MB/s${gateways
        .map((g) => `, ${g.key} ${round(rate(results.get(g.key).windowMs), 1)} MB/s`)
        .join('')}`,
    )
  }
  const rawMBps = median(rawRuns.map((r) => rate(r.windowMs)))
  return {
    mb,
    reps: rawRuns.length,
    rawMBps: round(rawMBps, 1),
    rawWholeMBps: round(median(rawRuns.map((r) => rate(r.wholeMs))), 1),
    rawRunsMBps: rawRuns.map((r) => round(rate(r.windowMs), 1)),
    rawClientCpuMsPerMb: rawRuns.length ? round(clientCpu.raw / (rawRuns.length * mb), 2) : null,
    // Not a target: the floor of any process between the engine and the client (see its file)
    passThrough: {
      MBps: round(median(passRuns.map((p) => rate(p.windowMs))), 1),
      ratio: round(median(passPairs), 3),
      pairRatios: passPairs.map((p) => round(p, 3)),
    },
    variants: Object.fromEntries(
      Object.entries(through).map(([key, t]) => [
        key,
        {
          gatewayMBps: round(median(t.runs.map((s) => rate(s.windowMs))), 1),
          wholeMBps: round(median(t.runs.map((s) => rate(s.wholeMs))), 1),
          runsMBps: t.runs.map((s) => round(rate(s.windowMs), 1)),
          pairRatios: t.pairs.map((p) => round(p, 3)),
          ratio: round(median(t.pairs), 3),
          // To the last output byte, without the exec's inspect that the `end` event waits for
          outputRatio: round(median(t.outputPairs), 3),
          outputPairRatios: t.outputPairs.map((p) => round(p, 3)),
          // Against the pass-through floor, pair by pair
          toPassThrough: round(median(t.passPairs), 3),
          wholeRatio: round(
            ratio(
              median(t.runs.map((s) => rate(s.wholeMs))),
              median(rawRuns.map((r) => rate(r.wholeMs))),
            ),
            3,
          ),
          cpuMsPerMb: t.runs.length ? round(t.cpu / (t.runs.length * mb), 2) : null,
          clientCpuMsPerMb: t.runs.length ? round(t.clientCpu / (t.runs.length * mb), 2) : null,
          wireBytes: t.runs.at(-1)?.bytes,
        },
      ]),
    ),
  }
}
