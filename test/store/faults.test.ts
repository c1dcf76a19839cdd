/**
 * The shared store failing under a gateway: a Redis of the test's own (on a free loopback port,
 * with a password, started and killed by its PID; never the project's shared one) goes away,
 * hangs, and comes back. Requests that need it answer 503 problems with Retry-After (never a
 * per-instance limit instead), /readyz says why, the password shows nowhere, and the gateway
 * recovers by itself.
 */
import { type ChildProcess, spawn } from 'node:child_process'
import { connect } from 'node:net'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { storeFromEnv } from '../../src/bootstrap.ts'
import { type TestGateway, testGateway } from '../support/gateway.ts'
import { freePort } from '../support/net.ts'

const PASSWORD = 'hunter2-store-password'
const SECRET = 'faults-test-secret-0123456789abc'

let port: number
let redis: ChildProcess | undefined
const logged: string[] = []

async function startRedis() {
  const child = spawn(
    'redis-server',
    [
      '--port',
      String(port),
      '--bind',
      '127.0.0.1',
      '--requirepass',
      PASSWORD,
      '--save',
      '',
      '--appendonly',
      'no',
    ],
    { stdio: 'ignore' },
  )
  redis = child
  // Ready once it accepts a connection.
  const deadline = Date.now() + 5_000
  while (!(await accepts())) {
    if (Date.now() > deadline) throw new Error(`redis-server did not start on ${port}`)
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
}

const accepts = () =>
  new Promise<boolean>((resolve) => {
    const probe = connect(port, '127.0.0.1')
    probe.once('connect', () => {
      probe.end()
      resolve(true)
    })
    probe.once('error', () => resolve(false))
  })

async function stopRedis(signal: NodeJS.Signals = 'SIGKILL') {
  const child = redis
  if (!child || child.exitCode !== null) return
  const exited = new Promise((resolve) => child.once('exit', resolve))
  child.kill(signal)
  await exited
}

let gw: TestGateway
let url: string

beforeAll(async () => {
  port = await freePort()
  await startRedis()
  url = `redis://:${PASSWORD}@127.0.0.1:${port}/0`
  const entry = await storeFromEnv({ DOCKGATE_STORE: url, DOCKGATE_SECRET: SECRET }, (fields) =>
    logged.push(JSON.stringify(fields)),
  )
  afterAll(() => entry.close())
  const errors: unknown[] = []
  gw = await testGateway({ store: entry.store, ticketSecret: entry.secret, errors })
  afterAll(() => logged.push(...errors.map(String)))
})

afterAll(async () => {
  const child = redis
  if (child && child.exitCode === null && child.signalCode === null) {
    child.kill('SIGCONT')
    await stopRedis()
  }
  // Nothing the gateway logged or reported shows the password.
  expect(logged.join('\n')).not.toContain(PASSWORD)
})

const ticket = () => gw.json('/v1/stream-tickets', { method: 'POST', role: 'reader' })

describe('the Redis store going away', () => {
  it('serves while Redis answers; /readyz is ready', async () => {
    expect((await ticket()).status).toBe(201)
    expect((await gw.call('/readyz', { role: null })).status).toBe(200)
  })

  it('answers 503 problems with Retry-After while Redis is gone, and /readyz says why', async () => {
    await stopRedis()
    const answer = await ticket()
    expect(answer.status).toBe(503)
    expect(answer.response.headers.get('content-type')).toBe('application/problem+json')
    expect(answer.response.headers.get('retry-after')).toBe('5')
    expect(answer.body.type).toBe('urn:dockgate:problem:store-unavailable')
    // A ticket's stream, the events stream and a list need the store too (their limits).
    expect((await gw.call('/v1/events', { role: 'nobody' })).status).toBe(503)
    expect((await gw.call('/v1/containers', { role: 'reader' })).status).toBe(503)
    const ready = await gw.json('/readyz', { role: null })
    expect(ready.status).toBe(503)
    expect(ready.response.headers.get('retry-after')).toBe('5')
    expect(ready.body.detail).toContain(
      `the state store redis://***@127.0.0.1:${port}/0 does not answer`,
    )
    for (const text of [JSON.stringify(answer.body), JSON.stringify(ready.body)]) {
      expect(text).not.toContain(PASSWORD)
    }
  })

  it('recovers by itself once Redis is back', async () => {
    await startRedis()
    await expect
      .poll(async () => (await ticket()).status, { timeout: 10_000, interval: 200 })
      .toBe(201)
    expect((await gw.call('/readyz', { role: null })).status).toBe(200)
  })

  it('answers 503 when Redis hangs, within the command timeout', async () => {
    redis!.kill('SIGSTOP')
    try {
      const started = Date.now()
      const answer = await ticket()
      expect(answer.status).toBe(503)
      expect(answer.body.type).toBe('urn:dockgate:problem:store-unavailable')
      expect(Date.now() - started).toBeLessThan(5_000)
    } finally {
      redis!.kill('SIGCONT')
    }
    await expect
      .poll(async () => (await ticket()).status, { timeout: 10_000, interval: 200 })
      .toBe(201)
  })
})
