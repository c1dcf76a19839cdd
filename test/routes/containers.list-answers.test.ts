/**
 * The container list's kept answers (src/routes/containers.list-answers.ts) and its memo of
 * validated queries (src/routes/query-memo.ts), on the real engine: a gateway answering from its
 * read model, where a polled list is answered again from what was kept, against one without a
 * read model, which asks the engine and serialises every list anew (the path without any kept
 * answer). After every change, made around the gateway on the engine or by a config reload, the
 * two must answer every caller the same bytes.
 */
import fc from 'fast-check'
import { afterAll, describe, expect, it } from 'vitest'
import { configReloads, type GatewaySettings } from '../../src/config.ts'
import type { AuditEntry } from '../../src/domain/audit.ts'
import {
  countingContainerLists,
  createDirect,
  direct,
  engineContainerIds,
} from '../support/engine.ts'
import { type TestGateway, testGateway, uniqueName } from '../support/gateway.ts'
import { TEST_LABEL, TEST_RUN } from '../support/labels.ts'

const READER = ['containers:read'] as const
const CLIENTS = {
  alice: { scopes: [...READER] },
  bob: { scopes: [...READER] },
  blueteam: { scopes: [...READER], policy: { visibleLabels: ['team=blue'] } },
  auditor: { scopes: [...READER], policy: { mode: 'audit' as const } },
}
const ROLES = ['admin', 'alice', 'bob', 'blueteam', 'auditor'] as const

const created: string[] = []
afterAll(async () => {
  for (const id of created) await direct(`/containers/${id}?force=1`, { method: 'DELETE' })
})

/**
 * Both gateways, with the same clients and settings, each told of the same config reloads;
 * resolves once the first answers lists from its read model (until then it asks the engine).
 */
async function twoGateways(settings: Partial<GatewaySettings> = {}) {
  const { transport, counter } = countingContainerLists()
  const keptReloads = configReloads()
  const askedReloads = configReloads()
  const keptAudit: AuditEntry[] = []
  const kept = await testGateway({
    transport,
    clients: CLIENTS,
    settings,
    audit: keptAudit,
    dependencies: { reloads: keptReloads },
  })
  const asked = await testGateway({
    clients: CLIENTS,
    settings: { ...settings, readModel: false },
    dependencies: { reloads: askedReloads },
  })
  const listCalls = async () => {
    const before = counter.lists
    await kept.json('/v1/containers?limit=1')
    return counter.lists - before
  }
  await expect.poll(listCalls, { timeout: 10_000 }).toBe(0)
  return {
    kept,
    asked,
    keptAudit,
    reload(next: Partial<GatewaySettings>) {
      keptReloads.notify(next)
      askedReloads.notify(next)
    },
  }
}

/** The status, content type and bytes of an answer. */
async function answer(gw: TestGateway, path: string, role: string) {
  const response = await gw.call(path, { role })
  return {
    status: response.status,
    type: response.headers.get('content-type'),
    body: Buffer.from(await response.arrayBuffer()).toString('latin1'),
  }
}

/** Every caller's answer to every path, from one gateway. */
async function answers(gw: TestGateway, paths: readonly string[]) {
  const all: Record<string, Awaited<ReturnType<typeof answer>>> = {}
  for (const path of paths)
    for (const role of ROLES) all[`${role} ${path}`] = await answer(gw, path, role)
  return all
}

describe('the container list’s kept answers', () => {
  it('answer every caller the bytes the engine path answers, after every random change around the gateway', async () => {
    const { kept, asked, reload } = await twoGateways()
    const run = uniqueName('kept')
    const label = `run=${run}`
    const paths = [
      `/v1/containers?all=true&label=${label}`,
      `/v1/containers?label=${label}`,
      `/v1/containers?all=true&label=${label}&limit=2`,
      `/v1/containers?status=exited&label=${label}`,
      `/v1/containers?all=true&label=${label}&name=${run}-b`,
      `/v1/engines/default/containers?all=true&label=${label}`,
    ]
    const ids: string[] = []
    const labelsOf = fc.record({
      'dockgate.owner': fc.constantFrom('alice', 'bob', 'someone'),
      team: fc.constantFrom('blue', 'red'),
      'ci.token': fc.constantFrom('hunter2', 's3cret'),
      app: fc.constantFrom('web', 'db', 'naïve ünïcode'),
    })
    const step = fc.oneof(
      fc.record({ op: fc.constant('create' as const), labels: labelsOf, start: fc.boolean() }),
      fc.record({
        op: fc.constantFrom(
          'start' as const,
          'stop' as const,
          'rename' as const,
          'remove' as const,
        ),
        n: fc.nat(),
      }),
      fc.record({
        op: fc.constant('reload' as const),
        patterns: fc.constantFrom(undefined, ['app'], ['*token*', 'team'], []),
      }),
    )
    const steps = fc.sample(step, { numRuns: 20, seed: 20261204 })
    let names = 0
    for (const s of steps) {
      if (s.op === 'create' || (s.op !== 'reload' && ids.length === 0)) {
        const labels = 'labels' in s ? s.labels : { 'dockgate.owner': 'alice' }
        const id = await createDirect({
          name: `${run}-${String.fromCharCode(97 + (names++ % 3))}${names}`,
          cmd: ['sleep', '3600'],
          labels: { ...labels, [TEST_LABEL]: TEST_RUN, run },
        })
        created.push(id)
        ids.push(id)
        if ('start' in s && s.start) await direct(`/containers/${id}/start`, { method: 'POST' })
      } else if (s.op === 'reload') {
        reload(s.patterns ? { secretLabelPatterns: s.patterns } : {})
      } else {
        const id = ids[s.n % ids.length]!
        if (s.op === 'remove') {
          await direct(`/containers/${id}?force=1`, { method: 'DELETE' })
          ids.splice(ids.indexOf(id), 1)
        } else if (s.op === 'rename') {
          await direct(
            `/containers/${id}/rename?name=${run}-${String.fromCharCode(97 + (names++ % 3))}${names}`,
            {
              method: 'POST',
            },
          )
        } else {
          await direct(`/containers/${id}/${s.op}${s.op === 'stop' ? '?t=0' : ''}`, {
            method: 'POST',
          })
        }
      }
      // The model takes in the engine's event and one inspect; the kept answers must follow.
      const expected = await answers(asked, paths)
      await expect
        .poll(() => answers(kept, paths), { timeout: 5_000, interval: 50 })
        .toEqual(expected)
    }
    // The steps did reach the engine, and the lists were not all empty.
    expect(await engineContainerIds(label)).toEqual([...ids].sort())
    expect(ids.length).toBeGreaterThan(0)
  }, 180_000)

  it('reflect a config reload that changes the redaction at the next list', async () => {
    const { kept, asked, reload } = await twoGateways()
    const run = uniqueName('redact')
    const id = await createDirect({
      name: run,
      cmd: ['true'],
      labels: { app: 'web', 'ci.token': 'hunter2', [TEST_LABEL]: TEST_RUN, run },
    })
    created.push(id)
    const path = `/v1/containers?all=true&label=run=${run}`
    const labels = async () => (await kept.json(path)).body.containers[0]?.labels
    await expect.poll(labels, { timeout: 5_000 }).toMatchObject({ 'ci.token': null, app: 'web' })
    // Answered again (kept), then a reload: the very next list redacts by the new patterns.
    await labels()
    reload({ secretLabelPatterns: ['app'] })
    expect(await labels()).toMatchObject({ 'ci.token': 'hunter2', app: null })
    expect(await answer(kept, path, 'admin')).toEqual(await answer(asked, path, 'admin'))
    reload({})
    expect(await labels()).toMatchObject({ 'ci.token': null, app: 'web' })
  })

  it('show a container’s new state and name at the next list once the model has its event', async () => {
    const { kept } = await twoGateways()
    const run = uniqueName('state')
    const id = await createDirect({
      name: run,
      cmd: ['sleep', '3600'],
      labels: { [TEST_LABEL]: TEST_RUN, run },
    })
    created.push(id)
    const path = `/v1/containers?all=true&label=run=${run}`
    const listed = async () => {
      const [c] = (await kept.json(path)).body.containers
      return c && { name: c.name, state: c.state }
    }
    await expect.poll(listed, { timeout: 5_000 }).toEqual({ name: run, state: 'created' })
    await listed()
    await direct(`/containers/${id}/start`, { method: 'POST' })
    await expect.poll(listed, { timeout: 5_000 }).toEqual({ name: run, state: 'running' })
    await direct(`/containers/${id}/rename?name=${run}-renamed`, { method: 'POST' })
    await expect
      .poll(listed, { timeout: 5_000 })
      .toEqual({ name: `${run}-renamed`, state: 'running' })
    await direct(`/containers/${id}?force=1`, { method: 'DELETE' })
    await expect.poll(listed, { timeout: 5_000 }).toBeUndefined()
  })

  it('never show one caller another’s containers, whoever asked the same query first', async () => {
    const { kept } = await twoGateways()
    const run = uniqueName('owners')
    for (const owner of ['alice', 'bob']) {
      created.push(
        await createDirect({
          name: `${run}-${owner}`,
          cmd: ['true'],
          labels: { 'dockgate.owner': owner, [TEST_LABEL]: TEST_RUN, run },
        }),
      )
    }
    const path = `/v1/containers?all=true&label=run=${run}`
    const names = async (role: string) =>
      ((await kept.json(path, { role })).body.containers as { name: string }[]).map((c) => c.name)
    await expect.poll(() => names('admin'), { timeout: 5_000 }).toHaveLength(2)
    for (let i = 0; i < 3; i++) {
      expect(await names('alice')).toEqual([`${run}-alice`])
      expect(await names('bob')).toEqual([`${run}-bob`])
      expect(await names('blueteam')).toEqual([])
      expect((await names('admin')).sort()).toEqual([`${run}-alice`, `${run}-bob`])
    }
  })

  it('record an audit-mode caller’s view of others’ containers on every list, not only the first', async () => {
    const { kept, keptAudit } = await twoGateways()
    const run = uniqueName('audit')
    created.push(
      await createDirect({
        name: run,
        cmd: ['true'],
        labels: { 'dockgate.owner': 'alice', [TEST_LABEL]: TEST_RUN, run },
      }),
    )
    const path = `/v1/containers?all=true&label=run=${run}`
    await expect
      .poll(async () => (await kept.json(path, { role: 'admin' })).body.containers.length, {
        timeout: 5_000,
      })
      .toBe(1)
    const before = keptAudit.length
    for (let i = 0; i < 3; i++) {
      expect((await kept.json(path, { role: 'auditor' })).body.containers).toHaveLength(1)
    }
    const recorded = keptAudit.slice(before).filter((e) => e.decision === 'would_deny')
    expect(recorded).toHaveLength(3)
    expect(recorded[0]).toMatchObject({ outcome: 'allowed', reason: 'not-owner' })
  })

  it('refuse a selector on a key a reload made secret, though the same query passed before', async () => {
    const { kept, asked, reload } = await twoGateways()
    const path = `/v1/containers?all=true&label=app%3Dweb&label=run%3D${uniqueName('secret')}`
    const both = async () => {
      const [got, want] = [await kept.json(path), await asked.json(path)]
      const { requestId: _k, ...problem } = got.body
      const { requestId: _a, ...expected } = want.body
      expect(problem).toEqual(expected)
      return got.status
    }
    // Passed twice (the verdict kept), then the key is secret: refused at once, and passes again.
    expect([await both(), await both()]).toEqual([200, 200])
    reload({ secretLabelPatterns: ['app'] })
    expect(await both()).toBe(400)
    expect((await kept.json(path)).body.invalidParams).toEqual([
      { name: 'query.label', reason: expect.stringContaining('app: a secret-looking key') },
    ])
    reload({})
    expect(await both()).toBe(200)
  })

  it('judge a bad query again every time, with the validator’s problem, beside a kept good one', async () => {
    const { kept, asked } = await twoGateways()
    for (const path of [
      '/v1/containers?all=true',
      '/v1/containers?all=yes',
      '/v1/containers?forse=true',
      '/v1/containers?label=%3Dx',
      '/v1/containers?label=ci.token%3Dhunter2',
      '/v1/containers?all=true',
      '/v1/containers?all=yes',
      '/v1/containers?limit=0',
      // Past what the memo keeps (1 KiB): judged every time, answered the same.
      `/v1/containers?all=true&${Array.from({ length: 6 }, (_, i) => `label=k${i}=${'v'.repeat(200)}`).join('&')}`,
      `/v1/containers?all=true&${Array.from({ length: 6 }, (_, i) => `label=k${i}=${'v'.repeat(200)}`).join('&')}`,
      `/v1/containers?all=maybe&${Array.from({ length: 6 }, (_, i) => `label=k${i}=${'v'.repeat(200)}`).join('&')}`,
    ]) {
      const got = await kept.json(path)
      const want = await asked.json(path)
      expect(got.status, path).toBe(want.status)
      if (got.status !== 200) {
        expect(got.response.headers.get('content-type')).toBe('application/problem+json')
        const { requestId: _k, ...problem } = got.body
        const { requestId: _a, ...expected } = want.body
        expect(problem, path).toEqual(expected)
      }
    }
  })
})
