/**
 * Events and logs resume on any instance: two in-process gateways on the same engine, each with
 * its own upstream, sharing the replay ring through the project's Redis (`DOCKGATE_TEST_STORE`).
 * Instance B keeps a local ring of 2 events, so what it replays past those comes from the shared
 * ring.
 */
import { createClient } from '@redis/client'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { EventHub } from '../../src/events/hub.ts'
import { memorySharedRing } from '../../src/events/shared.ts'
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
const hubs: EventHub[] = []

beforeAll(async () => {
  redis = createClient({ url: STORE })
  await redis.connect()
  const shared = () => redisSharedRing(redis, { prefix, capacity: 1_000 })
  const gateway = (ringSize: number, withShared = true) =>
    testGateway({
      settings: { heartbeatMs: 200, readModel: false },
      events: (engine) => {
        const hub = new EventHub(engine, { ringSize, ...(withShared ? { shared: shared() } : {}) })
        hubs.push(hub)
        return hub
      },
    })
  a = await gateway(10_000)
  b = await gateway(2)
  lonely = await gateway(2, false)
  // Each instance holds its own upstream from the start, as a served one does.
  for (const hub of hubs) hub.start()
  await Promise.all(hubs.map((hub) => hub.ready()))
})

afterAll(async () => {
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
  it('read on A, more while away, resumed on B: the exact sequence, no gap, no duplicate', async () => {
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
  })

  it('without the shared ring, the same resume on an instance whose ring cannot reach it is a resync', async () => {
    const run = newRun()
    const client = await open(a, eventsPath(run))
    await createDirect({ name: uniqueName('sh'), cmd: ['true'], labels: labels(run) })
    const [first] = await takeEvents(client, 1)
    await client.close()
    await runDirect({ name: uniqueName('sh'), cmd: ['true'], labels: labels(run) })
    await new Promise((resolve) => setTimeout(resolve, 300))
    const resumed = await open(lonely, eventsPath(run), { 'last-event-id': first!.id! })
    const [resync] = await takeEvents(resumed, 1)
    expect(resync?.event).toBe('resync')
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

describe('the shared ring kept in memory (two hubs in one process)', () => {
  it('drops what is held, orders a late event after the newest, and drops history with no place', () => {
    const ring = memorySharedRing(3)
    const event = (nano: bigint, key: string) => ({
      event: {
        type: 'container' as const,
        action: 'create',
        actor: { id: key, name: null, attributes: {} },
        time: '',
        timeNano: nano.toString(),
      },
      nano,
      key,
    })
    ring.append(event(10n, 'a'), undefined)
    ring.append(event(20n, 'b'), 'a')
    ring.append(event(20n, 'b'), 'a') // another instance's copy
    ring.append(event(15n, 'c'), 'b') // delivered late, right after b
    ring.append(event(5n, 'old'), undefined) // someone's seed replay: no place
    return ring.replay({ after: 10n, id: '10' }).then((events) => {
      expect(events !== 'gap' && events.map((e) => e.key)).toEqual(['b', 'c'])
    })
  })
})
