/**
 * @module The state store in Redis: what every instance of the gateway shares. Each change is
 * one Lua script (atomic in Redis, never read-then-write from here), timed by Redis's own clock
 * (`TIME`) so instances' clocks do not matter.
 *
 * - Token buckets: a hash `{tokens, at}` per key, expiring once it would be full again.
 * - Counted slots (open streams, requests in progress, a ticket's open stream, a quota's
 *   create): a sorted set per key whose members are leases scored by their expiry. This instance
 *   renews the leases it holds every third of their lifetime; an instance that dies stops
 *   renewing, and its slots come free when their leases expire (`leaseTtlMs`, 15 s).
 * - Quota exclusivity: one slot (a lease, as above) per principal, waited for by polling.
 * - Tickets: a key per issued ticket holding the stream it is bound to ('' until its first open),
 *   expiring with the ticket; its open stream is a one-slot set.
 *
 * Redis unreachable, slow or failing: the operation rejects with a 503 problem. Nothing falls
 * back to this process's memory.
 */
import { ProblemError } from '../errors.ts'
import {
  type Rates,
  type Refusal,
  type Release,
  type SlotKind,
  type StateStore,
  type StoreHealth,
  storeUnavailable,
  type TicketClaim,
} from './port.ts'
import type { RedisConnection } from './redis-connection.ts'

export interface RedisStoreOptions {
  /** Prefix of every key (tests use a random one); `dockgate:` unless given. */
  prefix?: string
  /** How long a held slot lives without renewal (an instance that died frees it then). */
  leaseTtlMs?: number
  /** A command that takes longer than this fails (503). */
  commandTimeoutMs?: number
  /** How long a create waits for its principal's quota before it answers 503. */
  exclusiveWaitMs?: number
  /** Reports what goes wrong outside a request (a failed renewal or release). */
  logError?: (message: string, error: unknown) => void
}

/** Now in ms, by Redis's clock. */
const NOW = `local t = redis.call('TIME') local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)`

/** Frees expired leases of KEYS[k], then holds one of ARGV max if one is free: 1, else 0. */
const HOLD = (k: number, max: string, member: string, ttl: string) => `
redis.call('ZREMRANGEBYSCORE', KEYS[${k}], '-inf', now)
if redis.call('ZCARD', KEYS[${k}]) >= tonumber(${max}) then return 0 end
redis.call('ZADD', KEYS[${k}], now + tonumber(${ttl}), ${member})
redis.call('PEXPIRE', KEYS[${k}], ${ttl})
return 1`

/**
 * KEYS: bucket, slots. ARGV: perSecond, burst, max, lease, leaseTtl.
 * Answers 1 (admitted), 0 (slots full), or -n (rate limited: retry after n seconds).
 */
const ADMIT = `${NOW}
local rate = tonumber(ARGV[1]) local burst = tonumber(ARGV[2])
local b = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens = tonumber(b[1])
if tokens == nil then tokens = burst
else tokens = math.min(burst, tokens + math.max(0, now - tonumber(b[2])) / 1000 * rate) end
local full = math.ceil(burst / rate * 1000) + 1000
if tokens < 1 then
  redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'at', now)
  redis.call('PEXPIRE', KEYS[1], full)
  return -math.max(1, math.ceil((1 - tokens) / rate))
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens - 1), 'at', now)
redis.call('PEXPIRE', KEYS[1], full)
${HOLD(2, 'ARGV[3]', 'ARGV[4]', 'ARGV[5]')}`

/** KEYS: slots. ARGV: max, lease, leaseTtl. 1 held, 0 all held. */
const ACQUIRE = `${NOW}${HOLD(1, 'ARGV[1]', 'ARGV[2]', 'ARGV[3]')}`

/**
 * KEYS: ticket, its open-stream slot. ARGV: stream, lease, leaseTtl. Answers `ok`, `unknown`,
 * `other-stream` or `in-use`; binds an unbound ticket to the stream it opens.
 */
const OPEN_TICKET = `${NOW}
local bound = redis.call('GET', KEYS[1])
if not bound then return 'unknown' end
if bound ~= '' and bound ~= ARGV[1] then return 'other-stream' end
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
if redis.call('ZCARD', KEYS[2]) >= 1 then return 'in-use' end
redis.call('ZADD', KEYS[2], now + tonumber(ARGV[3]), ARGV[2])
redis.call('PEXPIRE', KEYS[2], ARGV[3])
if bound == '' then redis.call('SET', KEYS[1], ARGV[1], 'KEEPTTL') end
return 'ok'`

/** KEYS: slot sets; ARGV: leaseTtl, then one lease per key. Extends the leases still held. */
const RENEW = `${NOW}
local ttl = tonumber(ARGV[1])
for i, key in ipairs(KEYS) do
  if redis.call('ZADD', key, 'XX', 'CH', now + ttl, ARGV[i + 1]) >= 0 then
    redis.call('PEXPIRE', key, ttl)
  end
end
return #KEYS`

interface Script {
  source: string
  sha: Promise<string>
}

async function sha1(text: string): Promise<string> {
  const digest = await crypto.subtle.digest('SHA-1', new TextEncoder().encode(text))
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, '0')).join('')
}

const script = (source: string): Script => ({ source, sha: sha1(source) })

export class RedisStore implements StateStore {
  readonly kind = 'redis'
  readonly #redis: RedisConnection
  readonly #prefix: string
  readonly #leaseTtlMs: number
  readonly #timeoutMs: number
  readonly #exclusiveWaitMs: number
  readonly #logError: (message: string, error: unknown) => void
  readonly #scripts = {
    admit: script(ADMIT),
    acquire: script(ACQUIRE),
    openTicket: script(OPEN_TICKET),
    renew: script(RENEW),
  }
  /** Leases this instance holds: lease id → the slot set it is in. */
  readonly #held = new Map<string, string>()
  readonly #instance = crypto.randomUUID()
  #leases = 0
  #renewer: ReturnType<typeof setInterval> | undefined
  #closed = false

  constructor(redis: RedisConnection, options: RedisStoreOptions = {}) {
    this.#redis = redis
    this.#prefix = options.prefix ?? 'dockgate:'
    this.#leaseTtlMs = options.leaseTtlMs ?? 15_000
    this.#timeoutMs = options.commandTimeoutMs ?? 2_000
    this.#exclusiveWaitMs = options.exclusiveWaitMs ?? 30_000
    this.#logError = options.logError ?? (() => {})
  }

  async admit(key: string, rates: Rates, kind: SlotKind, max: number): Promise<Release | Refusal> {
    const slots = this.#slotKey(kind, key)
    const lease = this.#newLease()
    const answer = await this.#run(
      this.#scripts.admit,
      [`${this.#prefix}b:${key}`, slots],
      [rates.perSecond, rates.burst, max, lease, this.#leaseTtlMs],
    )
    const n = Number(answer)
    if (n === 1) return this.#hold(slots, lease)
    if (n === 0) return { limit: 'slots' }
    return { limit: 'rate', retryAfterSeconds: -n }
  }

  async acquire(kind: SlotKind, key: string, max: number): Promise<Release | undefined> {
    const slots = this.#slotKey(kind, key)
    const lease = this.#newLease()
    const answer = await this.#run(this.#scripts.acquire, [slots], [max, lease, this.#leaseTtlMs])
    return Number(answer) === 1 ? this.#hold(slots, lease) : undefined
  }

  async exclusive<T>(key: string, step: () => Promise<T>): Promise<T> {
    const deadline = Date.now() + this.#exclusiveWaitMs
    let wait = 10
    for (;;) {
      const release = await this.acquire('quota', key, 1)
      if (release) {
        try {
          return await step()
        } finally {
          release()
        }
      }
      if (Date.now() + wait > deadline) {
        throw storeUnavailable('Another create of this client has held its quota for too long')
      }
      await new Promise((resolve) => setTimeout(resolve, wait + Math.random() * wait))
      wait = Math.min(wait * 2, 200)
    }
  }

  async recordTicket(id: string, stream: string | null, expiresAt: number): Promise<void> {
    const client = await this.#client()
    await this.#call(() =>
      client.sendCommand(
        ['SET', `${this.#prefix}t:${id}`, stream ?? '', 'PXAT', String(expiresAt), 'NX'],
        { timeout: this.#timeoutMs },
      ),
    )
  }

  async openTicket(id: string, stream: string): Promise<TicketClaim> {
    const slots = this.#slotKey('ticket', id)
    const lease = this.#newLease()
    const answer = String(
      await this.#run(
        this.#scripts.openTicket,
        [`${this.#prefix}t:${id}`, slots],
        [stream, lease, this.#leaseTtlMs],
      ),
    )
    if (answer === 'ok') return { ok: true, release: this.#hold(slots, lease) }
    if (answer === 'other-stream' || answer === 'in-use') return { ok: false, refusal: answer }
    return { ok: false, refusal: 'unknown' }
  }

  async health(): Promise<StoreHealth> {
    try {
      const client = await this.#client()
      await this.#call(() => client.sendCommand(['PING'], { timeout: this.#timeoutMs }))
      return { ok: true }
    } catch (error) {
      const why = error instanceof ProblemError ? error.cause : error
      return {
        ok: false,
        reason: `the state store ${this.#redis.display} does not answer: ${message(why)}`,
      }
    }
  }

  async close(): Promise<void> {
    this.#closed = true
    clearInterval(this.#renewer)
    this.#renewer = undefined
    // Leases still held are given back; what cannot be, expires.
    const held = [...this.#held]
    this.#held.clear()
    if (held.length > 0 && this.#redis.client.isReady) {
      await Promise.all(
        held.map(([lease, slots]) =>
          this.#redis.client.sendCommand(['ZREM', slots, lease], { timeout: this.#timeoutMs }),
        ),
      ).catch(() => {})
    }
  }

  /** Forgets the leases held without giving them back: what a killed instance leaves (tests). */
  abandon(): void {
    this.#closed = true
    clearInterval(this.#renewer)
    this.#held.clear()
  }

  /** Leases this instance holds (tests). */
  get held(): number {
    return this.#held.size
  }

  #slotKey(kind: SlotKind, key: string) {
    return `${this.#prefix}s:${kind}:${key}`
  }

  #newLease() {
    this.#leases += 1
    return `${this.#instance}:${this.#leases}`
  }

  /** Tracks a lease until its release, renewing it meanwhile. */
  #hold(slots: string, lease: string): Release {
    this.#held.set(lease, slots)
    if (!this.#renewer && !this.#closed) {
      this.#renewer = setInterval(() => this.#renew(), Math.max(50, this.#leaseTtlMs / 3))
      // A renewal timer keeps no process alive by itself (Node; Deno's timers are numbers).
      ;(this.#renewer as { unref?: () => void }).unref?.()
    }
    let held = true
    return () => {
      if (!held) return
      held = false
      this.#held.delete(lease)
      if (this.#held.size === 0) {
        clearInterval(this.#renewer)
        this.#renewer = undefined
      }
      // Not awaited: a release that fails (Redis away) leaves a lease that expires by itself.
      if (this.#redis.client.isReady) {
        this.#redis.client
          .sendCommand(['ZREM', slots, lease], { timeout: this.#timeoutMs })
          .catch((error: unknown) => this.#logError('state store: a release failed', error))
      }
    }
  }

  #renew() {
    if (this.#held.size === 0 || !this.#redis.client.isReady) return
    const keys: string[] = []
    const leases: string[] = []
    for (const [lease, slots] of this.#held) {
      keys.push(slots)
      leases.push(lease)
    }
    this.#run(this.#scripts.renew, keys, [this.#leaseTtlMs, ...leases]).catch((error: unknown) =>
      this.#logError('state store: renewing leases failed', error),
    )
  }

  async #client() {
    try {
      return await this.#redis.ready()
    } catch (error) {
      throw this.#unavailable(error)
    }
  }

  /** Runs a script by its digest, loading it when Redis does not know it (a restarted Redis). */
  async #run(script: Script, keys: string[], args: (string | number)[]): Promise<unknown> {
    const client = await this.#client()
    const argv = args.map(String)
    const sha = await script.sha
    return this.#call(async () => {
      const options = { timeout: this.#timeoutMs }
      try {
        return await client.sendCommand(
          ['EVALSHA', sha, String(keys.length), ...keys, ...argv],
          options,
        )
      } catch (error) {
        if (!message(error).startsWith('NOSCRIPT')) throw error
        return client.sendCommand(
          ['EVAL', script.source, String(keys.length), ...keys, ...argv],
          options,
        )
      }
    })
  }

  /**
   * A command, failed as unavailable when Redis fails it or has not answered within the
   * timeout: the client's own timeout stops only commands not yet written, and a Redis that
   * hangs (paused, overloaded) answers nothing it was sent.
   */
  async #call<T>(command: () => Promise<T>): Promise<T> {
    let timer: ReturnType<typeof setTimeout> | undefined
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new Error(`no answer within ${this.#timeoutMs} ms`)),
        this.#timeoutMs,
      )
    })
    try {
      return await Promise.race([command(), timeout])
    } catch (error) {
      throw error instanceof ProblemError ? error : this.#unavailable(error)
    } finally {
      clearTimeout(timer)
    }
  }

  #unavailable(error: unknown) {
    const problem = storeUnavailable(
      `The shared state store does not answer (${message(error)}); try again shortly`,
    )
    return Object.assign(problem, { cause: error })
  }
}

const message = (error: unknown) =>
  (error instanceof Error ? error.message : String(error)).replace(
    /(redis:\/\/)[^@/\s]*@/gi,
    '$1***@',
  )
