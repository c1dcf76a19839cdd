// `node:http2` as the bundle's two users of it see it (scripts/build-node.mjs points their imports
// here): @hono/node-server, which only asks whether a request is an `Http2ServerRequest` (the
// gateway serves HTTP/1.1 with Node's `http.createServer`), and undici's HTTP/2 client, which
// reads some constants when it is evaluated and calls `connect` only for an engine reached over
// HTTP/2 (never: the engine speaks HTTP/1.1). Node's http2 module is loaded only when something
// needs more than that. Evaluating it at start cost 6–14 ms of CPU (bench `cold`, issue #17, by
// process.cpuUsage around the bundle's modules), 3–5 % of a start.
import { IncomingMessage } from 'node:http'

const http2 = () => process.getBuiltinModule('node:http2')

/**
 * The constants those modules read, as Node defines them (test/node/http2-on-demand.test.ts
 * compares them); any other name is read from Node's module.
 */
export const KNOWN_CONSTANTS = {
  HTTP2_HEADER_AUTHORITY: ':authority',
  HTTP2_HEADER_METHOD: ':method',
  HTTP2_HEADER_PATH: ':path',
  HTTP2_HEADER_SCHEME: ':scheme',
  HTTP2_HEADER_CONTENT_LENGTH: 'content-length',
  HTTP2_HEADER_EXPECT: 'expect',
  HTTP2_HEADER_STATUS: ':status',
  HTTP2_HEADER_PROTOCOL: ':protocol',
  NGHTTP2_REFUSED_STREAM: 7,
  NGHTTP2_CANCEL: 8,
  NGHTTP2_NO_ERROR: 0,
}

export const constants = new Proxy(KNOWN_CONSTANTS, {
  get: (known, name) => (Object.hasOwn(known, name) ? known[name] : http2().constants[name]),
})

/** Only ever the right side of `instanceof`: a request of Node's HTTP/1 server never is one. */
export const Http2ServerRequest = {
  [Symbol.hasInstance](value) {
    return !(value instanceof IncomingMessage) && value instanceof http2().Http2ServerRequest
  },
}

export const connect = (...args) => http2().connect(...args)
