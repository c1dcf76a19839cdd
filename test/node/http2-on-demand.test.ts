/**
 * scripts/node-bundle/http2-on-demand.mjs, the bundle's `node:http2` (for @hono/node-server and
 * undici): its constants are Node's, and it answers `instanceof Http2ServerRequest` as Node's
 * class does, for an HTTP/1 request (without loading http2) and for a real HTTP/2 one.
 * Not proved here: that the bundle never loads http2 at start (test/node/fetch-globals.test.ts).
 */
import { createServer as createHttpServer, type IncomingMessage } from 'node:http'
import http2 from 'node:http2'
import type { AddressInfo } from 'node:net'
import { describe, expect, it } from 'vitest'
import {
  connect,
  constants,
  Http2ServerRequest,
  KNOWN_CONSTANTS,
} from '../../scripts/node-bundle/http2-on-demand.mjs'

describe('node:http2 on demand', () => {
  it('has Node’s values for the constants it knows, and reads any other from Node', () => {
    expect(Object.keys(KNOWN_CONSTANTS).length).toBeGreaterThan(5)
    for (const [name, value] of Object.entries(KNOWN_CONSTANTS)) {
      expect(value, name).toBe(http2.constants[name as keyof typeof http2.constants])
    }
    expect(constants.HTTP2_HEADER_CONTENT_TYPE).toBe('content-type')
  })

  it('tells an HTTP/1 request from an HTTP/2 one, as Node’s class does', async () => {
    const h1 = await new Promise<IncomingMessage>((resolve, reject) => {
      const server = createHttpServer((req, res) => {
        res.end()
        server.close()
        resolve(req)
      }).listen(0, '127.0.0.1', () => {
        const { port } = server.address() as AddressInfo
        fetch(`http://127.0.0.1:${port}/`).then((r) => r.arrayBuffer(), reject)
      })
    })
    expect(h1 instanceof Http2ServerRequest).toBe(false)
    expect(h1 instanceof http2.Http2ServerRequest).toBe(false)
    expect({} instanceof Http2ServerRequest).toBe(false)

    const server = http2.createServer()
    const h2 = new Promise<http2.Http2ServerRequest>((resolve) =>
      server.on('request', (req, res) => {
        res.end()
        resolve(req)
      }),
    )
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    const { port } = server.address() as AddressInfo
    const session = connect(`http://127.0.0.1:${port}`)
    const stream = session.request({ ':path': '/' })
    stream.resume()
    const request = await h2
    expect(request instanceof Http2ServerRequest).toBe(true)
    await new Promise((resolve) => stream.on('close', resolve))
    session.close()
    await new Promise((resolve) => server.close(resolve))
  })
})
