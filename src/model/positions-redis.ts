/**
 * @module Write positions in Redis: one key holding the newest position any instance recorded,
 * raised (never lowered) by one script. The client is given already connected.
 */
import type { RedisClientType } from '@redis/client'
import { within } from '../events/shared-redis.ts'
import { parsePosition, type WritePositions } from './positions.ts'

/** Raises KEYS[1] to ARGV[1]; compared as digit strings (Lua numbers are doubles). */
const RAISE = `
local now, next = redis.call('GET', KEYS[1]), ARGV[1]
if not now or #next > #now or (#next == #now and next > now) then redis.call('SET', KEYS[1], next) end
return 1
`

export interface RedisWritePositionsOptions {
  /** Key prefix: the position is `<prefix>position`. */
  prefix: string
  /**
   * How long a call may take before it fails (default 1 000 ms): a read then asks the engine,
   * a change is answered all the same, rather than wait for Redis to come back.
   */
  timeoutMs?: number
  /**
   * A position that could not be recorded (Redis unreachable): the change is done and answered
   * with its position all the same; other instances then see it once their model does.
   */
  logError?: (message: string, error: unknown) => void
}

export function redisWritePositions(
  client: RedisClientType,
  options: RedisWritePositionsOptions,
): WritePositions {
  const key = `${options.prefix}position`
  const logError = options.logError ?? ((message, error) => console.error(message, error))
  const timeoutMs = options.timeoutMs ?? 1_000
  return {
    async record(position) {
      const raise = client.sendCommand(['EVAL', RAISE, '1', key, position.toString()])
      await within(raise, timeoutMs, 'recording a write position').catch((error: unknown) =>
        logError('write position: not recorded', error),
      )
    },
    async latest() {
      return parsePosition(await within(client.get(key), timeoutMs, 'reading the write position'))
    },
  }
}
