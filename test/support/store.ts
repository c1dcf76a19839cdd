/**
 * The project's Redis (scripts/redis.sh, `DOCKGATE_TEST_STORE`) for tests of the shared state
 * store: each store gets a random key prefix, so test files and helpers running at once never
 * see each other's keys (nothing is ever flushed).
 */
import { afterAll } from 'vitest'
import { parseStoreUrl, type RedisTarget } from '../../src/store/config.ts'
import { RedisStore, type RedisStoreOptions } from '../../src/store/redis.ts'
import { openRedisConnection, type RedisConnection } from '../../src/store/redis-connection.ts'

/** The test Redis, from `DOCKGATE_TEST_STORE` (`eval "$(bash scripts/redis.sh up)"`). */
export function testRedisTarget(): RedisTarget {
  const url = process.env.DOCKGATE_TEST_STORE
  if (!url) throw new Error('DOCKGATE_TEST_STORE is not set: eval "$(bash scripts/redis.sh up)"')
  const target = parseStoreUrl(url)
  if (target.kind !== 'redis') throw new Error('DOCKGATE_TEST_STORE is not a redis:// URL')
  return target
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
