/**
 * Small helpers: statistics, time, and what Linux says about a process (/proc).
 */
import { readdirSync, readFileSync, readlinkSync } from 'node:fs'

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))

/** Milliseconds since the epoch with sub-millisecond precision (monotonic within this process). */
export const nowMs = () => performance.timeOrigin + performance.now()

let wallOffsetMs = performance.timeOrigin

/**
 * The wall clock in milliseconds with sub-millisecond precision, for comparing with a time
 * another process stamped (an event's `timeNano`, the floor's ids). `nowMs` keeps the time
 * origin of this process's start: once the system clock is stepped (NTP on a VM), it drifts from
 * the clock the engine stamps with, by the step (a clean-clone CI run saw every delivery of the
 * cluster phase at −0.9 s). Re-anchored on `Date.now()` (whole milliseconds) when they part by
 * more than its rounding.
 */
export function wallClockMs() {
  const now = performance.now()
  const offset = Date.now() - now
  if (Math.abs(offset - wallOffsetMs) > 2) wallOffsetMs = offset
  return wallOffsetMs + now
}

export function median(values) {
  const v = values.filter((x) => typeof x === 'number' && Number.isFinite(x))
  if (v.length === 0) return null
  v.sort((a, b) => a - b)
  const mid = v.length >> 1
  return v.length % 2 ? v[mid] : (v[mid - 1] + v[mid]) / 2
}

/**
 * Of several measurements of one events level (bench/events.mjs), the one whose p99 is the
 * median (the lower middle one of an even count); undefined for none.
 */
export function medianP99Level(levels) {
  const sorted = levels.filter((l) => Number.isFinite(l?.p99Ms)).sort((a, b) => a.p99Ms - b.p99Ms)
  return sorted[(sorted.length - 1) >> 1]
}

/** The p-th percentile (0–100) of a numeric array or typed array, nearest rank. */
export function percentile(values, p) {
  if (values.length === 0) return null
  const sorted = Float64Array.from(values).sort()
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))
  return sorted[rank]
}

/** A growable Float64Array: recording millions of latencies without boxing numbers. */
export class Samples {
  #data = new Float64Array(1024)
  length = 0
  push(value) {
    if (this.length === this.#data.length) {
      const next = new Float64Array(this.#data.length * 2)
      next.set(this.#data)
      this.#data = next
    }
    this.#data[this.length++] = value
  }
  values() {
    return this.#data.subarray(0, this.length)
  }
}

export const round = (value, digits = 2) =>
  value === null || value === undefined || !Number.isFinite(value)
    ? null
    : Math.round(value * 10 ** digits) / 10 ** digits

export const ratio = (a, b) => (a === null || b === null || !b ? null : a / b)

const CLOCK_TICKS_PER_SECOND = 100

/** CPU time (user + system, every thread, living or exited) of a process in milliseconds. */
export function cpuMs(pid) {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    // The command name may hold spaces and parentheses: fields start after the last ')'.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    const utime = Number(fields[11])
    const stime = Number(fields[12])
    return ((utime + stime) * 1000) / CLOCK_TICKS_PER_SECOND
  } catch {
    return null
  }
}

/** Resident set size of a process in bytes (VmRSS). */
export function rssBytes(pid) {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8')
    const match = /^VmRSS:\s+(\d+) kB/m.exec(status)
    return match ? Number(match[1]) * 1024 : null
  } catch {
    return null
  }
}

export function isAlive(pid) {
  try {
    process.kill(pid, 0)
    return true
  } catch (error) {
    return error.code === 'EPERM'
  }
}

/** Inodes of the connected Unix sockets in the system, from /proc/net/unix. */
function unixSocketInodes() {
  const inodes = new Map()
  const lines = readFileSync('/proc/net/unix', 'utf8').split('\n').slice(1)
  for (const line of lines) {
    const f = line.trim().split(/\s+/)
    if (f.length < 7) continue
    // Num RefCount Protocol Flags Type St Inode [Path]; St 03 = connected
    inodes.set(f[6], { state: f[5], path: f[7] })
  }
  return inodes
}

function socketInodesOf(pid) {
  const inodes = []
  let fds = []
  try {
    fds = readdirSync(`/proc/${pid}/fd`)
  } catch {
    return inodes
  }
  for (const fd of fds) {
    try {
      const link = readlinkSync(`/proc/${pid}/fd/${fd}`)
      const match = /^socket:\[(\d+)\]$/.exec(link)
      if (match) inodes.push(match[1])
    } catch {
      // closed meanwhile
    }
  }
  return inodes
}

/** How many connected Unix sockets a process holds (the gateway's only Unix peer is the engine). */
export function connectedUnixSockets(pid) {
  const unix = unixSocketInodes()
  return socketInodesOf(pid).filter((inode) => unix.get(inode)?.state === '03').length
}

/** The pid of the process listening on a Unix socket path (e.g. dockerd), or null. */
export function listenerPid(socketPath) {
  let inode
  for (const [candidate, info] of unixSocketInodes()) {
    if (info.path === socketPath && info.state === '01') inode = candidate
  }
  if (!inode) return null
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue
    if (socketInodesOf(entry).includes(inode)) return Number(entry)
  }
  return null
}

/** Runs `fn` over `items` with at most `limit` at a time. */
export async function mapLimit(items, limit, fn) {
  const results = new Array(items.length)
  let next = 0
  const workers = Array.from({ length: Math.min(limit, items.length) }, async () => {
    while (next < items.length) {
      const i = next++
      results[i] = await fn(items[i], i)
    }
  })
  await Promise.all(workers)
  return results
}

/** A time budget: phases ask how much is left and shrink themselves to fit. */
export class Budget {
  constructor(totalMs) {
    this.start = Date.now()
    this.totalMs = totalMs
  }
  elapsedMs() {
    return Date.now() - this.start
  }
  leftMs() {
    return this.totalMs - this.elapsedMs()
  }
}

export const log = (...parts) => {
  const t = ((Date.now() - START) / 1000).toFixed(1).padStart(6)
  console.log(`[${t}s]`, ...parts)
}
const START = Date.now()

/** The value of `--name=value` among the script's arguments, or `fallback` without one. */
export const option = (name, fallback, args = process.argv.slice(2)) =>
  args.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3) ?? fallback
