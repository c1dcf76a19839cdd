import { afterEach, describe, expect, it, vi } from 'vitest'
import { isoNow } from '../../src/observability/iso-time.ts'

describe('isoNow', () => {
  afterEach(() => {
    vi.useRealTimers()
  })

  it('is the current time in ISO 8601, also when called again within the same millisecond', () => {
    vi.useFakeTimers({ now: Date.parse('2026-11-29T08:00:00.000Z') })
    expect(isoNow()).toBe('2026-11-29T08:00:00.000Z')
    expect(isoNow()).toBe('2026-11-29T08:00:00.000Z')
    vi.advanceTimersByTime(1)
    expect(isoNow()).toBe('2026-11-29T08:00:00.001Z')
    vi.setSystemTime(Date.parse('2026-11-29T07:00:00.000Z'))
    expect(isoNow()).toBe('2026-11-29T07:00:00.000Z')
  })

  it('is what Date#toISOString writes, millisecond after millisecond and across seconds', () => {
    const start = Date.parse('2026-12-31T23:59:58.990Z')
    vi.useFakeTimers({ now: start })
    for (let step = 0; step < 2_100; step++) {
      expect(isoNow()).toBe(new Date(Date.now()).toISOString())
      vi.advanceTimersByTime(step % 7 === 0 ? 13 : 1)
    }
    for (const at of [0, 999, 1_000, -1, -1_001, Date.parse('2038-01-19T03:14:08.005Z')]) {
      vi.setSystemTime(at)
      expect(isoNow()).toBe(new Date(at).toISOString())
    }
  })
})
