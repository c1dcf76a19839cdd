import { describe, expect, it } from 'vitest'
import type { AuditEntry } from '../../src/domain/audit.ts'
import { engineContainerIds, engineInspect, testEngineEnv } from '../support/engine.ts'
import { postJson, testGateway, uniqueName } from '../support/gateway.ts'
import { TEST_LABEL, TEST_RUN } from '../support/labels.ts'
import { engineEvents, engineNow } from '../support/reliability.ts'

const MiB = 1024 * 1024
const GiB = 1024 * MiB
const WORKER = ['containers:read', 'containers:write'] as const

const body = (extra: Record<string, unknown> = {}) => ({
  image: testEngineEnv().image,
  name: uniqueName('policy'),
  cmd: ['true'],
  labels: { [TEST_LABEL]: TEST_RUN },
  ...extra,
})

describe('the create policy', () => {
  it('allows nothing until images are listed, and records the denial', async () => {
    const audit: AuditEntry[] = []
    const gw = await testGateway({ audit, clients: { fresh: { scopes: [...WORKER] } } })
    const probe = uniqueName('probe')
    const request = body({ labels: { [TEST_LABEL]: TEST_RUN, probe } })
    const { status, body: problem } = await gw.json('/v1/containers', postJson(request, 'fresh'))
    expect(status).toBe(403)
    expect(problem.detail).toMatch(/not on this client's allowlist/)
    expect(await engineContainerIds(`probe=${probe}`)).toEqual([])
    expect(audit).toContainEqual(
      expect.objectContaining({
        principal: 'fresh',
        reason: 'image-not-allowed',
        outcome: 'denied',
        decision: 'deny',
        status: 403,
      }),
    )
  })

  it('matches images by glob', async () => {
    const gw = await testGateway({
      clients: { narrow: { scopes: [...WORKER], policy: { images: ['dockgate-fixture/*'] } } },
    })
    expect((await gw.json('/v1/containers', postJson(body(), 'narrow'))).status).toBe(403)
    const nested = body({ image: testEngineEnv().nestedImage })
    expect((await gw.json('/v1/containers', postJson(nested, 'narrow'))).status).toBe(201)
  })

  it('applies the policy defaults, as the engine confirms', async () => {
    const gw = await testGateway({
      clients: {
        small: {
          scopes: [...WORKER],
          policy: {
            images: ['dockgate-fixture:*'],
            defaults: { memory: 32 * MiB, pids: 64, cpus: 0.25 },
          },
        },
      },
    })
    const { status, body: created } = await gw.json('/v1/containers', postJson(body(), 'small'))
    expect(status).toBe(201)
    const host = (await engineInspect(created.id))?.HostConfig
    expect(host).toMatchObject({
      Memory: 32 * MiB,
      MemorySwap: 32 * MiB,
      PidsLimit: 64,
      NanoCpus: 250_000_000,
    })
  })

  it('never leaves pids, memory or CPU unlimited when nobody says', async () => {
    const gw = await testGateway({
      clients: { plain: { scopes: [...WORKER], policy: { images: ['*'] } } },
    })
    const { body: created } = await gw.json('/v1/containers', postJson(body(), 'plain'))
    const host = (await engineInspect(created.id))?.HostConfig
    expect(host.PidsLimit).toBe(256)
    expect(host.Memory).toBe(512 * MiB)
    expect(host.MemorySwap).toBe(host.Memory)
    expect(host.NanoCpus).toBe(1_000_000_000)
  })

  describe('without policy.max, the built-in maxima', () => {
    const over = [
      { resources: { memory: 2 ** 40 } },
      { resources: { memory: 8 * GiB + 1 } },
      { resources: { pids: 1_000_000 } },
      { resources: { pids: 4097 } },
      { resources: { cpus: 64 } },
    ]

    it.each(over)(
      'refuse %j with 403 problem+json, and nothing reaches the engine',
      async (extra) => {
        const gw = await testGateway({
          clients: { plain: { scopes: [...WORKER], policy: { images: ['*'] } } },
        })
        const probe = uniqueName('over-max')
        const since = engineNow()
        const request = body({ ...extra, labels: { [TEST_LABEL]: TEST_RUN, probe } })
        const {
          status,
          body: problem,
          response,
        } = await gw.json('/v1/containers', postJson(request, 'plain'))
        expect(status).toBe(403)
        expect(response.headers.get('content-type')).toBe('application/problem+json')
        expect(problem.detail).toMatch(/above this client's maximum/)
        const events = await engineEvents(since, engineNow())
        expect(events.filter((e) => e.Actor.Attributes?.probe === probe)).toEqual([])
        expect(await engineContainerIds(`probe=${probe}`)).toEqual([])
      },
    )

    it('take what a request asks up to them, as the engine confirms', async () => {
      const gw = await testGateway({
        clients: { plain: { scopes: [...WORKER], policy: { images: ['*'] } } },
      })
      const resources = { memory: 8 * GiB, pids: 4096 }
      const { status, body: created } = await gw.json(
        '/v1/containers',
        postJson(body({ resources }), 'plain'),
      )
      expect(status).toBe(201)
      expect((await engineInspect(created.id))?.HostConfig).toMatchObject({
        Memory: 8 * GiB,
        PidsLimit: 4096,
        NanoCpus: 1_000_000_000,
      })
    })

    it('are raised by a policy that says so', async () => {
      const gw = await testGateway({
        clients: {
          big: {
            scopes: [...WORKER],
            policy: { images: ['*'], max: { memory: 16 * GiB, pids: 10_000 } },
          },
        },
      })
      const resources = { memory: 12 * GiB, pids: 8192 }
      const { status, body: created } = await gw.json(
        '/v1/containers',
        postJson(body({ resources }), 'big'),
      )
      expect(status).toBe(201)
      expect((await engineInspect(created.id))?.HostConfig).toMatchObject({
        Memory: 12 * GiB,
        PidsLimit: 8192,
      })
    })
  })

  it('refuses resources above the maximum and caps defaults at it', async () => {
    const gw = await testGateway({
      clients: {
        capped: {
          scopes: [...WORKER],
          policy: { images: ['*'], max: { memory: 64 * MiB, pids: 100 } },
        },
      },
    })
    const over = await gw.json(
      '/v1/containers',
      postJson(body({ resources: { memory: 128 * MiB } }), 'capped'),
    )
    expect(over.status).toBe(403)
    expect(over.body.detail).toMatch(/resources\.memory/)
    const { body: created } = await gw.json('/v1/containers', postJson(body(), 'capped'))
    expect((await engineInspect(created.id))?.HostConfig).toMatchObject({
      Memory: 64 * MiB,
      PidsLimit: 100,
    })
  })

  it('limits how many containers a client owns', async () => {
    const gw = await testGateway({
      clients: { quota: { scopes: [...WORKER], policy: { images: ['*'], maxContainers: 2 } } },
    })
    expect((await gw.json('/v1/containers', postJson(body(), 'quota'))).status).toBe(201)
    expect((await gw.json('/v1/containers', postJson(body(), 'quota'))).status).toBe(201)
    const third = await gw.json('/v1/containers', postJson(body(), 'quota'))
    expect(third.status).toBe(403)
    expect(third.body.detail).toMatch(/maximum is 2/)
  })

  it('in audit mode, logs would_deny and lets the request through', async () => {
    const audit: AuditEntry[] = []
    const gw = await testGateway({
      audit,
      clients: { learner: { scopes: ['containers:read'], policy: { mode: 'audit' } } },
    })
    const { status } = await gw.json('/v1/containers', postJson(body(), 'learner'))
    expect(status).toBe(201)
    const reasons = audit.filter((e) => e.decision === 'would_deny').map((e) => e.reason)
    expect(reasons).toEqual(
      expect.arrayContaining(['missing-scope:containers:write', 'image-not-allowed']),
    )
    expect(audit).toContainEqual(
      expect.objectContaining({ principal: 'learner', outcome: 'allowed', status: 201 }),
    )
  })
})

describe('audit records', () => {
  it('record every mutating call and every denial with time, principal, action, target, outcome, reason and request id', async () => {
    const audit: AuditEntry[] = []
    const gw = await testGateway({ audit })
    const { body: created, response } = await gw.json('/v1/containers', postJson(body()))
    await gw.json(`/v1/containers/${created.id}/start`, { method: 'POST' })
    await gw.json('/v1/containers', { role: null })
    await gw.json('/v1/containers', { role: 'nobody' })
    const [create, start, unauthenticated, forbidden] = audit
    expect(create).toMatchObject({
      principal: 'admin',
      action: 'POST /v1/containers',
      outcome: 'allowed',
      status: 201,
      requestId: response.headers.get('x-request-id'),
    })
    expect(Date.parse(create!.time)).not.toBeNaN()
    expect(start).toMatchObject({
      action: `POST /v1/containers/${created.id}/start`,
      target: created.id,
      outcome: 'allowed',
    })
    expect(unauthenticated).toMatchObject({
      principal: null,
      outcome: 'denied',
      reason: 'unauthorized',
      status: 401,
    })
    expect(forbidden).toMatchObject({
      principal: 'nobody',
      outcome: 'denied',
      reason: 'missing-scope:containers:read',
      status: 403,
    })
  })
})
