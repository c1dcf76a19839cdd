import { describe, expect, it } from 'vitest'
import {
  cpuPercent,
  curateStats,
  hasPreviousSample,
  hasSample,
  memoryUsed,
  notRunningStats,
} from '../../src/engine/stats.ts'

const ZERO = '0001-01-01T00:00:00Z'

/** A cgroup v1 frame as dockerd 20.10 sends it (docs/engine-notes.md#stats), with its numbers. */
function v1Frame() {
  return {
    read: '2026-11-29T06:00:23.958323046Z',
    preread: '2026-11-29T06:00:22.953654036Z',
    pids_stats: { current: 3, limit: 50 },
    blkio_stats: {
      io_service_bytes_recursive: [
        { major: 8, minor: 0, op: 'Read', value: 4096 },
        { major: 8, minor: 0, op: 'Write', value: 8192 },
        { major: 8, minor: 0, op: 'Sync', value: 12288 },
        { major: 8, minor: 0, op: 'Async', value: 0 },
        { major: 8, minor: 0, op: 'Total', value: 12288 },
        { major: 8, minor: 16, op: 'Read', value: 1 },
      ],
      io_serviced_recursive: [],
    },
    num_procs: 0,
    storage_stats: {},
    cpu_stats: {
      cpu_usage: {
        total_usage: 1_053_826_355,
        percpu_usage: [7_658_452, 1_046_167_903],
        usage_in_kernelmode: 0,
        usage_in_usermode: 1_050_000_000,
      },
      system_cpu_usage: 3_154_450_000_000,
      online_cpus: 2,
      throttling_data: { periods: 21, throttled_periods: 20, throttled_time: 984_498_489 },
    },
    precpu_stats: {
      cpu_usage: {
        total_usage: 1_053_826_355 - 504_788_218,
        percpu_usage: [7_658_452, 541_379_685],
        usage_in_kernelmode: 0,
        usage_in_usermode: 540_000_000,
      },
      system_cpu_usage: 3_154_450_000_000 - 2_020_000_000,
      online_cpus: 2,
      throttling_data: { periods: 11, throttled_periods: 10, throttled_time: 486_421_858 },
    },
    memory_stats: {
      usage: 786_432,
      max_usage: 4_083_712,
      stats: {
        cache: 24_576,
        // JSON.parse rounds 9223372036854771712 to this; it must not matter
        hierarchical_memory_limit: 9_223_372_036_854_772_000,
        inactive_file: 4096,
        total_inactive_file: 0,
      },
      limit: 67_108_864,
    },
    name: '/rs-long',
    id: '9e8df899f4dbf230c1beee1e5246e80d9ab0abc8b0835590dd05efaa30996f84',
  }
}

describe('curateStats', () => {
  it('computes CPU% and memory exactly as the docker CLI on the engine’s numbers', () => {
    expect(cpuPercent(v1Frame())).toBeCloseTo(49.979, 3)
    expect(curateStats(v1Frame())).toEqual({
      running: true,
      time: '2026-11-29T06:00:23.958323046Z',
      cpuPercent: 49.98,
      memory: { used: 786_432, limit: 67_108_864, percent: 1.17 },
      pids: { current: 3, limit: 50 },
      network: { rxBytes: 0, txBytes: 0 },
      blockIo: { readBytes: 4097, writeBytes: 8192 },
    })
  })

  it('subtracts total_inactive_file on cgroup v1 (even when inactive_file differs)', () => {
    const frame = v1Frame()
    frame.memory_stats.stats.total_inactive_file = 86_432
    expect(memoryUsed(frame.memory_stats)).toBe(700_000)
  })

  it('falls back as the CLI does when the inactive cache is not below the usage', () => {
    // v1 value too large: the v2 key is tried next, then the plain usage
    expect(memoryUsed({ usage: 100, stats: { total_inactive_file: 200, inactive_file: 40 } })).toBe(
      60,
    )
    expect(
      memoryUsed({ usage: 100, stats: { total_inactive_file: 200, inactive_file: 300 } }),
    ).toBe(100)
    expect(memoryUsed({ usage: 100 })).toBe(100)
    expect(memoryUsed({})).toBe(0)
  })

  it('uses the percpu_usage count when online_cpus is missing', () => {
    const frame = v1Frame() as any
    delete frame.cpu_stats.online_cpus
    frame.cpu_stats.cpu_usage.percpu_usage = [1, 2, 3, 4]
    expect(cpuPercent(frame)).toBeCloseTo((504_788_218 / 2_020_000_000) * 4 * 100, 6)
  })

  it('answers 0 CPU% for the first frame, whose previous sample is empty', () => {
    const frame = v1Frame() as any
    frame.preread = ZERO
    frame.precpu_stats = {
      cpu_usage: { total_usage: 0, usage_in_kernelmode: 0, usage_in_usermode: 0 },
      throttling_data: { periods: 0, throttled_periods: 0, throttled_time: 0 },
    }
    expect(hasPreviousSample(frame)).toBe(false)
    expect(curateStats(frame).cpuPercent).toBe(0)
    expect(curateStats(frame).memory.used).toBe(786_432)
  })

  it('answers 0 CPU% when a delta is not positive', () => {
    const idle = v1Frame()
    idle.precpu_stats.cpu_usage.total_usage = idle.cpu_stats.cpu_usage.total_usage
    expect(cpuPercent(idle)).toBe(0)
    const clockBack = v1Frame()
    clockBack.precpu_stats.system_cpu_usage = clockBack.cpu_stats.system_cpu_usage + 1
    expect(cpuPercent(clockBack)).toBe(0)
  })

  it('reads a cgroup v2-like frame: no percpu_usage, inactive_file, null blkio lists', () => {
    const frame = {
      read: '2026-11-29T06:00:24Z',
      preread: '2026-11-29T06:00:23Z',
      pids_stats: { current: 2, limit: 18_446_744_073_709_552_000 },
      blkio_stats: { io_service_bytes_recursive: null, io_serviced_recursive: null },
      cpu_stats: {
        cpu_usage: { total_usage: 2_000_000_000, usage_in_kernelmode: 0, usage_in_usermode: 0 },
        system_cpu_usage: 10_000_000_000,
        online_cpus: 4,
      },
      precpu_stats: {
        cpu_usage: { total_usage: 1_000_000_000 },
        system_cpu_usage: 6_000_000_000,
        online_cpus: 4,
      },
      memory_stats: {
        usage: 10_000_000,
        stats: { inactive_file: 2_000_000, anon: 8_000_000 },
        limit: 20_000_000,
      },
    }
    expect(curateStats(frame)).toEqual({
      running: true,
      time: '2026-11-29T06:00:24Z',
      cpuPercent: 100,
      memory: { used: 8_000_000, limit: 20_000_000, percent: 40 },
      // beyond 2^53: unlimited
      pids: { current: 2, limit: null },
      network: { rxBytes: 0, txBytes: 0 },
      blockIo: { readBytes: 0, writeBytes: 0 },
    })
  })

  it('sums every network and reads lower-case blkio ops (cgroup v2 style)', () => {
    const frame = {
      ...v1Frame(),
      networks: {
        eth0: { rx_bytes: 1000, tx_bytes: 10, rx_packets: 5 },
        eth1: { rx_bytes: 24, tx_bytes: 5 },
      },
      blkio_stats: {
        io_service_bytes_recursive: [
          { major: 259, minor: 0, op: 'read', value: 7 },
          { major: 259, minor: 0, op: 'write', value: 9 },
          { op: '', value: 100 },
          { op: 'Read', value: null },
        ],
      },
    }
    const stats = curateStats(frame)
    expect(stats.network).toEqual({ rxBytes: 1024, txBytes: 15 })
    expect(stats.blockIo).toEqual({ readBytes: 7, writeBytes: 9 })
  })

  it('answers zeros for missing networks, blkio, pids and memory keys', () => {
    const frame = { read: '2026-11-29T06:00:24Z', cpu_stats: {}, precpu_stats: {} }
    expect(curateStats(frame)).toEqual({
      ...notRunningStats(),
      running: true,
      time: '2026-11-29T06:00:24Z',
    })
  })

  it('answers a not-running snapshot for the zeroed frame of a stopped container', () => {
    const zeroed = {
      read: ZERO,
      preread: ZERO,
      pids_stats: {},
      blkio_stats: { io_service_bytes_recursive: null },
      cpu_stats: { cpu_usage: { total_usage: 0 } },
      precpu_stats: { cpu_usage: { total_usage: 0 } },
      memory_stats: {},
      name: '/x',
      id: 'abc',
    }
    expect(hasSample(zeroed)).toBe(false)
    expect(curateStats(zeroed)).toEqual({
      running: false,
      time: null,
      cpuPercent: 0,
      memory: { used: 0, limit: 0, percent: 0 },
      pids: { current: 0, limit: null },
      network: { rxBytes: 0, txBytes: 0 },
      blockIo: { readBytes: 0, writeBytes: 0 },
    })
  })

  it('never throws on values of the wrong shape', () => {
    for (const frame of [null, 42, 'x', [], {}, { read: 5 }, { read: '' }]) {
      expect(curateStats(frame).running).toBe(false)
    }
    const odd = {
      read: '2026-11-29T06:00:24Z',
      cpu_stats: { cpu_usage: 'x', system_cpu_usage: -1, online_cpus: '2' },
      precpu_stats: { system_cpu_usage: 'y' },
      memory_stats: { usage: -5, stats: [], limit: '1' },
      pids_stats: { current: null, limit: -1 },
      networks: [1, 2],
      blkio_stats: { io_service_bytes_recursive: {} },
    }
    expect(curateStats(odd)).toEqual({
      ...notRunningStats(),
      running: true,
      time: '2026-11-29T06:00:24Z',
    })
  })
})
