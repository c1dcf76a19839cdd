/**
 * One tenant against the others on one engine: the Node entry point (`npm start`'s bundle) over
 * real HTTP, with the default limits. Tenant A holds as many engine calls as it can (stops that
 * wait out their timeout on a container that ignores SIGTERM, waits on it, log reads of a 20 MB
 * log); tenants B and C still get their answers, and the gateway's memory stays bounded.
 */
import { rmSync } from 'node:fs'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { hashToken } from '../../src/auth/tokens.ts'
import { DEFAULT_SETTINGS } from '../../src/config.ts'
import { engineInspect, runDirect, testEngineEnv } from '../support/engine.ts'
import { tokenOf, uniqueName } from '../support/gateway.ts'
import { TEST_LABEL, TEST_RUN } from '../support/labels.ts'
import { rssBytes, type SpawnedGateway, scratchDir, spawnGateway } from '../support/reliability.ts'

const TENANTS = ['tenant-a', 'tenant-b', 'tenant-c'] as const
type Tenant = (typeof TENANTS)[number]
const BUDGET = DEFAULT_SETTINGS.engineCallsPerPrincipal
/** The stop timeout of A's calls: the longest any of them can take. */
const STOP_SECONDS = 20
const MiB = 1024 * 1024

let dir: string
let node: SpawnedGateway
/** A container of each tenant's, and one everyone may read with a 20 MB log. */
const shared = uniqueName('shared-log')
let sharedLog: string

beforeAll(async () => {
  dir = scratchDir('dockgate-engine-budget')
  const tokens = await Promise.all(
    TENANTS.map(async (name) => ({
      name,
      hash: await hashToken(tokenOf(name)),
      scopes: ['containers:read', 'containers:write', 'logs:read'],
      policy: { images: ['*'], visibleLabels: [`shared=${shared}`] },
    })),
  )
  // No limits in the config: the defaults are what is under test.
  node = await spawnGateway({ dir, config: { tokens } })
  // 10,000 lines of 2,000 characters, written straight on the engine.
  sharedLog = await runDirect({
    name: shared,
    cmd: ['sh', '-c', 'yes "$(head -c 1999 /dev/zero | tr "\\0" x)" | head -n 10000'],
    labels: { [TEST_LABEL]: TEST_RUN, shared },
  })
}, 120_000)

afterAll(() => {
  node?.kill()
  if (dir) rmSync(dir, { recursive: true, force: true })
})

interface Answer {
  status: number
  headers: Headers
  body: string
  /** When the answer had fully arrived (ms since the epoch). */
  at: number
}

async function send(tenant: Tenant, method: string, path: string, body?: unknown) {
  const response = await fetch(`${node.url}${path}`, {
    method,
    headers: {
      authorization: `Bearer ${tokenOf(tenant)}`,
      ...(body === undefined ? {} : { 'content-type': 'application/json' }),
    },
    body: body === undefined ? undefined : JSON.stringify(body),
  })
  const text = await response.text()
  return { status: response.status, headers: response.headers, body: text, at: Date.now() }
}

const createBody = (cmd: string[]) => ({
  image: testEngineEnv().image,
  name: uniqueName('budget'),
  cmd,
  labels: { [TEST_LABEL]: TEST_RUN },
})

async function createStarted(tenant: Tenant, cmd: string[]): Promise<string> {
  const answer = await send(tenant, 'POST', '/v1/containers?start=true', createBody(cmd))
  expect(answer.status, answer.body).toBe(201)
  return JSON.parse(answer.body).id
}

function expectRefusedForBudget(answer: Answer) {
  expect(answer.headers.get('content-type')).toBe('application/problem+json')
  expect(Number(answer.headers.get('retry-after'))).toBeGreaterThanOrEqual(1)
  expect(JSON.parse(answer.body)).toMatchObject({
    type: 'urn:dockgate:problem:rate-limited',
    status: 429,
    detail: `This client already has ${BUDGET} requests in progress`,
  })
}

describe('the per-principal engine budget', () => {
  it('holds A to its budget with long calls while B still lists, inspects, creates, waits and reads', async () => {
    // Ignores SIGTERM: every stop waits out its timeout, every wait until then.
    const stubborn = await createStarted('tenant-a', [
      'sh',
      '-c',
      'trap "" TERM; while :; do sleep 1; done',
    ])
    const mine = await createStarted('tenant-b', ['sh', '-c', 'echo hello from b'])
    await send('tenant-b', 'POST', `/v1/containers/${mine}/wait`)

    // Five times the budget; more stops alone than the engine connection pool (64) holds.
    const held = Array.from({ length: 80 }, (_, i) =>
      i % 8 === 7
        ? send('tenant-a', 'POST', `/v1/containers/${stubborn}/wait`)
        : send('tenant-a', 'POST', `/v1/containers/${stubborn}/stop?timeout=${STOP_SECONDS}`),
    )
    // Give A's calls time to reach the engine before B asks.
    await new Promise((r) => setTimeout(r, 1_000))

    const b = await Promise.all([
      send('tenant-b', 'GET', '/v1/containers?all=true'),
      send('tenant-b', 'GET', `/v1/containers/${mine}`),
      send('tenant-b', 'POST', '/v1/containers', createBody(['true'])),
      send('tenant-b', 'POST', `/v1/containers/${mine}/wait`),
      send('tenant-b', 'GET', `/v1/containers/${mine}/logs`),
    ])
    const a = await Promise.all(held)

    expect(b.map((answer) => answer.status)).toEqual([200, 200, 201, 200, 200])
    expect(JSON.parse(b[4]!.body).lines[0].text).toBe('hello from b')
    expect(await engineInspect(JSON.parse(b[2]!.body).id)).toBeDefined()
    // Promptly: B had all its answers before any of A's calls came back.
    const accepted = a.filter((answer) => answer.status === 200)
    expect(Math.max(...b.map((answer) => answer.at))).toBeLessThan(
      Math.min(...accepted.map((answer) => answer.at)),
    )
    // A got exactly its budget; every other call was refused at once.
    expect(accepted).toHaveLength(BUDGET)
    const refused = a.filter((answer) => answer.status !== 200)
    expect(refused).toHaveLength(80 - BUDGET)
    for (const answer of refused) expectRefusedForBudget(answer)
    // The stops did what they said: the engine killed the container after the timeout.
    expect((await engineInspect(stubborn))?.State.Running).toBe(false)
    // The budget is given back when the calls end.
    expect((await send('tenant-a', 'GET', '/v1/containers')).status).toBe(200)
  }, 120_000)

  it('bounds 90 parallel JSON reads of a 20 MB log: each answer truncated, the process far from gigabytes', async () => {
    const before = rssBytes(node.pid)
    let peak = before
    const sampler = setInterval(() => {
      peak = Math.max(peak, rssBytes(node.pid))
    }, 50)
    let answers: Answer[]
    try {
      answers = await Promise.all(
        Array.from({ length: 90 }, (_, i) =>
          send(TENANTS[i % 3]!, 'GET', `/v1/containers/${sharedLog}/logs`),
        ),
      )
    } finally {
      clearInterval(sampler)
    }
    const read = answers.filter((answer) => answer.status === 200)
    // At least each tenant's budget was read at once.
    expect(read.length).toBeGreaterThanOrEqual(3 * BUDGET)
    for (const answer of read) {
      const body = JSON.parse(answer.body)
      expect(body.truncated).toBe(true)
      expect(answer.body.length).toBeLessThan(1.2 * MiB)
    }
    // Beyond each tenant's budget: refused before reading anything.
    for (const answer of answers.filter((a) => a.status !== 200)) expectRefusedForBudget(answer)
    expect(peak - before).toBeLessThan(512 * MiB)
  }, 120_000)
})
