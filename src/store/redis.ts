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
import { nextTurn } from '../streams/next-turn.ts'
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

/**
 * What a script first does: give back the leases released since the last command. ARGV[1] is how
 * many slot sets (S), ARGV[2] how many leases (R); KEYS[1..S] are the sets and ARGV[3..2+2R]
 * pairs of a set's index and a lease. A release so rides on the next command instead of costing
 * one of its own (a request's release and the next request's admission are one round trip), and
 * this instance's release always reaches Redis before its next acquire of the same slots. A set
 * is named once however many of its leases go back (under load most are one principal's).
 */
const GIVE_BACK = `local S = tonumber(ARGV[1]) local R = tonumber(ARGV[2])
for i = 1, R do redis.call('ZREM', KEYS[tonumber(ARGV[1 + 2 * i])], ARGV[2 + 2 * i]) end
`

/** A script that gives back the leases released first; its own keys and arguments follow. */
const withReleases = (body: string) =>
  GIVE_BACK +
  body.replace(/KEYS\[(\d+)\]/g, 'KEYS[S + $1]').replace(/ARGV\[(\d+)\]/g, 'ARGV[2 + 2 * R + $1]')

/** Only the releases (when no other command comes along soon). */
const RELEASE = withReleases('return R')

/** Frees expired leases of KEYS[k], then holds one of ARGV max if one is free: 1, else 0. */
const HOLD = (k: number, max: string, member: string, ttl: string) => `
redis.call('ZREMRANGEBYSCORE', KEYS[${k}], '-inf', now)
if redis.call('ZCARD', KEYS[${k}]) >= tonumber(${max}) then return 0 end
redis.call('ZADD', KEYS[${k}], now + tonumber(${ttl}), ${member})
redis.call('PEXPIRE', KEYS[${k}], ${ttl})
return 1`

/**
 * Admits a batch of requests in order, each as one step (a token of its bucket, then one of `max`
 * slots): the same steps, in the same order, as one script call per request, with one `TIME`.
 * After the releases (`GIVE_BACK`): KEYS: a bucket and a slot set per target (a principal's
 * kind of slot). ARGV: leaseTtl, how many targets (T), perSecond, burst and max per target, then
 * a target's index and a lease per request. Answers one number per request: 1 (admitted), 0
 * (slots full), or -n (rate limited: retry after n seconds).
 */
const ADMIT = `${GIVE_BACK}${NOW}
local a = 2 + 2 * R
local ttl = tonumber(ARGV[a + 1])
local T = tonumber(ARGV[a + 2])
local function admit(t, lease)
  local bucket = KEYS[S + 2 * t - 1] local slots = KEYS[S + 2 * t]
  local p = a + 2 + 3 * (t - 1)
  local rate = tonumber(ARGV[p + 1]) local burst = tonumber(ARGV[p + 2])
  local b = redis.call('HMGET', bucket, 'tokens', 'at')
  local tokens = tonumber(b[1])
  if tokens == nil then tokens = burst
  else tokens = math.min(burst, tokens + math.max(0, now - tonumber(b[2])) / 1000 * rate) end
  -- Once the bucket would be full again; at most a year, written as digits (Lua writes a large
  -- number as 1e+18, which PEXPIRE refuses, failing every admit of the call).
  local full = string.format('%d', math.min(math.ceil(burst / rate * 1000) + 1000, 31536000000))
  if tokens < 1 then
    redis.call('HSET', bucket, 'tokens', tostring(tokens), 'at', now)
    redis.call('PEXPIRE', bucket, full)
    return -math.max(1, math.ceil((1 - tokens) / rate))
  end
  redis.call('HSET', bucket, 'tokens', tostring(tokens - 1), 'at', now)
  redis.call('PEXPIRE', bucket, full)
  redis.call('ZREMRANGEBYSCORE', slots, '-inf', now)
  if redis.call('ZCARD', slots) >= tonumber(ARGV[p + 3]) then return 0 end
  redis.call('ZADD', slots, now + ttl, lease)
  redis.call('PEXPIRE', slots, ttl)
  return 1
end
local answers = {}
local first = a + 2 + 3 * T
for i = 1, (#ARGV - first) / 2 do
  answers[i] = admit(tonumber(ARGV[first + 2 * i - 1]), ARGV[first + 2 * i])
end
return answers`

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

/**
 * KEYS: slot sets; ARGV: leaseTtl, then one lease per key. Extends the leases this instance still
 * holds, and puts back one that expired meanwhile (this instance's link to Redis, or its event
 * loop, stalled past a lease): its stream is still open, and counts. A lease given back is no
 * longer held here, and its release follows this renewal on the same connection.
 */
const RENEW = `${NOW}
local ttl = tonumber(ARGV[1])
for i, key in ipairs(KEYS) do
  redis.call('ZADD', key, now + ttl, ARGV[i + 1])
  redis.call('PEXPIRE', key, ttl)
end
return #KEYS`

interface Script {
  source: string
  /** Its SHA-1, once computed (WebCrypto digests are promises). */
  digest: string | undefined
  sha: Promise<string>
}

async function sha1(text: string): Promise<string> {
  const digest = await crypto.subtle.digest('SHA-1', new TextEncoder().encode(text))
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, '0')).join('')
}

function script(source: string): Script {
  const made: Script = { source, digest: undefined, sha: sha1(source) }
  made.sha.then((digest) => {
    made.digest = digest
  })
  return made
}

/** What an admit is judged against: a principal's bucket and one kind of its slots. */
interface AdmitTarget {
  bucket: string
  slots: string
  rates: Rates
  max: number
}

/** A request waiting for the script call that admits it (`RedisStore.admit`). */
interface QueuedAdmit {
  target: AdmitTarget
  lease: string
  resolve: (answer: Release | Refusal) => void
  reject: (error: unknown) => void
}

/** Admit targets remembered per kind at most; past it they are forgotten all at once. */
const TARGETS_KEPT = 10_000

/** The same refusal object for every request over its slots. */
const SLOTS_FULL: Refusal = { limit: 'slots' }

/**
 * Admits one script call carries at most: Redis runs one script at a time, and an admit took it
 * ~18 µs here (INFO commandstats under the bench's load), so a call of 32 holds it ~0.6 ms.
 */
const MAX_ADMITS_PER_CALL = 32

/** A command sent and not answered yet, for the watchdog. */
interface Pending {
  at: number
  reject: (error: unknown) => void
}

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
    acquire: script(withReleases(ACQUIRE)),
    openTicket: script(withReleases(OPEN_TICKET)),
    release: script(RELEASE),
    renew: script(RENEW),
  }
  /** Released leases not yet given back: slot set, lease, slot set, lease… */
  #releases: string[] = []
  #releaseTimer: ReturnType<typeof setTimeout> | undefined
  /** Leases this instance holds: lease id → the slot set it is in. */
  readonly #held = new Map<string, string>()
  /** Names this instance's leases: 64 random bits (a lease is sent twice, so short). */
  readonly #instance = Array.from(crypto.getRandomValues(new Uint32Array(2)), (n) =>
    n.toString(36),
  ).join('.')
  #leases = 0
  #renewer: ReturnType<typeof setInterval> | undefined
  #closed = false
  /** Admits waiting for their script call (the next turn of the event loop), oldest first. */
  #admits: QueuedAdmit[] = []
  #admitsScheduled = false
  /** Each principal's admit target by kind, so a request builds no key of its own. */
  readonly #targets: Record<SlotKind, Map<string, AdmitTarget>> = {
    streams: new Map(),
    budget: new Map(),
    ticket: new Map(),
    quota: new Map(),
  }
  /** Commands sent and not yet answered, oldest first. */
  readonly #pending = new Set<Pending>()
  #watchdog: ReturnType<typeof setInterval> | undefined

  constructor(redis: RedisConnection, options: RedisStoreOptions = {}) {
    this.#redis = redis
    this.#prefix = options.prefix ?? 'dockgate:'
    this.#leaseTtlMs = options.leaseTtlMs ?? 15_000
    this.#timeoutMs = options.commandTimeoutMs ?? 2_000
    this.#exclusiveWaitMs = options.exclusiveWaitMs ?? 30_000
    this.#logError = options.logError ?? (() => {})
  }

  /**
   * The admits of one turn of the event loop go to Redis as one script call, on the next turn:
   * one command, one reply and one promise of the client for them all rather than for each
   * request. In Redis they are the same steps in the same order as one call each (atomic
   * together, which is stricter), so every limit holds as before; a request waits one turn of the
   * event loop more. The client's per-command cost was most of what the Redis store added to a
   * small request: event-loop instructions 263k against 137k with the memory store before, 163k
   * against 130k after; bench phase 2b, 7 runs of each alternating, 1.25× → 1.10× the memory
   * store at the median (bench/README.md, "Redis store CPU (branch redis3)").
   */
  admit(key: string, rates: Rates, kind: SlotKind, max: number): Promise<Release | Refusal> {
    return new Promise((resolve, reject) => {
      this.#admits.push({
        target: this.#target(key, rates, kind, max),
        lease: this.#newLease(),
        resolve,
        reject,
      })
      if (this.#admitsScheduled) return
      this.#admitsScheduled = true
      nextTurn(this.#sendAdmits)
    })
  }

  #target(key: string, rates: Rates, kind: SlotKind, max: number): AdmitTarget {
    const targets = this.#targets[kind]
    const known = targets.get(key)
    if (known && known.rates === rates && known.max === max) return known
    if (targets.size >= TARGETS_KEPT) targets.clear()
    const bucket = `${this.#prefix}b:${key}`
    const target = { bucket, slots: this.#slotKey(kind, key), rates, max }
    targets.set(key, target)
    return target
  }

  /**
   * Sends the admits waiting as script calls of MAX_ADMITS_PER_CALL at most, each target's keys
   * and limits once per call (under load most requests of a call are a few principals').
   */
  readonly #sendAdmits = () => {
    this.#admitsScheduled = false
    const waiting = this.#admits
    this.#admits = []
    for (let from = 0; from < waiting.length; from += MAX_ADMITS_PER_CALL) {
      const batch =
        waiting.length <= MAX_ADMITS_PER_CALL
          ? waiting
          : waiting.slice(from, from + MAX_ADMITS_PER_CALL)
      const indices = new Map<AdmitTarget, string>()
      const keys: string[] = []
      const limits: string[] = []
      const admits: string[] = []
      for (const { target, lease } of batch) {
        let index = indices.get(target)
        if (index === undefined) {
          index = String(indices.size + 1)
          indices.set(target, index)
          keys.push(target.bucket, target.slots)
          limits.push(String(target.rates.perSecond), String(target.rates.burst))
          limits.push(String(target.max))
        }
        admits.push(index, lease)
      }
      const args = [String(this.#leaseTtlMs), String(indices.size), ...limits, ...admits]
      this.#runReleasing(this.#scripts.admit, keys, args).then(
        (answers) => this.#settleAdmits(batch, answers),
        (error: unknown) => {
          for (const admit of batch) {
            // The script may have run all the same (a Redis that answered too late): no slot
            // of a request answered 503 stays held.
            this.#giveBack(admit.target.slots, admit.lease)
            admit.reject(this.#unavailable(causeOf(error)))
          }
        },
      )
    }
  }

  #settleAdmits(batch: QueuedAdmit[], answers: unknown) {
    if (!Array.isArray(answers) || answers.length !== batch.length) {
      const error = new Error(`the admit script answered ${String(answers).slice(0, 80)}`)
      for (const admit of batch) admit.reject(this.#unavailable(error))
      return
    }
    for (let i = 0; i < batch.length; i++) {
      const admit = batch[i]!
      const n = Number(answers[i])
      if (n === 1) admit.resolve(this.#hold(admit.target.slots, admit.lease))
      else if (n === 0) admit.resolve(SLOTS_FULL)
      else admit.resolve({ limit: 'rate', retryAfterSeconds: -n })
    }
  }

  async acquire(kind: SlotKind, key: string, max: number): Promise<Release | undefined> {
    const slots = this.#slotKey(kind, key)
    const lease = this.#newLease()
    const answer = await this.#runReleasing(
      this.#scripts.acquire,
      [slots],
      [max, lease, this.#leaseTtlMs],
    ).catch(this.#givingBack(slots, lease))
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
    await this.#send([
      'SET',
      `${this.#prefix}t:${id}`,
      stream ?? '',
      'PXAT',
      String(expiresAt),
      'NX',
    ])
  }

  async openTicket(id: string, stream: string): Promise<TicketClaim> {
    const slots = this.#slotKey('ticket', id)
    const lease = this.#newLease()
    const answer = String(
      await this.#runReleasing(
        this.#scripts.openTicket,
        [`${this.#prefix}t:${id}`, slots],
        [stream, lease, this.#leaseTtlMs],
      ).catch(this.#givingBack(slots, lease)),
    )
    if (answer === 'ok') return { ok: true, release: this.#hold(slots, lease) }
    if (answer === 'other-stream' || answer === 'in-use') return { ok: false, refusal: answer }
    return { ok: false, refusal: 'unknown' }
  }

  async health(): Promise<StoreHealth> {
    try {
      await this.#send(['PING'])
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
    clearTimeout(this.#releaseTimer)
    this.#releaseTimer = undefined
    // Leases still held are given back with those released; what cannot be, expires.
    for (const [lease, slots] of this.#held) this.#releases.push(slots, lease)
    this.#held.clear()
    if (this.#releases.length > 0 && this.#redis.client.isReady) {
      await this.#runReleasing(this.#scripts.release, [], []).catch(() => {})
    }
    this.#releases = []
    clearInterval(this.#watchdog)
    this.#watchdog = undefined
  }

  /** Forgets the leases held without giving them back: what a killed instance leaves (tests). */
  abandon(): void {
    this.#closed = true
    clearInterval(this.#renewer)
    clearTimeout(this.#releaseTimer)
    this.#held.clear()
    this.#releases = []
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
      // The renewer stops at its next round with nothing held: under load the last lease of a
      // moment is released many times a second, and each stop would be a new timer soon after.
      this.#held.delete(lease)
      this.#giveBack(slots, lease)
    }
  }

  /**
   * Gives a lease back with the next command, or within a moment: a release that fails (Redis
   * away) leaves a lease that expires by itself. Also for a lease a failed command may have
   * taken all the same (giving back one never taken removes nothing).
   */
  #giveBack(slots: string, lease: string) {
    this.#releases.push(slots, lease)
    this.#releaseTimer ??= setTimeout(() => this.#flushReleases(), 1)
  }

  /**
   * A command's failure handler that gives its lease back (as an admit does), then fails: the
   * script may have run all the same (a Redis that answered too late).
   */
  #givingBack(slots: string, lease: string) {
    return (error: unknown): never => {
      this.#giveBack(slots, lease)
      throw error
    }
  }

  #renew() {
    if (this.#held.size === 0) {
      clearInterval(this.#renewer)
      this.#renewer = undefined
      return
    }
    if (!this.#redis.client.isReady) return
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

  #flushReleases() {
    this.#releaseTimer = undefined
    if (this.#releases.length === 0) return
    this.#runReleasing(this.#scripts.release, [], []).catch((error: unknown) =>
      this.#logError('state store: a release failed', error),
    )
  }

  /** Runs a script written `withReleases`, giving back the leases released meanwhile. */
  #runReleasing(script: Script, keys: string[], args: (string | number)[]): Promise<unknown> {
    const releases = this.#releases
    if (releases.length === 0) return this.#run(script, keys, ['0', '0', ...args])
    this.#releases = []
    const sets: string[] = []
    const indices = new Map<string, string>()
    const pairs: string[] = []
    for (let i = 0; i < releases.length; i += 2) {
      const set = releases[i]!
      let index = indices.get(set)
      if (index === undefined) {
        sets.push(set)
        index = String(sets.length)
        indices.set(set, index)
      }
      pairs.push(index, releases[i + 1]!)
    }
    return this.#run(
      script,
      [...sets, ...keys],
      [String(sets.length), String(pairs.length / 2), ...pairs, ...args],
    )
  }

  /** Runs a script by its digest, loading it when Redis does not know it (a restarted Redis). */
  #run(script: Script, keys: string[], args: (string | number)[]): Promise<unknown> {
    const digest = script.digest
    if (digest === undefined) return script.sha.then(() => this.#run(script, keys, args))
    const argv = args.map(String)
    return this.#send(['EVALSHA', digest, String(keys.length), ...keys, ...argv]).catch(
      (error: unknown) => {
        if (!message(causeOf(error)).startsWith('NOSCRIPT')) throw error
        return this.#send(['EVAL', script.source, String(keys.length), ...keys, ...argv])
      },
    )
  }

  /**
   * Sends a command; a 503 problem when Redis cannot be reached, fails it, or has not answered
   * within the timeout. The client's own timeout stops only commands not yet written, and a
   * Redis that hangs (paused, overloaded) answers nothing it was sent: one watchdog for all
   * commands, rather than a timer for each, keeps the cost of a command low.
   */
  #send(args: string[]): Promise<unknown> {
    const client = this.#redis.client
    if (!client.isReady) {
      return this.#redis.ready().then(
        () => this.#send(args),
        (error: unknown) => {
          throw this.#unavailable(error)
        },
      )
    }
    this.#watchdog ??= this.#startWatchdog()
    return new Promise((resolve, reject) => {
      const pending: Pending = { at: Date.now(), reject }
      this.#pending.add(pending)
      client.sendCommand(args).then(
        (value) => {
          this.#pending.delete(pending)
          resolve(value)
        },
        (error: unknown) => {
          this.#pending.delete(pending)
          reject(this.#unavailable(error))
        },
      )
    })
  }

  #startWatchdog() {
    const watchdog = setInterval(
      () => {
        const now = Date.now()
        // Oldest first: stop at the first command still within its time.
        for (const pending of this.#pending) {
          if (now - pending.at < this.#timeoutMs) break
          this.#pending.delete(pending)
          pending.reject(this.#unavailable(new Error(`no answer within ${this.#timeoutMs} ms`)))
        }
      },
      Math.max(10, this.#timeoutMs / 8),
    )
    ;(watchdog as { unref?: () => void }).unref?.()
    return watchdog
  }

  #unavailable(error: unknown) {
    const problem = storeUnavailable(
      `The shared state store does not answer (${message(error)}); try again shortly`,
    )
    return Object.assign(problem, { cause: error })
  }
}

/** What made a store's 503 problem (the client's error), or the error itself. */
const causeOf = (error: unknown) => (error instanceof ProblemError ? error.cause : error)

const message = (error: unknown) =>
  (error instanceof Error ? error.message : String(error)).replace(
    /(redis:\/\/)[^@/\s]*@/gi,
    '$1***@',
  )
