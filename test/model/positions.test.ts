/**
 * Read your writes across instances: gateways with read models on, on the same engine. A change
 * made through A is in what B answers right after, through the positions every instance records
 * (Redis, `DOCKGATE_TEST_STORE`), or through the `Dockgate-Position` the caller sends back.
 *
 * B's events stream is delayed (a mock, named so: a slow event delivery is a fault the real
 * engine does not show on demand), so that B's model has not seen A's change when B is asked.
 */
import { createClient, type RedisClientType } from '@redis/client'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { EngineTransport } from '../../src/engine/transport.ts'
import { memoryWritePositions, type WritePositions } from '../../src/model/positions.ts'
import { redisWritePositions } from '../../src/model/positions-redis.ts'
import { engineTargetFromEnv } from '../../src/transport/docker-host.ts'
import { createNodeTransport } from '../../src/transport/node.ts'
import { direct, testEngineEnv } from '../support/engine.ts'
import { type TestGateway, testGateway, uniqueName } from '../support/gateway.ts'
import { TEST_LABEL, TEST_RUN } from '../support/labels.ts'

const STORE = process.env.DOCKGATE_TEST_STORE
if (!STORE) throw new Error('DOCKGATE_TEST_STORE is not set: run scripts/redis.sh env')
const prefix = `dockgate-test:${process.pid}:${Math.random().toString(36).slice(2)}:`
const RUN = 'dockgate-positions-run'
const DELAY_MS = 2_500

/** Engine paths each delayed gateway asked for, to tell memory from the engine. */
const asked = new Map<TestGateway | undefined, string[]>()
let building: string[] = []

/** Mock: the engine's live `/events` stream (no `until`) reaches the gateway `ms` late. */
function delayedEvents(transport: EngineTransport, ms: number): EngineTransport {
  const paths = building
  return {
    description: transport.description,
    close: () => transport.close(),
    async fetch(request, options) {
      const url = new URL(request.url)
      paths.push(url.pathname)
      const response = await transport.fetch(request, options)
      if (!url.pathname.endsWith('/events') || url.searchParams.has('until') || !response.body) {
        return response
      }
      // Read as it comes, handed on `ms` after it came.
      const reader = response.body.getReader()
      const queue: { due: number; chunk: Uint8Array | undefined }[] = []
      let arrived = () => {}
      void (async () => {
        for (;;) {
          const { done, value } = await reader
            .read()
            .catch(() => ({ done: true, value: undefined }))
          queue.push({ due: Date.now() + ms, chunk: done ? undefined : value })
          arrived()
          if (done) return
        }
      })()
      const late = new ReadableStream<Uint8Array>({
        async pull(controller) {
          while (queue.length === 0) await new Promise<void>((resolve) => (arrived = resolve))
          const { due, chunk } = queue.shift()!
          await new Promise((resolve) => setTimeout(resolve, due - Date.now()))
          if (chunk) controller.enqueue(chunk)
          else controller.close()
        },
        cancel: (reason) => reader.cancel(reason),
      })
      return new Response(late, response)
    },
  }
}

const engineTransport = () =>
  createNodeTransport(engineTargetFromEnv({ DOCKER_HOST: testEngineEnv().dockerHost }))

let redis: RedisClientType
let a: TestGateway
let b: TestGateway
let lonely: TestGateway
const created: string[] = []

async function gateway(positions: WritePositions | undefined, delayed: boolean) {
  building = []
  const paths = building
  const gw = await testGateway({
    ...(delayed ? { transport: delayedEvents(engineTransport(), DELAY_MS) } : {}),
    settings: { readModel: true },
    dependencies: positions ? { positions } : {},
  })
  asked.set(gw, paths)
  return gw
}

beforeAll(async () => {
  redis = createClient({ url: STORE })
  await redis.connect()
  a = await gateway(redisWritePositions(redis, { prefix }), false)
  b = await gateway(redisWritePositions(redis, { prefix }), true)
  lonely = await gateway(undefined, true)
  // Every model loaded and following.
  for (const gw of [a, b, lonely]) {
    expect((await gw.json('/v1/containers?limit=1')).status).toBe(200)
  }
  await new Promise((resolve) => setTimeout(resolve, DELAY_MS + 500))
}, 30_000)

afterAll(async () => {
  for (const id of created) await direct(`/containers/${id}?force=1`, { method: 'DELETE' })
  const keys = await redis.keys(`${prefix}*`)
  if (keys.length > 0) await redis.del(keys)
  redis.destroy()
})

async function createOn(gw: TestGateway, run: string, start = false) {
  const { status, body, response } = await gw.json(`/v1/containers${start ? '?start=true' : ''}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({
      image: testEngineEnv().image,
      name: uniqueName('pos'),
      cmd: ['sleep', '30'],
      labels: { [TEST_LABEL]: TEST_RUN, [RUN]: run },
    }),
  })
  expect(status, JSON.stringify(body)).toBe(201)
  created.push(body.id)
  const position = response.headers.get('dockgate-position')
  expect(position).toMatch(/^\d{19}$/)
  return { id: body.id as string, position: position! }
}

const listed = async (gw: TestGateway, run: string, headers: Record<string, string> = {}) => {
  const { status, body } = await gw.json(
    `/v1/containers?all=true&label=${encodeURIComponent(`${RUN}=${run}`)}`,
    { headers },
  )
  expect(status).toBe(200)
  return (body.containers as { id: string; state: string }[]).map((c) => `${c.id} ${c.state}`)
}

let runs = 0
const newRun = () => `${process.pid}-${Date.now().toString(36)}-${runs++}`

describe('read your writes across instances', () => {
  it('a container created on A is in the list and the inspect B answers right after', async () => {
    const run = newRun()
    const { id } = await createOn(a, run)
    expect(await listed(b, run)).toEqual([`${id} created`])
    const inspect = await b.json(`/v1/containers/${id}`)
    expect(inspect.status).toBe(200)
    expect(inspect.body.state.status).toBe('created')

    // A change of state too: started on A, B says running.
    const started = await a.json(`/v1/containers/${id}/start`, { method: 'POST' })
    expect(started.status).toBe(200)
    expect(started.response.headers.get('dockgate-position')).toMatch(/^\d{19}$/)
    expect(await listed(b, run)).toEqual([`${id} running`])
  })

  it('without shared positions, the position the caller sends back does it', async () => {
    const run = newRun()
    const { id, position } = await createOn(a, run)
    // The control: this instance's model has not seen the create yet.
    expect(await listed(lonely, run)).toEqual([])
    expect(await listed(lonely, run, { 'dockgate-position': position })).toEqual([`${id} created`])
    expect((await lonely.json(`/v1/containers/${id}`)).status).toBe(200)
  })

  it('once the model has caught up, the same position is answered from memory again', async () => {
    const run = newRun()
    const { id, position } = await createOn(a, run)
    await new Promise((resolve) => setTimeout(resolve, DELAY_MS + 500))
    const calls = () =>
      asked.get(lonely)!.filter((path) => path.endsWith('/containers/json')).length
    const before = calls()
    expect(await listed(lonely, run, { 'dockgate-position': position })).toEqual([`${id} created`])
    expect(await listed(lonely, run, { 'dockgate-position': position })).toEqual([`${id} created`])
    expect(calls()).toBe(before)
  })

  it('refuses a position that is not one', async () => {
    const { status, body } = await b.json('/v1/containers', {
      headers: { 'dockgate-position': 'yesterday' },
    })
    expect(status).toBe(400)
    expect(body.type).toMatch(/validation|bad-request|invalid/)
  })

  it('in memory, the instances of one process share their positions too', async () => {
    const positions = memoryWritePositions()
    await positions.record(5n)
    await positions.record(3n)
    expect(await positions.latest()).toBe(5n)
  })
})
