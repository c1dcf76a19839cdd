/**
 * Events and logs resume on any instance: two in-process gateways on the same engine, each with
 * its own upstream, sharing the replay ring through the project's Redis (`DOCKGATE_TEST_STORE`).
 * Instance B keeps a local ring of 2 events, so what it replays past those comes from the shared
 * ring.
 */
import { createClient } from '@redis/client'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { isoTime } from '../../src/events/event.ts'
import { EventHub } from '../../src/events/hub.ts'
import { memorySharedRing, type SharedRing } from '../../src/events/shared.ts'
import { type RedisClient, redisSharedRing } from '../../src/events/shared-redis.ts'
import { createDirect, direct, runDirect } from '../support/engine.ts'
import { type TestGateway, testGateway, uniqueName } from '../support/gateway.ts'
import { TEST_LABEL, TEST_RUN } from '../support/labels.ts'
import { readSse, type SseReader } from '../support/sse.ts'
import type { ParsedSseEvent } from '../support/sse-parse.ts'

const RUN = 'dockgate-shared-run'
const STORE = process.env.DOCKGATE_TEST_STORE
if (!STORE) throw new Error('DOCKGATE_TEST_STORE is not set: run scripts/redis.sh env')

const prefix = `dockgate-test:${process.pid}:${Math.random().toString(36).slice(2)}:`
let redis: RedisClient
let a: TestGateway
let b: TestGateway
let lonely: TestGateway
/** The same as A and B, sharing a ring kept in this process's memory. */
let memA: TestGateway
let memB: TestGateway
const hubs: EventHub[] = []

beforeAll(async () => {
  redis = createClient({ url: STORE })
  await redis.connect()
  const shared = () => redisSharedRing(redis, { prefix, capacity: 1_000 })
  const gateway = (ringSize: number, ring: SharedRing | null = shared()) =>
    testGateway({
      settings: { heartbeatMs: 200, readModel: false },
      events: (engine) => {
        const hub = new EventHub(engine, { ringSize, ...(ring ? { shared: ring } : {}) })
        hubs.push(hub)
        return hub
      },
    })
  a = await gateway(10_000)
  b = await gateway(2)
  lonely = await gateway(2, null)
  const inMemory = memorySharedRing(1_000)
  memA = await gateway(10_000, inMemory)
  memB = await gateway(2, inMemory)
  // Each instance holds its own upstream from the start, as a served one does.
  for (const hub of hubs) hub.start()
  await Promise.all(hubs.map((hub) => hub.ready()))
})

afterAll(async () => {
  for (const hub of hubs) hub.close()
  const keys = await redis.keys(`${prefix}*`)
  if (keys.length > 0) await redis.del(keys)
  redis.destroy()
})

let runs = 0
const newRun = () => `r${process.pid}-${Date.now().toString(36)}-${runs++}`
const labels = (run: string) => ({ [TEST_LABEL]: TEST_RUN, [RUN]: run })
const eventsPath = (run: string) =>
  `/v1/events?${new URLSearchParams([
    ['type', 'container'],
    ['label', `${RUN}=${run}`],
  ])}`

async function open(gw: TestGateway, path: string, headers: Record<string, string> = {}) {
  const response = await gw.call(path, { headers })
  if (response.status !== 200) throw new Error(await response.text())
  return readSse(response)
}

/** Events only (no heartbeats). */
async function takeEvents(reader: SseReader, count: number) {
  const events: ParsedSseEvent[] = []
  while (events.length < count) {
    const [event] = await reader.take(1, 15_000)
    if (!event) throw new Error(`got ${events.length} of ${count}: ${JSON.stringify(events)}`)
    events.push(event)
  }
  return events
}

const summary = (events: ParsedSseEvent[]) =>
  events.map(
    (e) => `${e.event} ${e.id} ${e.event === 'container' ? JSON.parse(e.data).action : e.data}`,
  )

describe('events resume on any instance through the shared ring', () => {
  it.each([
    ['in Redis', () => [a, b] as const],
    ['in memory', () => [memA, memB] as const],
  ])(
    'read on A, more while away, resumed on B: the exact sequence, no gap, no duplicate (%s)',
    async (_where, pair) => {
      const [a, b] = pair()
      const run = newRun()
      const reference = await open(a, eventsPath(run))
      const client = await open(a, eventsPath(run))

      await runDirect({ name: uniqueName('sh'), cmd: ['true'], labels: labels(run) })
      const seen = await takeEvents(client, 2)
      await client.close()
      const last = seen.at(-1)!

      // While the client is away: a whole lifecycle, and a create, on the engine.
      const away = await runDirect({ name: uniqueName('sh'), cmd: ['true'], labels: labels(run) })
      await direct(`/containers/${away}?force=1`, { method: 'DELETE' })
      await createDirect({ name: uniqueName('sh'), cmd: ['true'], labels: labels(run) })

      const all = await takeEvents(reference, 3 + 4)
      expect(summary(all.slice(0, 2))).toEqual(summary(seen))
      const missed = all.slice(2)
      // B's local ring of 2 no longer reaches the point: only the shared ring can answer.
      const resumed = await open(b, eventsPath(run), { 'last-event-id': last.id! })
      expect(summary(await takeEvents(resumed, missed.length))).toEqual(summary(missed))

      // Then live, with nothing twice.
      await createDirect({ name: uniqueName('sh'), cmd: ['true'], labels: labels(run) })
      const [live] = await takeEvents(reference, 1)
      expect(summary(await takeEvents(resumed, 1))).toEqual(summary([live!]))
      await Promise.all([reference.close(), resumed.close()])
    },
  )

  it('resumed on B in the middle of bursts of parallel changes: still the exact sequence', async () => {
    const run = newRun()
    const reference = await open(a, eventsPath(run))
    const client = await open(a, eventsPath(run))
    const burst = (count: number) =>
      Promise.all(
        Array.from({ length: count }, () =>
          createDirect({ name: uniqueName('sh'), cmd: ['true'], labels: labels(run) }),
        ),
      )
    await burst(4)
    const seen = await takeEvents(client, 3)
    await client.close()
    await burst(6)
    // Resumed while more changes are on their way to both instances.
    const more = burst(6)
    const resumed = await open(b, eventsPath(run), { 'last-event-id': seen.at(-1)!.id! })
    await more
    const all = await takeEvents(reference, 16)
    expect(summary(all.slice(0, 3))).toEqual(summary(seen))
    // The engine may publish concurrent events to A and B in different orders: B answers in
    // its order, and repeats only what A and B received the other way round around the point.
    const missed = new Set(summary(all.slice(3)))
    const got: string[] = []
    while ([...missed].some((e) => !got.includes(e)))
      got.push(...summary(await takeEvents(resumed, 1)))
    expect(new Set(got).size).toBe(got.length)
    const repeats = got.filter((e) => !missed.has(e))
    expect(summary(seen)).toEqual(expect.arrayContaining(repeats))
    await burst(1)
    const [live] = await takeEvents(reference, 1)
    expect(summary(await takeEvents(resumed, 1))).toEqual(summary([live!]))
    await Promise.all([reference.close(), resumed.close()])
  })

  it('without the shared ring, the same resume on an instance whose ring cannot reach it is a resync', async () => {
    const run = newRun()
    const client = await open(a, eventsPath(run))
    await createDirect({ name: uniqueName('sh'), cmd: ['true'], labels: labels(run) })
    const [first] = await takeEvents(client, 1)
    await client.close()
    await runDirect({ name: uniqueName('sh'), cmd: ['true'], labels: labels(run) })
    // Until its ring of 2 has moved past the point.
    const hub = hubs[2]!
    for (let i = 0; i < 100 && BigInt(hub.stats().coverageFrom ?? 0) <= BigInt(first!.id!); i++) {
      await new Promise((resolve) => setTimeout(resolve, 50))
    }
    const resumed = await open(lonely, eventsPath(run), { 'last-event-id': first!.id! })
    const [resync] = await takeEvents(resumed, 1)
    expect(resync?.event, JSON.stringify([first, resync, hub.stats()])).toBe('resync')
    await resumed.close()
  })

  it('a point older than the shared ring holds: resync, then live events', async () => {
    const run = newRun()
    const resumed = await open(b, eventsPath(run), { 'last-event-id': '1000' })
    const [resync] = await takeEvents(resumed, 1)
    expect(resync?.event).toBe('resync')
    expect(JSON.parse(resync!.data)).toMatchObject({ reason: 'gap' })
    await createDirect({ name: uniqueName('sh'), cmd: ['true'], labels: labels(run) })
    const [created] = await takeEvents(resumed, 1)
    expect(JSON.parse(created!.data)).toMatchObject({ action: 'create' })
    await resumed.close()
  })
})

describe('logs resume on any instance', () => {
  it('a log stream read on A resumes on B after its last line, no duplicate, no gap', async () => {
    const script = 'for i in 1 2 3 4 5 6; do echo line$i; sleep 0.2; done'
    const id = await runDirect({
      name: uniqueName('shlog'),
      cmd: ['sh', '-c', script],
      labels: labels(newRun()),
      wait: false,
    })
    const path = `/v1/containers/${id}/logs/stream`
    const first = await open(a, path)
    const head = await takeEvents(first, 2)
    await first.close()
    expect(head.map((e) => JSON.parse(e.data).text)).toEqual(['line1', 'line2'])
    const rest = await open(b, path, { 'last-event-id': head[1]!.id! })
    const tail = await rest.until('end', 15_000)
    const lines = tail.filter((e) => e.event === 'stdout').map((e) => JSON.parse(e.data).text)
    expect(lines).toEqual(['line3', 'line4', 'line5', 'line6'])
    await direct(`/containers/${id}?force=1`, { method: 'DELETE' })
  })
})

const unitEvent = (nano: bigint, key: string) => ({
  event: {
    type: 'container' as const,
    action: 'create',
    actor: { id: key, name: null, attributes: {} },
    time: isoTime(nano),
    timeNano: nano.toString(),
  },
  nano,
  key,
})

let rings = 0
describe.each([
  ['in memory', (capacity: number) => memorySharedRing(capacity)],
  [
    'in Redis',
    (capacity: number) => redisSharedRing(redis, { prefix: `${prefix}unit${rings++}:`, capacity }),
  ],
])('the shared ring %s', (_where, newRing) => {
  it('drops what is held, orders a late event after the newest, and drops history with no place', async () => {
    const ring = newRing(3)
    ring.append(unitEvent(10n, 'a'), undefined)
    ring.append(unitEvent(20n, 'b'), 'a')
    ring.append(unitEvent(20n, 'b'), 'a') // another instance's copy
    ring.append(unitEvent(15n, 'c'), 'b') // delivered late, right after b
    ring.append(unitEvent(5n, 'old'), undefined) // someone's seed replay: no place
    await ring.flushed()
    const events = await ring.replay({ after: 10n, id: '10' })
    expect(events !== 'gap' && events.map((e) => e.key)).toEqual(['b', 'c'])
    // Capped at 3: a fourth evicts the first, and a point before what is left is a gap.
    ring.append(unitEvent(30n, 'd'), 'c')
    ring.append(unitEvent(40n, 'e'), 'd')
    await ring.flushed()
    expect(await ring.replay({ after: 10n, id: '10' })).toBe('gap')
    // A stretch after a gap: a resume across it is a gap too.
    ring.append(unitEvent(60n, 'g'), 'f')
    await ring.flushed()
    expect(await ring.replay({ after: 40n, id: '40' })).toBe('gap')
  })

  it('replays what an instance received the other way round after the point', async () => {
    const ring = newRing(10)
    const [w, x, y] = [unitEvent(10n, 'w'), unitEvent(20n, 'x'), unitEvent(21n, 'y')]
    // B received w, y, x and appended first; A received w, x, y.
    ring.append(w, undefined)
    ring.append(y, 'w')
    ring.append(x, 'y')
    ring.append(x, 'w')
    ring.append(y, 'x')
    await ring.flushed()
    // A client that read x last on A has not seen y; one that read y last on B has not seen x.
    const afterX = await ring.replay({ after: 20n, id: '20' })
    expect(afterX !== 'gap' && afterX.map((e) => e.key)).toEqual(['y'])
    const afterY = await ring.replay({ after: 21n, id: '21' })
    expect(afterY !== 'gap' && afterY.map((e) => e.key)).toEqual(['x'])
  })
})

describe('the shared ring in Redis, read while other instances append', () => {
  it('reports a gap, or replays every event after the point, never fewer', async () => {
    const ringPrefix = `${prefix}race${rings++}:`
    const other = redisSharedRing(redis, { prefix: ringPrefix, capacity: 5 })
    // This instance's client: right after its first read of the ring's oldest entry, the other
    // instance appends three events, which push the three oldest out of the capped stream.
    let raced = false
    const racing = new Proxy(redis, {
      get(target, property) {
        if (property === 'sendCommand') {
          return async (args: string[]) => {
            const answer = await target.sendCommand(args)
            if (!raced && args[0] === 'XRANGE' && args[2] === '-') {
              raced = true
              for (const [nano, key, prev] of [
                [60n, 'f', 'e'],
                [70n, 'g', 'f'],
                [80n, 'h', 'g'],
              ] as const) {
                other.append(unitEvent(nano, key), prev)
              }
              await other.flushed()
            }
            return answer
          }
        }
        const value = Reflect.get(target, property)
        return typeof value === 'function' ? value.bind(target) : value
      },
    }) as typeof redis
    const ring = redisSharedRing(racing, { prefix: ringPrefix, capacity: 5 })
    let prev: string | undefined
    for (const [nano, key] of [
      [10n, 'a'],
      [20n, 'b'],
      [30n, 'c'],
      [40n, 'd'],
      [50n, 'e'],
    ] as const) {
      other.append(unitEvent(nano, key), prev)
      prev = key
    }
    await other.flushed()

    const replayed = await ring.replay({ after: 20n, id: '20' })

    expect(raced).toBe(true)
    // c (30) was after the point: it comes, or the answer says a gap.
    expect(replayed === 'gap' ? 'gap' : replayed.map((e) => e.key)).toEqual(['c', 'd', 'e'])
  })
})
