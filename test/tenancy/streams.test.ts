/**
 * Tenants against one spawned gateway (the Node entry over real HTTP) and the real engine, on
 * event streams: HEAD on a stream route holds nothing, a revoked token's open streams end and
 * its tickets open nothing, a config reload applies its limits live, and `/metrics` (every
 * tenant's counters) is for admins only.
 */
import { rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { hashToken } from '../../src/auth/tokens.ts'
import { direct, testEngineEnv } from '../support/engine.ts'
import { tokenOf, uniqueName } from '../support/gateway.ts'
import { TEST_LABEL, TEST_RUN } from '../support/labels.ts'
import {
  engineUnixConnections,
  openFds,
  type SpawnedGateway,
  scratchDir,
  settle,
  spawnGateway,
} from '../support/reliability.ts'
import { readSse } from '../support/sse.ts'

const TENANT_SCOPES = [
  'system:read',
  'containers:read',
  'containers:write',
  'logs:read',
  'events:read',
] as const
const TENANT_POLICY = { images: ['dockgate-fixture:*'] }
const TENANTS = ['alice', 'bob', 'carol'] as const
type Who = (typeof TENANTS)[number] | 'admin'

let dir: string
let gateway: SpawnedGateway
/** Each tenant's long-running container, created through the gateway (so it owns it). */
const sleepers: Partial<Record<Who, string>> = {}

async function configWith(
  tenants: readonly Who[],
  extra: { limits?: Record<string, number>; policy?: Partial<Record<Who, object>> } = {},
) {
  const tokens = await Promise.all(
    tenants.map(async (name) => ({
      name,
      hash: await hashToken(tokenOf(name)),
      scopes: name === 'admin' ? ['admin'] : [...TENANT_SCOPES],
      ...(name === 'admin' ? {} : { policy: extra.policy?.[name] ?? TENANT_POLICY }),
    })),
  )
  return {
    tokens,
    limits: { requestsPerSecond: 10_000, burst: 10_000, ...extra.limits },
  }
}

const reloads = () => gateway.output().split('"msg":"config reloaded"').length - 1

/** Rewrites the running gateway's config file, which it watches, and waits for the reload. */
async function rewriteConfig(config: unknown) {
  const before = reloads()
  writeFileSync(join(dir, `config-${gateway.port}.json`), JSON.stringify(config), { mode: 0o600 })
  expect(await settle(reloads, (n) => n > before, 5_000)).toBeGreaterThan(before)
}

const call = (who: Who, path: string, init: RequestInit = {}) =>
  fetch(`${gateway.url}${path}`, {
    ...init,
    headers: { authorization: `Bearer ${tokenOf(who)}`, ...init.headers },
  })

async function createSleeper(who: Who): Promise<string> {
  const response = await call(who, '/v1/containers?start=true', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({
      image: testEngineEnv().image,
      name: uniqueName(`tenancy-streams-${who}`),
      cmd: ['sh', '-c', 'while true; do echo tick; sleep 1; done'],
      labels: { [TEST_LABEL]: TEST_RUN },
    }),
  })
  expect(response.status).toBe(201)
  return ((await response.json()) as { id: string }).id
}

async function metric(series: string): Promise<number> {
  const text = await (await call('admin', '/metrics')).text()
  const line = text.split('\n').find((l) => l.startsWith(`${series} `))
  if (line === undefined) throw new Error(`no ${series} in /metrics`)
  return Number(line.slice(series.length + 1))
}

beforeAll(async () => {
  dir = scratchDir('dockgate-tenancy-streams')
  gateway = await spawnGateway({ dir, config: await configWith(['admin', ...TENANTS]) })
  sleepers.alice = await createSleeper('alice')
  sleepers.bob = await createSleeper('bob')
}, 60_000)

afterAll(async () => {
  gateway?.kill()
  for (const id of Object.values(sleepers)) {
    await direct(`/containers/${id}?force=1`, { method: 'DELETE' })
  }
  rmSync(dir, { recursive: true, force: true })
})

describe('HEAD on a stream route', () => {
  it('answers as GET would, and holds no engine connection, subscription or slot', async () => {
    const alice = sleepers.alice!
    const routes = [
      `/v1/containers/${alice}/logs/stream`,
      `/v1/containers/${alice}/stats/stream`,
      '/v1/events',
    ]
    const head = await call('alice', routes[0]!, { method: 'HEAD' })
    expect(head.status).toBe(200)
    expect(head.headers.get('content-type')).toMatch(/^text\/event-stream/)
    // Checked as GET would be: authentication, isolation, validation.
    expect((await fetch(`${gateway.url}${routes[0]}`, { method: 'HEAD' })).status).toBe(401)
    expect((await call('bob', routes[0]!, { method: 'HEAD' })).status).toBe(404)
    expect((await call('alice', `${routes[0]}?tail=lots`, { method: 'HEAD' })).status).toBe(400)

    const subscribersBefore = await metric('dockgate_events_subscribers')
    const fdsBefore = openFds(gateway.pid)
    // 150 per route, 12 at a time (within her 16 requests in progress): what alice alone once
    // held open was an engine connection (or a subscription) for each, past her stream cap,
    // until the gateway ran out of descriptors.
    const heads = routes.flatMap((route) => Array.from({ length: 150 }, () => route))
    for (let i = 0; i < heads.length; i += 12) {
      const answers = await Promise.all(
        heads.slice(i, i + 12).map((route) => call('alice', route, { method: 'HEAD' })),
      )
      expect(answers.map((a) => a.status)).toEqual(answers.map(() => 200))
    }

    const inFlight = await settle(
      () => metric('dockgate_engine_connections'),
      (n) => n <= 2,
      5_000,
    )
    // At most the shared events upstream and the /metrics call itself.
    expect(inFlight).toBeLessThanOrEqual(2)
    expect(await metric('dockgate_events_subscribers')).toBe(subscribersBefore)
    expect(await metric('dockgate_open_streams')).toBe(0)
    // The kernel's view: no connection to the engine per HEAD (the pool holds at most 64).
    expect(engineUnixConnections(gateway.pid)).toBeLessThanOrEqual(66)
    expect(openFds(gateway.pid) - fdsBefore).toBeLessThan(100)

    // Every other tenant is still answered, streams included.
    expect((await call('bob', '/v1/containers')).status).toBe(200)
    const bobLogs = readSse(await call('bob', `/v1/containers/${sleepers.bob}/logs/stream`))
    expect((await bobLogs.take(1)).map((e) => e.event)).toEqual(['stdout'])
    await bobLogs.close()
  }, 60_000)
})

describe('/metrics', () => {
  it('shows the gateway-wide counters to admins only, not to a tenant with system:read', async () => {
    const tenant = await call('carol', '/metrics')
    expect(tenant.status).toBe(403)
    expect(await tenant.text()).not.toMatch(/dockgate_http_requests_total/)
    expect((await call('carol', '/v1/system/version')).status).toBe(200)
    const admin = await call('admin', '/metrics')
    expect(admin.status).toBe(200)
    expect(await admin.text()).toMatch(/dockgate_http_requests_total/)
  })
})

describe('a config reload', () => {
  it('ends a removed token’s open streams with `revoked`, and its tickets open nothing', async () => {
    const alice = sleepers.alice!
    const ticketFor = async (stream?: string) => {
      const response = await call('alice', '/v1/stream-tickets', {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ scopes: ['events:read', 'logs:read'], stream }),
      })
      expect(response.status).toBe(201)
      return ((await response.json()) as { ticket: string }).ticket
    }
    const aliceEvents = readSse(await call('alice', '/v1/events'))
    const aliceLogs = readSse(await call('alice', `/v1/containers/${alice}/logs/stream`))
    const byTicket = readSse(await fetch(`${gateway.url}/v1/events?ticket=${await ticketFor()}`))
    const unused = await ticketFor(`/v1/containers/${alice}/logs/stream`)
    const bobEvents = readSse(await call('bob', '/v1/events'))
    await aliceLogs.take(1)
    expect(
      await settle(
        () => metric('dockgate_open_streams'),
        (n) => n === 4,
        5_000,
      ),
    ).toBe(4)

    await rewriteConfig(await configWith(['admin', 'bob', 'carol']))
    expect((await call('alice', '/v1/containers')).status).toBe(401)

    for (const stream of [aliceEvents, aliceLogs, byTicket]) {
      const last = (await stream.until('revoked', 5_000)).at(-1)
      expect(last?.event).toBe('revoked')
      expect(JSON.parse(last!.data)).toMatchObject({ reason: 'revoked' })
      expect(await stream.next(2_000)).toBeUndefined()
    }
    const late = await fetch(`${gateway.url}/v1/containers/${alice}/logs/stream?ticket=${unused}`)
    expect(late.status).toBe(401)
    expect(((await late.json()) as { detail: string }).detail).toMatch(/no longer accepted/)
    // alice's log follow no longer holds an engine connection; bob's stream goes on.
    expect(
      await settle(
        () => metric('dockgate_open_streams'),
        (n) => n === 1,
        5_000,
      ),
    ).toBe(1)
    await call('bob', `/v1/containers/${sleepers.bob}/restart?timeout=0`, { method: 'POST' })
    const seen = await bobEvents.until('container', 10_000)
    expect(JSON.parse(seen.at(-1)!.data).actor.id).toBe(sleepers.bob)
    await bobEvents.close()
  }, 60_000)

  it('ends a stream whose policy changed with `revoked` (`changed`), and applies limits live', async () => {
    await rewriteConfig(
      await configWith(['admin', 'bob', 'carol'], { limits: { streamsPerClient: 1 } }),
    )
    const first = await call('carol', '/v1/events')
    expect(first.status).toBe(200)
    expect((await call('carol', '/v1/events')).status).toBe(429)
    const carolEvents = readSse(first)

    // streamsPerClient 3 and a wider policy for carol: her second stream opens at once, and the
    // one open under the old policy ends so that she reopens it under the new one.
    await rewriteConfig(
      await configWith(['admin', 'bob', 'carol'], {
        limits: { streamsPerClient: 3 },
        policy: { carol: { ...TENANT_POLICY, visibleLabels: ['team=blue'] } },
      }),
    )
    const last = (await carolEvents.until('revoked', 5_000)).at(-1)
    expect(JSON.parse(last!.data)).toMatchObject({ reason: 'changed' })
    const opened = await Promise.all([call('carol', '/v1/events'), call('carol', '/v1/events')])
    expect(opened.map((r) => r.status)).toEqual([200, 200])
    for (const response of opened) await response.body?.cancel()
  }, 30_000)
})
