import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import type { RequestLogEntry } from '../../src/http/observability.ts'
import { jsonString, requestLogLine } from '../../src/http/request-log-line.ts'

/** Strings of every kind JSON escapes: quotes, backslashes, controls, lone and paired surrogates. */
const anyString = fc.oneof(
  fc.string(),
  fc.string({ unit: 'binary' }),
  fc.string({
    unit: fc.constantFrom(
      '"',
      '\\',
      '\n',
      '\u0000',
      '\u001f',
      '\u007f',
      '\ud800',
      '\udfff',
      '😀',
      'a',
      '/',
      '\u2028',
    ),
  }),
)

/** A caller's id as `assignRequestId` keeps it: word characters, `-` and `=`, 1 to 255. */
const plainId = fc.string({
  unit: fc.constantFrom(
    ...'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-='.split(''),
  ),
  minLength: 1,
  maxLength: 255,
})

/** Entries as `observeAnswer` makes them: an ISO time, a plain id or a UUID, any other string. */
const entry = fc.record({
  time: fc.date({ noInvalidDate: true }).map((d) => d.toISOString()),
  requestId: fc.oneof(fc.constant(undefined), fc.uuid(), plainId),
  method: fc.oneof(fc.constantFrom('GET', 'HEAD', 'POST', 'DELETE'), anyString),
  route: fc.oneof(fc.constantFrom('/v1/containers/:id/json', 'unmatched'), anyString),
  path: anyString,
  status: fc.oneof(fc.integer({ min: 100, max: 599 }), fc.double()),
  durationMs: fc.oneof(fc.double(), fc.constantFrom(-0, 0.1, 1e21, 1e-7)),
  principal: fc.oneof(fc.constant(null), anyString),
})

/** The entry in the order `observeAnswer` builds it. */
const built = (e: Omit<RequestLogEntry, 'msg'>): RequestLogEntry => ({
  time: e.time,
  msg: 'request',
  requestId: e.requestId,
  method: e.method,
  route: e.route,
  path: e.path,
  status: e.status,
  durationMs: e.durationMs,
  principal: e.principal,
})

describe('requestLogLine', () => {
  it('is JSON.stringify of the entry, byte for byte', () => {
    fc.assert(
      fc.property(entry, (e) => {
        const log = built(e)
        expect(requestLogLine(log)).toBe(JSON.stringify(log))
      }),
      { numRuns: 5_000 },
    )
  })

  it('writes a usual request as JSON.stringify does', () => {
    const log = built({
      time: '2026-12-04T11:30:00.123Z',
      requestId: '0b0e6a43-51a5-4c1b-9f0e-2d9f6f3b8c11',
      method: 'GET',
      route: '/v1/system/version',
      path: '/v1/engines/default/system/version',
      status: 200,
      durationMs: 0.3,
      principal: 'ci',
    })
    expect(requestLogLine(log)).toBe(JSON.stringify(log))
    expect(requestLogLine({ ...log, requestId: undefined, principal: null })).toBe(
      '{"time":"2026-12-04T11:30:00.123Z","msg":"request","method":"GET","route":"/v1/system/version","path":"/v1/engines/default/system/version","status":200,"durationMs":0.3,"principal":null}',
    )
  })
})

describe('jsonString', () => {
  it('is JSON.stringify of any string', () => {
    fc.assert(
      fc.property(anyString, (s) => {
        expect(jsonString(s)).toBe(JSON.stringify(s))
      }),
      { numRuns: 10_000 },
    )
  })
})
