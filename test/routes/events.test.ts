import { beforeAll, describe, expect, it } from 'vitest'
import { EventHub } from '../../src/events/hub.ts'
import { engineTargetFromEnv } from '../../src/transport/docker-host.ts'
import { createNodeTransport } from '../../src/transport/node.ts'
import {
  createDirect as createOnEngine,
  direct,
  runDirect,
  testEngineEnv,
} from '../support/engine.ts'
import { type TestGateway, testGateway, uniqueName } from '../support/gateway.ts'
import { TEST_LABEL, TEST_RUN } from '../support/labels.ts'
import { tcpConnectionsTo } from '../support/net.ts'
import { readSse, type SseReader } from '../support/sse.ts'
import type { ParsedSseEvent } from '../support/sse-parse.ts'

/** Each test labels its containers with its own value of this, to see only its own events. */
const RUN = 'dockgate-events-run'

let gw: TestGateway
let hub: EventHub

beforeAll(async () => {
  gw = await testGateway({
    // No read model: it would be one more subscriber of the hub these tests count.
    settings: { heartbeatMs: 200, readModel: false },
    events: (engine) => {
      hub = new EventHub(engine)
      return hub
    },
  })
})

let runs = 0
const newRun = () => `r${process.pid}-${Date.now().toString(36)}-${runs++}`

/** Creates a container labelled with the run straight on the engine. */
const createDirect = (run: string, name = uniqueName('ev')) =>
  createOnEngine({ name, cmd: ['true'], labels: { [TEST_LABEL]: TEST_RUN, [RUN]: run } })

const query = (params: [string, string][]) => `?${new URLSearchParams(params)}`
const byRun = (run: string): [string, string][] => [['label', `${RUN}=${run}`]]

async function open(
  path: string,
  headers: Record<string, string> = {},
  gateway: TestGateway = gw,
): Promise<SseReader> {
  const response = await gateway.call(path, { headers })
  expect(response.status, await peekProblem(response)).toBe(200)
  return readSse(response)
}

async function peekProblem(response: Response) {
  return response.status === 200 ? '' : await response.clone().text()
}

const data = (event: ParsedSseEvent) => JSON.parse(event.data)

describe('GET /v1/events', () => {
  it('streams a container’s lifecycle as server-sent events, filtered several ways', async () => {
    const run = newRun()
    const name = uniqueName('ev')
    const response = await gw.call(`/v1/events${query([['type', 'container'], ...byRun(run)])}`)
    expect(response.status).toBe(200)
    expect(response.headers.get('content-type')).toMatch(/^text\/event-stream/)
    expect(response.headers.get('cache-control')).toBe('no-cache')
    const byLabel = readSse(response)
    const byAction = await open(
      `/v1/events${query([['action', 'start'], ['action', 'die'], ...byRun(run)])}`,
    )
    const byName = await open(`/v1/events${query([['container', name]])}`)
    const byImage = await open(
      `/v1/events${query([['image', testEngineEnv().image], ['action', 'destroy'], ...byRun(run)])}`,
    )

    const id = await runDirect({
      name,
      cmd: ['true'],
      labels: { [TEST_LABEL]: TEST_RUN, [RUN]: run },
    })
    await direct(`/containers/${id}`, { method: 'DELETE' })

    const lifecycle = await byLabel.take(4)
    expect(lifecycle.map((e) => e.event)).toEqual(Array(4).fill('container'))
    expect(lifecycle.map((e) => data(e).action)).toEqual(['create', 'start', 'die', 'destroy'])
    for (const event of lifecycle) {
      const body = data(event)
      expect(event.id).toBe(body.timeNano)
      expect(body.timeNano).toMatch(/^\d{19}$/)
      expect(body).toMatchObject({
        type: 'container',
        actor: { id, name, attributes: { [RUN]: run, name } },
      })
    }
    expect((await byAction.take(2)).map((e) => data(e).action)).toEqual(['start', 'die'])
    expect((await byName.take(4)).map((e) => e.id)).toEqual(lifecycle.map((e) => e.id))
    expect((await byImage.take(1)).map((e) => data(e).action)).toEqual(['destroy'])

    // The exact digits the engine wrote.
    const since = `${lifecycle[0]!.id!.slice(0, -9)}.${lifecycle[0]!.id!.slice(-9)}`
    const until = `${lifecycle[3]!.id!.slice(0, -9)}.${lifecycle[3]!.id!.slice(-9)}`
    const filters = encodeURIComponent(JSON.stringify({ label: [`${RUN}=${run}`] }))
    const raw = await direct(`/events?since=${since}&until=${until}&filters=${filters}`)
    const digits = raw.text
      .trim()
      .split('\n')
      .map((line) => /"timeNano":(\d+)/.exec(line)![1])
    expect(lifecycle.map((e) => e.id)).toEqual(digits)
    for (const reader of [byLabel, byAction, byName, byImage]) await reader.close()
  })

  it('cuts the command line off exec events', async () => {
    const run = newRun()
    const id = await runDirect({
      name: uniqueName('ev-exec'),
      cmd: ['sleep', '30'],
      labels: { [TEST_LABEL]: TEST_RUN, [RUN]: run },
      wait: false,
    })
    const reader = await open(
      `/v1/events${query([
        ['container', id],
        ['action', 'exec_create'],
        ['action', 'exec_start'],
      ])}`,
    )
    const exec = await direct(`/containers/${id}/exec`, {
      method: 'POST',
      body: { Cmd: ['sh', '-c', 'echo dgt-secret-cmdline'] },
    })
    const execId = (exec.json() as { Id: string }).Id
    await direct(`/exec/${execId}/start`, { method: 'POST', body: { Detach: true } })
    const received = await reader.take(2)
    expect(received.map((e) => data(e).action)).toEqual(['exec_create', 'exec_start'])
    expect(received.map((e) => e.data).join('\n')).not.toContain('dgt-secret')
    await reader.close()
    await direct(`/containers/${id}?force=true`, { method: 'DELETE' })
  })

  it('resumes with Last-Event-ID exactly after the last event received', async () => {
    const run = newRun()
    const path = `/v1/events${query(byRun(run))}`
    const first = await open(path)
    for (let i = 0; i < 5; i++) await createDirect(run)
    const all = await first.take(5)
    await first.close()

    const resumed = await open(path, { 'last-event-id': all[1]!.id! })
    expect((await resumed.take(3)).map((e) => e.id)).toEqual(all.slice(2).map((e) => e.id))
    const id = await createDirect(run)
    const [live] = await resumed.take(1)
    expect(data(live!).actor.id).toBe(id)
    await resumed.close()

    // ?cursor= does what Last-Event-ID does (a new EventSource cannot set the header)...
    const byCursor = await open(`/v1/events${query([...byRun(run), ['cursor', all[2]!.id!]])}`)
    expect((await byCursor.take(3)).map((e) => e.id)).toEqual([all[3]!.id, all[4]!.id, live!.id])
    await byCursor.close()
    // ...and the header wins over it.
    const both = await open(`/v1/events${query([...byRun(run), ['cursor', all[0]!.id!]])}`, {
      'last-event-id': all[3]!.id!,
    })
    expect((await both.take(2)).map((e) => e.id)).toEqual([all[4]!.id, live!.id])
    await both.close()
    expect((await gw.call('/v1/events?cursor=abc')).status).toBe(400)

    // `since` replays from a time, inclusive; the header wins over it.
    const fromTime = await open(
      `/v1/events${query([...byRun(run), ['since', `${all[3]!.id!.slice(0, -9)}.${all[3]!.id!.slice(-9)}`]])}`,
    )
    expect((await fromTime.take(3)).map((e) => e.id)).toEqual([all[3]!.id, all[4]!.id, live!.id])
    await fromTime.close()
  })

  it('sends resync for a Last-Event-ID older than what it holds, then live events', async () => {
    const small = await testGateway({ settings: { eventsRingSize: 3 } })
    const run = newRun()
    const path = `/v1/events${query(byRun(run))}`
    const first = await open(path, {}, small)
    for (let i = 0; i < 5; i++) await createDirect(run)
    const all = await first.take(5)
    await first.close()

    const resumed = await open(path, { 'last-event-id': all[0]!.id! }, small)
    const [resync] = await resumed.take(1)
    expect(resync!.event).toBe('resync')
    expect(data(resync!)).toEqual({ reason: 'gap' })
    const id = await createDirect(run)
    const [live] = await resumed.take(1)
    expect(live!.event).toBe('container')
    expect(data(live!).actor.id).toBe(id)
    await resumed.close()
  })

  it('sends resync for a Last-Event-ID later than any event can be, then live events', async () => {
    const run = newRun()
    // Later than the newest event and the clock by more than a minute: of another engine, or of
    // one whose clock stepped back. Skipping up to it would lose every event until then, silently.
    const later = (BigInt(Date.now()) * 1_000_000n + 3_600_000_000_000n).toString()
    for (const id of [later, '99999999999999999999']) {
      const resumed = await open(`/v1/events${query(byRun(run))}`, { 'last-event-id': id })
      const [resync] = await resumed.take(1)
      expect(resync!.event).toBe('resync')
      expect(data(resync!)).toEqual({ reason: 'gap' })
      const created = await createDirect(run)
      const [live] = await resumed.take(1)
      expect(data(live!).actor.id).toBe(created)
      await resumed.close()
    }
  })

  it('ends a client that reads too slowly with resync, and Last-Event-ID then continues', async () => {
    // Events go out in batches: a one-byte stream buffer makes every batch wait for the socket.
    const slow = await testGateway({ settings: { eventsQueueLimit: 2, sseBufferBytes: 1 } })
    const run = newRun()
    const path = `/v1/events${query(byRun(run))}`
    const response = await slow.call(path)
    expect(response.status).toBe(200)
    // Nobody reads the body while 100 events happen: the stream's buffer and the queue fill up.
    const ids: string[] = []
    for (let batch = 0; batch < 10; batch++) {
      ids.push(...(await Promise.all(Array.from({ length: 10 }, () => createDirect(run)))))
    }
    const reader = readSse(response)
    const received: ParsedSseEvent[] = []
    for (let event = await reader.next(); event; event = await reader.next()) {
      received.push(event)
    }
    const last = received.at(-1)!
    expect(last.event).toBe('resync')
    expect(data(last)).toEqual({ reason: 'overflow' })
    const delivered = received.slice(0, -1)
    expect(delivered.length).toBeGreaterThan(2)
    expect(delivered.length).toBeLessThan(100)

    // Everything up to the overflow came in order; a resume delivers the rest, no gap, no dup.
    const resumed = await open(path, { 'last-event-id': delivered.at(-1)!.id! }, slow)
    const rest: ParsedSseEvent[] = []
    while (delivered.length + rest.length < 100) {
      // Read promptly this time (the queue holds 2; the ring replay needs none).
      const [event] = await resumed.take(1)
      rest.push(event!)
    }
    const all = [...delivered, ...rest].map((e) => data(e).actor.id)
    expect(new Set(all).size).toBe(100)
    expect(new Set(all)).toEqual(new Set(ids))
    await resumed.close()
  })

  it('removes the subscriber when the client hangs up', async () => {
    await expect.poll(() => hub.stats().subscribers, { timeout: 5_000 }).toBe(0)
    const readers = [await open('/v1/events'), await open('/v1/events?type=image')]
    expect(hub.stats().subscribers).toBe(2)
    await readers[0]!.close()
    await expect.poll(() => hub.stats().subscribers, { timeout: 5_000 }).toBe(1)
    await readers[1]!.close()
    await expect.poll(() => hub.stats().subscribers, { timeout: 5_000 }).toBe(0)
    // The upstream stays, so its ring keeps filling for later resumes.
    expect(hub.stats()).toMatchObject({ upstreamConnected: true, upstreamConnections: 1 })
  })

  it('serves 200 clients from one engine connection', async () => {
    const tcp = testEngineEnv().tcpHost!
    const port = new URL(tcp.replace('tcp:', 'http:')).port
    let tcpHub!: EventHub
    const overTcp = await testGateway({
      transport: createNodeTransport(engineTargetFromEnv({ DOCKER_HOST: tcp })),
      // No read model: its subscription and inspects would add to what the kernel counts.
      settings: {
        maxStreamsPerPrincipal: 500,
        rateLimitBurst: 1_000,
        rateLimitPerSecond: 1_000,
        readModel: false,
      },
      events: (engine) => {
        tcpHub = new EventHub(engine)
        return tcpHub
      },
    })
    const run = newRun()
    const path = `/v1/events${query(byRun(run))}`
    const readers = [await open(path, {}, overTcp)]
    const withOne = tcpConnectionsTo(port)
    expect(withOne).toBeGreaterThanOrEqual(1)
    for (let i = 1; i < 200; i++) readers.push(await open(path, {}, overTcp))
    const id = await createDirect(run)
    for (const reader of readers) expect(data((await reader.take(1))[0]!).actor.id).toBe(id)
    expect(tcpHub.stats()).toMatchObject({ upstreamConnections: 1, subscribers: 200 })
    expect(tcpConnectionsTo(port)).toBeLessThanOrEqual(withOne)
    await Promise.all(readers.map((reader) => reader.close()))
    await expect.poll(() => tcpHub.stats().subscribers, { timeout: 5_000 }).toBe(0)
  })

  it('validates its filters, its time and the Last-Event-ID header', async () => {
    const bad: [string, Record<string, string>, string][] = [
      ['?type=bogus', {}, 'query.type'],
      ['?type=container&type=nope', {}, 'query.type'],
      ['?action=Start!', {}, 'query.action'],
      ['?container=..', {}, 'query.container'],
      ['?image=UPPER', {}, 'query.image'],
      ['?label=%3Dx', {}, 'query.label'],
      ['?since=yesterday', {}, 'query.since'],
      ['', { 'last-event-id': 'abc' }, 'header.last-event-id'],
      ['', { 'last-event-id': '123456789012345678901' }, 'header.last-event-id'],
      // A merged stream's id on a one-engine stream: named where it came from.
      ['?cursor=default:1', {}, 'query.cursor'],
      ['?cursor=1', { 'last-event-id': 'default:1' }, 'header.last-event-id'],
    ]
    for (const [search, headers, name] of bad) {
      const { status, body } = await gw.json(`/v1/events${search}`, { headers })
      expect(status, search).toBe(400)
      expect(body.type).toBe('urn:dockgate:problem:validation-failed')
      const names: string[] = body.invalidParams.map((p: { name: string }) => p.name)
      expect(
        names.some((n) => n.startsWith(name)),
        `${search} ${names}`,
      ).toBe(true)
    }
    const empty = await open('/v1/events', { 'last-event-id': '' })
    await empty.close()
  })

  it('needs a token with events:read', async () => {
    expect((await gw.json('/v1/events', { role: null })).status).toBe(401)
    expect((await gw.json('/v1/events', { role: 'reader' })).status).toBe(403)
    const allowed = await gw.call('/v1/events', { role: 'nobody' })
    expect(allowed.status).toBe(200)
    await allowed.body!.cancel()
  })

  it('answers 503 when the engine cannot be reached', async () => {
    const down = await testGateway({
      transport: createNodeTransport(engineTargetFromEnv({ DOCKER_HOST: 'tcp://127.0.0.1:1' })),
    })
    const { status, body, response } = await down.json('/v1/events')
    expect(status).toBe(503)
    expect(body.type).toBe('urn:dockgate:problem:engine-unavailable')
    expect(response.headers.get('retry-after')).toBeTruthy()
  })

  it('ends with `shutdown` when the gateway stops', async () => {
    const shutdown = new AbortController()
    const stopping = await testGateway({ shutdown: shutdown.signal })
    const reader = await open('/v1/events', {}, stopping)
    shutdown.abort()
    const rest = await reader.until('shutdown')
    expect(rest.at(-1)!.event).toBe('shutdown')
    expect(await reader.next()).toBeUndefined()
  })
})
