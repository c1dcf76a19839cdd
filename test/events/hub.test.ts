import { afterAll, describe, expect, it } from 'vitest'
import { EngineClient } from '../../src/engine/client.ts'
import type { EngineTransport } from '../../src/engine/transport.ts'
import { type EngineEvent, isoTime, toEngineSince } from '../../src/events/event.ts'
import {
  EventHub,
  type EventHubOptions,
  type Subscription,
  type SubscriptionItem,
} from '../../src/events/hub.ts'
import { PushedByteStream } from '../../src/streams/pushed.ts'
import { engineTargetFromEnv } from '../../src/transport/docker-host.ts'
import { createNodeTransport } from '../../src/transport/node.ts'
import {
  createDirect as createOnEngine,
  direct,
  runDirect,
  testEngineEnv,
} from '../support/engine.ts'
import { startFaultProxy } from '../support/fault-proxy.ts'
import { uniqueName } from '../support/gateway.ts'
import { TEST_LABEL, TEST_RUN } from '../support/labels.ts'
import { tcpConnectionsTo } from '../support/net.ts'

/** Each test labels its containers with its own value of this, to see only its own events. */
const RUN = 'dockgate-events-run'

const transport = createNodeTransport(
  engineTargetFromEnv({ DOCKER_HOST: testEngineEnv().dockerHost }),
)
const engine = new EngineClient(transport)
const hubs: EventHub[] = []
afterAll(async () => {
  for (const hub of hubs) hub.close()
  await transport.close()
})

function newHub(options: EventHubOptions = {}, client = engine) {
  const hub = new EventHub(client, options)
  hubs.push(hub)
  return hub
}

let runs = 0
const newRun = () => `${process.pid}-${Date.now().toString(36)}-${runs++}`
const labelled = (run: string) => ({ label: [`${RUN}=${run}`] })

/** Creates a container labelled with the run straight on the engine. */
const createDirect = (run: string, name = uniqueName('ev')) =>
  createOnEngine({ name, cmd: ['true'], labels: { [TEST_LABEL]: TEST_RUN, [RUN]: run } })

/** The next `count` items, failing after `timeoutMs`. */
async function take(sub: Subscription, count: number, timeoutMs = 10_000) {
  const items: SubscriptionItem[] = []
  const deadline = Date.now() + timeoutMs
  while (items.length < count) {
    let timer: ReturnType<typeof setTimeout> | undefined
    const timeout = new Promise<'timeout'>((resolve) => {
      timer = setTimeout(() => resolve('timeout'), Math.max(0, deadline - Date.now()))
    })
    const item = await Promise.race([sub.next(), timeout])
    clearTimeout(timer)
    if (item === 'timeout') {
      throw new Error(`got ${items.length} of ${count} items: ${JSON.stringify(items)}`)
    }
    if (item === undefined) break
    items.push(item)
  }
  return items
}

/** The next `count` items, which must all be events. */
async function takeEvents(sub: Subscription, count: number, timeoutMs?: number) {
  const items = await take(sub, count, timeoutMs)
  for (const item of items) expect(item.kind, JSON.stringify(item)).toBe('event')
  expect(items).toHaveLength(count)
  return items.map((item) => (item as { event: EngineEvent }).event)
}

/**
 * A subscriber to a fresh run's events on `hub`, once the hub is connected, and the first
 * `count` of them (made one after the other).
 */
async function watchRun(hub: EventHub, count: number) {
  const run = newRun()
  const filter = labelled(run)
  const all = hub.subscribe({ filter })
  await hub.ready()
  for (let i = 0; i < count; i++) await createDirect(run)
  return { run, filter, all, events: await takeEvents(all, count) }
}

/** Nothing more arrives within `ms`. */
async function expectQuiet(sub: Subscription, ms = 300) {
  const item = await Promise.race([
    sub.next(),
    new Promise<'quiet'>((resolve) => setTimeout(() => resolve('quiet'), ms)),
  ])
  expect(item).toBe('quiet')
}

describe('EventHub against the real engine', () => {
  it('delivers a container’s lifecycle in order, curated, through each kind of filter', async () => {
    const hub = newHub()
    const run = newRun()
    const name = uniqueName('ev')
    const byLabel = hub.subscribe({ filter: { type: ['container'], ...labelled(run) } })
    const byAction = hub.subscribe({ filter: { action: ['start', 'die'], ...labelled(run) } })
    const byName = hub.subscribe({ filter: { container: [name] } })
    const otherType = hub.subscribe({ filter: { type: ['volume'], ...labelled(run) } })
    await hub.ready()

    const id = await runDirect({
      name,
      cmd: ['true'],
      labels: { [TEST_LABEL]: TEST_RUN, [RUN]: run },
    })
    expect((await direct(`/containers/${id}`, { method: 'DELETE' })).status).toBe(204)

    const events = await takeEvents(byLabel, 4)
    expect(events.map((e) => e.action)).toEqual(['create', 'start', 'die', 'destroy'])
    expect((await takeEvents(byName, 4)).map((e) => e.timeNano)).toEqual(
      events.map((e) => e.timeNano),
    )
    expect((await takeEvents(byAction, 2)).map((e) => e.action)).toEqual(['start', 'die'])
    await expectQuiet(otherType, 100)

    for (const event of events) {
      expect(Object.keys(event).sort()).toEqual(['action', 'actor', 'time', 'timeNano', 'type'])
      expect(event.type).toBe('container')
      expect(event.actor.id).toBe(id)
      expect(event.actor.name).toBe(name)
      expect(event.actor.attributes).toMatchObject({
        [RUN]: run,
        name,
        image: testEngineEnv().image,
      })
      expect(event.timeNano).toMatch(/^\d{19}$/)
      expect(event.time).toBe(isoTime(BigInt(event.timeNano)))
      expect(event.time).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z$/)
    }
    expect(events[2]!.actor.attributes.exitCode).toBe('0')

    // The exact digits the engine itself wrote (JSON.parse would have rounded them).
    const filters = encodeURIComponent(JSON.stringify({ label: [`${RUN}=${run}`] }))
    const since = toEngineSince(BigInt(events[0]!.timeNano))
    const until = toEngineSince(BigInt(events[3]!.timeNano))
    const raw = await direct(`/events?since=${since}&until=${until}&filters=${filters}`)
    const digits = raw.text
      .trim()
      .split('\n')
      .map((line) => /"timeNano":(\d+)/.exec(line)![1])
    expect(events.map((e) => e.timeNano)).toEqual(digits)
  })

  it('cuts the command line off exec actions', async () => {
    const hub = newHub()
    const run = newRun()
    const id = await runDirect({
      name: uniqueName('ev-exec'),
      cmd: ['sleep', '30'],
      labels: { [TEST_LABEL]: TEST_RUN, [RUN]: run },
      wait: false,
    })
    const sub = hub.subscribe({
      filter: { container: [id.slice(0, 12)], action: ['exec_create', 'exec_start'] },
    })
    await hub.ready()
    const exec = await direct(`/containers/${id}/exec`, {
      method: 'POST',
      body: { Cmd: ['sh', '-c', 'echo dgt-secret-cmdline'] },
    })
    expect(exec.status).toBe(201)
    const execId = (exec.json() as { Id: string }).Id
    await direct(`/exec/${execId}/start`, { method: 'POST', body: { Detach: true } })
    const events = await takeEvents(sub, 2)
    expect(events.map((e) => e.action)).toEqual(['exec_create', 'exec_start'])
    expect(JSON.stringify(events)).not.toContain('dgt-secret')
    expect(JSON.stringify(events)).not.toContain('sh -c')
    expect(events[0]!.actor.attributes.execID).toBe(execId)
    await direct(`/containers/${id}?force=true`, { method: 'DELETE' })
  })

  it('resumes after a Last-Event-ID, or from a time, exactly: no duplicate, no gap', async () => {
    const hub = newHub()
    const { run, filter, all, events } = await watchRun(hub, 4)

    const afterSecond = hub.subscribe({ filter, lastEventId: events[1]!.timeNano })
    expect(await takeEvents(afterSecond, 2)).toEqual(events.slice(2))
    const fromSecond = hub.subscribe({
      filter,
      since: toEngineSince(BigInt(events[1]!.timeNano)),
    })
    expect(await takeEvents(fromSecond, 3)).toEqual(events.slice(1))

    // Then live, without repeating anything.
    await createDirect(run)
    const [live] = await takeEvents(all, 1)
    expect(await takeEvents(afterSecond, 1)).toEqual([live])
    expect(await takeEvents(fromSecond, 1)).toEqual([live])
  })

  it('seeds its ring from the engine’s: a resume right after a gateway restart replays', async () => {
    const run = newRun()
    const filter = labelled(run)
    const before = newHub()
    const watch = before.subscribe({ filter })
    await before.ready()
    for (let i = 0; i < 3; i++) await createDirect(run)
    const events = await takeEvents(watch, 3)

    // A new hub (a restarted gateway) knows these only from the engine's own ring.
    const after = newHub()
    const resumed = after.subscribe({ filter, lastEventId: events[0]!.timeNano })
    const fresh = after.subscribe({ filter })
    expect(await takeEvents(resumed, 2)).toEqual(events.slice(1))
    // A subscriber without a resume point gets news only, never the engine's history.
    await createDirect(run)
    const [live] = await takeEvents(resumed, 1)
    expect(await takeEvents(fresh, 1)).toEqual([live])
  })

  it('answers a point older than what it holds with resync, then goes on live', async () => {
    const hub = newHub({ ringSize: 5 })
    const { run, filter, all, events } = await watchRun(hub, 7)
    const coverage = BigInt(hub.stats().coverageFrom!)
    expect(coverage).toBeGreaterThanOrEqual(BigInt(events[1]!.timeNano))
    expect(hub.stats()).toMatchObject({ ringSize: 5, ringCapacity: 5 })

    const tooOld = hub.subscribe({ filter, lastEventId: events[0]!.timeNano })
    const ancient = hub.subscribe({ filter, lastEventId: '1' })
    // (Other test files share the engine: only the newest event is sure to be still held.)
    const held = hub.subscribe({ filter, lastEventId: events[6]!.timeNano })
    expect(await take(tooOld, 1)).toEqual([{ kind: 'resync', reason: 'gap' }])
    expect(await take(ancient, 1)).toEqual([{ kind: 'resync', reason: 'gap' }])

    await createDirect(run)
    const [live] = await takeEvents(all, 1)
    expect(await takeEvents(tooOld, 1)).toEqual([live])
    expect(await takeEvents(ancient, 1)).toEqual([live])
    expect(await takeEvents(held, 1)).toEqual([live])
  })

  it('moves what a resuming reader has not read into its queue before the ring evicts it', async () => {
    const hub = newHub({ ringSize: 6 })
    const { run, filter, all, events: first } = await watchRun(hub, 3)

    // Both resume inside the ring and read nothing while the ring turns over twice.
    const unread = hub.subscribe({ filter, lastEventId: first[0]!.timeNano })
    const small = hub.subscribe({ filter, lastEventId: first[0]!.timeNano, queueLimit: 4 })
    for (let i = 0; i < 12; i++) await createDirect(run)
    const later = await takeEvents(all, 12)
    expect(BigInt(hub.stats().coverageFrom!)).toBeGreaterThan(BigInt(first[2]!.timeNano))

    // Nothing lost: the events the ring dropped meanwhile came out of the reader's queue.
    expect(await takeEvents(unread, 14)).toEqual([...first.slice(1), ...later])
    await expectQuiet(unread)
    // More than its queue holds: resync, as a reader that fell behind gets it, and the end.
    const overflowed = await take(small, 20)
    expect(overflowed.at(-1)).toEqual({ kind: 'resync', reason: 'overflow' })
    expect(overflowed.slice(0, -1).every((item) => item.kind === 'event')).toBe(true)
  })

  it('serves 200 subscribers from one upstream connection', async () => {
    const tcp = testEngineEnv().tcpHost!
    const tcpTransport = createNodeTransport(engineTargetFromEnv({ DOCKER_HOST: tcp }))
    const port = new URL(tcp.replace('tcp:', 'http:')).port
    const hub = newHub({}, new EngineClient(tcpTransport))
    try {
      const run = newRun()
      const subs = [hub.subscribe({ filter: labelled(run) })]
      await hub.ready()
      const withOne = tcpConnectionsTo(port)
      expect(withOne).toBeGreaterThanOrEqual(1)
      for (let i = 1; i < 200; i++) subs.push(hub.subscribe({ filter: labelled(run) }))
      const id = await createDirect(run)
      for (const sub of subs) expect((await takeEvents(sub, 1))[0]!.actor.id).toBe(id)
      expect(hub.stats()).toMatchObject({
        upstreamConnected: true,
        upstreamConnections: 1,
        subscribers: 200,
      })
      expect(tcpConnectionsTo(port)).toBeLessThanOrEqual(withOne)
      for (const sub of subs) sub.close()
      expect(hub.stats().subscribers).toBe(0)
      // Kept open without subscribers, so the ring keeps filling.
      expect(hub.stats().upstreamConnected).toBe(true)
    } finally {
      hub.close()
      await tcpTransport.close()
    }
  })

  it('woken in slices, every subscriber gets every event; takeReady takes what is ready, in order', async () => {
    const hub = newHub({ wakeSliceSize: 7 })
    const run = newRun()
    const subs = Array.from({ length: 30 }, () => hub.subscribe({ filter: labelled(run) }))
    await hub.ready()
    const ids = await Promise.all(Array.from({ length: 4 }, () => createDirect(run)))
    const first = await takeEvents(subs[0]!, 4)
    expect(new Set(first.map((e) => e.actor.id))).toEqual(new Set(ids))
    // The hub queued every event for everyone as it arrived: the others read them in batches.
    for (const sub of subs.slice(1)) {
      const batches = [sub.takeReady(3), sub.takeReady(3), sub.takeReady(3)]
      expect(batches.map((b) => b?.length)).toEqual([3, 1, 0])
      expect(batches.flat()).toEqual(first.map((event) => ({ kind: 'event', event })))
    }
    const last = subs.at(-1)!
    const waiting = (async () => {
      for (;;) {
        await last.whenReady()
        const items = last.takeReady()
        if (items?.length !== 0) return items
      }
    })()
    const id = await createDirect(run)
    expect((await waiting)?.map((item) => item.kind === 'event' && item.event.actor.id)).toEqual([
      id,
    ])
    last.close()
    expect(last.takeReady()).toBeUndefined()
  })

  it('onReady calls its listener on the hub’s turn, with the items ready, and once more at the end', async () => {
    const hub = newHub({ wakeSliceSize: 2 })
    const run = newRun()
    const subs = Array.from({ length: 5 }, () => hub.subscribe({ filter: labelled(run) }))
    const received = subs.map(() => [] as SubscriptionItem[])
    const wakeUps = subs.map(() => 0)
    const ended = subs.map(() => false)
    subs.forEach((sub, i) => {
      sub.onReady(() => {
        wakeUps[i]! += 1
        const items = sub.takeReady()
        if (items === undefined) ended[i] = true
        else received[i]!.push(...items)
      })
    })
    await hub.ready()
    const ids = await Promise.all(Array.from({ length: 3 }, () => createDirect(run)))
    await expect
      .poll(() => received.map((items) => items.length), { timeout: 10_000 })
      .toEqual([3, 3, 3, 3, 3])
    for (const items of received) {
      expect(new Set(items.map((item) => item.kind === 'event' && item.event.actor.id))).toEqual(
        new Set(ids),
      )
    }
    // Woken, not polled: at most once per event (fewer when events arrived together).
    for (const count of wakeUps) expect(count).toBeLessThanOrEqual(3)
    subs[0]!.close()
    expect(ended).toEqual([true, false, false, false, false])
    hub.close()
    expect(ended).toEqual([true, true, true, true, true])
  })

  it('drops a subscriber that does not read with resync, while another gets every event', async () => {
    const hub = newHub()
    const run = newRun()
    const filter = labelled(run)
    const reader = hub.subscribe({ filter })
    const stalled = hub.subscribe({ filter, queueLimit: 5 })
    await hub.ready()
    const ids = new Set<string>()
    for (let batch = 0; batch < 3; batch++) {
      const created = await Promise.all(Array.from({ length: 10 }, () => createDirect(run)))
      for (const id of created) ids.add(id)
    }
    const events = await takeEvents(reader, 30)
    expect(new Set(events.map((e) => e.actor.id))).toEqual(ids)
    expect(hub.stats().subscribers).toBe(1)

    const items = await take(stalled, 10)
    expect(items).toHaveLength(6)
    expect(items.slice(0, 5).map((i) => i.kind)).toEqual(Array(5).fill('event'))
    expect(items.slice(0, 5)).toEqual(events.slice(0, 5).map((event) => ({ kind: 'event', event })))
    expect(items[5]).toEqual({ kind: 'resync', reason: 'overflow' })
    expect(await stalled.next()).toBeUndefined()
  })

  it('reconnects after the engine connection breaks and loses nothing', async () => {
    const tcp = new URL(testEngineEnv().tcpHost!.replace('tcp:', 'http:'))
    const proxy = await startFaultProxy({ host: tcp.hostname, port: Number(tcp.port) })
    const proxied = createNodeTransport(engineTargetFromEnv({ DOCKER_HOST: proxy.dockerHost }))
    const hub = newHub({ backoffInitialMs: 20, backoffMaxMs: 200 }, new EngineClient(proxied))
    try {
      const run = newRun()
      const sub = hub.subscribe({ filter: labelled(run) })
      await hub.ready()
      const a = await createDirect(run)
      expect((await takeEvents(sub, 1))[0]!.actor.id).toBe(a)

      await proxy.down()
      await expect.poll(() => hub.stats().upstreamConnected, { timeout: 5_000 }).toBe(false)
      // While the gateway is cut off, the engine's ring still records these.
      const b = await createDirect(run)
      const c = await createDirect(run)
      // Reconnect attempts fail meanwhile, with backoff.
      await expect
        .poll(() => hub.stats().upstreamConnections, { timeout: 5_000 })
        .toBeGreaterThan(2)
      await proxy.up()

      const events = await takeEvents(sub, 2)
      expect(events.map((e) => e.actor.id)).toEqual([b, c])
      expect(hub.stats().upstreamConnected).toBe(true)
      const d = await createDirect(run)
      expect((await takeEvents(sub, 1))[0]!.actor.id).toBe(d)
    } finally {
      hub.close()
      await proxied.close()
      await proxy.close()
    }
  })

  it('rejects ready() with a 503 problem while the engine cannot be reached', async () => {
    const unreachable = createNodeTransport(
      engineTargetFromEnv({ DOCKER_HOST: 'tcp://127.0.0.1:1' }),
    )
    const hub = newHub({ backoffInitialMs: 10_000 }, new EngineClient(unreachable))
    try {
      await expect(hub.ready()).rejects.toMatchObject({ status: 503, code: 'engine-unavailable' })
      // Waiting to retry: a new caller learns it at once.
      await expect(hub.ready()).rejects.toMatchObject({ status: 503 })
      expect(hub.stats()).toMatchObject({ upstreamConnected: false, upstreamConnections: 0 })
    } finally {
      hub.close()
      await unreachable.close()
    }
  })
})

describe('EventHub against a scripted engine', () => {
  it('skips and counts malformed events', async () => {
    const fake = scriptedEngine()
    const hub = newHub({}, new EngineClient(fake.transport))
    const sub = hub.subscribe()
    await hub.ready()
    fake.emitRaw('{"Type":"bogus","Action":"x","Actor":{"ID":"a"},"timeNano":1}')
    fake.emitRaw('{"Type":"container","Action":"create","timeNano":2}')
    fake.emitRaw('{"Type":"container","Action":":","Actor":{"ID":"a"},"timeNano":3}')
    fake.emitRaw('{"Type":"container","Action":"create","Actor":{"ID":"a"},"timeNano":4.5}')
    const good = fake.emit('start')
    expect((await takeEvents(sub, 1))[0]!.timeNano).toBe(good)
    expect(hub.stats().malformed).toBe(4)
  })

  it('wakes the first slice as soon as a chunk is read, with all its events; the rest on later turns', async () => {
    const fake = scriptedEngine()
    const hub = newHub({ wakeSliceSize: 2 }, new EngineClient(fake.transport))
    const subs = Array.from({ length: 5 }, () => hub.subscribe())
    await hub.ready()
    let turned = false
    const wakeUps = subs.map((sub) => {
      const seen: { turned: boolean; events: string[] }[] = []
      sub.onReady(() => {
        const items = sub.takeReady() ?? []
        seen.push({
          turned,
          events: items.map((i) => (i.kind === 'event' ? i.event.timeNano : '')),
        })
      })
      return seen
    })
    // Runs before any turn the hub asks for after this.
    setImmediate(() => {
      turned = true
    })
    const times = fake.emitTogether(['create', 'start', 'die'])
    await expect.poll(() => wakeUps.every((seen) => seen.length > 0)).toBe(true)
    expect(wakeUps).toEqual([
      [{ turned: false, events: times }],
      [{ turned: false, events: times }],
      [{ turned: true, events: times }],
      [{ turned: true, events: times }],
      [{ turned: true, events: times }],
    ])
  })

  it('hides the seed replay from new subscribers and replays it to resuming ones', async () => {
    const fake = scriptedEngine()
    const history = [fake.emit('create'), fake.emit('start'), fake.emit('die')]
    const hub = newHub({}, new EngineClient(fake.transport))
    const fresh = hub.subscribe()
    const resumed = hub.subscribe({ lastEventId: history[0] })
    const since = hub.subscribe({ since: toEngineSince(BigInt(history[1]!)) })
    const tooOld = hub.subscribe({ lastEventId: '1000' })
    await hub.ready()
    expect((await takeEvents(resumed, 2)).map((e) => e.timeNano)).toEqual(history.slice(1))
    expect((await takeEvents(since, 2)).map((e) => e.timeNano)).toEqual(history.slice(1))
    expect(await take(tooOld, 1)).toEqual([{ kind: 'resync', reason: 'gap' }])
    const news = fake.emit('destroy')
    for (const sub of [fresh, resumed, since, tooOld]) {
      expect((await takeEvents(sub, 1)).map((e) => e.timeNano)).toEqual([news])
    }
    expect(hub.stats().coverageFrom).toBe(history[0])
  })

  it('gives a resume on a silent, empty engine a resync once it has settled', async () => {
    const fake = scriptedEngine()
    const hub = newHub({ settleMs: 50 }, new EngineClient(fake.transport))
    const resumed = hub.subscribe({ lastEventId: '1795000000000000000' })
    await hub.ready()
    expect(await take(resumed, 1)).toEqual([{ kind: 'resync', reason: 'gap' }])
    const later = hub.subscribe({ lastEventId: '1795000000000000000' })
    expect(await take(later, 1)).toEqual([{ kind: 'resync', reason: 'gap' }])
    const news = fake.emit('create')
    expect((await takeEvents(resumed, 1))[0]!.timeNano).toBe(news)
  })

  it('continues across a reconnect when the engine still holds the last event', async () => {
    const fake = scriptedEngine()
    const hub = newHub({ backoffInitialMs: 5, backoffMaxMs: 20 }, new EngineClient(fake.transport))
    const sub = hub.subscribe()
    await hub.ready()
    const before = [fake.emit('create'), fake.emit('start')]
    expect((await takeEvents(sub, 2)).map((e) => e.timeNano)).toEqual(before)
    fake.down()
    const during = [fake.emit('die'), fake.emit('destroy')]
    await expect.poll(() => hub.stats().upstreamConnections).toBeGreaterThan(2)
    fake.up()
    expect((await takeEvents(sub, 2)).map((e) => e.timeNano)).toEqual(during)
    await expectQuiet(sub, 100)
    // From a little before the last event: the engine's replay stops at the first older event.
    expect(fake.requests.filter((r) => r.includes('/events')).at(-1)).toContain(
      `since=${toEngineSince(BigInt(before[1]!) - 100_000_000n)}`,
    )
  })

  it('sends resync when the engine restarted and the replay cannot reach the last event', async () => {
    const fake = scriptedEngine()
    const hub = newHub({ backoffInitialMs: 5, backoffMaxMs: 20 }, new EngineClient(fake.transport))
    const sub = hub.subscribe()
    await hub.ready()
    const first = fake.emit('create')
    expect((await takeEvents(sub, 1))[0]!.timeNano).toBe(first)
    fake.restart()
    fake.down()
    const after = fake.emit('create')
    fake.up()
    expect(await take(sub, 2)).toEqual([
      { kind: 'resync', reason: 'gap' },
      { kind: 'event', event: expect.objectContaining({ timeNano: after }) },
    ])
    expect(hub.stats().coverageFrom).toBe(after)
    // A resume from before the restart cannot be served; one after it can.
    expect(await take(hub.subscribe({ lastEventId: first }), 1)).toEqual([
      { kind: 'resync', reason: 'gap' },
    ])
  })

  it('sends resync at once when a restarted engine stays silent', async () => {
    const fake = scriptedEngine()
    const hub = newHub({ backoffInitialMs: 5, backoffMaxMs: 20 }, new EngineClient(fake.transport))
    const sub = hub.subscribe()
    await hub.ready()
    fake.emit('create')
    await takeEvents(sub, 1)
    fake.restart()
    expect(await take(sub, 1)).toEqual([{ kind: 'resync', reason: 'gap' }])
    expect(hub.stats().coverageFrom).toBeNull()
  })

  it('sends resync when the engine’s ring rotated past the last event while disconnected', async () => {
    const fake = scriptedEngine({ ringLimit: 3 })
    const hub = newHub({ backoffInitialMs: 5, backoffMaxMs: 20 }, new EngineClient(fake.transport))
    const sub = hub.subscribe()
    await hub.ready()
    fake.emit('create')
    await takeEvents(sub, 1)
    fake.down()
    const during = Array.from({ length: 5 }, () => fake.emit('update'))
    fake.up()
    const items = await take(sub, 4)
    expect(items[0]).toEqual({ kind: 'resync', reason: 'gap' })
    expect(items.slice(1).map((i) => (i as { event: EngineEvent }).event.timeNano)).toEqual(
      during.slice(2),
    )
  })

  it.each([
    ['read', false],
    ['pushed', true],
  ])('ends every subscription on close() and stops the upstream (a %s body)', async (_, pushed) => {
    const fake = scriptedEngine({ pushed })
    const hub = newHub({}, new EngineClient(fake.transport))
    const sub = hub.subscribe()
    await hub.ready()
    expect(fake.openStreams()).toBe(1)
    const pending = sub.next()
    hub.close()
    expect(await pending).toBeUndefined()
    expect(fake.openStreams()).toBe(0)
    expect(hub.stats()).toMatchObject({ upstreamConnected: false, subscribers: 0 })
    expect(await hub.subscribe().next()).toBeUndefined()
  })

  it('gives a reader the ring drains in the middle of a chunk each of its events once, in order', async () => {
    const fake = scriptedEngine()
    const hub = newHub({ ringSize: 4 }, new EngineClient(fake.transport))
    const all = hub.subscribe()
    await hub.ready()
    const first = [fake.emit('create'), fake.emit('start'), fake.emit('die')]
    await takeEvents(all, 3)
    // It resumes inside the ring and reads nothing while one chunk brings six events: the ring
    // evicts what it has not read in the middle of the chunk (a hub that pushed a chunk's events
    // only at its end, and not before such a drain, gave it the chunk's first events twice).
    const reader = hub.subscribe({ lastEventId: first[0] })
    const burst = fake.emitTogether(['rename', 'update', 'pause', 'unpause', 'kill', 'destroy'])
    await takeEvents(all, 6)
    const read = await takeEvents(reader, 8)
    expect(read.map((e) => e.timeNano)).toEqual([...first.slice(1), ...burst])
    await expectQuiet(reader, 100)
  })

  it('resumes a reader woken on the hub’s turn at the first event, and gives it what follows once', async () => {
    const fake = scriptedEngine()
    // The client read `known` from an earlier gateway; this one connects after it happened.
    const known = fake.emit('create')
    const hub = newHub({}, new EngineClient(fake.transport))
    const sub = hub.subscribe({ lastEventId: known })
    const delivered: string[] = []
    sub.onReady(() => {
      for (const item of sub.takeReady() ?? []) {
        delivered.push(item.kind === 'event' ? item.event.timeNano : item.reason)
      }
    })
    await hub.ready()
    const next = fake.emitTogether(['start', 'die'])
    await expect.poll(() => delivered.length).toBeGreaterThan(1)
    await new Promise((resolve) => setTimeout(resolve, 50))
    expect(delivered).toEqual(next)
  })

  it('takes a pushed body in the transport’s own call: the event is delivered before the push returns', async () => {
    const fake = scriptedEngine({ pushed: true })
    const hub = newHub({}, new EngineClient(fake.transport))
    const sub = hub.subscribe()
    await hub.ready()
    const delivered: string[] = []
    sub.onReady(() => {
      for (const item of sub.takeReady() ?? []) {
        if (item.kind === 'event') delivered.push(item.event.timeNano)
      }
    })
    // No read, no promise job between the engine's bytes and the subscriber's wake-up.
    const first = fake.emit('create')
    expect(delivered).toEqual([first])
    const together = fake.emitTogether(['start', 'die'])
    expect(delivered).toEqual([first, ...together])
  })

  it('reconnects from the last event when a pushed line does not decode, losing nothing', async () => {
    const fake = scriptedEngine({ pushed: true })
    const hub = newHub({ backoffInitialMs: 5, backoffMaxMs: 20 }, new EngineClient(fake.transport))
    const sub = hub.subscribe()
    await hub.ready()
    const before = fake.emit('create')
    expect((await takeEvents(sub, 1)).map((e) => e.timeNano)).toEqual([before])
    fake.emitRaw('{"Type":"container",')
    await expect.poll(() => hub.stats().upstreamConnections).toBe(2)
    const after = fake.emit('start')
    expect((await takeEvents(sub, 1)).map((e) => e.timeNano)).toEqual([after])
    await expectQuiet(sub, 100)
    expect(fake.openStreams()).toBe(1)
    expect(fake.requests.filter((r) => r.includes('/events')).at(-1)).toContain(
      `since=${toEngineSince(BigInt(before) - 100_000_000n)}`,
    )
  })
})

/** An open `/events` stream of the scripted engine. */
interface OpenStream {
  enqueue(bytes: Uint8Array): void
  error(error: unknown): void
}

/**
 * An engine in memory, scripted by the test: its event ring (256 by default), `/events` with
 * `since`/`until` as the engine answers it, restarts (the ring is lost) and outages. With
 * `pushed`, a followed `/events` body is a {@link PushedByteStream}, as the Node transport's.
 */
function scriptedEngine(options: { ringLimit?: number; pushed?: boolean } = {}) {
  const ringLimit = options.ringLimit ?? 256
  const encoder = new TextEncoder()
  let ring: { nano: bigint; line: string }[] = []
  const open = new Set<OpenStream>()
  const requests: string[] = []
  let reachable = true
  let clock = 1_795_900_000_000_000_000n
  let actors = 0

  const cut = () => {
    for (const controller of open) controller.error(new TypeError('terminated'))
    open.clear()
  }
  /** Lines being gathered into one chunk (`emitTogether`). */
  let held: string[] | undefined
  const send = (text: string) => {
    if (held) {
      held.push(text)
      return
    }
    for (const controller of open) controller.enqueue(encoder.encode(`${text}\n`))
  }
  const parse = (time: string | null) => {
    if (time === null) return undefined
    const [s = '0', ns = ''] = time.split('.')
    return BigInt(s) * 1_000_000_000n + BigInt(ns.padEnd(9, '0'))
  }

  const transport: EngineTransport = {
    description: 'scripted',
    close: async () => {},
    async fetch(request) {
      const url = new URL(request.url)
      requests.push(url.pathname + url.search)
      if (!reachable) throw new TypeError('fetch failed')
      if (url.pathname === '/_ping') {
        return new Response('OK', { headers: { 'api-version': '1.41' } })
      }
      if (url.pathname.endsWith('/info')) return Response.json({ SystemTime: isoTime(clock) })
      if (!url.pathname.endsWith('/events')) return new Response('{}', { status: 404 })
      const since = parse(url.searchParams.get('since')) ?? 0n
      const until = parse(url.searchParams.get('until'))
      const replay = ring
        .filter((e) => e.nano >= since && (until === undefined || e.nano <= until))
        .map((e) => `${e.line}\n`)
      if (until !== undefined) return new Response(replay.join(''))
      const { body, stream } = options.pushed ? pushedBody() : readBody()
      for (const line of replay) stream.enqueue(encoder.encode(line))
      open.add(stream)
      request.signal.addEventListener('abort', () => {
        if (!open.delete(stream)) return
        stream.error(request.signal.reason)
      })
      return new Response(body)
    },
  }

  function readBody() {
    let controller!: ReadableStreamDefaultController<Uint8Array>
    const body = new ReadableStream<Uint8Array>({
      start(c) {
        controller = c
      },
      cancel() {
        open.delete(stream)
      },
    })
    const stream: OpenStream = {
      enqueue: (bytes) => controller.enqueue(bytes),
      error: (error) => controller.error(error),
    }
    return { body, stream }
  }

  function pushedBody() {
    const body = new PushedByteStream({
      pause() {},
      resume() {},
      cancel() {
        open.delete(stream)
      },
    })
    const stream: OpenStream = {
      enqueue: (bytes) => body.push(bytes),
      error: (error) => body.error(error),
    }
    return { body, stream }
  }

  return {
    transport,
    requests,
    openStreams: () => open.size,
    /** A container event now; answers its timeNano. */
    emit(action: string): string {
      clock += 1_000n
      actors++
      const attributes = JSON.stringify({ name: `c${actors}` })
      const line =
        `{"status":"${action}","id":"c${actors}","Type":"container","Action":"${action}",` +
        `"Actor":{"ID":"c${actors}","Attributes":${attributes}},"scope":"local",` +
        `"time":${clock / 1_000_000_000n},"timeNano":${clock}}`
      ring.push({ nano: clock, line })
      if (ring.length > ringLimit) ring.shift()
      send(line)
      return String(clock)
    },
    emitRaw: send,
    /** Container events now, in one chunk of the stream; answers their timeNanos. */
    emitTogether(actions: readonly string[]): string[] {
      held = []
      const times = actions.map((action) => this.emit(action))
      const lines = held
      held = undefined
      send(lines.join('\n'))
      return times
    },
    /** The engine restarts: its connections break and its ring is empty. */
    restart() {
      cut()
      ring = []
    },
    down() {
      reachable = false
      cut()
    },
    up() {
      reachable = true
    },
  }
}
