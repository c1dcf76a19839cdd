import { beforeAll, describe, expect, it } from 'vitest'
import type { AuditEntry } from '../../src/domain/audit.ts'
import { engineInspect, testEngineEnv } from '../support/engine.ts'
import { postJson, type TestGateway, testGateway, uniqueName } from '../support/gateway.ts'
import { TEST_LABEL, TEST_RUN } from '../support/labels.ts'
import { readSse } from '../support/sse.ts'

const WORKER = ['containers:read', 'containers:write', 'logs:read', 'events:read'] as const
const FIXTURES = ['dockgate-fixture:*']

let gw: TestGateway
const audit: AuditEntry[] = []

beforeAll(async () => {
  gw = await testGateway({
    audit,
    clients: {
      alice: { scopes: [...WORKER], policy: { images: FIXTURES } },
      bob: { scopes: [...WORKER], policy: { images: FIXTURES } },
      blueteam: {
        scopes: ['containers:read', 'logs:read'],
        policy: { visibleLabels: ['team=blue'] },
      },
    },
  })
})

async function createAs(role: string, body: Record<string, unknown> = {}, query = '') {
  return gw.json(
    `/v1/containers${query}`,
    postJson(
      {
        image: testEngineEnv().image,
        name: uniqueName(role),
        cmd: ['sh', '-c', 'echo secret-output; sleep 30'],
        ...body,
        labels: { [TEST_LABEL]: TEST_RUN, ...(body.labels as object) },
      },
      role,
    ),
  )
}

describe('ownership', () => {
  it('stamps the creator as owner and lets only the owner (and admins) see it', async () => {
    const run = uniqueName('own')
    const { status, body: mine } = await createAs('alice', { labels: { run } }, '?start=true')
    expect(status).toBe(201)
    expect((await engineInspect(mine.id))?.Config.Labels['dockgate.owner']).toBe('alice')

    const ids = async (role: string) =>
      (await gw.json(`/v1/containers?all=true&label=run=${run}`, { role })).body.containers.map(
        (c: { id: string }) => c.id,
      )
    expect(await ids('alice')).toEqual([mine.id])
    expect(await ids('bob')).toEqual([])
    expect(await ids('admin')).toEqual([mine.id])
  })

  it('answers 404 to anyone else exactly as for a missing container, for every operation', async () => {
    const { body: mine } = await createAs('alice', {}, '?start=true')
    const missing = 'dockgate-does-not-exist'
    const operations: [string, string][] = [
      ['GET', ''],
      ['GET', '/logs'],
      ['GET', '/logs/stream'],
      ['POST', '/stop?timeout=0'],
      ['POST', '/kill'],
      ['POST', '/restart?timeout=0'],
      ['POST', '/start'],
      ['POST', '/wait'],
      ['DELETE', '?force=true'],
    ]
    for (const [method, suffix] of operations) {
      const hidden = await gw.json(`/v1/containers/${mine.id}${suffix}`, { method, role: 'bob' })
      const absent = await gw.json(`/v1/containers/${missing}${suffix}`, { method, role: 'bob' })
      expect([hidden.status, absent.status], `${method} ${suffix}`).toEqual([404, 404])
      const strip = (body: Record<string, unknown>) => ({
        ...body,
        instance: undefined,
        requestId: undefined,
      })
      expect(strip(hidden.body), `${method} ${suffix}`).toEqual({
        ...strip(absent.body),
        detail: `No such container: ${mine.id}`,
      })
    }
    // Nothing happened to it.
    expect((await engineInspect(mine.id))?.State.Running).toBe(true)
    expect(
      audit.some(
        (e) => e.principal === 'bob' && e.reason === 'not-owner' && e.outcome === 'denied',
      ),
    ).toBe(true)
  })

  it('lets an admin act on anyone’s container', async () => {
    const { body: mine } = await createAs('alice', {}, '?start=true')
    const { status, body } = await gw.json(`/v1/containers/${mine.id}/stop?timeout=0`, {
      method: 'POST',
      role: 'admin',
    })
    expect(status).toBe(200)
    expect(body.changed).toBe(true)
  })

  it('shows containers matching a policy’s label selector', async () => {
    const { body: blue } = await createAs('alice', { labels: { team: 'blue' } })
    const { body: red } = await createAs('alice', { labels: { team: 'red' } })
    expect((await gw.json(`/v1/containers/${blue.id}`, { role: 'blueteam' })).status).toBe(200)
    expect((await gw.json(`/v1/containers/${red.id}`, { role: 'blueteam' })).status).toBe(404)
    const listed = (await gw.json('/v1/containers?all=true&label=team', { role: 'blueteam' })).body
      .containers
    expect(listed.map((c: { id: string }) => c.id)).toContain(blue.id)
    expect(listed.map((c: { id: string }) => c.id)).not.toContain(red.id)
  })

  it('streams each client only the events of containers it may see, secrets redacted', async () => {
    const run = uniqueName('events')
    const streams = Object.fromEntries(
      await Promise.all(
        ['alice', 'bob', 'admin'].map(async (role) => {
          const response = await gw.call(`/v1/events?type=container&label=run=${run}`, { role })
          expect(response.status).toBe(200)
          return [role, readSse(response)] as const
        }),
      ),
    )
    const { body: mine } = await createAs('alice', { labels: { run, 'app.secret': 'hunter2' } })
    const { body: theirs } = await createAs('bob', { labels: { run } })
    const creates = async (role: string, count: number) => {
      const seen: string[] = []
      while (seen.length < count) {
        const event = await streams[role]!.next(5_000)
        if (event?.event === 'container') seen.push(JSON.parse(event.data).actor.id)
      }
      return seen
    }
    expect(await creates('admin', 2)).toEqual([mine.id, theirs.id])
    expect(await creates('alice', 1)).toEqual([mine.id])
    expect(await creates('bob', 1)).toEqual([theirs.id])
    // Nothing more for alice: bob's create never reaches her.
    await expect(streams.alice!.next(500)).rejects.toThrow(/no event/)
    for (const reader of Object.values(streams)) await reader.close()
  })

  it('redacts secret-looking attributes in events', async () => {
    const run = uniqueName('secret')
    const reader = readSse(
      await gw.call(`/v1/events?type=container&label=run=${run}`, { role: 'alice' }),
    )
    await createAs('alice', { labels: { run, 'db.password': 'hunter2' } })
    const event = await reader.next(5_000)
    const data = JSON.parse(event!.data)
    expect(data.actor.attributes).toMatchObject({ run, 'db.password': null })
    expect(event!.data).not.toContain('hunter2')
    await reader.close()
  })
})
