/**
 * @module A request log entry as its JSON line: what `JSON.stringify(entry)` gives, byte for byte.
 *
 * Every request writes one. `JSON.stringify` of the entry cost the small authenticated request
 * ~7k instructions on the request path under callgrind, V8's serialiser looking at every
 * character and property (bench/README.md, "Per-request CPU, the shared chain (issue 17, branch
 * `smallreq3`)"); the entry's keys are fixed and its strings are nearly always plain (a time, a
 * UUID or a plain caller's id, a method, a route pattern, a path), so the line is put together
 * here and only an entry with something to escape goes through `JSON.stringify`, string by
 * string.
 */
import type { RequestLogEntry } from './observability.ts'

/**
 * What `JSON.stringify` escapes in a string: `"`, `\\`, control characters and lone surrogates
 * (a pair is no escape, but it is rare enough in these fields to go the long way).
 */
// biome-ignore lint/suspicious/noControlCharactersInRegex: the control characters are what JSON escapes
const NEEDS_ESCAPE = /["\\\u0000-\u001f\ud800-\udfff]/

/** A string as a JSON string literal. */
export function jsonString(value: string): string {
  return NEEDS_ESCAPE.test(value) ? JSON.stringify(value) : `"${value}"`
}

/**
 * `JSON.stringify(entry)` for a request log entry built as `observeAnswer` builds it.
 *
 * The entry's time and request id are plain by construction (an ISO time of `isoNow`; a caller's
 * id only when it is word characters, `-` and `=`, else a UUID: `assignRequestId`), so they are not
 * looked at. The other strings are tested together, once: a test per string cost ~3.5k
 * instructions for the five of a line, and a loop over their characters more (~5k: the path is a
 * joined string, read a character at a time); joined, they are one flat string and one test. The
 * time and the id made more than half of the joined string: left out, the test cost ~1.5k less
 * (bench/README.md, "Per-request CPU, Hono's layers and the head"). A
 * surrogate anywhere sends the line the long way, so a pair split across two strings cannot pass
 * as plain.
 */
export function requestLogLine(entry: RequestLogEntry): string {
  const { time, requestId, method, route, path, status, durationMs, principal } = entry
  if (NEEDS_ESCAPE.test(`${method}${route}${path}${principal ?? ''}`)) return escapedLine(entry)
  const id = requestId === undefined ? '' : `"requestId":"${requestId}",`
  const who = principal === null ? 'null' : `"${principal}"`
  return `{"time":"${time}","msg":"request",${id}"method":"${method}","route":"${route}","path":"${path}","status":${jsonNumber(status)},"durationMs":${jsonNumber(durationMs)},"principal":${who}}`
}

/** The line of an entry with something to escape: each string through {@link jsonString}. */
function escapedLine(entry: RequestLogEntry): string {
  const { requestId, principal } = entry
  // `JSON.stringify` leaves out a property whose value is undefined.
  const id = requestId === undefined ? '' : `"requestId":${jsonString(requestId)},`
  return `{"time":${jsonString(entry.time)},"msg":"request",${id}"method":${jsonString(entry.method)},"route":${jsonString(entry.route)},"path":${jsonString(entry.path)},"status":${jsonNumber(entry.status)},"durationMs":${jsonNumber(entry.durationMs)},"principal":${principal === null ? 'null' : jsonString(principal)}}`
}

/** A number as JSON writes it: `null` for NaN and the infinities. */
const jsonNumber = (value: number): string => (Number.isFinite(value) ? `${value}` : 'null')
