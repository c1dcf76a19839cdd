import { describe, expect, it } from 'vitest'
import type { RequestLogEntry } from '../../src/http/observability.ts'
import { requestLogLine } from '../../src/http/request-log-line.ts'

const entry: RequestLogEntry = {
  time: '2026-12-03T23:59:59.123Z',
  msg: 'request',
  requestId: '0b7c6f0e-9d8e-4c55-a9c1-2f1f3c6f1e2a',
  method: 'GET',
  route: '/v1/containers/:id/json',
  path: '/v1/engines/b/containers/web/json',
  status: 200,
  durationMs: 0.4,
  principal: 'token:ci',
}

/** Every character that JSON escapes or may, and some that it writes as they are. */
const AWKWARD = [
  '"',
  '\\',
  '\n',
  '\u0000',
  '\u001f',
  '\u007f',
  '\u0080',
  '\u2028',
  '\ud83d\ude00',
  '\ud800',
  '\udfff',
  'é',
  '/',
  '%',
  '<script>',
]

describe('requestLogLine', () => {
  it('is the text JSON.stringify makes of the entry', () => {
    expect(requestLogLine(entry)).toBe(JSON.stringify(entry))
  })

  it('leaves out a request id that is undefined and writes a missing principal as null', () => {
    const anonymous = { ...entry, requestId: undefined, principal: null, status: 404 }
    expect(requestLogLine(anonymous)).toBe(JSON.stringify(anonymous))
    expect(JSON.parse(requestLogLine(anonymous))).not.toHaveProperty('requestId')
  })

  it('escapes whatever a caller can put in the path, the id or a principal name as JSON does', () => {
    for (const awkward of AWKWARD) {
      const odd = {
        ...entry,
        requestId: `id${awkward}`,
        path: `/v1/containers/${awkward}x/json`,
        principal: `token:${awkward}`,
        route: awkward,
      }
      expect(requestLogLine(odd)).toBe(JSON.stringify(odd))
    }
    const every = Array.from({ length: 0x3000 }, (_, i) => String.fromCharCode(i)).join('')
    const all = { ...entry, path: every, requestId: every }
    expect(requestLogLine(all)).toBe(JSON.stringify(all))
  })

  it('writes numbers as JSON does', () => {
    for (const durationMs of [0, -0, 12.3, 1e21, 1.5e-7, Number.NaN, Number.POSITIVE_INFINITY]) {
      const timed = { ...entry, durationMs }
      expect(requestLogLine(timed)).toBe(JSON.stringify(timed))
    }
  })
})
