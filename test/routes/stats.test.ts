import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { engineTargetFromEnv } from '../../src/transport/docker-host.ts'
import { createNodeTransport } from '../../src/transport/node.ts'
import { direct, recordingTransport, testEngineEnv } from '../support/engine.ts'
import { postJson, type TestGateway, testGateway, uniqueName } from '../support/gateway.ts'
import { TEST_LABEL, TEST_RUN } from '../support/labels.ts'
import { tcpConnectionsTo } from '../support/net.ts'
import { readSse } from '../support/sse.ts'
import type { ParsedSseEvent } from '../support/sse-parse.ts'

const MiB = 1024 * 1024
let gw: TestGateway
// What the gateway asked the engine, in order
let engineCalls: string[]
const created: string[] = []

beforeAll(async () => {
  const { transport, calls } = recordingTransport()
  engineCalls = calls
  gw = await testGateway({ transport, settings: { heartbeatMs: 200 } })
})

/** The engine calls the gateway makes while `call` runs. */
async function callsDuring<T>(call: () => Promise<T>): Promise<{ result: T; calls: string[] }> {
  const before = engineCalls.length
  const result = await call()
  return { result, calls: engineCalls.slice(before) }
}

// Busy loops and long sleeps must not outlive the file: they compete for the two cores.
afterAll(async () => {
  await Promise.all(created.map((id) => direct(`/containers/${id}?force=1`, { method: 'DELETE' })))
})

async function create(
  cmd: string[],
  { start = true, resources }: { start?: boolean; resources?: Record<string, number> } = {},
) {
  const { status, body } = await gw.json(
    `/v1/containers?start=${start}`,
    postJson({
      image: testEngineEnv().image,
      name: uniqueName('stats'),
      cmd,
      labels: { [TEST_LABEL]: TEST_RUN },
      ...(resources ? { resources } : {}),
    }),
  )
  expect(status).toBe(201)
  created.push(body.id)
  return body.id as string
}

const ISO_NANOS = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,9})?Z$/
const statsEvents = (events: ParsedSseEvent[]) => events.filter((e) => e.event === 'stats')

describe('GET /v1/containers/{id}/stats', () => {
  it('samples a busy container: CPU% near its 0.5 CPU quota, memory against its limit', async () => {
    const id = await create(['sh', '-c', 'while :; do :; done'], {
      resources: { cpus: 0.5, memory: 64 * MiB },
    })
    const { result, calls } = await callsDuring(() => gw.json(`/v1/containers/${id}/stats`))
    const { status, body } = result
    expect(status).toBe(200)
    expect(body.running).toBe(true)
    expect(body.time).toMatch(ISO_NANOS)
    // 50 % of one CPU by quota; a busy machine can only lower it.
    expect(body.cpuPercent).toBeGreaterThan(20)
    expect(body.cpuPercent).toBeLessThan(70)
    expect(body.memory.limit).toBe(64 * MiB)
    expect(body.memory.used).toBeGreaterThan(0)
    expect(body.memory.used).toBeLessThan(64 * MiB)
    expect(body.memory.percent).toBeCloseTo((body.memory.used / (64 * MiB)) * 100, 1)
    expect(body.pids.current).toBeGreaterThanOrEqual(1)
    expect(body.network).toEqual({ rxBytes: 0, txBytes: 0 })
    expect(body.blockIo.readBytes).toBeGreaterThanOrEqual(0)
    // One snapshot call, whose answer carries the previous sample too (CPU% needs both)
    expect(calls.filter((call) => call.includes(`/containers/${id}/stats`))).toEqual([
      `GET /containers/${id}/stats?stream=false`,
    ])
  })

  it('answers running: false and zeros at once for a container that is not running', async () => {
    const id = await create(['true'], { start: false })
    const { result, calls } = await callsDuring(() => gw.json(`/v1/containers/${id}/stats`))
    const { status, body } = result
    expect(status).toBe(200)
    // Answered from the inspection: the engine's stats (a sample a second) never asked
    expect(calls).toContain(`GET /containers/${id}/json`)
    expect(calls.filter((call) => call.includes('/stats'))).toEqual([])
    expect(body).toEqual({
      running: false,
      time: null,
      cpuPercent: 0,
      memory: { used: 0, limit: 0, percent: 0 },
      pids: { current: 0, limit: null },
      network: { rxBytes: 0, txBytes: 0 },
      blockIo: { readBytes: 0, writeBytes: 0 },
    })
  })

  it('answers 404 for a missing container, 400 for a bad id, 403 without containers:read', async () => {
    const missing = await gw.json('/v1/containers/dockgate-missing/stats')
    expect(missing.status).toBe(404)
    expect(missing.response.headers.get('content-type')).toBe('application/problem+json')
    const bad = await gw.json('/v1/containers/-bad/stats')
    expect(bad.status).toBe(400)
    expect(bad.body.type).toBe('urn:dockgate:problem:validation-failed')
    const forbidden = await gw.json('/v1/containers/dockgate-missing/stats', { role: 'nobody' })
    expect(forbidden.status).toBe(403)
  })
})

describe('GET /v1/containers/{id}/stats/stream', () => {
  it('sends a sample about every second, then `end` with the exit code when the container exits', async () => {
    const id = await create(['sh', '-c', 'sleep 4; exit 3'])
    const opened = Date.now()
    const response = await gw.call(`/v1/containers/${id}/stats/stream`)
    expect(response.status).toBe(200)
    expect(response.headers.get('content-type')).toMatch(/^text\/event-stream/)
    const events = await readSse(response).until('end', 4_000)
    expect(Date.now() - opened).toBeLessThan(8_000)
    expect(events.at(-1)).toMatchObject({ event: 'end' })
    expect(JSON.parse(events.at(-1)!.data)).toEqual({ state: 'exited', exitCode: 3 })
    const samples = statsEvents(events).map((e) => JSON.parse(e.data))
    expect(samples.length).toBeGreaterThanOrEqual(2)
    for (const sample of samples) {
      expect(sample.running).toBe(true)
      expect(sample.time).toMatch(ISO_NANOS)
      expect(sample.cpuPercent).toBeGreaterThanOrEqual(0)
      expect(sample.memory.limit).toBeGreaterThan(0)
    }
    // The engine's sample times, a tick apart: never two in one tick, and about a second at the
    // median (a busy engine has taken 2.4 s for one tick, clean-clone CI ci49).
    const times = samples.map((s) => Date.parse(s.time))
    const gaps = times.slice(1).map((t, i) => t - times[i]!)
    for (const gap of gaps) expect(gap).toBeGreaterThan(800)
    expect(gaps.sort((x, y) => x - y)[Math.floor(gaps.length / 2)]).toBeLessThan(1_600)
    for (const e of events) expect(e.id).toBeUndefined()
  })

  it('ends with the exit code of its kill when the container is removed by force', async () => {
    const id = await create(['sleep', '30'])
    const reader = readSse(await gw.call(`/v1/containers/${id}/stats/stream`))
    const [first] = await reader.take(1)
    expect(first!.event).toBe('stats')
    expect((await gw.call(`/v1/containers/${id}?force=true`, { method: 'DELETE' })).status).toBe(
      204,
    )
    const end = (await reader.until('end')).at(-1)!
    expect(end.event).toBe('end')
    const data = JSON.parse(end.data)
    // `removing` while the engine removes it, `removed` once it is gone (its `die` event's code).
    expect(['removing', 'removed']).toContain(data.state)
    expect(data.exitCode).toBe(137)
  })

  it('ends at once for a container that is not running', async () => {
    const exited = await create(['sh', '-c', 'exit 7'])
    await direct(`/containers/${exited}/wait`, { method: 'POST' })
    expect(
      await readSse(await gw.call(`/v1/containers/${exited}/stats/stream`)).until('end'),
    ).toEqual([
      {
        event: 'end',
        data: JSON.stringify({ state: 'exited', exitCode: 7 }),
        id: undefined,
        retry: 2000,
      },
    ])
    const never = await create(['true'], { start: false })
    const events = await readSse(await gw.call(`/v1/containers/${never}/stats/stream`)).until('end')
    expect(events.map((e) => [e.event, JSON.parse(e.data)])).toEqual([
      ['end', { state: 'created', exitCode: null }],
    ])
  })

  it('closes the engine connection when the client leaves, and when the container stops', async () => {
    // The stats calls go over the TCP wire, so the kernel can count this process's connections
    // that carry them; every other engine call goes over the socket and does not count.
    const tcp = testEngineEnv().tcpHost!
    const overTcp = createNodeTransport(engineTargetFromEnv({ DOCKER_HOST: tcp }))
    const overSocket = createNodeTransport(
      engineTargetFromEnv({ DOCKER_HOST: testEngineEnv().dockerHost }),
    )
    afterAll(() => overSocket.close())
    const split = await testGateway({
      transport: {
        description: 'stats over TCP',
        fetch: (request, options) =>
          new URL(request.url).pathname.endsWith('/stats')
            ? overTcp.fetch(request, options)
            : overSocket.fetch(request, options),
        close: () => overTcp.close(),
      },
    })
    const port = new URL(tcp.replace('tcp:', 'http:')).port
    const before = tcpConnectionsTo(port)

    const long = await create(['sleep', '30'])
    const reader = readSse(await split.call(`/v1/containers/${long}/stats/stream`))
    expect((await reader.next(4_000))?.event).toBe('stats')
    expect(tcpConnectionsTo(port)).toBe(before + 1)
    await reader.close()
    await expect.poll(() => tcpConnectionsTo(port), { timeout: 3_000 }).toBe(before)

    // The engine's stats stream never ends by itself: the gateway must hang up on it.
    const short = await create(['sleep', '3'])
    const ending = readSse(await split.call(`/v1/containers/${short}/stats/stream`))
    expect((await ending.next(4_000))?.event).toBe('stats')
    expect(tcpConnectionsTo(port)).toBe(before + 1)
    const events = await ending.until('end', 4_000)
    expect(events.at(-1)!.event).toBe('end')
    expect(await ending.next()).toBeUndefined()
    await expect.poll(() => tcpConnectionsTo(port), { timeout: 3_000 }).toBe(before)
  })

  it('answers 404 before streaming, 400 for a bad id, 403 without containers:read', async () => {
    const missing = await gw.json('/v1/containers/dockgate-missing/stats/stream')
    expect(missing.status).toBe(404)
    expect(missing.response.headers.get('content-type')).toBe('application/problem+json')
    expect((await gw.json('/v1/containers/-bad/stats/stream')).status).toBe(400)
    const forbidden = await gw.json('/v1/containers/dockgate-missing/stats/stream', {
      role: 'nobody',
    })
    expect(forbidden.status).toBe(403)
    const tooLong = await gw.json(
      `/v1/containers/dockgate-missing/stats/stream?ticket=${'a'.repeat(2049)}`,
    )
    expect(tooLong.status).toBe(400)
  })

  it('hides another client’s container as missing', async () => {
    const id = await create(['sleep', '30'])
    expect((await gw.json(`/v1/containers/${id}/stats`, { role: 'reader' })).status).toBe(404)
    expect((await gw.json(`/v1/containers/${id}/stats/stream`, { role: 'reader' })).status).toBe(
      404,
    )
  })
})
