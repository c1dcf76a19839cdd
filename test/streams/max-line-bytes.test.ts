import { describe, expect, it } from 'vitest'
import { LogLineStream } from '../../src/streams/lines.ts'
import { NdjsonDecoder, NdjsonStream } from '../../src/streams/ndjson.ts'

/** Every stage that splits lines, made with a line limit. */
const STAGES = {
  LogLineStream: (maxLineBytes: number) => new LogLineStream({ maxLineBytes }),
  NdjsonStream: (maxLineBytes: number) => new NdjsonStream({ maxLineBytes }),
  NdjsonDecoder: (maxLineBytes: number) => new NdjsonDecoder({ maxLineBytes }),
}

describe.each(Object.entries(STAGES))('%s', (_, make) => {
  it('takes a whole number of at least 4 bytes (room for one UTF-8 character)', () => {
    for (const limit of [4, 1024, Number.MAX_SAFE_INTEGER]) expect(() => make(limit)).not.toThrow()
  })

  it('refuses any other limit with a RangeError', () => {
    for (const limit of [3, 0, -1, 1.5, Number.NaN, 2 ** 53, Number.POSITIVE_INFINITY]) {
      expect(() => make(limit), String(limit)).toThrow(RangeError)
    }
  })
})
