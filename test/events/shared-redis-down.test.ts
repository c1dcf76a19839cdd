/**
 * When Redis goes away: a resume that needs the shared ring gets `resync` (never a silent gap,
 * never a stream held open waiting), and a read that would need the shared write positions is
 * answered by the engine. A Redis of this test's own (started and stopped by its PID), not the
 * project's shared one.
 */
import { type ChildProcess, spawn } from 'node:child_process'
import { createClient, type RedisClientType } from '@redis/client'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { EventHub } from '../../src/events/hub.ts'
import { redisSharedRing } from '../../src/events/shared-redis.ts'
import { redisWritePositions } from '../../src/model/positions-redis.ts'
import { createDirect, direct, testEngineEnv } from '../support/engine.ts'
import { type TestGateway, testGateway, uniqueName } from '../support/gateway.ts'
import { TEST_LABEL, TEST_RUN } from '../support/labels.ts'
import { freePort } from '../support/net.ts'
import { readSse } from '../support/sse.ts'

const RUN = 'dockgate-redis-down-run'
const run = `${process.pid}-${Date.now().toString(36)}`
const labels = { [TEST_LABEL]: TEST_RUN, [RUN]: run }
let server: ChildProcess
let redis: RedisClientType
let a: TestGateway
let b: TestGateway
const hubs: EventHub[] = []
const errors: string[] = []
const created: string[] = []

beforeAll(async () => {
  const port = await freePort()
  server = spawn(
    'redis-server',
    ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'],
    { stdio: 'ignore' },
  )
  redis = createClient({
    url: `redis://127.0.0.1:${port}/0`,
    socket: { reconnectStrategy: () => 200 },
  })
  redis.on('error', () => {})
  for (let i = 0; ; i++) {
    try {
      await redis.connect()
      break
    } catch (error) {
      if (i > 50) throw error
      await new Promise((resolve) => setTimeout(resolve, 100))
    }
  }
  const logError = (message: string) => errors.push(message)
  const gateway = (ringSize: number) =>
    testGateway({
      settings: { heartbeatMs: 200, readModel: true },
      events: (engine) => {
        const shared = redisSharedRing(redis, { prefix: 'down:', capacity: 100, logError })
        const hub = new EventHub(engine, { ringSize, shared, logError })
        hubs.push(hub)
        return hub
      },
      dependencies: { positions: redisWritePositions(redis, { prefix: 'down:', logError }) },
    })
  a = await gateway(10_000)
  b = await gateway(2)
  for (const hub of hubs) hub.start()
  await Promise.all(hubs.map((hub) => hub.ready()))
}, 30_000)

afterAll(async () => {
  for (const hub of hubs) hub.close()
  redis.destroy()
  if (server.exitCode === null) server.kill()
  for (const id of created) await direct(`/containers/${id}?force=1`, { method: 'DELETE' })
})

describe('with Redis gone', () => {
  it('a resume that needs the shared ring gets resync, and reads ask the engine', async () => {
    const path = `/v1/events?type=container&label=${encodeURIComponent(`${RUN}=${run}`)}`
    const client = readSse(await a.call(path))
    created.push(await createDirect({ name: uniqueName('down'), cmd: ['true'], labels }))
    const [first] = await client.take(1, 10_000)
    await client.close()
    for (let i = 0; i < 3; i++) {
      created.push(await createDirect({ name: uniqueName('down'), cmd: ['true'], labels }))
    }
    await new Promise((resolve) => setTimeout(resolve, 300))

    server.kill()
    await new Promise((resolve) => server.once('exit', resolve))

    const resumed = readSse(await b.call(path, { headers: { 'last-event-id': first!.id! } }))
    const [resync] = await resumed.take(1, 5_000)
    expect(resync?.event).toBe('resync')
    expect(JSON.parse(resync!.data)).toMatchObject({ reason: 'gap' })
    await resumed.close()

    // A change is made and answered; any read then asks the engine rather than wait.
    const made = await a.json('/v1/containers', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        image: testEngineEnv().image,
        name: uniqueName('down'),
        cmd: ['true'],
        labels,
      }),
    })
    expect(made.status).toBe(201)
    created.push(made.body.id)
    const started = Date.now()
    const list = await b.json(
      `/v1/containers?all=true&label=${encodeURIComponent(`${RUN}=${run}`)}`,
    )
    expect(list.status).toBe(200)
    expect(list.body.containers.map((c: { id: string }) => c.id)).toContain(made.body.id)
    expect(Date.now() - started).toBeLessThan(3_000)
    expect(errors.length).toBeGreaterThan(0)
  })
})
