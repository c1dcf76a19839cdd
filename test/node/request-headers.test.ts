/**
 * The headers every request is asked for, read from Node's raw header list
 * (src/node/request-headers.ts), over real HTTP through @hono/node-server: the same answer as
 * Hono's `c.req.header` (Fetch's `Headers.get`) for requests written byte by byte, and a
 * gateway on Node refusing two `Authorization` headers as one value no bearer token matches.
 */
import { connect } from 'node:net'
import { Hono } from 'hono'
import { describe, expect, it } from 'vitest'
import type { AppEnv } from '../../src/http/context.ts'
import { readHeaderOfNodeRequest } from '../../src/node/request-headers.ts'
import { builtGateway } from '../support/gateway.ts'
import { servedOnNode } from '../support/node-server.ts'

const app = new Hono<AppEnv>()
app.get('/read', (c) => {
  const name = c.req.query('name') as Lowercase<string>
  return c.json({
    node: readHeaderOfNodeRequest(c, name) ?? null,
    hono: c.req.header(name) ?? null,
  })
})

/** One request written as given (header lines without their CRLF); the status and the body. */
function rawRequest(port: number, target: string, headers: string[]) {
  return new Promise<{ status: number; body: string }>((resolve, reject) => {
    const socket = connect(port, '127.0.0.1')
    let text = ''
    socket.setEncoding('latin1')
    socket.on('data', (chunk) => {
      text += chunk
    })
    socket.on('end', () => {
      const [head = '', body = ''] = text.split('\r\n\r\n')
      resolve({ status: Number(head.split(' ')[1]), body })
    })
    socket.on('error', reject)
    socket.write(
      `GET ${target} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n${headers.map((h) => `${h}\r\n`).join('')}\r\n`,
    )
  })
}

const { port } = await servedOnNode(app.fetch)
const read = async (name: string, headers: string[]) =>
  JSON.parse((await rawRequest(port, `/read?name=${name}`, headers)).body) as {
    node: string | null
    hono: string | null
  }

describe('request headers read from Node’s raw list', () => {
  it('answers what Hono’s header() answers, whatever the case the client wrote', async () => {
    const cases: [string, string[]][] = [
      ['x-request-id', ['X-Request-Id: abc-1']],
      ['x-request-id', ['x-REQUEST-id:   spaced \t ']],
      ['x-request-id', []],
      ['x-request-id', ['X-Request-Id:']],
      ['x-request-id', ['X-Request-Idx: no', 'X-Request-I: no']],
      ['authorization', ['Authorization: Bearer a', 'authorization: Bearer b']],
      ['authorization', ['AUTHORIZATION: Bearer one']],
      ['accept', ['Accept: text/html', 'Accept: text/event-stream']],
    ]
    for (const [name, headers] of cases) {
      const answer = await read(name, headers)
      expect(answer.node, `${name} of ${JSON.stringify(headers)}`).toBe(answer.hono)
    }
    // Not the same answer by accident of both being null.
    expect(
      await read('authorization', ['Authorization: Bearer a', 'authorization: Bearer b']),
    ).toEqual({
      node: 'Bearer a, Bearer b',
      hono: 'Bearer a, Bearer b',
    })
    expect((await read('x-request-id', ['x-REQUEST-id:   spaced \t '])).node).toBe('spaced')
  })

  it('asks Hono when the request came some other way than Node’s server', async () => {
    const response = await app.request('/read?name=x-request-id', {
      headers: { 'x-request-id': 'through-fetch' },
    })
    expect(await response.json()).toEqual({ node: 'through-fetch', hono: 'through-fetch' })
  })
})

describe('a gateway on Node reading its headers so', () => {
  const token = 'dgt_node-headers-test-token'
  const { gateway } = builtGateway(token, { readRequestHeader: readHeaderOfNodeRequest })
  const served = servedOnNode(gateway.app.fetch)

  it('takes a bearer token sent once, and refuses two Authorization headers as no bearer token', async () => {
    const at = (await served).port
    // Known first: the token's digest is computed on its first use.
    const once = await rawRequest(at, '/metrics', [`Authorization: Bearer ${token}`])
    expect(once.status).toBe(200)
    const twice = await rawRequest(at, '/metrics', [
      `Authorization: Bearer ${token}`,
      `authorization: Bearer ${token}`,
    ])
    expect(twice.status).toBe(401)
    expect(JSON.parse(twice.body)).toMatchObject({
      detail: 'The Authorization header is not a bearer token',
    })
  })
})
