/**
 * @module A request log entry as its JSON line: what `JSON.stringify(entry)` gives, byte for byte.
 *
 * Every request writes one. `JSON.stringify` of the entry cost the small authenticated request
 * ~11k of the ~17k instructions its log line took (bench/README.md, "Per-request CPU (issue 17,
 * branch smallreq3)"); the entry's keys are fixed and its strings are nearly always plain (a
 * time, a UUID or a plain caller's id, a method, a route pattern, a path), so the line is put
 * together here and only a string that needs an escape goes through `JSON.stringify`.
 */
import type { RequestLogEntry } from '../http/observability.ts'

/**
 * What `JSON.stringify` escapes in a string: `"`, `\`, control characters and lone surrogates
 * (a pair is no escape, but it is rare enough in these fields to go the long way).
 */
// biome-ignore lint/suspicious/noControlCharactersInRegex: the control characters are what JSON escapes
const NEEDS_ESCAPE = /["\\\u0000-\u001f\ud800-\udfff]/

/** A string as a JSON string literal. */
export function jsonString(value: string): string {
  return NEEDS_ESCAPE.test(value) ? JSON.stringify(value) : `"${value}"`
}

/** `JSON.stringify(entry)` for a request log entry built as `observeAnswer` builds it. */
export function requestLogLine(entry: RequestLogEntry): string {
  const { requestId, principal } = entry
  // `JSON.stringify` leaves out a property whose value is undefined.
  const id = requestId === undefined ? '' : `"requestId":${jsonString(requestId)},`
  return `{"time":${jsonString(entry.time)},"msg":"request",${id}"method":${jsonString(entry.method)},"route":${jsonString(entry.route)},"path":${jsonString(entry.path)},"status":${jsonNumber(entry.status)},"durationMs":${jsonNumber(entry.durationMs)},"principal":${principal === null ? 'null' : jsonString(principal)}}`
}

/** A number as JSON writes it: `null` for NaN and the infinities. */
const jsonNumber = (value: number): string => (Number.isFinite(value) ? `${value}` : 'null')
