/**
 * Exec, beside the engine's own calls in the same run (issue 16's targets), on its own:
 *
 *   npm run build:node && node bench/exec.mjs [--execs=40] [--mb=20] [--reps=3]
 *
 * - An exec answered as JSON (`POST /v1/containers/{id}/exec`, `true`), median latency, against a
 *   direct exec on the engine's socket: create + start (the hijacked output read to its end) +
 *   inspect. Target: ≤ 1.2×.
 * - An exec answered as SSE delivering `--mb` MB of output, against the raw attach rate: the same
 *   command's hijacked start read straight from the socket. Target: ≥ 0.8× the raw rate.
 *
 * Interleaved, gateway then engine, so both see the same machine. Not yet a phase of
 * `npm run bench` (bench/run.mjs): printed, not asserted.
 */
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Agent, fetch } from 'undici'
import { Engine } from './lib/engine.mjs'
import { startNodeGateway, stopAll } from './lib/processes.mjs'
import { log, median, nowMs, round } from './lib/util.mjs'

const args = new Map(
  process.argv.slice(2).map((a) => {
    const [k, v] = a.replace(/^--/, '').split('=')
    return [k, v]
  }),
)
const EXECS = Number(args.get('execs') ?? 40)
const MB = Number(args.get('mb') ?? 20)
const REPS = Number(args.get('reps') ?? 3)

const dockerHost = process.env.DOCKER_HOST
if (!dockerHost?.startsWith('unix://'))
  throw new Error('bench/exec.mjs: DOCKER_HOST=unix://… (scripts/engine.sh env)')
const socketPath = dockerHost.slice('unix://'.length)
const image = process.env.DOCKGATE_FIXTURE_IMAGE ?? 'dockgate-fixture:busybox'
const runId = `exec-${Date.now().toString(36)}`

const TOKEN = `dgt_bench-exec-${runId}`
async function sha256(text) {
  const digest = await crypto.subtle.digest('SHA-256', new TextEncoder().encode(text))
  return `sha256:${Buffer.from(digest).toString('hex')}`
}

const dir = mkdtempSync(join(tmpdir(), 'dockgate-bench-exec-'))
const configPath = join(dir, 'config.json')
writeFileSync(
  configPath,
  JSON.stringify({
    tokens: [
      {
        name: 'bench-exec',
        hash: await sha256(TOKEN),
        scopes: ['containers:read', 'containers:write', 'exec'],
        policy: {
          images: ['*'],
          exec: { allowed: true, user: '65534:65534', maxTimeoutSeconds: 600 },
        },
      },
    ],
    limits: { requestsPerSecond: 1e6, burst: 1e6 },
  }),
  { mode: 0o600 },
)

const engine = new Engine(socketPath)
const agent = new Agent({ connect: { socketPath } })
const direct = async (method, path, body) => {
  const response = await fetch(`http://docker/v1.41${path}`, {
    method,
    dispatcher: agent,
    headers: body ? { 'content-type': 'application/json' } : {},
    body: body && JSON.stringify(body),
  })
  return response
}

/** create + start (read to the end) + inspect, straight on the socket: bytes read. */
async function directExec(id, cmd) {
  const created = await (
    await direct('POST', `/containers/${id}/exec`, {
      Cmd: cmd,
      User: '65534:65534',
      AttachStdout: true,
      AttachStderr: true,
    })
  ).json()
  const started = await direct('POST', `/exec/${created.Id}/start`, { Detach: false, Tty: false })
  let bytes = 0
  for await (const chunk of started.body) bytes += chunk.length
  await (await direct('GET', `/exec/${created.Id}/json`)).json()
  return bytes
}

const gatewayHeaders = { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' }

let gateway
let box
try {
  gateway = await startNodeGateway({
    dockerHost,
    token: `dgt_bench-exec-admin-${runId}`,
    configPath,
  })
  const created = await fetch(`${gateway.url}/v1/containers?start=true`, {
    method: 'POST',
    headers: gatewayHeaders,
    body: JSON.stringify({ image, cmd: ['sleep', '3600'], labels: { 'dockgate-bench': runId } }),
  })
  if (created.status !== 201) throw new Error(`create: ${created.status} ${await created.text()}`)
  box = (await created.json()).id
  log(`exec bench: gateway pid ${gateway.pid}, container ${box.slice(0, 12)}`)

  // 1. JSON exec latency
  const viaGateway = []
  const viaEngine = []
  for (let i = 0; i < EXECS + 5; i++) {
    let t = nowMs()
    const answer = await fetch(`${gateway.url}/v1/containers/${box}/exec`, {
      method: 'POST',
      headers: gatewayHeaders,
      body: JSON.stringify({ cmd: ['true'] }),
    })
    if (answer.status !== 200) throw new Error(`exec: ${answer.status} ${await answer.text()}`)
    await answer.json()
    if (i >= 5) viaGateway.push(nowMs() - t)
    t = nowMs()
    await directExec(box, ['true'])
    if (i >= 5) viaEngine.push(nowMs() - t)
  }
  const jsonRatio = median(viaGateway) / median(viaEngine)

  // 2. SSE rate against the raw attach rate
  const cmd = ['sh', '-c', `head -c ${MB * 1_000_000} /dev/zero | tr '\\000' x`]
  const sseRates = []
  const rawRates = []
  for (let i = 0; i < REPS; i++) {
    let t = nowMs()
    const sse = await fetch(`${gateway.url}/v1/containers/${box}/exec`, {
      method: 'POST',
      headers: { ...gatewayHeaders, accept: 'text/event-stream' },
      body: JSON.stringify({ cmd }),
    })
    let sseBytes = 0
    let last = new Uint8Array(0)
    // Bytes counted only, as for the raw read: the client's own work must not weigh on one side.
    for await (const chunk of sse.body) {
      sseBytes += chunk.length
      last = chunk
    }
    const text = new TextDecoder().decode(last.subarray(-300))
    if (!text.includes('event: end')) throw new Error(`no end event: ${text}`)
    sseRates.push(MB / ((nowMs() - t) / 1000))
    t = nowMs()
    const raw = await directExec(box, cmd)
    rawRates.push(MB / ((nowMs() - t) / 1000))
    log(
      `  rep ${i + 1}: SSE ${round(sseRates.at(-1), 1)} MB/s (${sseBytes} bytes on the wire), raw ${round(rawRates.at(-1), 1)} MB/s (${raw} bytes)`,
    )
  }
  const sseRatio = median(sseRates) / median(rawRates)

  const result = {
    json: {
      gatewayMedianMs: round(median(viaGateway), 2),
      engineMedianMs: round(median(viaEngine), 2),
      ratio: round(jsonRatio, 3),
      target: '≤ 1.2',
      verdict: jsonRatio <= 1.2 ? 'MEETS' : 'MISS',
      execs: EXECS,
    },
    sse: {
      gatewayMBps: round(median(sseRates), 1),
      rawAttachMBps: round(median(rawRates), 1),
      ratio: round(sseRatio, 3),
      target: '≥ 0.8',
      verdict: sseRatio >= 0.8 ? 'MEETS' : 'MISS',
      mb: MB,
      reps: REPS,
    },
  }
  console.log(JSON.stringify(result, null, 2))
} finally {
  if (box) await engine.remove(box).catch(() => {})
  await stopAll()
  await agent.close()
}
