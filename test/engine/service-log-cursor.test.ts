import { describe, expect, it } from 'vitest'
import {
  decodeServiceCursor,
  encodeServiceCursor,
  ServiceCursorIds,
  streamKey,
  timeToNanos,
} from '../../src/engine/service-log-cursor.ts'

const T = (ns: string) => `2026-12-03T17:00:00.${ns}Z`
const A = 'aaaaaaaaaaaaaaaaaaaaaaaaa'
const B = 'bbbbbbbbbbbbbbbbbbbbbbbbb'

describe('service log cursors', () => {
  it('round-trip, and refuse what the gateway never writes', () => {
    const cursor = {
      floor: '0',
      tasks: new Map([
        [A, { nanos: '1796317200000000001', index: 0 }],
        [B, { nanos: '1796317200000000002', index: 3 }],
      ]),
    }
    const text = encodeServiceCursor(cursor)
    expect(text).toBe(`s1_0_${A}-1796317200000000001_${B}-1796317200000000002-3`)
    expect(decodeServiceCursor(text)).toEqual(cursor)
    for (const bogus of ['bogus', 's1_', 's1_x', `s1_0_${A}`, `s1_0_${A}-1-2-3`, `s1_0_A-1`]) {
      expect(decodeServiceCursor(bogus)).toBeUndefined()
    }
  })

  it('name each line with every task’s last line, and a resume skips exactly those', () => {
    const first = new ServiceCursorIds('0')
    // Two tasks interleaved, a burst sharing one timestamp in task A
    const lines: [string, string][] = [
      [A, T('000000001')],
      [B, T('000000005')],
      [A, T('000000001')],
      [A, T('000000002')],
      [B, T('000000006')],
    ]
    const ids = lines.map(([task, time]) => first.next(task, time))
    expect(ids[2]).toBe(
      `s1_0_${A}-${timeToNanos(T('000000001'))}-1_${B}-${timeToNanos(T('000000005'))}`,
    )
    // The client got the first three lines; the resume reads the whole log again
    const resumed = new ServiceCursorIds(undefined, decodeServiceCursor(ids[2]!))
    expect(resumed.since).toBeUndefined()
    const again = lines.map(([task, time]) => resumed.next(task, time))
    expect(again.slice(0, 3)).toEqual([undefined, undefined, undefined])
    expect(again[3]).toBeDefined()
    expect(again[4]).toBeDefined()
  })

  it('delivers every line of a task the cursor does not name yet, from the floor on', () => {
    const since = '1796317200000000000'
    const cursor = new ServiceCursorIds(since)
    const id = cursor.next(A, T('000000009'))!
    const resumed = new ServiceCursorIds(undefined, decodeServiceCursor(id))
    expect(resumed.since).toBe('1796317200.000000000')
    // B's line is older than A's last, and was never delivered
    expect(resumed.next(B, T('000000001'))).toBeDefined()
    expect(resumed.next(A, T('000000009'))).toBeUndefined()
  })

  it('count a task’s stderr apart from its stdout: each pipe is in time order, not the two', () => {
    expect(streamKey(A, 'stdout')).toBe(A)
    expect(streamKey(A, 'stderr')).toBe(`${A}.2`)
    const ids = new ServiceCursorIds('0')
    ids.next(streamKey(A, 'stdout'), T('000000009'))
    // Stamped earlier, read later: it must not move the stdout position back
    const id = ids.next(streamKey(A, 'stderr'), T('000000001'))!
    const resumed = new ServiceCursorIds(undefined, decodeServiceCursor(id))
    expect(resumed.next(streamKey(A, 'stdout'), T('000000009'))).toBeUndefined()
    expect(resumed.next(streamKey(A, 'stdout'), T('000000010'))).toBeDefined()
  })

  it('takes the earliest line delivered as the floor of a tailed stream', () => {
    const tailed = new ServiceCursorIds(undefined)
    tailed.next(A, T('000000009'))
    const id = tailed.next(B, T('000000003'))!
    expect(decodeServiceCursor(id)?.floor).toBe(timeToNanos(T('000000003')))
  })
})
