import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import {
  isTimestampPrefix,
  PARTIAL_MESSAGE_BYTES,
  readTimestampPrefix,
  TIMESTAMP_PREFIX_BYTES,
} from '../../src/streams/timestamp.ts'

const encoder = new TextEncoder()
const TIME = '2026-11-29T03:40:53.902667431Z'

describe('readTimestampPrefix', () => {
  it('reads the timestamp of a prefix at the start of the bytes', () => {
    expect(readTimestampPrefix(encoder.encode(`${TIME} hello\n`))).toBe(TIME)
  })

  it('reads a prefix at an offset', () => {
    expect(readTimestampPrefix(encoder.encode(`abc${TIME} `), 3)).toBe(TIME)
  })

  it('reads a prefix that is all of the bytes', () => {
    expect(readTimestampPrefix(encoder.encode(`${TIME} `))).toBe(TIME)
  })

  it('returns undefined when fewer than 31 bytes remain', () => {
    expect(readTimestampPrefix(encoder.encode(TIME))).toBeUndefined()
    expect(readTimestampPrefix(encoder.encode(`${TIME} `), 1)).toBeUndefined()
    expect(readTimestampPrefix(new Uint8Array())).toBeUndefined()
  })

  it('returns undefined when any single byte of the prefix is wrong', () => {
    const valid = encoder.encode(`${TIME} `)
    for (let i = 0; i < TIMESTAMP_PREFIX_BYTES; i++) {
      for (const wrong of ['x', '/', ':', '9'.charCodeAt(0) + 1, 0, 0xff]) {
        const bytes = valid.slice()
        bytes[i] = typeof wrong === 'string' ? wrong.charCodeAt(0) : wrong
        if (bytes[i] === valid[i]) continue
        expect(readTimestampPrefix(bytes), `byte ${i} = ${bytes[i]}`).toBeUndefined()
      }
    }
  })

  it('rejects timestamps Go would trim, with fewer than 9 fractional digits', () => {
    expect(readTimestampPrefix(encoder.encode('2026-11-29T03:40:53.9026674Z   x'))).toBeUndefined()
  })

  it('rejects a negative offset', () => {
    expect(readTimestampPrefix(encoder.encode(`${TIME} ${TIME} `), -1)).toBeUndefined()
  })

  it('reads back any timestamp formatted like the engine does', () => {
    const digits = (length: number) =>
      fc.string({ unit: fc.constantFrom(...'0123456789'), minLength: length, maxLength: length })
    const timestamp = fc
      .tuple(digits(4), digits(2), digits(2), digits(2), digits(2), digits(2), digits(9))
      .map(([y, mo, d, h, mi, s, ns]) => `${y}-${mo}-${d}T${h}:${mi}:${s}.${ns}Z`)
    fc.assert(
      fc.property(timestamp, fc.uint8Array({ maxLength: 8 }), (time, before) => {
        const bytes = new Uint8Array([...before, ...encoder.encode(`${time} tail`)])
        expect(readTimestampPrefix(bytes, before.length)).toBe(time)
      }),
      { numRuns: 100 },
    )
  })
})

describe('isTimestampPrefix', () => {
  it('tells a prefix from other bytes', () => {
    expect(isTimestampPrefix(encoder.encode(`${TIME} `))).toBe(true)
    expect(isTimestampPrefix(encoder.encode(`${TIME}\n`))).toBe(false)
  })
})

describe('PARTIAL_MESSAGE_BYTES', () => {
  it('is the engine copier buffer size of 16 KiB', () => {
    expect(PARTIAL_MESSAGE_BYTES).toBe(16 * 1024)
  })
})
