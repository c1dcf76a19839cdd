/**
 * The state store's contract, for both adapters: the memory one, and the Redis one against the
 * project's real Redis (two stores on two connections with one prefix stand for two instances).
 */
import { connect, createServer, type Socket } from 'node:net'
import { afterAll, describe, expect, it } from 'vitest'
import { MemoryStore } from '../../src/store/memory.ts'
import { isRefusal, type Release, type StateStore } from '../../src/store/port.ts'
import {
  randomPrefix,
  testRedisConnection,
  testRedisStore,
  testRedisTarget,
} from '../support/store.ts'

const RATES = { perSecond: 1, burst: 3 }

const released = (answer: unknown): Release => {
  if (typeof answer !== 'function') throw new Error(`refused: ${JSON.stringify(answer)}`)
  return answer as Release
}

/** Two views of one store: the same memory store twice, or two Redis stores sharing a prefix. */
const adapters: [string, () => [StateStore, StateStore]][] = [
  [
    'memory',
    () => {
      const store = new MemoryStore()
      return [store, store]
    },
  ],
  [
    'redis',
    () => {
      const prefix = randomPrefix()
      return [testRedisStore({ prefix }), testRedisStore({ prefix })]
    },
  ],
]

describe.each(adapters)('%s store', (_name, pair) => {
  it('takes tokens from one bucket per key, the burst at most, and says when to retry', async () => {
    const [a, b] = pair()
    const answers = await Promise.all(
      [a, b, a, b, a].map((store) => store.admit('alice', RATES, 'budget', 100)),
    )
    expect(answers.filter((answer) => !isRefusal(answer))).toHaveLength(3)
    expect(answers.filter(isRefusal)).toEqual([
      { limit: 'rate', retryAfterSeconds: 1 },
      { limit: 'rate', retryAfterSeconds: 1 },
    ])
    // Another key has its own bucket.
    expect(isRefusal(await a.admit('bob', RATES, 'budget', 100))).toBe(false)
  })

  it('holds at most max slots of a key at once, across both views', async () => {
    const [a, b] = pair()
    const first = released(await a.admit('carol', { perSecond: 100, burst: 100 }, 'streams', 2))
    released(await b.admit('carol', { perSecond: 100, burst: 100 }, 'streams', 2))
    expect(await a.admit('carol', { perSecond: 100, burst: 100 }, 'streams', 2)).toEqual({
      limit: 'slots',
    })
    // Another kind of slot is counted apart.
    released(await b.acquire('budget', 'carol', 1))
    first()
    first()
    await settle()
    released(await b.acquire('streams', 'carol', 2))
    expect(await a.acquire('streams', 'carol', 2)).toBeUndefined()
  })

  it('admits exactly the burst, and holds exactly max slots, of many requests at once', async () => {
    const [a, b] = pair()
    // 150 at once, 75 on each view: more than one script call of a Redis store carries (32).
    const views = Array.from({ length: 150 }, (_, i) => (i % 2 === 0 ? a : b))
    const slow = { perSecond: 0.01, burst: 100 }
    const rated = await Promise.all(views.map((store) => store.admit('frank', slow, 'budget', 1e3)))
    expect(rated.filter((answer) => !isRefusal(answer))).toHaveLength(100)
    expect(rated.filter(isRefusal).every((answer) => answer.limit === 'rate')).toBe(true)
    const many = { perSecond: 1e3, burst: 1e3 }
    const slotted = await Promise.all(views.map((store) => store.admit('gina', many, 'streams', 7)))
    const held = slotted.filter((answer) => !isRefusal(answer)) as Release[]
    expect(held).toHaveLength(7)
    expect(slotted.filter(isRefusal)).toEqual(Array(143).fill({ limit: 'slots' }))
    for (const release of held) release()
    await settle()
    released(await b.admit('gina', many, 'streams', 7))
  })

  it('gives back the slots of several principals and kinds released together', async () => {
    const [a, b] = pair()
    const many = { perSecond: 1e3, burst: 1e3 }
    const limits = { kim: 2, lee: 1 } as const
    const holdAll = (store: StateStore) =>
      Promise.all(
        (['kim', 'kim', 'lee'] as const).flatMap((key) =>
          (['streams', 'budget'] as const).map((kind) => store.admit(key, many, kind, limits[key])),
        ),
      )
    const held = (await holdAll(a)).map(released)
    expect(await b.admit('lee', many, 'budget', 1)).toEqual({ limit: 'slots' })
    for (const release of held) release()
    await settle()
    ;(await holdAll(b)).map(released)
  })

  it('runs one step of a key at a time, whichever view runs it', async () => {
    const [a, b] = pair()
    let running = 0
    let most = 0
    const step = async () => {
      running += 1
      most = Math.max(most, running)
      await new Promise((resolve) => setTimeout(resolve, 20))
      running -= 1
      return 'done'
    }
    const results = await Promise.all([a, b, a, b].map((store) => store.exclusive('dave', step)))
    expect(results).toEqual(['done', 'done', 'done', 'done'])
    expect(most).toBe(1)
  })

  it('opens a recorded ticket once at a time, bound to the first stream it opens', async () => {
    const [a, b] = pair()
    const id = crypto.randomUUID()
    expect(await b.openTicket(id, '/v1/events')).toEqual({ ok: false, refusal: 'unknown' })
    await a.recordTicket(id, null, Date.now() + 60_000)
    const open = await b.openTicket(id, '/v1/events')
    if (!open.ok) throw new Error(open.refusal)
    expect(await a.openTicket(id, '/v1/events')).toEqual({ ok: false, refusal: 'in-use' })
    open.release()
    await settle()
    expect(await a.openTicket(id, '/v1/containers/x/logs/stream')).toEqual({
      ok: false,
      refusal: 'other-stream',
    })
    expect((await a.openTicket(id, '/v1/events')).ok).toBe(true)
  })

  it('forgets a ticket when it expires', async () => {
    const [a, b] = pair()
    const id = crypto.randomUUID()
    await a.recordTicket(id, '/v1/events', Date.now() + 150)
    await new Promise((resolve) => setTimeout(resolve, 250))
    expect(await b.openTicket(id, '/v1/events')).toEqual({ ok: false, refusal: 'unknown' })
  })

  it('is healthy', async () => {
    const [a] = pair()
    expect(await a.health()).toEqual({ ok: true })
  })
})

describe('memory store', () => {
  it('answers the hot path at once: no promise for a token and a slot, nor for a ticket', () => {
    const store = new MemoryStore()
    const admitted = store.admit('alice', RATES, 'budget', 1)
    expect(typeof admitted).toBe('function')
    expect(store.admit('alice', RATES, 'budget', 1)).toEqual({ limit: 'slots' })
    ;(admitted as Release)()
    expect(store.recordTicket('t', null, Date.now() + 1_000)).toBeUndefined()
    expect(store.openTicket('t', '/v1/events')).toMatchObject({ ok: true })
  })
})

describe('redis store', () => {
  it('frees the slots of an instance that died once their leases expire, and renews held ones', async () => {
    const prefix = randomPrefix()
    const dying = testRedisStore({ prefix, leaseTtlMs: 300 })
    const living = testRedisStore({ prefix, leaseTtlMs: 300 })
    released(await dying.acquire('streams', 'erin', 2))
    released(await living.acquire('streams', 'erin', 2))
    expect(await living.acquire('streams', 'erin', 2)).toBeUndefined()
    dying.abandon()
    // Three lease lifetimes: the living instance's lease is renewed, the dead one's is not.
    await new Promise((resolve) => setTimeout(resolve, 900))
    released(await living.acquire('streams', 'erin', 2))
    expect(await living.acquire('streams', 'erin', 2)).toBeUndefined()
    expect(living.held).toBe(2)
  })

  it('admits the requests of one turn of the event loop with one script call', async () => {
    const connection = testRedisConnection()
    const store = testRedisStore({ connection })
    released(await store.admit('hal', RATES, 'budget', 10))
    const sent: unknown[] = []
    const sendCommand = connection.client.sendCommand.bind(connection.client)
    connection.client.sendCommand = ((args: string[], ...rest: []) => {
      sent.push(args[0])
      return sendCommand(args, ...rest)
    }) as typeof sendCommand
    const answers = await Promise.all(
      ['hal', 'hal', 'ida'].map((key) => store.admit(key, RATES, 'budget', 10)),
    )
    expect(answers.map((answer) => typeof answer)).toEqual(['function', 'function', 'function'])
    expect(sent).toEqual(['EVALSHA'])
  })

  it('puts back a lease of its own that expired while it still held it', async () => {
    const prefix = randomPrefix()
    const holder = testRedisStore({ prefix, leaseTtlMs: 300 })
    const other = testRedisStore({ prefix, leaseTtlMs: 300 })
    const raw = testRedisConnection()
    const client = await raw.ready()
    const slots = `${prefix}s:streams:bob`
    released(await holder.acquire('streams', 'bob', 1))
    // What a holder stalled past its lease finds: its lease gone (another instance freed it).
    await client.sendCommand(['DEL', slots])
    await new Promise((resolve) => setTimeout(resolve, 250))
    // Renewed, it is back: the stream it stands for is still open, and one is the maximum.
    expect(Number(await client.sendCommand(['ZCARD', slots]))).toBe(1)
    expect(await other.acquire('streams', 'bob', 1)).toBeUndefined()
  })

  it('gives back the slot of a command that answered too late: no 503 leaves one held', async () => {
    // Mock of a slow network: a relay of this test's in front of the project's Redis that passes
    // commands on at once and holds each answer 400 ms (a command the store stops waiting for
    // after 100 ms still runs in Redis).
    const target = testRedisTarget()
    const held: Socket[] = []
    const relay = createServer((client) => {
      const upstream = connect(target.port, target.host)
      held.push(client, upstream)
      client.on('error', () => {})
      upstream.on('error', () => {})
      client.pipe(upstream)
      upstream.on('data', (chunk: Buffer) => {
        setTimeout(() => client.writable && client.write(chunk), 400)
      })
    })
    await new Promise<void>((resolve) => relay.listen(0, '127.0.0.1', resolve))
    afterAll(async () => {
      for (const socket of held) socket.destroy()
      await new Promise((resolve) => relay.close(resolve))
    })
    const port = (relay.address() as { port: number }).port
    const prefix = randomPrefix()
    const slow = testRedisStore({
      prefix,
      connection: testRedisConnection({ ...target, port, display: `redis://127.0.0.1:${port}` }),
      commandTimeoutMs: 100,
    })
    // Redis knows the scripts already (another instance ran them): each command is one that
    // runs, not a NOSCRIPT answer.
    const fast = testRedisStore()
    released(await fast.acquire('quota', 'someone', 1))
    released(await fast.admit('someone', RATES, 'budget', 10))
    const raw = await testRedisConnection().ready()

    await expect(slow.acquire('quota', 'alice', 1)).rejects.toMatchObject({ status: 503 })
    await expect(slow.admit('alice', RATES, 'budget', 10)).rejects.toMatchObject({ status: 503 })

    // Their answers come, and the leases go back, through the same slow relay.
    await new Promise((resolve) => setTimeout(resolve, 1_500))
    expect(Number(await raw.sendCommand(['ZCARD', `${prefix}s:quota:alice`]))).toBe(0)
    expect(Number(await raw.sendCommand(['ZCARD', `${prefix}s:budget:alice`]))).toBe(0)
    expect(slow.held).toBe(0)
  })

  it('admits under rates whose bucket refills over years, beside other clients in the same call', async () => {
    const store = testRedisStore()
    // 1e9 requests at once, then one in a million seconds: full again in 1e18 ms.
    const slow = { perSecond: 1e-6, burst: 1e9 }
    const answers = await Promise.all([
      store.admit('alice', RATES, 'budget', 10),
      store.admit('weird', slow, 'budget', 10),
      store.admit('bob', RATES, 'budget', 10),
    ])
    expect(answers.map((answer) => typeof answer)).toEqual(['function', 'function', 'function'])
    for (const answer of answers) released(answer)
  })

  it('connects on first use only', async () => {
    const connection = testRedisConnection()
    testRedisStore({ connection })
    expect(connection.client.isOpen).toBe(false)
  })
})

/** A Redis release is sent without waiting for it: let it arrive. */
const settle = () => new Promise((resolve) => setTimeout(resolve, 30))
