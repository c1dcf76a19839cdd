/**
 * @module The shared replay ring in Redis: a stream capped at the ring's size, appended to by
 * every instance through one script (so that deciding whether an event is held, where it goes,
 * whether it came late and what is evicted is one atomic step), a hash of the held events' keys
 * for that decision, and a hash of late entries. See `shared.ts` for what they mean.
 *
 * The client is given already connected; this adapter only sends commands (no `node:*`).
 */
import type { RedisClientType } from '@redis/client'
import type { EngineEvent, ParsedEvent } from './event.ts'
import type { ResumePoint } from './ring.ts'
import { LATE_LIMIT, pointEntry, replayFrom, type SharedEntry, type SharedRing } from './shared.ts'

/**
 * KEYS: the stream, the hash of held keys (key → id), the hash of late entries (key → ids of
 * entries received right after it though placed before it). ARGV: key, timeNano, event JSON,
 * prev key ('' for none), capacity. Answers 1 when appended, 0 when skipped. Ids are compared as
 * digit strings: Lua numbers are doubles, and a `timeNano` has 19 digits.
 */
const APPEND = `
local key, nano, json, prev, cap = ARGV[1], ARGV[2], ARGV[3], ARGV[4], tonumber(ARGV[5])
local function later(a, b) return #a > #b or (#a == #b and a > b) end
local function before(a, b)
  local ams, an = string.match(a, '^(%d+)-(%d+)$')
  local bms, bn = string.match(b, '^(%d+)-(%d+)$')
  if ams ~= bms then return later(bms, ams) end
  return tonumber(an) < tonumber(bn)
end
local prevId = prev ~= '' and redis.call('HGET', KEYS[2], prev) or false
local known = redis.call('HGET', KEYS[2], key)
if known then
  if prevId and before(known, prevId) then
    local late = redis.call('HGET', KEYS[3], prev) or ''
    if not string.find(' ' .. late .. ' ', ' ' .. known .. ' ', 1, true) then
      redis.call('HSET', KEYS[3], prev, late == '' and known or (late .. ' ' .. known))
    end
  end
  return 0
end
local continuous = prevId ~= false
local id = nano .. '-0'
local last = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', 1)[1]
if last then
  local ms, n = string.match(last[1], '^(%d+)-(%d+)$')
  if not later(nano, ms) then
    if not continuous then return 0 end
    id = ms .. '-' .. string.format('%d', tonumber(n) + 1)
  end
end
while redis.call('XLEN', KEYS[1]) >= cap do
  local oldest = redis.call('XRANGE', KEYS[1], '-', '+', 'COUNT', 1)[1]
  redis.call('XDEL', KEYS[1], oldest[1])
  redis.call('HDEL', KEYS[2], oldest[2][2])
  redis.call('HDEL', KEYS[3], oldest[2][2])
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
  /**
   * How long a replay (with the flush before it) may take before it fails (default 2 000 ms): a
   * client whose connection waits for Redis to come back must not hold a resume forever.
   */
  timeoutMs?: number
  /** Failed appends (Redis unreachable); the hub goes on, and the next append starts a stretch. */
  logError?: (message: string, error: unknown) => void
}

type RawEntry = [id: string, fields: string[]]

export function redisSharedRing(client: RedisClient, options: RedisSharedRingOptions): SharedRing {
  const stream = `${options.prefix}events`
  const keys = `${options.prefix}events:keys`
  const lateKeys = `${options.prefix}events:late`
  const capacity = String(options.capacity)
  const timeoutMs = options.timeoutMs ?? 2_000
  const logError = options.logError ?? ((message, error) => console.error(message, error))
  let tail: Promise<void> = Promise.resolve()
  let failing = false
  const range = (start: string, end: string, count: number) =>
    client.sendCommand(['XRANGE', stream, start, end, 'COUNT', String(count)]) as Promise<
      RawEntry[]
    >
  return {
    append(parsed, prev) {
      const json = JSON.stringify({ event: parsed.event, key: parsed.key })
      const args = [parsed.key, parsed.event.timeNano, json, prev ?? '', capacity]
      // Sent now, on one connection: Redis runs them in this order; `tail` only tracks the end.
      const sent = client.sendCommand(['EVAL', APPEND, '3', stream, keys, lateKeys, ...args]).then(
        () => {
          failing = false
        },
        (error: unknown) => {
          // Once per outage, not once per event.
          if (!failing) logError('shared events ring: appends fail', error)
          failing = true
        },
      )
      tail = sent
    },
    flushed: () => within(tail, timeoutMs, 'flushing the shared events ring'),
    replay: (point: ResumePoint) =>
      within(replay(point), timeoutMs, 'reading the shared events ring'),
  }

  async function replay(point: ResumePoint): Promise<ParsedEvent[] | 'gap'> {
    const entries: SharedEntry[] = []
    let start = `${'after' in point ? point.after : point.from}-0`
    for (;;) {
      const page = await range(start, '+', PAGE)
      for (const raw of page) entries.push(toEntry(raw))
      if (page.length < PAGE) break
      start = `(${page[page.length - 1]![0]}`
    }
    const at = pointEntry(point, entries)
    const late: SharedEntry[] = []
    const queue = at ? [at.parsed.key] : []
    const taken = new Set<string>()
    for (let key = queue.shift(); key !== undefined; key = queue.shift()) {
      const ids = ((await client.hGet(lateKeys, key)) ?? '').split(' ').filter(Boolean)
      for (const id of ids) {
        if (taken.has(id) || late.length >= LATE_LIMIT) continue
        taken.add(id)
        const [raw] = await range(id, id, 1)
        if (!raw) continue
        const entry = toEntry(raw)
        late.push(entry)
        queue.push(entry.parsed.key)
      }
    }
    // The oldest entry left, read last: other instances append (and evict the oldest) while the
    // pages are read, and an entry after the point evicted before its page was read took every
    // older one with it, so the oldest left is past the point then (a gap, not a silent loss).
    const [first] = await range('-', '+', 1)
    return replayFrom(point, first && toEntry(first), entries, late)
  }
}

/** `promise`, or a rejection after `ms`. */
export function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`Redis did not answer ${what} within ${ms} ms`)), ms)
  })
  return Promise.race([promise, late]).finally(() => clearTimeout(timer))
}

function toEntry([, fields]: RawEntry): SharedEntry {
  const field = (name: string) => {
    for (let i = 0; i + 1 < fields.length; i += 2) if (fields[i] === name) return fields[i + 1]!
    return ''
  }
  const { event, key } = JSON.parse(field('e')) as { event: EngineEvent; key: string }
  const parsed: ParsedEvent = { event, key, nano: BigInt(event.timeNano) }
  return { parsed, gap: field('g') === '1' }
}
