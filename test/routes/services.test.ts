import { beforeAll, describe, expect, it } from 'vitest'
import { EngineClient } from '../../src/engine/client.ts'
import { engineTargetFromEnv } from '../../src/transport/docker-host.ts'
import { createNodeTransport } from '../../src/transport/node.ts'
import { direct, testEngineEnv } from '../support/engine.ts'
import { postJson, type TestGateway, testGateway } from '../support/gateway.ts'
import { TEST_LABEL, TEST_RUN } from '../support/labels.ts'
import { engineEvents, engineNow } from '../support/reliability.ts'
import { readSse } from '../support/sse.ts'
import type { ParsedSseEvent } from '../support/sse-parse.ts'
import {
  engineTasks,
  removeServicesAfterAll,
  runningTasks,
  serviceName,
  workerHost,
} from '../support/swarm.ts'

const MiB = 1024 * 1024
const OWNER = ['containers:read', 'containers:write', 'logs:read', 'events:read'] as const
const POLICY = { images: ['dockgate-fixture:*'], maxContainers: 6 }

let gw: TestGateway

beforeAll(async () => {
  workerHost()
  gw = await testGateway({
    settings: { heartbeatMs: 200, readModel: false },
    clients: {
      svc: { scopes: [...OWNER], policy: POLICY },
      other: { scopes: [...OWNER], policy: POLICY },
      logger: { scopes: [...OWNER], policy: POLICY },
      mixed: { scopes: [...OWNER], policy: { ...POLICY, maxContainers: 2 } },
      globe: { scopes: [...OWNER], policy: { ...POLICY, maxContainers: 2 } },
      nodes: { scopes: ['nodes:read', 'events:read'] },
    },
  })
})
removeServicesAfterAll()

const body = (extra: Record<string, unknown> = {}) => ({
  image: testEngineEnv().image,
  name: serviceName('svc'),
  cmd: ['sleep', '1000'],
  labels: { [TEST_LABEL]: TEST_RUN },
  replicas: 1,
  ...extra,
})

async function create(extra: Record<string, unknown> = {}, role = 'svc') {
  const answer = await gw.json('/v1/services', postJson(body(extra), role))
  expect(answer.status, JSON.stringify(answer.body)).toBe(201)
  return answer.body as { id: string; name: string; replicas: number }
}

const patch = (path: string, replicas: unknown, role = 'svc') =>
  gw.json(path, { ...postJson({ replicas }, role), method: 'PATCH' })

describe('services on a Swarm manager', () => {
  it('creates a service whose task template the gateway built, with tasks on both nodes', async () => {
    const created = await create({ replicas: 4, resources: { memory: 32 * MiB, pids: 64 } })
    expect(created.replicas).toBe(4)
    const spec = (await direct(`/services/${created.id}`)).json() as Record<string, any>
    const template = spec.Spec.TaskTemplate
    expect(spec.Spec.Labels['dockgate.owner']).toBe('svc')
    const imageId = (
      (await direct(`/images/${testEngineEnv().image}/json`)).json() as { Id: string }
    ).Id
    expect(template.ContainerSpec).toMatchObject({
      // The manager's image id, never a reference a node would pull first
      Image: imageId,
      Args: ['sleep', '1000'],
      CapabilityDrop: ['ALL'],
      Labels: { 'dockgate.owner': 'svc' },
    })
    expect(template.ContainerSpec.Mounts ?? []).toEqual([])
    expect(template.ContainerSpec.CapabilityAdd ?? []).toEqual([])
    expect(template.Resources.Limits).toEqual({
      MemoryBytes: 32 * MiB,
      NanoCPUs: 1_000_000_000,
      Pids: 64,
    })
    expect(template.RestartPolicy).toMatchObject({ Condition: 'on-failure', MaxAttempts: 3 })
    expect(template.LogDriver.Name).toBe('json-file')
    expect(template.Networks ?? []).toEqual([])
    expect(spec.Spec.EndpointSpec?.Ports ?? []).toEqual([])

    const tasks = await runningTasks(created.id, 4)
    expect(new Set(tasks.map((t) => t.NodeID)).size).toBe(2)
    const { status, body: listed } = await gw.json(`/v1/services/${created.id}/tasks`, {
      role: 'svc',
    })
    expect(status).toBe(200)
    const running = listed.tasks.filter((t: { state: string }) => t.state === 'running')
    expect(running).toHaveLength(4)
    expect(new Set(running.map((t: { node: string }) => t.node)).size).toBe(2)
    // Each task's container carries the owner label, on whichever node it runs
    const worker = new EngineClient(
      createNodeTransport(engineTargetFromEnv({ DOCKER_HOST: workerHost() })),
    )
    const onWorker = (await worker.json('GET', '/containers/json', {
      query: { filters: JSON.stringify({ label: [`com.docker.swarm.service.id=${created.id}`] }) },
    })) as { Labels: Record<string, string> }[]
    await worker.transport.close()
    expect(onWorker.length).toBeGreaterThan(0)
    for (const c of onWorker) expect(c.Labels['dockgate.owner']).toBe('svc')
  })

  it('lists, inspects, scales and removes only its own services', async () => {
    const mine = await create()
    const theirs = await create({}, 'other')
    const list = await gw.json('/v1/services', { role: 'svc' })
    const ids = list.body.services.map((s: { id: string }) => s.id)
    expect(ids).toContain(mine.id)
    expect(ids).not.toContain(theirs.id)

    const inspected = await gw.json(`/v1/services/${mine.name}`, { role: 'svc' })
    expect(inspected.status).toBe(200)
    expect(inspected.body).toMatchObject({ id: mine.id, name: mine.name, replicas: 1 })

    const scaled = await patch(`/v1/services/${mine.id}`, 2)
    expect(scaled.status).toBe(200)
    expect(scaled.body.replicas).toBe(2)
    await runningTasks(mine.id, 2)

    const removed = await gw.call(`/v1/services/${mine.id}`, { method: 'DELETE', role: 'svc' })
    expect(removed.status).toBe(204)
    expect((await direct(`/services/${mine.id}`)).status).toBe(404)
  })

  it('answers 404 for someone else’s service exactly as for a missing one', async () => {
    const theirs = await create({}, 'other')
    const missing = 'dgt-no-such-service'
    for (const [suffix, init] of [
      ['', {}],
      ['/tasks', {}],
      ['/logs', {}],
      ['/logs/stream', {}],
      ['', { method: 'DELETE' }],
      ['', { ...postJson({ replicas: 3 }, 'svc'), method: 'PATCH' }],
    ] as const) {
      const hidden = await gw.json(`/v1/services/${theirs.name}${suffix}`, { ...init, role: 'svc' })
      const absent = await gw.json(`/v1/services/${missing}${suffix}`, { ...init, role: 'svc' })
      expect(hidden.status).toBe(404)
      expect(absent.status).toBe(404)
      expect(hidden.body.detail).toBe(`No such service: ${theirs.name}`)
      expect(absent.body.detail).toBe(`No such service: ${missing}`)
    }
    // Untouched
    const spec = (await direct(`/services/${theirs.id}`)).json() as Record<string, any>
    expect(spec.Spec.Mode.Replicated.Replicas).toBe(1)
  })

  it('counts replicas towards maxContainers, and nothing reaches the engine beyond it', async () => {
    const since = engineNow()
    const name = serviceName('quota')
    const refused = await gw.json('/v1/services', postJson(body({ name, replicas: 7 }), 'svc'))
    expect(refused.status).toBe(403)
    expect(refused.body.detail).toMatch(/maximum of 6/)
    const events = await engineEvents(since, engineNow())
    expect(events.filter((e) => e.Actor.Attributes?.name === name)).toEqual([])
  })
})

describe('the container quota', () => {
  const createContainerAs = (role: string) =>
    gw.json(
      '/v1/containers',
      postJson(
        { image: testEngineEnv().image, cmd: ['true'], labels: { [TEST_LABEL]: TEST_RUN } },
        role,
      ),
    )

  it('counts a service’s replicas as containers', async () => {
    await create({ replicas: 2 }, 'mixed')
    const container = await createContainerAs('mixed')
    expect(container.status).toBe(403)
    expect(container.body.detail).toMatch(/owns 2 containers/)
  })

  it('counts a global service as one task on each node', async () => {
    // An operator's global service, made around the gateway and labelled as the client's: Swarm
    // runs one task on each of the two nodes.
    const imageId = (
      (await direct(`/images/${testEngineEnv().image}/json`)).json() as { Id: string }
    ).Id
    const owner = { 'dockgate.owner': 'globe', [TEST_LABEL]: TEST_RUN }
    const made = await direct('/services/create', {
      method: 'POST',
      body: {
        Name: serviceName('global'),
        Labels: owner,
        TaskTemplate: { ContainerSpec: { Image: imageId, Args: ['sleep', '1000'], Labels: owner } },
        Mode: { Global: {} },
      },
    })
    expect(made.status, made.text).toBe(201)
    const container = await createContainerAs('globe')
    expect(container.status).toBe(403)
    expect(container.body.detail).toMatch(/owns 2 containers/)
  })
})

describe('service logs', () => {
  const LINES = 20
  const script = `for i in $(seq 1 ${LINES}); do echo "$(hostname) $i"; done; echo oops >&2; sleep 1000`

  it('gathers every task’s lines from both nodes, as JSON and as a stream that resumes exactly', async () => {
    const created = await create({ cmd: ['sh', '-c', script], replicas: 4 }, 'logger')
    const tasks = await runningTasks(created.id, 4)
    expect(new Set(tasks.map((t) => t.NodeID)).size).toBe(2)
    // Until every task has written its lines
    let json: { lines: { stream: string; task: string; node: string; text: string }[] }
    for (let i = 0; ; i++) {
      json = (await gw.json(`/v1/services/${created.id}/logs`, { role: 'logger' })).body
      if (json.lines.length === 4 * (LINES + 1) || i > 40) break
      await new Promise((r) => setTimeout(r, 250))
    }
    expect(json.lines).toHaveLength(4 * (LINES + 1))
    expect(new Set(json.lines.map((l) => l.node))).toEqual(new Set(tasks.map((t) => t.NodeID)))
    expect(new Set(json.lines.map((l) => l.task))).toEqual(new Set(tasks.map((t) => t.ID)))
    expect(json.lines.filter((l) => l.stream === 'stderr').map((l) => l.text)).toEqual(
      Array(4).fill('oops'),
    )

    // Hang up after a few lines each time, at changing points, and resume with Last-Event-ID
    const received = new Map<string, string[]>()
    let lastId: string | undefined
    let total = 0
    for (let round = 0; round < 80 && total < 4 * (LINES + 1); round++) {
      const headers: Record<string, string> = lastId ? { 'last-event-id': lastId } : {}
      const response = await gw.call(`/v1/services/${created.id}/logs/stream`, {
        role: 'logger',
        headers,
      })
      expect(response.status).toBe(200)
      const reader = readSse(response)
      const take = 1 + ((round * 7) % 9)
      for (let i = 0; i < take && total < 4 * (LINES + 1); i++) {
        const event = await reader.next(5_000)
        if (!event) break
        const data = JSON.parse(event.data)
        received.set(data.task, [...(received.get(data.task) ?? []), data.text])
        lastId = event.id
        total++
      }
      await reader.close()
    }
    expect(total).toBe(4 * (LINES + 1))
    // Each task's lines once each, in order (stdout and stderr are two pipes: the engine
    // timestamps each as it reads it, so `oops` may come anywhere among them)
    for (const [, texts] of received) {
      const out = texts.filter((t) => t !== 'oops')
      const host = out[0]!.split(' ')[0]
      expect(out).toEqual(Array.from({ length: LINES }, (_, i) => `${host} ${i + 1}`))
      expect(texts.filter((t) => t === 'oops')).toEqual(['oops'])
    }
    expect(received.size).toBe(4)
    // Nothing more after the last one
    const after = await gw.call(`/v1/services/${created.id}/logs/stream`, {
      role: 'logger',
      headers: { 'last-event-id': lastId! },
    })
    const rest = readSse(after)
    await expect(rest.next(1_500)).rejects.toThrow(/no event/)
    await rest.close()
  })

  it('ends the stream with `end` when the service is removed, and refuses a bogus cursor', async () => {
    const created = await create({ cmd: ['sh', '-c', 'echo hello; sleep 1000'] })
    const response = await gw.call(`/v1/services/${created.id}/logs/stream`, { role: 'svc' })
    const reader = readSse(response)
    const first = await reader.next(15_000)
    expect(JSON.parse(first!.data).text).toBe('hello')
    await direct(`/services/${created.id}`, { method: 'DELETE' })
    const events: ParsedSseEvent[] = await reader.until('end', 10_000)
    expect(events.at(-1)?.event).toBe('end')
    expect(JSON.parse(events.at(-1)!.data)).toEqual({ reason: 'removed' })

    const bogus = await gw.json(`/v1/services/${created.id}/logs/stream?cursor=bogus`, {
      role: 'svc',
    })
    expect(bogus.status).toBe(400)
  })
})

describe('nodes', () => {
  it('are read with nodes:read or admin, and not without', async () => {
    const withScope = await gw.json('/v1/nodes', { role: 'nodes' })
    expect(withScope.status).toBe(200)
    expect(withScope.body.nodes).toHaveLength(2)
    expect(withScope.body.nodes.filter((n: { leader: boolean }) => n.leader)).toHaveLength(1)
    expect(withScope.body.nodes.every((n: { state: string }) => n.state === 'ready')).toBe(true)
    expect((await gw.json('/v1/nodes', { role: 'admin' })).status).toBe(200)
    expect((await gw.json('/v1/nodes', { role: 'svc' })).status).toBe(403)
  })
})

describe('swarm events', () => {
  it('shows service events to their owner only, and node events with nodes:read only', async () => {
    const open = (role: string) =>
      gw.call('/v1/events?type=service&type=node', { role }).then(readSse)
    const [owner, stranger, nodes] = await Promise.all([open('svc'), open('other'), open('nodes')])
    const created = await create()
    const ownEvents = await owner.take(1, 10_000)
    expect(ownEvents[0]).toMatchObject({ event: 'service' })
    expect(JSON.parse(ownEvents[0]!.data)).toMatchObject({
      action: 'create',
      actor: { id: created.id },
    })
    // A node event: its availability set to what it is, straight on the engine
    const [node] = (await direct('/nodes')).json() as {
      ID: string
      Version: { Index: number }
      Spec: object
    }[]
    await direct(`/nodes/${node!.ID}/update?version=${node!.Version.Index}`, {
      method: 'POST',
      body: node!.Spec,
    })
    const nodeEvent = await nodes.take(1, 10_000)
    expect(nodeEvent[0]).toMatchObject({ event: 'node' })
    await gw.call(`/v1/services/${created.id}`, { method: 'DELETE', role: 'svc' })
    const removal = await owner.take(1, 10_000)
    expect(JSON.parse(removal[0]!.data)).toMatchObject({ action: 'remove' })
    // The stranger saw neither the service's nor the node's events; the node reader no service's
    await expect(stranger.next(1_000)).rejects.toThrow(/no event/)
    const more = await nodes.next(500).catch(() => undefined)
    expect(more?.event).not.toBe('service')
    await Promise.all([owner.close(), stranger.close(), nodes.close()])
  })
})

describe('on an engine that is not a Swarm manager', () => {
  it('answers 409 problem+json saying so', async () => {
    const onWorker = await testGateway({
      transport: createNodeTransport(engineTargetFromEnv({ DOCKER_HOST: workerHost() })),
      settings: { readModel: false },
      clients: { svc: { scopes: [...OWNER], policy: POLICY } },
    })
    for (const path of ['/v1/services', '/v1/nodes', '/v1/services/x/tasks']) {
      const { status, body: problem, response } = await onWorker.json(path)
      expect(status).toBe(409)
      expect(response.headers.get('content-type')).toBe('application/problem+json')
      expect(problem.type).toBe('urn:dockgate:problem:not-a-swarm-manager')
      expect(problem.detail).toMatch(/not a Swarm manager/)
    }
    const created = await onWorker.json('/v1/services', postJson(body(), 'svc'))
    expect(created.status).toBe(409)
  })
})

describe('bad service bodies', () => {
  const bad: [string, Record<string, unknown>][] = [
    ['an unknown key', { restart: 'always' }],
    ['mounts', { mounts: [{ source: '/', target: '/host' }] }],
    ['ports', { ports: [{ published: 80, target: 80 }] }],
    ['networks (the policy names none)', { networks: ['host'] }],
    ['privileges', { privileged: true }],
    ['a HostConfig', { HostConfig: { Privileged: true } }],
    ['capabilities', { capAdd: ['SYS_ADMIN'] }],
    ['the owner label', { labels: { 'dockgate.owner': 'someone' } }],
    ['no replicas', { replicas: undefined }],
    ['an image the manager does not have', { image: 'dockgate-fixture:never-pulled' }],
  ]
  it.each(bad)('with %s: 400, and nothing reaches the engine', async (_what, extra) => {
    const since = engineNow()
    const name = serviceName('bad')
    const {
      status,
      body: problem,
      response,
    } = await gw.json('/v1/services', postJson(body({ name, ...extra }), 'svc'))
    expect(status).toBe(400)
    expect(response.headers.get('content-type')).toBe('application/problem+json')
    expect(problem.invalidParams?.length).toBeGreaterThan(0)
    const events = await engineEvents(since, engineNow())
    expect(events.filter((e) => e.Actor.Attributes?.name === name)).toEqual([])
    expect((await direct(`/services/${name}`)).status).toBe(404)
  })

  it('refuses a scale body with anything but replicas', async () => {
    const created = await create()
    const since = engineNow()
    const answer = await gw.json(`/v1/services/${created.id}`, {
      ...postJson({ replicas: 2, image: 'other' }, 'svc'),
      method: 'PATCH',
    })
    expect(answer.status).toBe(400)
    const events = await engineEvents(since, engineNow())
    expect(events.filter((e) => e.Actor.ID === created.id)).toEqual([])
    expect((await engineTasks(created.id)).length).toBe(1)
  })
})
