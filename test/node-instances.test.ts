/**
 * Two Node entries (the bundle, spawned) with the same `DOCKGATE_STORE`: a container created
 * through one is in the list the other answers at once, and a SIGHUP on one makes the other
 * reload too. They use a database of the project's Redis of their own (keys deleted after).
 */
import { rmSync } from 'node:fs'
import { createClient } from '@redis/client'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { direct, testEngineEnv } from './support/engine.ts'
import { uniqueName } from './support/gateway.ts'
import { TEST_LABEL, TEST_RUN } from './support/labels.ts'
import { type SpawnedGateway, scratchDir, settle, spawnGateway } from './support/reliability.ts'

const STORE = process.env.DOCKGATE_TEST_STORE
if (!STORE) throw new Error('DOCKGATE_TEST_STORE is not set: run scripts/redis.sh env')
/** Database 9 of the project's Redis: the instances' fixed `dockgate:` keys stay out of db 0. */
const url = STORE.replace(/\/\d*$/, '/9')
const TOKEN = 'dgt_node-instances-test-token'
const RUN = 'dockgate-node-instances'
const run = `${process.pid}-${Date.now().toString(36)}`

let dir: string
let one: SpawnedGateway
let two: SpawnedGateway
const created: string[] = []

beforeAll(async () => {
  dir = scratchDir('dockgate-node-instances')
  const env = {
    DOCKGATE_STORE: url,
    DOCKGATE_SECRET: 'node-instances-test-secret',
    DOCKGATE_TOKEN: TOKEN,
  }
  one = await spawnGateway({ dir, config: { tokens: [] }, env })
  two = await spawnGateway({ dir, config: { tokens: [] }, env })
}, 60_000)

afterAll(async () => {
  one?.kill()
  two?.kill()
  for (const id of created) await direct(`/containers/${id}?force=1`, { method: 'DELETE' })
  const redis = createClient({ url })
  await redis.connect()
  const keys = await redis.keys('dockgate:*')
  if (keys.length > 0) await redis.del(keys)
  redis.destroy()
  rmSync(dir, { recursive: true, force: true })
})

const call = (gateway: SpawnedGateway, path: string, init: RequestInit = {}) =>
  fetch(`${gateway.url}${path}`, {
    ...init,
    headers: { authorization: `Bearer ${TOKEN}`, ...init.headers },
  })

describe('Node instances sharing DOCKGATE_STORE', () => {
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

  it('a SIGHUP on one reloads the other too', async () => {
    const asked = () => two.output().split('config reload asked for by another instance').length - 1
    const before = asked()
    process.kill(one.pid, 'SIGHUP')
    expect(await settle(asked, (n) => n > before, 5_000)).toBeGreaterThan(before)
  })
})
