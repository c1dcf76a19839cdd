import { describe, expect, it } from 'vitest'
import { decodeCursor, encodeCursor, LineNumbering } from '../../src/routes/log-cursor.ts'

const T1 = '2026-11-29T03:40:53.902667431Z'
const T2 = '2026-11-29T03:40:54.000000000Z'

describe('log cursors', () => {
  it('round-trip through an opaque URL-safe string', () => {
    const text = encodeCursor({ time: T1, index: 41 })
    expect(text).toMatch(/^[A-Za-z0-9_-]+$/)
    expect(decodeCursor(text)).toEqual({ time: T1, index: 41 })
  })

  it.each([
    '',
    'not a cursor',
    btoa('2026-11-29/1'),
    btoa(`${T1}/x`),
    btoa(`${T1}/1/2`),
    'x'.repeat(81),
  ])('refuses %j', (text) => {
    expect(decodeCursor(text)).toBeUndefined()
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
