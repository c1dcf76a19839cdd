import { describe, expect, it } from 'vitest'
import { compareEngineTimes, shiftEngineTime, toEngineTime } from '../../src/engine/time.ts'

describe('toEngineTime', () => {
  it('passes Unix seconds through with the fraction as nanoseconds', () => {
    expect(toEngineTime('1732860000')).toBe('1732860000.000000000')
    expect(toEngineTime('1732860000.4016')).toBe('1732860000.401600000')
    expect(toEngineTime('0')).toBe('0.000000000')
  })

  it('converts RFC 3339 exactly, nanoseconds and offsets included', () => {
    expect(toEngineTime('2026-11-29T03:40:53.902667431Z')).toBe('1795923653.902667431')
    expect(toEngineTime('2026-11-29T04:40:53.5+01:00')).toBe('1795923653.500000000')
    expect(toEngineTime('2026-11-29T03:40:53Z')).toBe('1795923653.000000000')
  })

  it('turns a duration into a time before now', () => {
    const now = new Date('2026-11-29T03:40:53.250Z')
    expect(toEngineTime('10m', now)).toBe('1795923053.250000000')
    expect(toEngineTime('1h30m', now)).toBe('1795918253.250000000')
    expect(toEngineTime('45s', now)).toBe('1795923608.250000000')
  })

  it.each([
    '',
    'abc',
    '-5',
    '1.2.3',
    '10x',
    '2026-02-30T00:00:00Z',
    '2026-11-29T24:00:00Z',
    '2026-11-29 03:40:53Z',
    '1.1234567890',
  ])('refuses %j', (value) => {
    expect(toEngineTime(value)).toBeUndefined()
  })
})

describe('compareEngineTimes', () => {
  it('orders at nanosecond precision beyond what a float holds', () => {
    expect(compareEngineTimes('1795923284.404367408', '1795923284.404367409')).toBe(-1)
    expect(compareEngineTimes('1795923284.404367409', '1795923284.404367408')).toBe(1)
    expect(compareEngineTimes('1795923284.4', '1795923284.400000000')).toBe(0)
  })
})

describe('shiftEngineTime', () => {
  it('moves by nanoseconds across second boundaries, exactly', () => {
    expect(shiftEngineTime('1795923284.000000000', -1n)).toBe('1795923283.999999999')
    expect(shiftEngineTime('1795923284.999999999', 1n)).toBe('1795923285.000000000')
    expect(shiftEngineTime('1795923284.4', 50_000_000n)).toBe('1795923284.450000000')
  })
})
