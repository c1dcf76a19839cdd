/**
 * Several engines behind one gateway: the main engine over its Unix socket (`default`), a second
 * private dockerd over TLS with client certificates (`b`), and an engine whose socket nobody
 * listens on (`gone`): what it takes for an engine to have gone away.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { EngineClient } from '../../src/engine/client.ts'
import { engineTargetFromEntry } from '../../src/transport/docker-host.ts'
import { createNodeTransport } from '../../src/transport/node.ts'
import { createDirect, direct, directTo, testEngineB } from '../support/engine.ts'
import { postJson, type TestGateway, testGateway, uniqueName } from '../support/gateway.ts'
import { TEST_LABEL, TEST_RUN } from '../support/labels.ts'
import { readSse } from '../support/sse.ts'

let gw: TestGateway
let socketB: string
/** Containers this file made on engine b (the test run's teardown knows only the main engine). */
const madeOnB: string[] = []

const ALL = { engines: ['*'], images: ['*'] }
const CLIENTS = {
  everywhere: { scopes: ['containers:read', 'containers:write', 'events:read', 'system:read'] },
  onlyDefault: { scopes: ['containers:read', 'containers:write', 'events:read', 'system:read'] },
  globbed: { scopes: ['system:read', 'containers:read'] },
} as const

beforeAll(async () => {
  const b = testEngineB()
  socketB = b.socketPath
  const clientOf = (host: string, extra: { tlsVerify?: boolean; certPath?: string } = {}) => {
    const transport = createNodeTransport(engineTargetFromEntry({ host, ...extra }, undefined))
    afterAll(() => transport.close())
    return new EngineClient(transport, { retryAfterSeconds: 5 })
  }
  gw = await testGateway({
    clients: {
      everywhere: { scopes: [...CLIENTS.everywhere.scopes], policy: ALL },
      onlyDefault: { scopes: [...CLIENTS.onlyDefault.scopes], policy: { images: ['*'] } },
      globbed: { scopes: [...CLIENTS.globbed.scopes], policy: { engines: ['g*', 'b'] } },
      // Sees the containers this file makes straight on the engines (they have no owner).
      watcher: {
        scopes: ['events:read'],
        policy: { engines: ['*'], visibleLabels: ['dockgate-engines-run'] },
      },
    },
    dependencies: {
      engines: {
        b: clientOf(b.tlsHost, { tlsVerify: true, certPath: b.certPath }),
        gone: clientOf('unix:///nonexistent/dockgate-no-engine.sock'),
      },
    },
  })
})

afterAll(async () => {
  for (const id of madeOnB)
    await directTo(socketB, `/containers/${id}?force=1`, { method: 'DELETE' })
})

const labels = (run: string) => ({ [TEST_LABEL]: TEST_RUN, 'dockgate-engines-run': run })
const newRun = () => `e${process.pid}-${Date.now().toString(36)}`

/** A container made straight on engine b, labelled as this file's. */
async function createOnB(name: string, run: string) {
  const created = await directTo(socketB, `/containers/create?name=${name}`, {
    method: 'POST',
    body: { Image: 'dockgate-fixture:busybox', Cmd: ['true'], Labels: labels(run) },
  })
  expect(created.status, created.text).toBe(201)
  const id = created.json().Id as string
  madeOnB.push(id)
  return id
}

describe('GET /v1/engines', () => {
  it('lists the engines the caller may use, each with its state', async () => {
    const { status, body } = await gw.json('/v1/engines', { role: 'everywhere' })
    expect(status).toBe(200)
    expect(body.engines.map((e: { name: string }) => e.name)).toEqual(['b', 'default', 'gone'])
    const [b, main, gone] = body.engines
    // Engine b is in no swarm; the main one is the manager of the test swarm when there is one
    const mainInfo = (await direct('/info')).json() as { Swarm: { LocalNodeState: string } }
    expect(b.swarm).toBe('inactive')
    expect(main.swarm).toBe(mainInfo.Swarm.LocalNodeState === 'active' ? 'manager' : 'inactive')
    for (const up of [b, main]) {
      expect(up).toMatchObject({ reachable: true, apiVersion: '1.41' })
      expect(up.version).toMatch(/^\d+\.\d+/)
      expect(up.containers).toEqual(expect.any(Number))
    }
    expect(gone).toEqual({
      name: 'gone',
      reachable: false,
      version: null,
      apiVersion: null,
      swarm: null,
      containers: null,
    })
  })

  it('counts only the containers the caller may see', async () => {
    const run = newRun()
    const made = await gw.json(
      '/v1/engines/b/containers',
      postJson(
        { image: 'dockgate-fixture:busybox', name: uniqueName('eng'), labels: labels(run) },
        'everywhere',
      ),
    )
    expect(made.status).toBe(201)
    madeOnB.push(made.body.id)
    const owned = await directTo(
      socketB,
      `/containers/json?all=1&filters=${encodeURIComponent(JSON.stringify({ label: ['dockgate.owner=everywhere'] }))}`,
    )
    const { body } = await gw.json('/v1/engines', { role: 'everywhere' })
    expect(body.engines.find((e: { name: string }) => e.name === 'b').containers).toBe(
      owned.json().length,
    )
  })

  it('shows `default` only to a policy that names no engines, and follows globs', async () => {
    const { body } = await gw.json('/v1/engines', { role: 'onlyDefault' })
    expect(body.engines.map((e: { name: string }) => e.name)).toEqual(['default'])
    const globbed = await gw.json('/v1/engines', { role: 'globbed' })
    expect(globbed.body.engines.map((e: { name: string }) => e.name)).toEqual(['b', 'gone'])
    // `globbed` may not use `default`: its unprefixed routes are 404 as an unknown engine is.
    const list = await gw.json('/v1/containers', { role: 'globbed' })
    expect(list.status).toBe(404)
    expect(list.body.detail).toBe('No such engine: default')
  })
})

describe('/v1/engines/{engine}/…', () => {
  it('answers on default exactly as the routes without a prefix do', async () => {
    const run = newRun()
    await createDirect({ name: uniqueName('eng'), cmd: ['true'], labels: labels(run) })
    const query = `?all=true&label=${encodeURIComponent(`dockgate-engines-run=${run}`)}`
    // Made around the gateway: in its read model once the engine's event is in. While the model
    // is not ready (loading, or its events stream reconnecting) a list asks the engine, so one
    // answer may have it while the model has not taken the event in yet: both are asked until
    // both have it.
    const both = () =>
      Promise.all([
        gw.json(`/v1/containers${query}`),
        gw.json(`/v1/engines/default/containers${query}`),
      ])
    let [plain, prefixed] = await both()
    for (
      let i = 0;
      i < 50 && (plain.body.containers.length === 0 || prefixed.body.containers.length === 0);
      i++
    ) {
      await new Promise((resolve) => setTimeout(resolve, 100))
      ;[plain, prefixed] = await both()
    }
    expect(plain.status).toBe(200)
    expect(plain.body.containers).toHaveLength(1)
    expect(prefixed.body).toEqual(plain.body)
    const version = await gw.json('/v1/engines/default/system/version')
    expect(version.body).toEqual((await gw.json('/v1/system/version')).body)
  })

  it('creates, lists and removes on the engine the path names, and only there', async () => {
    const run = newRun()
    const name = uniqueName('eng')
    const created = await gw.json(
      '/v1/engines/b/containers',
      postJson({ image: 'dockgate-fixture:busybox', name, labels: labels(run) }, 'everywhere'),
    )
    expect(created.status, JSON.stringify(created.body)).toBe(201)
    madeOnB.push(created.body.id)
    expect(created.response.headers.get('location')).toBe(
      `/v1/engines/b/containers/${created.body.id}`,
    )
    // On b (reached over TLS), not on the main engine.
    expect((await directTo(socketB, `/containers/${name}/json`)).status).toBe(200)
    expect((await direct(`/containers/${name}/json`)).status).toBe(404)
    const query = `?all=true&label=${encodeURIComponent(`dockgate-engines-run=${run}`)}`
    const onB = await gw.json(`/v1/engines/b/containers${query}`, { role: 'everywhere' })
    expect(onB.body.containers.map((c: { name: string }) => c.name)).toEqual([name])
    const onDefault = await gw.json(`/v1/containers${query}`, { role: 'everywhere' })
    expect(onDefault.body.containers).toEqual([])
    const inspect = await gw.json(`/v1/engines/b/containers/${name}`, { role: 'everywhere' })
    expect(inspect.body.id).toBe(created.body.id)
    expect((await gw.json(`/v1/containers/${name}`, { role: 'everywhere' })).status).toBe(404)
    const removed = await gw.call(`/v1/engines/b/containers/${name}`, {
      method: 'DELETE',
      role: 'everywhere',
    })
    expect(removed.status).toBe(204)
    expect((await directTo(socketB, `/containers/${name}/json`)).status).toBe(404)
  })

  it('speaks to each engine at its own API version', async () => {
    const b = await gw.json('/v1/engines/b/system/version', { role: 'everywhere' })
    expect(b.status).toBe(200)
    expect(b.body.negotiatedApiVersion).toBe('1.41')
  })

  it('serves the Swarm routes per engine: 409 on one in no swarm, the manager’s own on a manager', async () => {
    const onB = await gw.json('/v1/engines/b/services', { role: 'everywhere' })
    expect(onB.status).toBe(409)
    expect(onB.body.type).toBe('urn:dockgate:problem:not-a-swarm-manager')
    expect(onB.body.instance).toBe('/v1/engines/b/services')
    const info = (await direct('/info')).json() as { Swarm: { ControlAvailable?: boolean } }
    const onDefault = await gw.json('/v1/engines/default/services', { role: 'everywhere' })
    const unprefixed = await gw.json('/v1/services', { role: 'everywhere' })
    expect(onDefault.status).toBe(info.Swarm.ControlAvailable ? 200 : 409)
    expect(unprefixed.status).toBe(onDefault.status)
    if (onDefault.status === 200) expect(onDefault.body).toEqual(unprefixed.body)
  })

  it('answers an unknown engine and one the caller may not use with the same 404, touching neither', async () => {
    const name = uniqueName('eng')
    const since = Math.floor(Date.now() / 1000) - 1
    const create = (path: string) =>
      gw.json(path, postJson({ image: 'dockgate-fixture:busybox', name }, 'onlyDefault'))
    const notAllowed = await create('/v1/engines/b/containers')
    const unknown = await create('/v1/engines/nope/containers')
    for (const [answer, engine] of [
      [notAllowed, 'b'],
      [unknown, 'nope'],
    ] as const) {
      expect(answer.status).toBe(404)
      expect(answer.response.headers.get('content-type')).toBe('application/problem+json')
      expect(answer.body).toMatchObject({
        type: 'urn:dockgate:problem:not-found',
        title: 'Not found',
        status: 404,
        detail: `No such engine: ${engine}`,
        instance: `/v1/engines/${engine}/containers`,
      })
      expect(Object.keys(answer.body).sort()).toEqual(
        ['detail', 'instance', 'requestId', 'status', 'title', 'type'].sort(),
      )
    }
    // Nothing reached b: its own events name no such container.
    const until = Math.ceil(Date.now() / 1000) + 1
    const events = await directTo(
      socketB,
      `/events?since=${since}&until=${until}&filters=${encodeURIComponent(JSON.stringify({ container: [name] }))}`,
    )
    expect(events.status).toBe(200)
    expect(events.text).toBe('')
    // The same for a GET and a stream; an admin without `engines` in its policy is no exception.
    for (const path of ['/v1/engines/b/containers', '/v1/engines/b/events']) {
      const { status, body } = await gw.json(path, { role: 'admin' })
      expect(status).toBe(404)
      expect(body.detail).toBe('No such engine: b')
    }
  })

  it('answers a path whose engine is no name at all with 400, touching nothing', async () => {
    const name = uniqueName('eng')
    const since = Math.floor(Date.now() / 1000) - 1
    const path = '/v1/engines/Not_A_Name/containers'
    const answer = await gw.json(
      path,
      postJson({ image: 'dockgate-fixture:busybox', name }, 'everywhere'),
    )
    expect(answer.status).toBe(400)
    expect(answer.response.headers.get('content-type')).toBe('application/problem+json')
    expect(answer.body).toMatchObject({
      type: 'urn:dockgate:problem:validation-failed',
      status: 400,
      instance: path,
      invalidParams: [
        { name: 'param.engine', reason: 'an engine name ([a-z0-9][a-z0-9_-]*, at most 63)' },
      ],
    })
    // A configured name answers on its engine; the same name's unknown neighbour is a 404.
    expect(
      (await gw.json('/v1/engines/b/containers?all=true', { role: 'everywhere' })).status,
    ).toBe(200)
    expect((await gw.json('/v1/engines/b2/containers', { role: 'everywhere' })).status).toBe(404)
    // Nothing reached the default engine: its own events name no such container.
    const until = Math.ceil(Date.now() / 1000) + 1
    const events = await direct(
      `/events?since=${since}&until=${until}&filters=${encodeURIComponent(JSON.stringify({ container: [name] }))}`,
    )
    expect(events.status).toBe(200)
    expect(events.text).toBe('')
  })

  it('answers 503 with Retry-After on an engine that went away, and nowhere else', async () => {
    const gone = await gw.json('/v1/engines/gone/containers', { role: 'everywhere' })
    expect(gone.status).toBe(503)
    expect(gone.response.headers.get('retry-after')).toBe('5')
    expect(gone.body.type).toBe('urn:dockgate:problem:engine-unavailable')
    expect(gone.body.instance).toBe('/v1/engines/gone/containers')
    expect((await gw.json('/v1/containers', { role: 'everywhere' })).status).toBe(200)
    expect((await gw.json('/v1/engines/b/containers', { role: 'everywhere' })).status).toBe(200)
    const ready = await gw.json('/readyz', { role: null })
    expect(ready.status).toBe(200)
    expect(ready.body.engines).toEqual([
      { name: 'default', ready: true, apiVersion: '1.41' },
      { name: 'b', ready: true, apiVersion: '1.41' },
      { name: 'gone', ready: false, apiVersion: null },
    ])
  })
})

describe('stream tickets', () => {
  it('bind to the path as sent: a ticket for one engine’s stream opens no other engine’s', async () => {
    const asked = await gw.json(
      '/v1/stream-tickets',
      postJson({ stream: '/v1/engines/b/events' }, 'everywhere'),
    )
    expect(asked.status).toBe(201)
    const { ticket } = asked.body
    const elsewhere = await gw.json(`/v1/events?ticket=${encodeURIComponent(ticket)}`, {
      role: null,
    })
    expect(elsewhere.status).toBe(401)
    const opened = await gw.call(`/v1/engines/b/events?ticket=${encodeURIComponent(ticket)}`, {
      role: null,
    })
    expect(opened.status).toBe(200)
    await opened.body?.cancel()
  })
})

describe('GET /v1/events?engine=*', () => {
  it('merges every engine the caller may use, each event naming its engine, resumable as one stream', async () => {
    const run = newRun()
    const path = `/v1/events?engine=*&type=container&action=create&label=${encodeURIComponent(`dockgate-engines-run=${run}`)}`
    const first = await gw.call(path, { role: 'watcher' })
    expect(first.status).toBe(200)
    const stream = readSse(first)
    await createDirect({ name: uniqueName('m-a'), cmd: ['true'], labels: labels(run) })
    await createOnB(uniqueName('m-b'), run)
    const got = await stream.take(2)
    expect(got.map((e) => JSON.parse(e.data).engine).sort()).toEqual(['b', 'default'])
    for (const event of got) {
      expect(event.event).toBe('container')
      // Every engine of the stream, with its position.
      expect(event.id).toMatch(/^(?:b|default|gone):\d*(?:,(?:b|default|gone):\d*){2}$/)
    }
    const lastId = got[1]!.id!
    await stream.close()

    // Meanwhile, on both engines; then one Last-Event-ID resumes both parts exactly.
    const missedA = await createDirect({
      name: uniqueName('m-a'),
      cmd: ['true'],
      labels: labels(run),
    })
    const missedB = await createOnB(uniqueName('m-b'), run)
    const again = await gw.call(path, { role: 'watcher', headers: { 'last-event-id': lastId } })
    expect(again.status).toBe(200)
    const resumed = readSse(again)
    const missed = await resumed.take(2)
    expect(
      missed.map((e) => [JSON.parse(e.data).engine, JSON.parse(e.data).actor.id]).sort(),
    ).toEqual(
      [
        ['b', missedB],
        ['default', missedA],
      ].sort(),
    )
    // Nothing more: no event was sent twice.
    await expect(resumed.next(700)).rejects.toThrow(/no event/)
    await resumed.close()
  })

  it('merges only the engines the caller may use, and refuses ids of the other kind', async () => {
    const onlyDefault = await gw.call('/v1/events?engine=*', { role: 'onlyDefault' })
    expect(onlyDefault.status).toBe(200)
    await onlyDefault.body?.cancel()
    const none = await gw.json('/v1/events?engine=b', { role: 'onlyDefault' })
    expect(none.status).toBe(404)
    expect(none.body.detail).toBe('No such engine: b')
    const mixed = await gw.json('/v1/events?engine=*', {
      role: 'everywhere',
      headers: { 'last-event-id': '1795933917933147201' },
    })
    expect(mixed.status).toBe(400)
    const single = await gw.json('/v1/events', {
      role: 'everywhere',
      headers: { 'last-event-id': 'default:1795933917933147201' },
    })
    expect(single.status).toBe(400)
    const onPath = await gw.json('/v1/engines/b/events?engine=*', { role: 'everywhere' })
    expect(onPath.status).toBe(400)
  })
})
