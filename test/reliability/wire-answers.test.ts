/**
 * What the Node entry point answers on the wire where the app never sees the request, or sees
 * it before its body: every answer is a problem the OpenAPI document lists, and a connection is
 * either closed with `Connection: close` or still serves the client's next request.
 */
import { rmSync } from 'node:fs'
import { connect, type Socket } from 'node:net'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { tokenOf } from '../support/gateway.ts'
import { rawHttp, type SpawnedGateway, scratchDir, spawnGateway } from '../support/reliability.ts'

let dir: string | undefined
let node: SpawnedGateway
const auth = `Authorization: Bearer ${tokenOf('admin')}\r\n`

beforeAll(async () => {
  dir = scratchDir('dockgate-wire')
  node = await spawnGateway({ dir, config: {}, env: { DOCKGATE_TOKEN: tokenOf('admin') } })
})
afterAll(() => {
  node?.kill()
  if (dir) rmSync(dir, { recursive: true, force: true })
})

interface Answer {
  status: number
  headers: Record<string, string>
  body: string
}

/** One connection on which requests are sent one after the other, each answer read whole. */
class Connection {
  readonly #socket: Socket
  #buffer = Buffer.alloc(0)
  #closed = false
  #wake: (() => void) | undefined

  constructor(port: number) {
    this.#socket = connect(port, '127.0.0.1')
    this.#socket.on('data', (chunk) => {
      this.#buffer = Buffer.concat([this.#buffer, chunk])
      this.#wake?.()
    })
    const closed = () => {
      this.#closed = true
      this.#wake?.()
    }
    this.#socket.on('close', closed)
    this.#socket.on('error', closed)
  }

  get closed() {
    return this.#closed
  }

  send(bytes: string | Buffer) {
    if (!this.#closed) this.#socket.write(bytes)
  }

  /** The next answer (Content-Length framed), or undefined if the connection closed first. */
  async answer(timeoutMs = 5_000): Promise<Answer | undefined> {
    const deadline = Date.now() + timeoutMs
    for (;;) {
      const parsed = this.#parse()
      if (parsed) return parsed
      if (this.#closed || Date.now() > deadline) return undefined
      await new Promise<void>((resolve) => {
        this.#wake = resolve
        setTimeout(resolve, 50)
      })
    }
  }

  /** Whether the server closes the connection within the wait. */
  async closesWithin(ms: number): Promise<boolean> {
    const deadline = Date.now() + ms
    while (!this.#closed && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20))
    return this.#closed
  }

  destroy() {
    this.#socket.destroy()
  }

  #parse(): Answer | undefined {
    const end = this.#buffer.indexOf('\r\n\r\n')
    if (end < 0) return undefined
    const [statusLine = '', ...lines] = this.#buffer
      .subarray(0, end)
      .toString('latin1')
      .split('\r\n')
    const headers = Object.fromEntries(
      lines.map((line) => {
        const colon = line.indexOf(':')
        return [line.slice(0, colon).toLowerCase(), line.slice(colon + 1).trim()]
      }),
    )
    const length = Number(headers['content-length'] ?? 0)
    if (this.#buffer.length < end + 4 + length) return undefined
    const body = this.#buffer.subarray(end + 4, end + 4 + length).toString('utf8')
    this.#buffer = this.#buffer.subarray(end + 4 + length)
    return { status: Number(statusLine.split(' ')[1]), headers, body }
  }
}

const post = (path: string, body: string, headers = auth) =>
  `POST ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\n${headers}Content-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`

const get = (path: string, headers = auth) =>
  `GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\n${headers}\r\n`

function expectProblem(answer: Answer | undefined, status: number) {
  expect(answer?.status, answer?.body).toBe(status)
  expect(answer?.headers['content-type']).toBe('application/problem+json')
  expect(JSON.parse(answer!.body)).toMatchObject({ status })
}

describe('a body the gateway does not read', () => {
  it('answers a 1 MB body with 413 and Connection: close, or serves the next request', async () => {
    const megabyte = JSON.stringify({ image: 'x', cmd: ['x'.repeat(1024 * 1024)] })
    for (const path of [
      '/v1/containers',
      '/v1/containers/nothing-here/stop',
      '/v1/stream-tickets',
    ]) {
      const connection = new Connection(node.port)
      try {
        connection.send(post(path, megabyte))
        const first = await connection.answer()
        expectProblem(first, 413)
        if (first?.headers.connection?.toLowerCase() === 'close') {
          expect(await connection.closesWithin(5_000), path).toBe(true)
          continue
        }
        // It said keep-alive: the connection must take the next request.
        connection.send(get('/healthz'))
        expect((await connection.answer())?.status, `${path}: the next request`).toBe(200)
      } finally {
        connection.destroy()
      }
    }
  })

  it('refuses an oversized body of a caller without credentials with 401, not 413', async () => {
    const big = JSON.stringify({ image: 'x', cmd: ['x'.repeat(100 * 1024)] })
    for (const path of ['/v1/containers', '/v1/stream-tickets']) {
      const connection = new Connection(node.port)
      try {
        connection.send(post(path, big, ''))
        expectProblem(await connection.answer(), 401)
      } finally {
        connection.destroy()
      }
    }
  })
})

describe('what Node answers itself', () => {
  it('takes the longest query the document allows (16 label selectors of 256 characters)', async () => {
    // Each character percent-encoded as three UTF-8 bytes: 9 bytes on the wire.
    const selector = encodeURIComponent(`k=${'€'.repeat(254)}`)
    const query = Array.from({ length: 16 }, () => `label=${selector}`).join('&')
    expect(query.length).toBeGreaterThan(36_000)
    const answer = await rawHttp(node.port, [
      `${get(`/v1/containers?all=true&${query}`).slice(0, -2)}Connection: close\r\n\r\n`,
    ])
    expect(answer.status, answer.text.slice(0, 300)).toBe(200)
  })

  it('answers headers over the limit with a 431 problem and closes the connection', async () => {
    for (const headers of [
      `Authorization: Bearer ${'a'.repeat(65 * 1024)}\r\n`,
      Array.from({ length: 20_000 }, (_, i) => `X-H${i}: v\r\n`).join(''),
    ]) {
      const connection = new Connection(node.port)
      try {
        connection.send(`GET /v1/containers HTTP/1.1\r\nHost: 127.0.0.1\r\n${headers}\r\n`)
        expectProblem(await connection.answer(), 431)
        expect(await connection.closesWithin(5_000)).toBe(true)
      } finally {
        connection.destroy()
      }
    }
  })

  it('answers a request it cannot parse with a 400 problem and closes the connection', async () => {
    for (const request of [
      `GET /v1/containers HTTP/1.1\r\nHost: x\r\n${auth}X-Foo: a\rInjected: b\r\n\r\n`,
      `GET /v1/containers HTTP/1.1\r\nHost: x\r\n${auth}Content-Length: 1\r\nContent-Length: 2\r\n\r\nab`,
      'NOT-A-METHOD / HTTP/1.1\r\nHost: x\r\n\r\n',
    ]) {
      const connection = new Connection(node.port)
      try {
        connection.send(request)
        expectProblem(await connection.answer(), 400)
        expect(await connection.closesWithin(5_000)).toBe(true)
      } finally {
        connection.destroy()
      }
    }
    expect((await fetch(`${node.url}/healthz`)).status).toBe(200)
  })
})
