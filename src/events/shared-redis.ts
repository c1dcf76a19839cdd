/**
 * @module The shared replay ring in Redis: a stream capped at the ring's size, appended to by
 * every instance through one script (so that deciding whether an event is held, where it goes
 * and what is evicted is one atomic step), and a hash of the held events' keys for that
 * decision. See `shared.ts` for what the entries mean.
 *
 * The client is given already connected; this adapter only sends commands (no `node:*`).
 */
import type { RedisClientType } from '@redis/client'
import type { EngineEvent, ParsedEvent } from './event.ts'
import type { ResumePoint } from './ring.ts'
import { replayFrom, type SharedEntry, type SharedRing } from './shared.ts'

/**
 * KEYS: the stream, the hash of held keys. ARGV: key, timeNano, event JSON, prev key ('' for
 * none), capacity. Answers 1 when appended, 0 when skipped. Ids are compared as digit strings:
 * Lua numbers are doubles, and a `timeNano` has 19 digits.
 */
const APPEND = `
local key, nano, json, prev, cap = ARGV[1], ARGV[2], ARGV[3], ARGV[4], tonumber(ARGV[5])
if redis.call('HEXISTS', KEYS[2], key) == 1 then return 0 end
local continuous = prev ~= '' and redis.call('HEXISTS', KEYS[2], prev) == 1
local id = nano .. '-0'
local last = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', 1)[1]
if last then
  local ms, n = string.match(last[1], '^(%d+)-(%d+)$')
  if not (#nano > #ms or (#nano == #ms and nano > ms)) then
    if not continuous then return 0 end
    id = ms .. '-' .. string.format('%d', tonumber(n) + 1)
  end
end
while redis.call('XLEN', KEYS[1]) >= cap do
  local oldest = redis.call('XRANGE', KEYS[1], '-', '+', 'COUNT', 1)[1]
  redis.call('XDEL', KEYS[1], oldest[1])
  redis.call('HDEL', KEYS[2], oldest[2][2])
end
redis.call('XADD', KEYS[1], id, 'k', key, 'e', json, 'g', continuous and '0' or '1')
redis.call('HSET', KEYS[2], key, id)
return 1
`

/** Entries read per `XRANGE` while replaying. */
const PAGE = 1_000

export type RedisClient = RedisClientType

export interface RedisSharedRingOptions {
  /** Key prefix: the stream is `<prefix>events`, the held keys `<prefix>events:keys`. */
  prefix: string
  /** Entries kept (the ring's size). */
  capacity: number
  /** Failed appends (Redis unreachable); the hub goes on, and the next append starts a stretch. */
  logError?: (message: string, error: unknown) => void
}

type RawEntry = [id: string, fields: string[]]

export function redisSharedRing(client: RedisClient, options: RedisSharedRingOptions): SharedRing {
  const stream = `${options.prefix}events`
  const keys = `${options.prefix}events:keys`
  const capacity = String(options.capacity)
  const logError = options.logError ?? ((message, error) => console.error(message, error))
  let tail: Promise<void> = Promise.resolve()
  const range = (start: string, end: string, count: number) =>
    client.sendCommand(['XRANGE', stream, start, end, 'COUNT', String(count)]) as Promise<
      RawEntry[]
    >
  return {
    append(parsed, prev) {
      const json = JSON.stringify({ event: parsed.event, key: parsed.key })
      const args = [parsed.key, parsed.event.timeNano, json, prev ?? '', capacity]
      // Sent now, on one connection: Redis runs them in this order; `tail` only tracks the end.
      const sent = client.sendCommand(['EVAL', APPEND, '2', stream, keys, ...args]).then(
        () => {},
        (error: unknown) => logError('shared events ring: append failed', error),
      )
      tail = sent
    },
    flushed: () => tail,
    async replay(point: ResumePoint) {
      const [first] = await range('-', '+', 1)
      const entries: SharedEntry[] = []
      let start = `${'after' in point ? point.after : point.from}-0`
      for (;;) {
        const page = await range(start, '+', PAGE)
        for (const raw of page) entries.push(toEntry(raw))
        if (page.length < PAGE) break
        start = `(${page[page.length - 1]![0]}`
      }
      return replayFrom(point, first && toEntry(first), entries)
    },
  }
}

function toEntry([, fields]: RawEntry): SharedEntry {
  const field = (name: string) => fields[fields.indexOf(name) + 1] ?? ''
  const { event, key } = JSON.parse(field('e')) as { event: EngineEvent; key: string }
  const parsed: ParsedEvent = { event, key, nano: BigInt(event.timeNano) }
  return { parsed, gap: field('g') === '1' }
}
