/**
 * @module One engine stats frame (`GET /containers/{id}/stats`) curated into a small snapshot.
 *
 * Pure: no I/O. CPU% and memory follow the docker CLI exactly
 * (`docker/cli cli/command/container/stats_helpers.go`, docs/engine-notes.md#stats). Every field is
 * optional in the input: a stopped container's frame is zeroed (`read` is Go's zero time,
 * `memory_stats: {}`, `pids_stats: {}`, blkio lists `null`), cgroup v2 omits `percpu_usage` and
 * most blkio lists, and a host without networks has no `networks` key.
 *
 * Some engine integers exceed 2^53 (`hierarchical_memory_limit`, an unlimited pids limit);
 * `JSON.parse` rounds them. None of those is read; a limit that large means "no limit" and is
 * reported as such. CPU counters may pass 2^53 on big, long-running hosts: the rounding is a few
 * nanoseconds against deltas of about 10^9, which the percentage does not notice.
 */
import { isZeroTime } from './time.ts'

/** A curated stats sample of one container. */
export interface ContainerStats {
  /** False when the engine had no sample (the container is not running): every value is 0. */
  running: boolean
  /** When the engine took the sample (RFC 3339, nanoseconds); null when it took none. */
  time: string | null
  /** Percent of one CPU, as `docker stats` shows it: up to 100 × online CPUs. */
  cpuPercent: number
  memory: {
    /** Bytes in use, without the inactive page cache (as `docker stats`). */
    used: number
    /** The memory limit in bytes (the host's memory when none is set); 0 when unknown. */
    limit: number
    /** `used / limit × 100`; 0 without a limit. */
    percent: number
  }
  pids: {
    current: number
    /** null when unlimited. */
    limit: number | null
  }
  /** Summed over all the container's networks; 0 without networks. */
  network: { rxBytes: number; txBytes: number }
  /** From `io_service_bytes_recursive`; 0 where the engine reports nothing. */
  blockIo: { readBytes: number; writeBytes: number }
}

/** Whether a frame carries a real sample; a stopped container's frames do not. */
export function hasSample(frame: unknown): boolean {
  return sampleTime(frame) !== undefined
}

/** The frame's `read`, unless it is missing or the zero time. */
function sampleTime(frame: unknown): string | undefined {
  const read = field(frame, 'read')
  // The engine writes the zero time as `read` when it has no sample.
  if (typeof read !== 'string' || read === '' || isZeroTime(read)) return undefined
  return read
}

/**
 * Whether the frame's CPU% can be computed: the engine's first streamed frame has no previous
 * sample (`preread` is the zero time, `precpu_stats` without `system_cpu_usage`).
 */
export function hasPreviousSample(frame: unknown): boolean {
  return count(field(field(frame, 'precpu_stats'), 'system_cpu_usage')) > 0
}

/** The curated snapshot of one engine stats frame. */
export function curateStats(frame: unknown): ContainerStats {
  const time = sampleTime(frame)
  if (time === undefined) return notRunningStats()
  const memoryStats = field(frame, 'memory_stats')
  const used = memoryUsed(memoryStats)
  const limit = limitOf(field(memoryStats, 'limit'))
  const pids = field(frame, 'pids_stats')
  const pidsLimit = limitOf(field(pids, 'limit'))
  return {
    running: true,
    time,
    cpuPercent: round2(cpuPercent(frame)),
    memory: { used, limit, percent: limit > 0 ? round2((used / limit) * 100) : 0 },
    pids: { current: count(field(pids, 'current')), limit: pidsLimit > 0 ? pidsLimit : null },
    network: networkBytes(field(frame, 'networks')),
    blockIo: blockIoBytes(field(frame, 'blkio_stats')),
  }
}

/** The snapshot of a container that is not running. */
export function notRunningStats(): ContainerStats {
  return {
    running: false,
    time: null,
    cpuPercent: 0,
    memory: { used: 0, limit: 0, percent: 0 },
    pids: { current: 0, limit: null },
    network: { rxBytes: 0, txBytes: 0 },
    blockIo: { readBytes: 0, writeBytes: 0 },
  }
}

/**
 * `calculateCPUPercentUnix`: the container's share of the host's CPU time between the previous
 * sample and this one, scaled to CPUs. 0 without a previous sample (the CLI would compare against
 * zero and show the lifetime average, a number that means nothing here).
 */
export function cpuPercent(frame: unknown): number {
  if (!hasPreviousSample(frame)) return 0
  const cpu = field(frame, 'cpu_stats')
  const precpu = field(frame, 'precpu_stats')
  const cpuDelta =
    count(field(field(cpu, 'cpu_usage'), 'total_usage')) -
    count(field(field(precpu, 'cpu_usage'), 'total_usage'))
  const systemDelta =
    count(field(cpu, 'system_cpu_usage')) - count(field(precpu, 'system_cpu_usage'))
  let onlineCpus = count(field(cpu, 'online_cpus'))
  if (onlineCpus === 0) {
    const perCpu = field(field(cpu, 'cpu_usage'), 'percpu_usage')
    onlineCpus = Array.isArray(perCpu) ? perCpu.length : 0
  }
  if (systemDelta <= 0 || cpuDelta <= 0) return 0
  return (cpuDelta / systemDelta) * onlineCpus * 100
}

/**
 * `calculateMemUsageUnixNoCache`: usage minus the inactive file cache — `total_inactive_file` on
 * cgroup v1 (whose presence marks v1), `inactive_file` on v2 — each only when below the usage.
 */
export function memoryUsed(memoryStats: unknown): number {
  const usage = count(field(memoryStats, 'usage'))
  const stats = field(memoryStats, 'stats')
  const v1 = field(stats, 'total_inactive_file')
  if (v1 !== undefined && count(v1) < usage) return usage - count(v1)
  const v2 = count(field(stats, 'inactive_file'))
  if (v2 < usage) return usage - v2
  return usage
}

function networkBytes(networks: unknown): ContainerStats['network'] {
  let rxBytes = 0
  let txBytes = 0
  if (isRecord(networks)) {
    for (const network of Object.values(networks)) {
      rxBytes += count(field(network, 'rx_bytes'))
      txBytes += count(field(network, 'tx_bytes'))
    }
  }
  return { rxBytes, txBytes }
}

/** `calculateBlockIO`: entries whose op starts with r/R are reads, w/W writes (not "Total"). */
function blockIoBytes(blkio: unknown): ContainerStats['blockIo'] {
  let readBytes = 0
  let writeBytes = 0
  const entries = field(blkio, 'io_service_bytes_recursive')
  if (Array.isArray(entries)) {
    for (const entry of entries) {
      const op = field(entry, 'op')
      if (typeof op !== 'string') continue
      const first = op.charAt(0).toLowerCase()
      if (first === 'r') readBytes += count(field(entry, 'value'))
      else if (first === 'w') writeBytes += count(field(entry, 'value'))
    }
  }
  return { readBytes, writeBytes }
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}

function field(value: unknown, key: string): unknown {
  return isRecord(value) ? value[key] : undefined
}

/** A byte, nanosecond or process count: a finite, non-negative number; anything else is 0. */
function count(value: unknown): number {
  return typeof value === 'number' && Number.isFinite(value) && value >= 0 ? value : 0
}

/** A limit; one beyond 2^53 (rounded by `JSON.parse`, e.g. 2^63 − 1) means none and is 0. */
function limitOf(value: unknown): number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value > 0 ? value : 0
}

function round2(value: number): number {
  return Math.round(value * 100) / 100
}
