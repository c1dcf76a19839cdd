/**
 * Two entries of each long-running runtime (the Node bundle; the Deno entry as
 * `scripts/deno-start.sh` runs it), spawned with the same `DOCKGATE_STORE`: a container created
 * through one is in the list the other answers at once, a stream ticket issued by one opens its
 * stream on the other, an exec session open on one takes its principal's stream slot on the
 * other, a SIGHUP on one makes the other reload too, and the events stream they share holds as
 * many events as their config file says (`events.ringSize`). They use a database of the project's
 * Redis of their own (keys deleted after).
 */
import { rmSync } from 'node:fs'
import { createClient } from '@redis/client'
import { WebSocket } from 'undici'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { hashToken } from '../src/auth/tokens.ts'
import { createDirect, direct, testEngineEnv } from './support/engine.ts'
import { uniqueName } from './support/gateway.ts'
import { TEST_LABEL, TEST_RUN } from './support/labels.ts'
import { type SpawnedGateway, scratchDir, settle, spawnGateway } from './support/reliability.ts'
import { readSse } from './support/sse.ts'

const STORE = process.env.DOCKGATE_TEST_STORE
if (!STORE) throw new Error('DOCKGATE_TEST_STORE is not set: run scripts/redis.sh env')
/** Database 9 of the project's Redis: the instances' fixed `dockgate:` keys stay out of db 0. */
const url = STORE.replace(/\/\d*$/, '/9')
const TOKEN = 'dgt_instances-test-token'
/** A client that may exec in this run's containers, at most one open stream at a time. */
const SHELL_TOKEN = 'dgt_instances-test-shell'
const RUN = 'dockgate-instances'
const run = `${process.pid}-${Date.now().toString(36)}`

let dir: string
let one: SpawnedGateway
let two: SpawnedGateway
const created: string[] = []

const call = (gateway: SpawnedGateway, path: string, init: RequestInit = {}) =>
  fetch(`${gateway.url}${path}`, {
    ...init,
    headers: { authorization: `Bearer ${TOKEN}`, ...init.headers },
  })

describe.each(['node', 'deno'] as const)('%s', (runtime) => {
  beforeAll(async () => {
    dir = scratchDir('dockgate-instances')
    const env = {
      DOCKGATE_STORE: url,
      DOCKGATE_SECRET: 'instances-test-secret-0123',
      DOCKGATE_TOKEN: TOKEN,
    }
    const config = {
      tokens: [
        {
          name: 'shell',
          hash: await hashToken(SHELL_TOKEN),
          scopes: ['containers:read', 'exec'],
          policy: {
            exec: { allowed: true, user: '65534:65534', maxTimeoutSeconds: 30 },
            visibleLabels: [`${RUN}=${run}`],
          },
        },
      ],
      limits: { streamsPerClient: 1 },
      /** Small, so that a few events push one out of the stream the instances share. */
      events: { ringSize: 5 },
    }
    one = await spawnGateway({ dir, config, env, runtime })
    two = await spawnGateway({ dir, config, env, runtime })
  }, 120_000)

  afterAll(async () => {
    one?.kill()
    two?.kill()
    for (const id of created.splice(0))
      await direct(`/containers/${id}?force=1`, { method: 'DELETE' })
    const redis = createClient({ url })
    await redis.connect()
    const keys = await redis.keys('dockgate:*')
    if (keys.length > 0) await redis.del(keys)
    redis.destroy()
    rmSync(dir, { recursive: true, force: true })
  })

  describe('instances sharing DOCKGATE_STORE', () => {
    it('a container created through one is in the list the other answers at once', async () => {
      for (let i = 0; i < 3; i++) {
        const made = await call(one, '/v1/containers', {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({
            image: testEngineEnv().image,
            name: uniqueName('ni'),
            cmd: ['true'],
            labels: { [TEST_LABEL]: TEST_RUN, [RUN]: run },
          }),
        })
        expect(made.status).toBe(201)
        const { id } = (await made.json()) as { id: string }
        created.push(id)
        const listed = await call(
          two,
          `/v1/containers?all=true&label=${encodeURIComponent(`${RUN}=${run}`)}`,
        )
        const body = (await listed.json()) as { containers: { id: string }[] }
        expect(body.containers.map((c) => c.id)).toContain(id)
      }
    })

    it('a stream ticket issued by one opens its stream on the other', async () => {
      const issued = await call(one, '/v1/stream-tickets', {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ stream: '/v1/events' }),
      })
      expect(issued.status).toBe(201)
      const { ticket } = (await issued.json()) as { ticket: string }
      const opened = await fetch(`${two.url}/v1/events?ticket=${encodeURIComponent(ticket)}`)
      expect(opened.status).toBe(200)
      expect(opened.headers.get('content-type')).toContain('text/event-stream')
      await opened.body?.cancel()
    })

    it("an exec session open on one holds its principal's stream slot on the other too", async () => {
      const made = await direct('/containers/create', {
        method: 'POST',
        body: {
          Image: testEngineEnv().image,
          Cmd: ['sleep', '120'],
          Labels: { [TEST_LABEL]: TEST_RUN, [RUN]: run },
        },
      })
      const { Id: id } = made.json() as { Id: string }
      created.push(id)
      await direct(`/containers/${id}/start`, { method: 'POST' })
      const session = (gateway: SpawnedGateway) =>
        new WebSocket(`${gateway.url.replace('http', 'ws')}/v1/containers/${id}/exec/session`, {
          headers: { authorization: `Bearer ${SHELL_TOKEN}` },
        })
      const opened = (ws: WebSocket) =>
        new Promise<boolean>((resolve) => {
          ws.addEventListener('open', () => resolve(true))
          ws.addEventListener('error', () => resolve(false))
        })
      const held = session(one)
      expect(await opened(held)).toBe(true)
      // The slot is one, held through Redis: the other instance refuses the handshake.
      const refused = await fetch(`${two.url}/v1/containers/${id}/exec/session`, {
        headers: { authorization: `Bearer ${SHELL_TOKEN}` },
      })
      expect(refused.status).toBe(429)
      expect(refused.headers.get('content-type')).toBe('application/problem+json')
      await refused.body?.cancel()
      held.close()
      // Closed, the slot is free again for either instance.
      const deadline = Date.now() + 5_000
      for (;;) {
        const next = session(two)
        if (await opened(next)) {
          next.close()
          break
        }
        expect(Date.now()).toBeLessThan(deadline)
        await new Promise((r) => setTimeout(r, 100))
      }
    })

    it('share an events stream of the size their config file says: a resume past it is a gap', async () => {
      const label = `${RUN}=ring-${run}`
      const path = `/v1/events?${new URLSearchParams({ label })}`
      const opened = await call(one, path)
      expect(opened.status, opened.status === 200 ? '' : await opened.text()).toBe(200)
      const live = readSse(opened)
      for (let i = 0; i < 7; i++) {
        const id = await createDirect({
          name: uniqueName('ring'),
          cmd: ['true'],
          labels: { [TEST_LABEL]: TEST_RUN, [RUN]: `ring-${run}` },
        })
        created.push(id)
      }
      const events = await live.take(7)
      await live.close()
      // A resume is read from the shared stream, whichever instance answers it; once the later
      // events are in it (each instance appends what it receives), the first is out of its 5.
      // Until the stream just closed gives back the one slot of this client (`streamsPerClient`),
      // the resume is a 429: asked again.
      const firstOnResume = async () => {
        const answer = await call(two, path, { headers: { 'last-event-id': events[0]!.id! } })
        if (answer.status !== 200) return `${answer.status} ${await answer.text()}`
        const resumed = readSse(answer)
        const [first] = await resumed.take(1)
        await resumed.close()
        return first!.event === 'resync' ? JSON.parse(first!.data) : first!.event
      }
      const first = await settle(firstOnResume, (f) => typeof f !== 'string', 5_000)
      expect(first).toEqual({ reason: 'gap' })
    })

    it('a SIGHUP on one reloads the other too', async () => {
      const asked = () =>
        two.output().split('config reload asked for by another instance').length - 1
      const before = asked()
      process.kill(one.pid, 'SIGHUP')
      expect(await settle(asked, (n) => n > before, 5_000)).toBeGreaterThan(before)
    })
  })
})
