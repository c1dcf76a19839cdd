/**
 * The project's Redis (scripts/redis.sh, `DOCKGATE_TEST_STORE`) for tests of the shared state
 * store: each store gets a random key prefix, so test files and helpers running at once never
 * see each other's keys (nothing is ever flushed).
 */
import { execFileSync } from 'node:child_process'
import { afterAll } from 'vitest'
import { parseStoreUrl, type RedisTarget } from '../../src/store/config.ts'
import { RedisStore, type RedisStoreOptions } from '../../src/store/redis.ts'
import { openRedisConnection, type RedisConnection } from '../../src/store/redis-connection.ts'

/**
 * The test Redis: `DOCKGATE_TEST_STORE` (scripts/test.sh starts it), else what
 * `scripts/redis.sh up` brings up (or finds running).
 */
export function testRedisTarget(): RedisTarget {
  process.env.DOCKGATE_TEST_STORE ??= redisUp()
  const target = parseStoreUrl(process.env.DOCKGATE_TEST_STORE)
  if (target.kind !== 'redis') throw new Error('DOCKGATE_TEST_STORE is not a redis:// URL')
  return target
}

function redisUp(): string {
  const output = execFileSync('bash', ['scripts/redis.sh', 'up'], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
  })
  const url = /DOCKGATE_TEST_STORE=(\S+)/.exec(output)?.[1]
  if (!url) throw new Error(`scripts/redis.sh up printed no DOCKGATE_TEST_STORE:\n${output}`)
  return url
}

/** A key prefix no other test shares. */
export const randomPrefix = () => `dockgate-test:${crypto.randomUUID()}:`

/** A connection closed after the file's tests. */
export function testRedisConnection(target: RedisTarget = testRedisTarget()): RedisConnection {
  const connection = openRedisConnection(target)
  afterAll(() => connection.close())
  return connection
}

/**
 * A Redis store on one connection (a fresh one unless given), under `prefix` (random unless
 * given: stores that share a prefix share their state, as gateways sharing a Redis do).
 */
export function testRedisStore(
  options: RedisStoreOptions & { connection?: RedisConnection } = {},
): RedisStore {
  const { connection = testRedisConnection(), ...rest } = options
  const store = new RedisStore(connection, { prefix: randomPrefix(), ...rest })
  afterAll(() => store.close())
  return store
}
