/**
 * The event line's checks written by hand for speed (src/events/event.ts) against what they
 * stand for: the zod schema (src/events/event.schemas.ts), and the scan of the whole line for
 * `timeNano`. Pure functions, on arbitrary values: no engine involved.
 */
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { RawEngineEventSchema } from '../../src/events/event.schemas.ts'
import { EVENT_TYPES, isRawEngineEvent, parseEngineEvent } from '../../src/events/event.ts'
import { extractIntegerField } from '../../src/streams/ndjson.ts'

/** Around each limit and type the schema checks, and values of the wrong type. */
const field = {
  Type: fc.oneof(fc.constantFrom(...EVENT_TYPES), fc.string(), fc.integer(), fc.constant(null)),
  Action: fc.oneof(
    fc.string(),
    fc.constantFrom('', 'start', 'a'.repeat(65_536), 'a'.repeat(65_537)),
    fc.integer(),
  ),
  ID: fc.oneof(fc.string(), fc.constantFrom('x'.repeat(1024), 'x'.repeat(1025)), fc.boolean()),
  Attributes: fc.oneof(
    fc.dictionary(fc.string(), fc.jsonValue()),
    fc.constantFrom(null, undefined, 'x', 1),
    fc.array(fc.string()),
  ),
  timeNano: fc.oneof(
    fc.integer(),
    fc.double(),
    // A nanosecond time as JSON.parse makes it of the engine's digits: past 2^53, so inexact
    fc.constantFrom(Number.NaN, Number.POSITIVE_INFINITY, Number('1795923285422325136')),
    fc.string(),
  ),
}
const actor = fc.oneof(
  fc.record({ ID: field.ID, Attributes: field.Attributes }, { requiredKeys: [] }),
  fc.constantFrom(null, [], 'actor'),
)
const event = fc.record(
  { Type: field.Type, Action: field.Action, Actor: actor, timeNano: field.timeNano },
  { requiredKeys: [] },
)

describe('isRawEngineEvent', () => {
  it('accepts exactly what the schema accepts', () => {
    fc.assert(
      fc.property(fc.oneof(event, fc.jsonValue(), fc.array(event)), (value) => {
        expect(isRawEngineEvent(value)).toBe(RawEngineEventSchema.safeParse(value).success)
      }),
      { numRuns: 2_000 },
    )
  })

  it('accepts an event as the engine writes it', () => {
    const value = JSON.parse(
      '{"status":"die","id":"b6","from":"busybox","Type":"container","Action":"die",' +
        '"Actor":{"ID":"b6","Attributes":{"exitCode":"0","name":"x"}},"scope":"local",' +
        '"time":1795923285,"timeNano":1795923285422325136}',
    )
    expect(isRawEngineEvent(value)).toBe(true)
  })
})

describe('parseEngineEvent: timeNano', () => {
  const base = { Type: 'container', Action: 'start', Actor: { ID: 'c1', Attributes: {} } }
  const record = (raw: string) => ({ raw, value: JSON.parse(raw) as unknown })
  /** What the scan of the whole line finds, as the hub keeps it. */
  const scanned = (raw: string) => {
    const digits = extractIntegerField(raw, 'timeNano')
    return digits === undefined || !/^\d{1,20}$/.test(digits)
      ? undefined
      : BigInt(digits).toString()
  }

  it('takes the digits the scan of the whole line takes, wherever the field is', () => {
    const extra = fc.dictionary(
      fc.oneof(fc.string(), fc.constant('timeNano')),
      fc.oneof(fc.jsonValue(), fc.constantFrom('timeNano', '"timeNano":1}', { timeNano: 5 })),
    )
    fc.assert(
      fc.property(
        extra,
        fc.bigInt({ min: 0n, max: 10n ** 20n - 1n }),
        fc.boolean(),
        (others, nano, last) => {
          // JSON.stringify writes keys in insertion order; the number's digits are put in by hand
          const text = JSON.stringify(
            last ? { ...others, ...base, timeNano: 0 } : { timeNano: 0, ...others, ...base },
          )
          const raw = text.replace('"timeNano":0', `"timeNano":${nano}`)
          expect(parseEngineEvent(record(raw))?.event.timeNano).toBe(scanned(raw))
        },
      ),
      { numRuns: 1_000 },
    )
  })

  it('lets the scan decide where "timeNano" also shows earlier in the line', () => {
    const first =
      '{"Type":"container","Action":"start","Actor":{"ID":"c1"},"timeNano":7,"timeNano":9}'
    expect(parseEngineEvent(record(first))?.event.timeNano).toBe('7')
    const nested =
      '{"Type":"container","Action":"start","Actor":{"ID":"c1","timeNano":3},"timeNano":9}'
    expect(parseEngineEvent(record(nested))?.event.timeNano).toBe('9')
  })
})
