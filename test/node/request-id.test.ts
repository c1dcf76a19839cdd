/**
 * The request id in the head of Node's own responses (src/node/request-id.ts): a server whose
 * responses are `ResponseWithRequestId`s sends it with every way of writing a head, once, and
 * never in a headers object or list that was handed to `writeHead` (it may serve other answers);
 * a gateway served so sends it with every kind of answer.
 */
import { createServer, type OutgoingHttpHeaders, type ServerResponse } from 'node:http'
import { type AddressInfo, connect } from 'node:net'
import { afterAll, describe, expect, it } from 'vitest'
import { readHeaderOfNodeRequest } from '../../src/node/request-headers.ts'
import { ResponseWithRequestId, writeRequestIdOnNodeResponse } from '../../src/node/request-id.ts'
import { builtGateway } from '../support/gateway.ts'
import { servedOnNode } from '../support/node-server.ts'

/** One request written as given; the whole answer as text once the server closes it. */
function rawAnswer(port: number, request: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1')
    let text = ''
    socket.setEncoding('latin1')
    socket.on('data', (chunk) => {
      text += chunk
    })
    socket.on('end', () => resolve(text))
    socket.on('error', reject)
    socket.write(request)
  })
}

const get = (path: string, headers = '') =>
  `GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n${headers}\r\n`

/** The head's lines, lower-cased, without the status line. */
const headLines = (answer: string) =>
  (answer.split('\r\n\r\n')[0] ?? '').toLowerCase().split('\r\n').slice(1)

const idLines = (answer: string) => headLines(answer).filter((l) => l.startsWith('x-request-id:'))

/** A headers object every request's head is written with: it must come out of each unchanged. */
const shared: OutgoingHttpHeaders = { 'content-type': 'text/plain' }
const heads: Record<string, (res: ServerResponse) => void> = {
  '/none': (res) => res.writeHead(200),
  '/object': (res) => res.writeHead(200, shared),
  '/reason': (res) => res.writeHead(201, 'Made', shared),
  '/flat': (res) => res.writeHead(200, ['content-type', 'text/plain', 'x-a', '1']),
  '/pairs': (res) => res.writeHead(200, [['content-type', 'text/plain']]),
  // No `writeHead` of its own: Node writes the head from `end`.
  '/implicit': (res) => {
    res.statusCode = 202
  },
}

const server = createServer({ ServerResponse: ResponseWithRequestId }, (req, res) => {
  const path = req.url ?? ''
  if (!path.startsWith('/unset')) (res as ResponseWithRequestId).requestId = `id${path}`
  heads[path.replace('/unset', '') || '/none']?.(res)
  res.end('body')
})
await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
const port = (server.address() as AddressInfo).port
afterAll(() => new Promise((resolve) => server.close(resolve)))

describe('a response with a request id', () => {
  it.each(Object.keys(heads))('sends it once in the head written as %s', async (path) => {
    const answer = await rawAnswer(port, get(path))
    expect(idLines(answer)).toEqual([`x-request-id: id${path}`])
    expect(answer.split('\r\n\r\n')[1]).toContain('body')
  })

  it('keeps the rest of the head as written', async () => {
    expect(await rawAnswer(port, get('/reason'))).toMatch(/^HTTP\/1\.1 201 Made\r\n/)
    expect(headLines(await rawAnswer(port, get('/flat')))).toContain('x-a: 1')
    expect(headLines(await rawAnswer(port, get('/pairs')))).toContain('content-type: text/plain')
    expect(await rawAnswer(port, get('/implicit'))).toMatch(/^HTTP\/1\.1 202 Accepted\r\n/)
  })

  it('adds it to no headers object it was handed, and sends none when it has none', async () => {
    await rawAnswer(port, get('/object'))
    expect(shared).toEqual({ 'content-type': 'text/plain' })
    expect(idLines(await rawAnswer(port, get('/unset/object')))).toEqual([])
    expect(headLines(await rawAnswer(port, get('/unset/object')))).toContain(
      'content-type: text/plain',
    )
  })
})

describe('a gateway served with such responses', () => {
  const token = 'dgt_node-request-id-test-token'
  const { gateway } = builtGateway(token, {
    readRequestHeader: readHeaderOfNodeRequest,
    writeRequestId: writeRequestIdOnNodeResponse,
  })
  const served = servedOnNode(gateway.app.fetch, { ServerResponse: ResponseWithRequestId })

  it('sends the id with every kind of answer, the one the client offered or a new one', async () => {
    const at = (await served).port
    const auth = `Authorization: Bearer ${token}\r\n`
    const answers: [string, string, RegExp][] = [
      ['health', get('/healthz'), /^HTTP\/1\.1 200 /],
      ['metrics', get('/metrics', auth), /^HTTP\/1\.1 200 /],
      ['a problem', get('/metrics'), /^HTTP\/1\.1 401 /],
      ['no such path', get('/nowhere'), /^HTTP\/1\.1 404 /],
      ['another method', get('/metrics', auth).replace('GET', 'DELETE'), /^HTTP\/1\.1 405 /],
    ]
    for (const [what, request, status] of answers) {
      const fresh = await rawAnswer(at, request)
      expect(fresh, what).toMatch(status)
      expect(idLines(fresh), what).toEqual([expect.stringMatching(/^x-request-id: [0-9a-f-]{36}$/)])
      const offered = await rawAnswer(
        at,
        request.replace('\r\n\r\n', '\r\nX-Request-Id: mine-1\r\n\r\n'),
      )
      expect(idLines(offered), what).toEqual(['x-request-id: mine-1'])
    }
  })
})
