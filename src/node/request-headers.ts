/**
 * @module Request headers read from Node's own raw header list.
 *
 * `@hono/node-server` hands the app each request's `IncomingMessage` as `c.env.incoming`. Its
 * `rawHeaders` are the names as sent and the values with surrounding whitespace already taken
 * off by Node's parser; a header sent twice is there twice. Joining those values with `", "`
 * gives what Fetch's `Headers.get` gives, where Node's own `headers` object keeps only the first
 * of some names (`authorization` among them): two `Authorization` headers stay one value no
 * bearer token matches. Reading the list costs the small authenticated request less CPU than the
 * adapter's `Headers` (bench/README.md, "Per-request CPU, the request's headers on Node").
 */
import { IncomingMessage } from 'node:http'
import { headerThroughHono, type RequestHeaderReader } from '../http/request-headers.ts'

export const readHeaderOfNodeRequest: RequestHeaderReader = (c, name) => {
  const incoming = nodeRequestOf(c.env)
  if (!incoming) return headerThroughHono(c, name)
  const raw = incoming.rawHeaders
  let value: string | undefined
  for (let i = 0; i < raw.length; i += 2) {
    const sent = raw[i]!
    if (sent.length === name.length && (sent === name || sent.toLowerCase() === name)) {
      value = value === undefined ? raw[i + 1]! : `${value}, ${raw[i + 1]!}`
    }
  }
  return value
}

function nodeRequestOf(env: unknown): IncomingMessage | undefined {
  if (typeof env !== 'object' || env === null || !('incoming' in env)) return undefined
  return env.incoming instanceof IncomingMessage ? env.incoming : undefined
}
