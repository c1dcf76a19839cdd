/**
 * Tenants played against each other on the real engine: what one of them can learn about, or do
 * to, another's containers and images. Each case checks what the engine itself holds.
 */
import { SignJWT } from 'jose'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { EngineTransport } from '../../src/engine/transport.ts'
import { engineTargetFromEnv } from '../../src/transport/docker-host.ts'
import { createNodeTransport } from '../../src/transport/node.ts'
import {
  createDirect,
  direct,
  engineContainerIds,
  engineInspect,
  testEngineEnv,
} from '../support/engine.ts'
import { postJson, type TestGateway, testGateway, uniqueName } from '../support/gateway.ts'
import { TEST_LABEL, TEST_RUN } from '../support/labels.ts'

const WORKER = ['containers:read', 'containers:write', 'logs:read', 'events:read'] as const
const IMAGE = testEngineEnv().image
const JWT_SECRET = 'a-test-secret-of-at-least-32-bytes!!'
/** The labelled image this file builds (by committing a container), removed at the end. */
const LABELLED_IMAGE = `dockgate-isolation-${process.pid}:labels`

let gw: TestGateway
/** Every engine request the gateway made, as `METHOD path?query` with the query decoded. */
const engineCalls: string[] = []

beforeAll(async () => {
  gw = await testGateway({
    transport: recordingTransport(engineCalls),
    jwtSecret: JWT_SECRET,
    clients: {
      alice: { scopes: [...WORKER], policy: { images: ['dockgate-fixture:*'] } },
      bob: { scopes: [...WORKER], policy: { images: ['dockgate-fixture:*'] } },
      blueteam: { scopes: ['containers:read'], policy: { visibleLabels: ['team=blue'] } },
      builder: { scopes: ['images:read'], policy: { images: ['dockgate-isolation-*'] } },
      fixtures: { scopes: ['images:read'], policy: { images: ['dockgate-fixture:*'] } },
    },
  })
})

function recordingTransport(calls: string[]): EngineTransport {
  const inner = createNodeTransport(
    engineTargetFromEnv({ DOCKER_HOST: testEngineEnv().dockerHost }),
  )
  return {
    description: inner.description,
    close: () => inner.close(),
    fetch(request, options) {
      const url = new URL(request.url)
      calls.push(`${request.method} ${decodeURIComponent(url.pathname + url.search)}`)
      return inner.fetch(request, options)
    },
  }
}

/** A container body as a tenant sends it, tagged for this run's clean-up. */
const containerBody = (overrides: Record<string, unknown> = {}) => ({
  image: IMAGE,
  name: uniqueName('iso'),
  cmd: ['sleep', '30'],
  ...overrides,
  labels: { [TEST_LABEL]: TEST_RUN, ...(overrides.labels as object) },
})

const createAs = (role: string, overrides: Record<string, unknown> = {}, query = '') =>
  gw.json(`/v1/containers${query}`, postJson(containerBody(overrides), role))

/** The engine's own create events for a label, from `since` until now: proof of what reached it. */
async function engineCreates(label: string, since: number) {
  const filters = JSON.stringify({ type: ['container'], event: ['create'], label: [label] })
  // Not later than now: the engine would hold the answer until then.
  const until = (Date.now() / 1000).toFixed(3)
  const answer = await direct(
    `/events?since=${since}&until=${until}&filters=${encodeURIComponent(filters)}`,
  )
  return answer.text.split('\n').filter(Boolean)
}

/** A second ago, in the engine's Unix seconds: a safe `since` for what a test does next. */
const aSecondAgo = () => Math.floor(Date.now() / 1000) - 1
const HEX = /[0-9a-f]{12,}/

describe('engine text never crosses tenants', () => {
  it("answers a name taken by another tenant with a fixed detail that does not name that tenant's container", async () => {
    const { status, body: bobs } = await createAs('bob')
    expect(status).toBe(201)
    const clash = await createAs('alice', { name: bobs.name })
    expect(clash.status).toBe(409)
    expect(clash.body.type).toBe('urn:dockgate:problem:conflict')
    expect(clash.body.detail).toBe('The name is already in use by another container')
    expect(clash.body.detail).not.toMatch(HEX)
    expect(JSON.stringify(clash.body)).not.toContain(bobs.id.slice(0, 12))
    // The engine kept Bob's container under that name, and only his.
    const engine = await engineInspect(bobs.name)
    expect(engine?.Id).toBe(bobs.id)
    expect(engine?.Config.Labels['dockgate.owner']).toBe('bob')
  })

  it('says in the caller’s terms that a start failed, never runc’s words, and leaves nothing behind', async () => {
    const run = uniqueName('start')
    const since = aSecondAgo()
    const failed = await createAs(
      'alice',
      { cmd: ['/nonexistent'], labels: { run } },
      '?start=true',
    )
    expect(failed.status).toBe(400)
    expect(failed.body.detail).toMatch(/could not be started: its command could not be run/)
    expect(JSON.stringify(failed.body)).not.toMatch(/runc|OCI|shim|nonexistent|stat /)
    // The engine created it, the gateway removed it again.
    expect(await engineCreates(`run=${run}`, since)).toHaveLength(1)
    expect(await engineContainerIds(`run=${run}`)).toEqual([])

    const { body: created } = await createAs('alice', { cmd: ['/nonexistent'] })
    const start = await gw.json(`/v1/containers/${created.id}/start`, {
      method: 'POST',
      role: 'alice',
    })
    expect(start.status).toBe(400)
    expect(start.body.detail).toMatch(/could not be started: its command could not be run/)
    expect(JSON.stringify(start.body)).not.toMatch(/runc|OCI|shim|nonexistent/)
    // The engine holds runc's text in the container's state; the caller reads what failed.
    expect((await engineInspect(created.id))?.State.Error).toMatch(/runc|OCI/)
    const inspect = await gw.json(`/v1/containers/${created.id}`, { role: 'alice' })
    expect(inspect.body.state.error).toMatch(/command could not be run/)
    expect(inspect.body.state.error).not.toMatch(/runc|OCI|shim|nonexistent/)
  })
})

describe('existence by timing: a hidden container takes the path of a missing one', () => {
  /** How many of the engine requests one lookup made mention the reference. */
  async function engineCallsFor(ref: string, role: string) {
    const before = engineCalls.length
    const answer = await gw.json(`/v1/containers/${ref}`, { role })
    return {
      status: answer.status,
      calls: engineCalls.slice(before).filter((call) => call.includes(ref)).length,
    }
  }

  it('costs the same engine calls for a hidden and a missing name, full id and id prefix', async () => {
    const { body: alices } = await createAs('alice')
    // Until the read model has loaded, every lookup asks the engine anyway.
    await expect
      .poll(async () => (await engineCallsFor(alices.name, 'alice')).calls, { timeout: 10_000 })
      .toBe(0)
    const missingId = [...crypto.getRandomValues(new Uint8Array(32))]
      .map((b) => b.toString(16).padStart(2, '0'))
      .join('')
    const pairs = [
      [alices.name, uniqueName('missing')],
      [alices.id, missingId],
      [alices.id.slice(0, 12), missingId.slice(0, 12)],
    ]
    for (const [hidden, missing] of pairs) {
      const seen = await engineCallsFor(hidden!, 'bob')
      const absent = await engineCallsFor(missing!, 'bob')
      expect([seen.status, absent.status], hidden).toEqual([404, 404])
      expect(seen.calls, `engine calls for hidden ${hidden} vs missing ${missing}`).toBe(
        absent.calls,
      )
      expect(seen.calls).toBeGreaterThan(0)
    }
  })
})

describe('identity namespaces', () => {
  const jwtFor = (sub: string, issuer?: string) => {
    const token = new SignJWT({ scope: 'containers:read containers:write' })
      .setProtectedHeader({ alg: 'HS256' })
      .setSubject(sub)
      .setAudience('dockgate')
      .setExpirationTime('5m')
    if (issuer) token.setIssuer(issuer)
    return token.sign(new TextEncoder().encode(JWT_SECRET))
  }
  const asJwt = (token: string, init: RequestInit = {}) => ({
    ...init,
    role: null,
    headers: { ...(init.headers as Record<string, string>), authorization: `Bearer ${token}` },
  })

  it("gives a JWT whose sub is a token's name none of that token's containers", async () => {
    const run = uniqueName('ns')
    const { body: tokens } = await createAs('alice', { labels: { run } })
    expect((await engineInspect(tokens.id))?.Config.Labels['dockgate.owner']).toBe('alice')

    const jwt = await jwtFor('alice')
    const listed = await gw.json(`/v1/containers?all=true&label=run=${run}`, asJwt(jwt))
    expect(listed.status).toBe(200)
    expect(listed.body.containers).toEqual([])
    expect((await gw.json(`/v1/containers/${tokens.id}`, asJwt(jwt))).status).toBe(404)
    const stop = await gw.json(`/v1/containers/${tokens.id}/stop`, asJwt(jwt, { method: 'POST' }))
    expect(stop.status).toBe(404)

    // What the JWT creates is owned by its issuer and subject, and the token does not see it.
    const created = await gw.json('/v1/containers', {
      ...postJson(containerBody({ labels: { run } }), null),
      headers: { 'content-type': 'application/json', authorization: `Bearer ${jwt}` },
    })
    expect(created.status).toBe(201)
    expect((await engineInspect(created.body.id))?.Config.Labels['dockgate.owner']).toBe(
      'jwt::alice',
    )
    const byToken = await gw.json(`/v1/containers?all=true&label=run=${run}`, { role: 'alice' })
    expect(byToken.body.containers.map((c: { id: string }) => c.id)).toEqual([tokens.id])

    // The same subject from another issuer is someone else again.
    const other = await jwtFor('alice', 'https://idp.example')
    const otherList = await gw.json(`/v1/containers?all=true&label=run=${run}`, asJwt(other))
    expect(otherList.body.containers).toEqual([])
  })
})

describe('names that look like ids', () => {
  it('resolves an id prefix as an id even when another tenant named a container like it', async () => {
    const { body: alices } = await createAs('alice')
    const shortId = alices.id.slice(0, 12)
    // An impostor named like Alice's short id: made around the gateway (it refuses such names),
    // as a container from before that rule would be.
    const impostor = await createDirect({
      name: shortId,
      cmd: ['sleep', '30'],
      labels: { [TEST_LABEL]: TEST_RUN, 'dockgate.owner': 'bob' },
    })
    expect((await engineInspect(shortId))?.Id).toBe(impostor)

    const mine = await gw.json(`/v1/containers/${shortId}`, { role: 'alice' })
    expect(mine.status).toBe(200)
    expect(mine.body.id).toBe(alices.id)
    const admins = await gw.json(`/v1/containers/${shortId}`, { role: 'admin' })
    expect(admins.body.id).toBe(alices.id)
    const removed = await gw.call(`/v1/containers/${shortId}?force=true`, {
      method: 'DELETE',
      role: 'alice',
    })
    expect(removed.status).toBe(204)
    expect(await engineInspect(alices.id)).toBeUndefined()
    expect((await engineInspect(impostor))?.Id).toBe(impostor)
  })

  it.each([
    ['a short id', '3f2a9c0e1b7d'],
    ['a full id', 'ab'.repeat(32)],
  ])(
    'refuses to create a container named like %s, and nothing reaches the engine',
    async (_, name) => {
      const run = uniqueName('idname')
      const since = aSecondAgo()
      const answer = await createAs('alice', { name, labels: { run } })
      expect(answer.status).toBe(400)
      expect(answer.response.headers.get('content-type')).toBe('application/problem+json')
      expect(answer.body.invalidParams.map((p: { name: string }) => p.name)).toEqual(['json.name'])
      expect(await engineCreates(`run=${run}`, since)).toEqual([])
      expect(await engineInspect(name)).toBeUndefined()
    },
  )
})

describe('list filters', () => {
  it('applies limit after visibility: a newer container the caller cannot see is not counted', async () => {
    const run = uniqueName('limit')
    const { body: blue } = await createAs('alice', { labels: { run, team: 'blue' } })
    const { body: newer } = await createAs('bob', { labels: { run } })
    // The engine lists Bob's (newer) container first.
    const all = await gw.json(`/v1/containers?all=true&label=run=${run}`, { role: 'admin' })
    expect(all.body.containers.map((c: { id: string }) => c.id)).toEqual([newer.id, blue.id])

    // From the read model, and from the engine's own list (the model switched off).
    const engineOnly = await testGateway({
      settings: { readModel: false },
      clients: {
        blueteam: { scopes: ['containers:read'], policy: { visibleLabels: ['team=blue'] } },
      },
    })
    for (const gateway of [gw, engineOnly]) {
      const page = await gateway.json(`/v1/containers?label=run=${run}&limit=1`, {
        role: 'blueteam',
      })
      expect(page.status).toBe(200)
      expect(page.body.containers.map((c: { id: string }) => c.id)).toEqual([blue.id])
    }
  })

  it('refuses to match the value of a secret-looking label, which the caller cannot read', async () => {
    const run = uniqueName('oracle')
    const { body } = await createAs('alice', { labels: { run, db_password: 'hunter2' } })
    expect((await engineInspect(body.id))?.Config.Labels.db_password).toBe('hunter2')
    for (const guess of ['hunter2', 'wrong']) {
      const answer = await gw.json(
        `/v1/containers?all=true&label=run=${run}&label=db_password=${guess}`,
        { role: 'alice' },
      )
      expect(answer.status, guess).toBe(400)
      expect(answer.body.type).toBe('urn:dockgate:problem:validation-failed')
      expect(answer.body.invalidParams[0].name).toBe('query.label')
      const events = await gw.call(`/v1/events?label=db_password=${guess}`, { role: 'alice' })
      expect(events.status, `events ${guess}`).toBe(400)
      await events.body?.cancel()
    }
    // The key alone can be selected: it is shown.
    const byKey = await gw.json(`/v1/containers?all=true&label=run=${run}&label=db_password`, {
      role: 'alice',
    })
    expect(byKey.body.containers).toMatchObject([{ id: body.id, labels: { db_password: null } }])
  })
})

describe('images', () => {
  beforeAll(async () => {
    // An image with a secret-looking label: committed from a container of the fixture image.
    const id = await createDirect({ name: uniqueName('commit'), cmd: ['true'] })
    const [repo, tag] = LABELLED_IMAGE.split(':')
    const committed = await direct(`/commit?container=${id}&repo=${repo}&tag=${tag}`, {
      method: 'POST',
      body: { Labels: { 'build.api_key': 's3cr3t', maintainer: 'qa' } },
    })
    expect(committed.status).toBe(201)
    await direct(`/containers/${id}?force=1`, { method: 'DELETE' })
  })

  afterAll(async () => {
    await direct(`/images/${LABELLED_IMAGE}?force=1`, { method: 'DELETE' })
  })

  const tagsSeenBy = async (role: string) => {
    const { status, body } = await gw.json('/v1/images', { role })
    expect(status).toBe(200)
    return body.images.flatMap((i: { tags: string[] }) => i.tags)
  }

  it('lists to a non-admin only the images its policy allows', async () => {
    expect(await tagsSeenBy('fixtures')).toContain(IMAGE)
    expect(await tagsSeenBy('fixtures')).not.toContain(LABELLED_IMAGE)
    expect(await tagsSeenBy('builder')).toContain(LABELLED_IMAGE)
    expect(await tagsSeenBy('builder')).not.toContain(IMAGE)
    expect(await tagsSeenBy('admin')).toEqual(expect.arrayContaining([IMAGE, LABELLED_IMAGE]))
  })

  it('answers a disallowed image exactly as a missing one', async () => {
    const hidden = await gw.json(`/v1/images/${encodeURIComponent(LABELLED_IMAGE)}`, {
      role: 'fixtures',
    })
    const missing = await gw.json(`/v1/images/${encodeURIComponent('dockgate-nope:1')}`, {
      role: 'fixtures',
    })
    expect([hidden.status, missing.status]).toEqual([404, 404])
    const strip = (body: Record<string, unknown>) => ({
      ...body,
      detail: undefined,
      requestId: undefined,
      instance: undefined,
    })
    expect(strip(hidden.body)).toEqual(strip(missing.body))
    expect(hidden.body.detail).toBe(`No such image: ${LABELLED_IMAGE}`)
    expect(missing.body.detail).toBe('No such image: dockgate-nope:1')
    expect(
      (await gw.json(`/v1/images/${encodeURIComponent(IMAGE)}`, { role: 'fixtures' })).status,
    ).toBe(200)
  })

  it('redacts secret-looking image labels, in lists and inspects, for everyone', async () => {
    const engine = (await direct(`/images/${LABELLED_IMAGE}/json`)).json() as {
      Config: { Labels: Record<string, string> }
    }
    expect(engine.Config.Labels['build.api_key']).toBe('s3cr3t')
    for (const role of ['builder', 'admin']) {
      const { body } = await gw.json('/v1/images', { role })
      const listed = body.images.find((i: { tags: string[] }) => i.tags.includes(LABELLED_IMAGE))
      expect(listed.labels, role).toEqual({ 'build.api_key': null, maintainer: 'qa' })
      const inspect = await gw.json(`/v1/images/${encodeURIComponent(LABELLED_IMAGE)}`, { role })
      expect(inspect.body.config.labels, role).toEqual({ 'build.api_key': null, maintainer: 'qa' })
    }
  })
})

describe('the reserved label prefixes', () => {
  it.each([
    'Dockgate.owner',
    'DOCKGATE.x',
    'dockGate.team',
    // Docker's own namespaces: no container may pass for one the engine made (a Swarm task).
    'com.docker.swarm.service.id',
    'COM.Docker.swarm.task.id',
    'io.docker.x',
    'org.dockerproject.y',
  ])('refuses %s, and nothing reaches the engine', async (key) => {
    const run = uniqueName('reserved')
    const since = aSecondAgo()
    const answer = await createAs('alice', { labels: { run, [key]: 'bob' } })
    expect(answer.status).toBe(400)
    expect(answer.body.invalidParams).toEqual([
      { name: `body.labels.${key}`, reason: 'reserved label prefix' },
    ])
    expect(await engineCreates(`run=${run}`, since)).toEqual([])
  })
})
