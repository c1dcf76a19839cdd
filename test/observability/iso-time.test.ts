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
})
