/**
 * Revocation everywhere: two in-process instances (each its own credentials loaded from the same
 * config file, its own app, its own Redis subscriber connection) share the reload signal through
 * the project's Redis (`DOCKGATE_TEST_STORE`). A reload on A makes B reload, end the revoked
 * token's open streams with `event: revoked` and refuse its requests.
 */
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { createClient, type RedisClientType } from '@redis/client'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createApp, type Gateway } from '../src/app.ts'
import { hashToken } from '../src/auth/tokens.ts'
import { loadCredentials, shareReloads } from '../src/bootstrap.ts'
import { EngineClient } from '../src/engine/client.ts'
import { nodeFiles } from '../src/node/config-file.ts'
import { memoryReloadBus, type ReloadSignal, redisReloadSignal } from '../src/reload-signal.ts'
import { engineTargetFromEnv } from '../src/transport/docker-host.ts'
import { createNodeTransport } from '../src/transport/node.ts'
import { testEngineEnv } from './support/engine.ts'
import { tokenOf } from './support/gateway.ts'
import { scratchDir } from './support/reliability.ts'
import { readSse } from './support/sse.ts'

const STORE = process.env.DOCKGATE_TEST_STORE
if (!STORE) throw new Error('DOCKGATE_TEST_STORE is not set: run scripts/redis.sh env')
type Client = RedisClientType

const channel = `dockgate-test:${process.pid}:${Math.random().toString(36).slice(2)}:reload`
const clients: Client[] = []
const cleanups: (() => unknown)[] = []
const transport = createNodeTransport(
  engineTargetFromEnv({ DOCKER_HOST: testEngineEnv().dockerHost }),
)
let configPath: string

async function connected(): Promise<Client> {
  const client = createClient({ url: STORE })
  await client.connect()
  clients.push(client)
  return client
}

async function configWith(names: string[]) {
  const tokens = await Promise.all(
    names.map(async (name) => ({
      name,
      hash: await hashToken(tokenOf(name)),
      scopes: name === 'admin' ? ['admin'] : ['events:read', 'system:read'],
    })),
  )
  writeFileSync(configPath, JSON.stringify({ tokens, readModel: false }), { mode: 0o600 })
}

/** One instance: credentials from the shared file, an app, reloads shared through `signal`. */
async function instance(signal: ReloadSignal) {
  const credentials = await loadCredentials(nodeFiles, { DOCKGATE_CONFIG: configPath }, () => {})
  const shared = await shareReloads(credentials, signal, () => {})
  const gateway: Gateway = createApp({
    engine: new EngineClient(transport),
    authenticator: credentials.authenticator,
    reloads: credentials.reloads,
    settings: { heartbeatMs: 200, readModel: false },
    requestLog: () => {},
    audit: () => {},
  })
  gateway.start()
  cleanups.push(() => gateway.close(), shared.stop)
  const call = (who: string, path: string) =>
    gateway.app.request(path, { headers: { authorization: `Bearer ${tokenOf(who)}` } })
  return { call, reload: shared.reload }
}

beforeAll(() => {
  configPath = join(scratchDir('dockgate-reload-signal'), 'config.json')
})

afterAll(async () => {
  for (const cleanup of cleanups) await cleanup()
  for (const client of clients) client.destroy()
  await transport.close()
})

describe.each([
  [
    'Redis pub/sub',
    async () => {
      const publisher = await connected()
      return async () => redisReloadSignal(publisher, await connected(), { channel })
    },
  ],
  ['in memory (one process)', async () => memoryReloadBus()],
])('the reload signal (%s)', (_name, bus) => {
  it('a token removed and reloaded on A: its stream on B ends with revoked, and B refuses it', async () => {
    await configWith(['admin', 'alice'])
    const signalOf = await bus()
    const a = await instance(await signalOf())
    const b = await instance(await signalOf())

    const response = await b.call('alice', '/v1/events')
    expect(response.status).toBe(200)
    const stream = readSse(response)
    expect((await b.call('alice', '/v1/system/version')).status).toBe(200)

    await configWith(['admin'])
    a.reload()
    const events = await stream.until('revoked', 5_000)
    expect(JSON.parse(events.at(-1)!.data)).toMatchObject({ reason: 'revoked' })
    expect((await b.call('alice', '/v1/system/version')).status).toBe(401)
    expect((await a.call('alice', '/v1/system/version')).status).toBe(401)
    expect((await b.call('admin', '/v1/system/version')).status).toBe(200)
  })
})
