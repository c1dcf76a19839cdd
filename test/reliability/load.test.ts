/**
 * Load, bounded: 1,000 concurrent requests and 1,000 concurrent event streams against the Node
 * entry point (`npm start`'s gateway, limits raised in its config). No 5xx, and afterwards the
 * process is back where it started: open descriptors, engine connections, open streams, memory.
 */
import { rmSync } from 'node:fs'
import { Agent, fetch as undiciFetch } from 'undici'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { tokenOf } from '../support/gateway.ts'
import {
  engineUnixConnections,
  heapAfterGc,
  openFds,
  rssBytes,
  type SpawnedGateway,
  scratchDir,
  settle,
  socketInodes,
  spawnGateway,
} from '../support/reliability.ts'

const CONCURRENCY = 1_000
const MB = 1024 * 1024
let dir: string | undefined
const auth = { authorization: `Bearer ${tokenOf('admin')}` }
let node: SpawnedGateway
let client: Agent

beforeAll(async () => {
  dir = scratchDir('dockgate-load')
  node = await spawnGateway({
    dir,
    config: {
      limits: {
        requestsPerSecond: 100_000,
        burst: 100_000,
        streamsPerClient: 10_000,
        engineCallsPerClient: 10_000,
      },
    },
    env: { DOCKGATE_TOKEN: tokenOf('admin') },
    gcProbe: true,
  })
  // One connection per concurrent request: nothing queues in the client.
  client = new Agent({ connections: CONCURRENCY + 100, keepAliveTimeout: 1_000 })
})

afterAll(async () => {
  node?.kill()
  await client?.destroy().catch(() => {})
  if (dir) rmSync(dir, { recursive: true, force: true })
})

const get = (path: string, signal?: AbortSignal) =>
  undiciFetch(`${node.url}${path}`, { headers: auth, dispatcher: client, signal })

/** What the gateway process holds, as the kernel says. */
function footprint() {
  return {
    fds: openFds(node.pid),
    sockets: socketInodes(node.pid).size,
    engine: engineUnixConnections(node.pid),
    rss: rssBytes(node.pid),
  }
}

/** The gateway's own gauges, from /metrics. */
async function gauges() {
  const text = await (await get('/metrics')).text()
  const gauge = (name: string) => Number(new RegExp(`^${name} (\\d+)$`, 'm').exec(text)?.[1])
  return { streams: gauge('dockgate_open_streams'), engine: gauge('dockgate_engine_connections') }
}

/** The gateway's own warnings and errors (its request log lines left out), for failure reports. */
const notable = () =>
  node
    .output()
    .split('\n')
    .filter((line) => /"level":"(warn|error)"/.test(line))
    .slice(-20)
    .join('\n')

const PATHS = ['/v1/containers?limit=5', '/v1/system/version', '/healthz', '/readyz']

/** Engine connections of a gateway at rest: the hub's upstream, a few pooled ones idling out. */
const QUIET_ENGINE = 8

/** How many of each status. */
function tally(list: number[]): Record<number, number> {
  const counts: Record<number, number> = {}
  for (const status of list) counts[status] = (counts[status] ?? 0) + 1
  return counts
}

/** 1,000 requests at once, the four kinds in turn; answers the statuses. */
function burstOfRequests() {
  return Promise.all(
    Array.from({ length: CONCURRENCY }, async (_, i) => {
      const response = await get(PATHS[i % PATHS.length]!)
      await response.arrayBuffer()
      return response.status
    }),
  )
}

/** 1,000 event streams open at once, each until its first bytes; answers them to close. */
async function burstOfStreams() {
  const aborts = Array.from({ length: CONCURRENCY }, () => new AbortController())
  const statuses = await Promise.all(
    aborts.map(async (abort) => {
      const response = await get('/v1/events', abort.signal)
      if (response.status !== 200) return response.status
      const first = await response.body!.getReader().read()
      return first.done ? 0 : response.status
    }),
  )
  const close = () => {
    for (const abort of aborts) abort.abort()
  }
  return { statuses, close }
}

/** The footprint once the gateway is at rest again (or as it is after `timeoutMs`). */
const atRest = (baseline: ReturnType<typeof footprint> | undefined, timeoutMs: number) =>
  settle(
    footprint,
    (f) =>
      f.engine <= QUIET_ENGINE &&
      (baseline === undefined || (f.fds <= baseline.fds + 5 && f.sockets <= baseline.sockets + 5)),
    timeoutMs,
    250,
  )

describe('under load', () => {
  it('serves 1,000 concurrent requests and 1,000 concurrent event streams without a 5xx, twice, and leaks nothing', async () => {
    // Warm up: every path 100 times, 50 at a time (the JIT, the engine pool; the events hub
    // connects on its first subscriber), then let the gateway come to rest (a read model, if the
    // app has one, loads every container first).
    for (const path of PATHS) {
      for (let i = 0; i < 2; i++) {
        const warmed = await Promise.all(
          Array.from({ length: 50 }, async () => {
            const response = await get(path)
            await response.arrayBuffer()
            return response.status
          }),
        )
        expect(tally(warmed), path).toEqual({ 200: 50 })
      }
    }
    const warm = await get('/v1/events')
    expect(warm.status).toBe(200)
    const reader = warm.body!.getReader()
    await reader.read()
    await reader.cancel()
    await client.destroy()
    const before = await atRest(undefined, 15_000)
    expect(before.engine).toBeLessThanOrEqual(QUIET_ENGINE)
    // Memory is compared after a full collection: under this load V8 lets garbage pile up to a
    // few hundred MB of RSS and gives it back lazily, which says nothing about what is retained.
    const heapBefore = await heapAfterGc(node)
    const rssBefore = rssBytes(node.pid)
    const rounds: unknown[] = []

    for (let round = 1; round <= 2; round++) {
      client = new Agent({ connections: CONCURRENCY + 100, keepAliveTimeout: 1_000 })
      const statuses = await burstOfRequests()
      expect(
        statuses.filter((s) => s >= 500),
        JSON.stringify(tally(statuses)),
      ).toEqual([])
      expect(tally(statuses)).toEqual({ 200: CONCURRENCY })

      const streams = await burstOfStreams()
      expect(streams.statuses.filter((s) => s >= 500)).toEqual([])
      expect(tally(streams.statuses)).toEqual({ 200: CONCURRENCY })
      expect((await gauges()).streams).toBe(CONCURRENCY)
      const during = footprint()
      expect(during.sockets).toBeGreaterThan(before.sockets + CONCURRENCY / 2)
      // The streams share the hub's one upstream: no engine connection per stream.
      expect(during.engine).toBeLessThanOrEqual(QUIET_ENGINE + 64)
      streams.close()
      await client.destroy()

      // Back where it started, with a little slack; pooled engine connections idle out in 4 s.
      const after = await atRest(before, 15_000)
      const heap = await heapAfterGc(node)
      const rss = rssBytes(node.pid)
      rounds.push({ round, during, after, heap, rss })
      const report = `${JSON.stringify({ before, heapBefore, rssBefore, rounds })}\n${notable()}`
      expect(after.fds, report).toBeLessThanOrEqual(before.fds + 5)
      expect(after.sockets, report).toBeLessThanOrEqual(before.sockets + 5)
      expect(after.engine, report).toBeLessThanOrEqual(QUIET_ENGINE)
      expect(rss, report).toBeLessThan(rssBefore + 100 * MB)
      // What the gateway retains once its garbage is collected: nothing per request or stream
      // (the events hub's ring grows by the events other tests cause meanwhile).
      expect(heap, report).toBeLessThan(heapBefore + 16 * MB)
    }
    client = new Agent({ connections: 4 })
    const rest = await settle(gauges, (g) => g.streams === 0 && g.engine <= 1, 5_000)
    expect(rest.streams).toBe(0)
    // In flight: only the events hub's upstream.
    expect(rest.engine).toBeLessThanOrEqual(1)

    // And it still shuts down cleanly.
    node.child.kill('SIGTERM')
    expect(await node.exited).toBe(0)
  }, 60_000)
})
