/**
 * Faults: an engine that goes away or hangs, clients that leave or stop reading, and a SIGTERM
 * with 100 open streams. The gateway answers within bounds, holds no engine connection for a
 * client that left, and shuts down cleanly.
 */
import { rmSync } from 'node:fs'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { GatewaySettings } from '../../src/config.ts'
import { EventHub } from '../../src/events/hub.ts'
import { engineTargetFromEnv } from '../../src/transport/docker-host.ts'
import { createNodeTransport } from '../../src/transport/node.ts'
import { direct, runDirect, testEngineEnv } from '../support/engine.ts'
import { startFaultProxy } from '../support/fault-proxy.ts'
import { testGateway, tokenOf, uniqueName } from '../support/gateway.ts'
import { TEST_LABEL, TEST_RUN } from '../support/labels.ts'
import {
  engineTcpTarget,
  recordingTransport,
  type ServedApp,
  type SpawnedGateway,
  scratchDir,
  serveApp,
  settle,
  spawnGateway,
  startStalledEngine,
  tagged,
  tcpConnectionsTo,
} from '../support/reliability.ts'
import { readSse } from '../support/sse.ts'

const LABELS = { [TEST_LABEL]: TEST_RUN }
/**
 * Gateways that answer from the engine on every call: the read model keeps its own engine
 * traffic going (an inspect per container event anywhere), which would blur connection counts.
 */
const ENGINE_ONLY: Partial<GatewaySettings> = { readModel: false }
const NO_LIMITS = {
  rateLimitPerSecond: 1e6,
  rateLimitBurst: 1e6,
  maxStreamsPerPrincipal: 1e6,
  engineCallsPerPrincipal: 1e6,
}
const tcpTransport = (dockerHost: string) =>
  createNodeTransport(engineTargetFromEnv({ DOCKER_HOST: dockerHost }))

/** Milliseconds a call takes, with its answer. */
async function timed<T>(call: () => Promise<T>): Promise<{ value: T; ms: number }> {
  const started = Date.now()
  const value = await call()
  return { value, ms: Date.now() - started }
}

async function problemOf(response: Response) {
  return { status: response.status, body: await response.json(), headers: response.headers }
}

let sleeper: string

beforeAll(async () => {
  sleeper = await runDirect({
    name: uniqueName('faults'),
    cmd: ['sleep', '600'],
    labels: LABELS,
    wait: false,
  })
})

afterAll(async () => {
  await direct(`/containers/${sleeper}?force=1`, { method: 'DELETE' })
})

describe.each([
  ['with the read model (the default)', true],
  ['asking the engine on every call', false],
])('an engine that goes away, %s', (_, readModel) => {
  it('answers 503 with Retry-After at once, ends open log streams, and recovers', async () => {
    const proxy = await startFaultProxy(engineTcpTarget())
    try {
      const recorder = recordingTransport(tcpTransport(proxy.dockerHost))
      const gw = await testGateway({
        transport: recorder.transport,
        settings: { ...NO_LIMITS, readModel },
      })
      expect((await gw.call('/readyz')).status).toBe(200)
      // With the model: once it has loaded, a list is answered without asking the engine.
      let probes = 0
      const fromMemory = async () => {
        const tag = `list-${probes++}`
        const response = await tagged(tag, () => gw.call('/v1/containers?limit=1'))
        expect(response.status).toBe(200)
        return recorder.calls.every((call) => call.tag !== tag)
      }
      expect(await settle(fromMemory, (memory) => memory === readModel, 10_000)).toBe(readModel)
      const logs = readSse(await gw.call(`/v1/containers/${sleeper}/logs/stream`))

      await proxy.down()
      for (const path of [
        '/readyz',
        '/v1/containers',
        '/v1/containers?all=true',
        `/v1/containers/${sleeper}`,
        `/v1/containers/${sleeper}/logs`,
        '/v1/images',
        '/v1/events',
      ]) {
        // No stale answers from memory once the gateway has noticed (the model follows the
        // engine's events no more): a few milliseconds after the connection broke.
        const { value: problem, ms } = await timed(() =>
          settle(
            async () => problemOf(await gw.call(path)),
            (p) => p.status === 503,
            5_000,
            50,
          ),
        )
        expect(problem.status, `${path}: ${JSON.stringify(problem.body)}`).toBe(503)
        expect(problem.headers.get('retry-after')).toBe('5')
        expect(problem.body.type).toBe('urn:dockgate:problem:engine-unavailable')
        expect(ms, path).toBeLessThan(5_000)
      }
      // The open stream is told, and ends.
      const events = await logs.until('problem', 5_000)
      expect(events.at(-1)?.event).toBe('problem')
      expect(JSON.parse(events.at(-1)!.data).type).toMatch(/engine-(error|unavailable)/)
      expect(await logs.next(2_000)).toBeUndefined()

      await proxy.up()
      await expect
        .poll(async () => (await gw.call('/readyz')).status, { timeout: 10_000 })
        .toBe(200)
      expect((await gw.call('/v1/containers?limit=1')).status).toBe(200)
      expect((await gw.call(`/v1/containers/${sleeper}`)).status).toBe(200)
    } finally {
      await proxy.close()
    }
  })
})

describe('an engine that hangs', () => {
  it('answers 504 within the engine client’s timeout and gives the connections up (mock: stalled socket)', async () => {
    // A proxy that passes the version negotiation, then swallows every request.
    const proxy = await startFaultProxy(engineTcpTarget())
    try {
      const gw = await testGateway({
        transport: tcpTransport(proxy.dockerHost),
        settings: { ...ENGINE_ONLY, ...NO_LIMITS },
        engineOptions: { timeoutMs: 1_000, pingTimeoutMs: 1_000 },
      })
      expect((await gw.call('/v1/containers?limit=1')).status).toBe(200)
      proxy.stall()
      const calls = [
        ['GET', '/v1/containers'],
        ['GET', `/v1/containers/${sleeper}`],
        ['GET', `/v1/containers/${sleeper}/logs`],
        ['GET', `/v1/containers/${sleeper}/logs/stream`],
        ['POST', `/v1/containers/${sleeper}/stop`],
        ['GET', '/v1/images'],
      ] as const
      const answers = await Promise.all(
        calls.map(async ([method, path]) => {
          const { value: response, ms } = await timed(() => gw.call(path, { method }))
          return { method, path, ms, ...(await problemOf(response)) }
        }),
      )
      for (const { method, path, ms, status, body } of answers) {
        expect(status, `${method} ${path}: ${JSON.stringify(body)}`).toBe(504)
        expect(body.type).toBe('urn:dockgate:problem:engine-timeout')
        expect(ms, path).toBeGreaterThanOrEqual(900)
        expect(ms, path).toBeLessThan(3_000)
      }
      // Readiness has its own (ping) bound and says 503, as a load balancer expects.
      const { value: ready, ms } = await timed(() => gw.call('/readyz'))
      expect(ready.status).toBe(503)
      expect(ready.headers.get('retry-after')).toBe('5')
      expect(ms).toBeLessThan(3_000)
      // Nothing the gateway gave up on stays open against the hung engine (undici closes a
      // connection at once when its request is aborted; one it then opens idles out in 4 s).
      expect(
        await settle(
          () => proxy.open,
          (n) => n === 0,
          6_000,
        ),
      ).toBe(0)
      // Event streams wait for the hub's upstream, which the hung engine never gives.
      const events = await timed(() => gw.call('/v1/events'))
      expect(events.value.status).toBe(504)
      expect(events.ms).toBeLessThan(3_000)
    } finally {
      await proxy.close()
    }
  })

  it('answers 504 and 503 when the engine accepts connections but never says a word (mock: stalled socket)', async () => {
    const stalled = await startStalledEngine()
    try {
      const gw = await testGateway({
        transport: tcpTransport(stalled.dockerHost),
        settings: { ...ENGINE_ONLY, ...NO_LIMITS },
        engineOptions: { timeoutMs: 1_000, pingTimeoutMs: 1_000 },
      })
      const paths = ['/v1/containers', '/v1/system/version', '/v1/images']
      const answers = await Promise.all(paths.map((path) => timed(() => gw.call(path))))
      for (const [i, { value: response, ms }] of answers.entries()) {
        expect(response.status, paths[i]).toBe(504)
        expect(ms, paths[i]).toBeLessThan(3_000)
      }
      const { value: ready, ms } = await timed(() => gw.call('/readyz'))
      expect(ready.status).toBe(503)
      expect(ms).toBeLessThan(3_000)
      expect(stalled.accepted).toBeGreaterThan(0)
      const events = await timed(() => gw.call('/v1/events'))
      expect(events.value.status).toBe(504)
      expect(events.ms).toBeLessThan(3_000)
    } finally {
      await stalled.close()
    }
  })
})

describe('clients that leave mid-stream', () => {
  let served: ServedApp
  let engineRequests: () => number
  const port = engineTcpTarget().port

  beforeAll(async () => {
    // Over the engine's TCP port, so the kernel can count this process's connections to it.
    const gw = await testGateway({
      transport: tcpTransport(testEngineEnv().tcpHost!),
      settings: { ...ENGINE_ONLY, ...NO_LIMITS, heartbeatMs: 200 },
    })
    served = await serveApp(gw.app)
    engineRequests = () => gw.metrics.engineConnections
  })
  afterAll(() => served.close())

  const connections = () => tcpConnectionsTo(port, process.pid)

  /** Opens a stream over real HTTP and waits for its first bytes. */
  async function open(path: string) {
    const abort = new AbortController()
    const response = await fetch(`${served.url}${path}`, {
      headers: { authorization: `Bearer ${tokenOf('admin')}` },
      signal: abort.signal,
    })
    expect(response.status).toBe(200)
    await response.body!.getReader().read()
    return abort
  }

  it('logs, stats and event streams: no engine request nor connection stays behind', async () => {
    // Idle pooled connections from earlier calls close after undici's keep-alive (4 s).
    expect(await settle(connections, (n) => n === 0, 8_000)).toBe(0)
    expect(engineRequests()).toBe(0)
    const clients = await Promise.all([
      ...Array.from({ length: 5 }, () => open(`/v1/containers/${sleeper}/logs/stream`)),
      ...Array.from({ length: 5 }, () => open(`/v1/containers/${sleeper}/stats/stream`)),
      ...Array.from({ length: 20 }, () => open('/v1/events')),
    ])
    // Each log and stats stream holds its own engine request; the event streams share the hub's.
    expect(await settle(engineRequests, (n) => n >= 11, 3_000)).toBe(11)
    expect(await settle(connections, (n) => n >= 11, 3_000)).toBeGreaterThanOrEqual(11)

    for (const abort of clients) abort.abort()
    // What stays is the events hub's one upstream, kept by design (shared, resumable).
    expect(await settle(engineRequests, (n) => n <= 1, 3_000)).toBe(1)
    expect(await settle(connections, (n) => n <= 1, 8_000)).toBe(1)
  })
})

describe('a client that stops reading', () => {
  it('is dropped with `resync` (overflow) while the burst goes on, and the gateway holds no more', async () => {
    let hub!: EventHub
    const queueLimit = 5
    const sseBufferBytes = 4096
    const gw = await testGateway({
      settings: { ...ENGINE_ONLY, ...NO_LIMITS, eventsQueueLimit: queueLimit, sseBufferBytes },
      events: (engine) => {
        hub = new EventHub(engine, { queueLimit })
        return hub
      },
    })
    const probe = `slow-${process.pid}-${Date.now().toString(36)}`
    const target = await runDirect({
      name: uniqueName('burst'),
      cmd: ['sleep', '120'],
      labels: { ...LABELS, 'dockgate-probe': probe },
      wait: false,
    })
    try {
      const response = await gw.call(`/v1/events?label=dockgate-probe%3D${probe}&action=kill`)
      expect(response.status).toBe(200)
      // The client reads nothing from here on. The burst: signals a sleeping PID 1 ignores,
      // each one a `kill` event; the stream's own buffer holds 4 KiB, the queue 5 events more.
      const burst = 120
      for (let sent = 0; sent < burst; sent += 10) {
        await Promise.all(
          Array.from({ length: 10 }, () =>
            direct(`/containers/${target}/kill?signal=SIGWINCH`, { method: 'POST' }),
          ),
        )
      }
      // Dropped while nobody read: the hub no longer holds it.
      expect(
        await settle(
          () => hub.stats().subscribers,
          (n) => n === 0,
          5_000,
        ),
      ).toBe(0)
      const events = await readSse(response).until('resync', 5_000)
      const last = events.at(-1)!
      expect(last.event).toBe('resync')
      expect(JSON.parse(last.data)).toEqual({ reason: 'overflow' })
      const delivered = events.filter((e) => e.event === 'container')
      expect(delivered.length).toBeLessThan(burst)
      // Buffered for it at most: the stream's 4 KiB, one batch over it, and the queue's limit.
      const sizes = delivered.map(
        (e) => `event: ${e.event}\nid: ${e.id}\ndata: ${e.data}\n\n`.length,
      )
      const deliveredBytes = sizes.reduce((sum, size) => sum + size, 0)
      expect(deliveredBytes).toBeLessThanOrEqual(
        sseBufferBytes + 2 * queueLimit * Math.max(...sizes),
      )
    } finally {
      await direct(`/containers/${target}?force=1`, { method: 'DELETE' })
    }
  })
})

describe('SIGTERM with 100 open streams', () => {
  let dir: string | undefined
  let node: SpawnedGateway | undefined

  beforeAll(() => {
    dir = scratchDir('dockgate-faults')
  })
  afterAll(() => {
    node?.kill()
    if (dir) rmSync(dir, { recursive: true, force: true })
  })

  it('ends every stream with `shutdown` and exits 0 within the grace period', async () => {
    node = await spawnGateway({
      dir: dir!,
      config: {
        limits: {
          requestsPerSecond: 10_000,
          burst: 10_000,
          streamsPerClient: 1_000,
          engineCallsPerClient: 1_000,
        },
      },
      env: { DOCKGATE_TOKEN: tokenOf('admin') },
    })
    const url = node.url
    const open = async (path: string) => {
      const response = await fetch(`${url}${path}`, {
        headers: { authorization: `Bearer ${tokenOf('admin')}` },
      })
      expect(response.status, path).toBe(200)
      const reader = readSse(response)
      return reader
    }
    // 50 log streams (each its own engine connection: the pool holds 64) and 50 event streams.
    const streams = await Promise.all([
      ...Array.from({ length: 50 }, () => open(`/v1/containers/${sleeper}/logs/stream`)),
      ...Array.from({ length: 50 }, () => open('/v1/events')),
    ])
    expect(streams).toHaveLength(100)

    const started = Date.now()
    node.child.kill('SIGTERM')
    const endings = await Promise.all(
      streams.map(async (stream) => {
        const events = await stream.until('shutdown', 10_000)
        return { last: events.at(-1)?.event, after: await stream.next(5_000) }
      }),
    )
    for (const { last, after } of endings) {
      expect(last).toBe('shutdown')
      expect(after).toBeUndefined()
    }
    const code = await Promise.race([
      node.exited,
      new Promise<string>((r) => setTimeout(() => r('still running'), 10_000)),
    ])
    expect(code, node.output().slice(-2_000)).toBe(0)
    expect(Date.now() - started).toBeLessThan(10_000)
  }, 60_000)
})
