/**
 * @module The request log's JSON line, written without `JSON.stringify` walking an object.
 *
 * The line is the same text `JSON.stringify(entry)` gives (same keys, order and escaping; a
 * `requestId` that is undefined is left out, as there): test/http/request-log-line.test.ts
 * compares them. Every request writes one; V8's serialiser looks up `toJSON` on the object and
 * escapes each string character by character, about 12k of the small request's ~280k
 * instructions under callgrind (bench/README.md, "Changes and their effect"). Only the fields a
 * caller can choose (the path, the request id) and the route are escaped here.
 */
import type { RequestLogEntry } from './observability.ts'

/** `JSON.stringify(entry)` for a request log entry. */
export function requestLogLine(entry: RequestLogEntry): string {
  const id = entry.requestId === undefined ? '' : `"requestId":${jsonString(entry.requestId)},`
  const principal = entry.principal === null ? 'null' : jsonString(entry.principal)
  return (
    `{"time":${jsonString(entry.time)},"msg":"request",${id}"method":${jsonString(entry.method)},` +
    `"route":${jsonString(entry.route)},"path":${jsonString(entry.path)},` +
    `"status":${jsonNumber(entry.status)},"durationMs":${jsonNumber(entry.durationMs)},` +
    `"principal":${principal}}`
  )
}

/** A string as JSON: quoted as it is when nothing in it needs escaping, else as JSON writes it. */
function jsonString(text: string): string {
  return plain(text) ? `"${text}"` : JSON.stringify(text)
}

/**
 * Whether JSON writes the text as it is: no quote, backslash, control character or (maybe lone)
 * surrogate. A loop, not a regular expression: the six fields' tests cost ~2.7k instructions as
 * one (callgrind), more than the serialiser they stand in for.
 */
function plain(text: string): boolean {
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i)
    if (code < 0x20 || code === 0x22 || code === 0x5c || (code >= 0xd800 && code <= 0xdfff)) {
      return false
    }
  }
  return true
}

function jsonNumber(value: number): string {
  return Number.isFinite(value) ? String(value) : 'null'
}
