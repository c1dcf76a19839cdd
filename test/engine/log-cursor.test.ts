import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import {
  CursorIds,
  decodeCursor,
  encodeCursor,
  LineNumbering,
} from '../../src/engine/log-cursor.ts'

const T1 = '2026-11-29T03:40:53.902667431Z'
const T2 = '2026-11-29T03:40:54.000000000Z'
const T1_NANOS = `${Date.UTC(2026, 10, 29, 3, 40, 53) / 1000}902667431`
/** How the first version wrote a cursor: base64url of `<time>/<index>`, unpadded. */
const legacy = (time: string, index: number) =>
  btoa(`${time}/${index}`).replaceAll('+', '-').replaceAll('/', '_').replace(/=+$/, '')

/** Engine timestamps from 1970 to 9999, any nanosecond. */
const engineTimes = fc
  .tuple(fc.integer({ min: 0, max: 253_402_300_799 }), fc.integer({ min: 0, max: 999_999_999 }))
  .map(
    ([seconds, nanos]) =>
      `${new Date(seconds * 1000).toISOString().slice(0, 19)}.${String(nanos).padStart(9, '0')}Z`,
  )

describe('log cursors', () => {
  it('are the time in nanoseconds since the epoch, with the position after a dot when not 0', () => {
    expect(encodeCursor({ time: T1, index: 0 })).toBe(T1_NANOS)
    expect(encodeCursor({ time: T1, index: 41 })).toBe(`${T1_NANOS}.41`)
    expect(decodeCursor(T1_NANOS)).toEqual({ time: T1, index: 0 })
    expect(decodeCursor(`${T1_NANOS}.41`)).toEqual({ time: T1, index: 41 })
  })

  it('round-trip for any engine time and position, and URL- and header-safe', () => {
    fc.assert(
      fc.property(engineTimes, fc.nat({ max: 999_999_999 }), (time, index) => {
        const text = encodeCursor({ time, index })
        expect(text).toMatch(/^\d+(\.\d+)?$/)
        expect(decodeCursor(text)).toEqual({ time, index })
      }),
    )
  })

  it('accept the base64url cursors of the first version', () => {
    expect(decodeCursor(legacy(T1, 41))).toEqual({ time: T1, index: 41 })
    expect(decodeCursor(legacy(T2, 0))).toEqual({ time: T2, index: 0 })
  })

  it('fall back to that form for a time with no date behind it', () => {
    const time = '2026-02-30T00:00:00.000000001Z'
    expect(encodeCursor({ time, index: 2 })).toBe(legacy(time, 2))
    expect(decodeCursor(legacy(time, 2))).toEqual({ time, index: 2 })
  })

  it.each([
    '',
    'not a cursor',
    btoa('2026-11-29/1'),
    btoa(`${T1}/x`),
    btoa(`${T1}/1/2`),
    'x'.repeat(81),
    `${T1_NANOS}.`,
    `${T1_NANOS}.x`,
    `${T1_NANOS}.1234567890`,
    '1'.repeat(22),
    '253402300800000000000',
  ])('refuse %j', (text) => {
    expect(decodeCursor(text)).toBeUndefined()
  })

  it('name streamed lines as encodeCursor does, across seconds, remembering the last', () => {
    fc.assert(
      fc.property(fc.array(engineTimes, { minLength: 1, maxLength: 40 }), (distinct) => {
        // Lines come in time order, several often sharing a time or a second
        const times = distinct.sort().flatMap((time, i) => Array(1 + (i % 3)).fill(time))
        const ids = new CursorIds()
        const numbering = new LineNumbering()
        for (const time of times) {
          const expected = numbering.next(time)!
          expect(ids.next(time)).toBe(encodeCursor(expected))
          expect(ids.last).toEqual(expected)
        }
      }),
    )
    const ids = new CursorIds({ time: T1, index: 1 })
    expect(ids.last).toEqual({ time: T1, index: 1 })
    expect([T1, T1, T1, T2].map((time) => ids.next(time))).toEqual([
      undefined,
      undefined,
      `${T1_NANOS}.2`,
      encodeCursor({ time: T2, index: 0 }),
    ])
  })

  it('numbers lines that share a timestamp', () => {
    const numbering = new LineNumbering()
    expect([T1, T1, T1, T2, T2].map((t) => numbering.next(t))).toEqual([
      { time: T1, index: 0 },
      { time: T1, index: 1 },
      { time: T1, index: 2 },
      { time: T2, index: 0 },
      { time: T2, index: 1 },
    ])
  })

  it('skips what was delivered before the cursor and numbers the rest as before', () => {
    const numbering = new LineNumbering({ time: T1, index: 1 })
    expect([T1, T1, T1, T2].map((t) => numbering.next(t))).toEqual([
      undefined,
      undefined,
      { time: T1, index: 2 },
      { time: T2, index: 0 },
    ])
  })
})
