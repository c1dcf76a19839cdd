/**
 * An answer given before the request's body was read (src/node/unread-bodies.ts), over real HTTP
 * through @hono/node-server: the rest of the body is read and dropped first, so that a client
 * still sending gets the answer and not a reset, and the connection then serves the next request;
 * a body that does not come in time gets the answer with `Connection: close`.
 */
import { connect, type Socket } from 'node:net'
import { Hono } from 'hono'
import { describe, expect, it } from 'vitest'
import { closeAfterUnreadBodies, DRAIN_MS } from '../../src/node/unread-bodies.ts'
import { servedOnNode } from '../support/node-server.ts'

const app = new Hono()
// Refused before the body is read, as a body limit or an authentication refuses.
app.post('/refuse', (c) => c.json({ status: 413 }, 413))
app.get('/next', (c) => c.text('next'))

const { port } = await servedOnNode(closeAfterUnreadBodies(app.fetch))

/** A connection's bytes as text, and whether the server closed or reset it. */
function opened(): { socket: Socket; text: () => string; ended: Promise<string> } {
  const socket = connect(port, '127.0.0.1')
  let text = ''
  socket.setEncoding('latin1')
  socket.on('data', (chunk) => {
    text += chunk
  })
  const ended = new Promise<string>((resolve) => {
    socket.on('error', (error: NodeJS.ErrnoException) => resolve(error.code ?? 'error'))
    socket.on('close', () => resolve('closed'))
  })
  return { socket, text: () => text, ended }
}

const head = (length: number) =>
  `POST /refuse HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: ${length}\r\n\r\n`

async function until(check: () => boolean, ms: number): Promise<boolean> {
  const deadline = Date.now() + ms
  while (!check() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10))
  return check()
}

describe('a body the answer did not read', () => {
  it('is read to its end first: the client sending 4 MB gets the answer, then its next one', async () => {
    const { socket, text, ended } = opened()
    const body = Buffer.alloc(4 * 1024 * 1024, 'x')
    const written = new Promise<Error | null | undefined>((resolve) =>
      socket.write(Buffer.concat([Buffer.from(head(body.byteLength)), body]), resolve),
    )
    expect(await until(() => text().includes('"status":413'), 5_000)).toBe(true)
    expect(await written).toBeFalsy()
    expect(text().toLowerCase()).not.toContain('connection: close')
    socket.write('GET /next HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n')
    expect(await ended).toBe('closed')
    expect(text()).toMatch(/\r\n\r\nnext$/)
  })

  it('that does not come in time gets the answer with Connection: close, after the wait', async () => {
    const { socket, text, ended } = opened()
    const started = Date.now()
    // 1,000 bytes declared, 10 sent, and then nothing.
    socket.write(`${head(1_000)}${'x'.repeat(10)}`)
    expect(await until(() => text().includes('"status":413'), 5_000)).toBe(true)
    expect(Date.now() - started).toBeGreaterThanOrEqual(DRAIN_MS - 50)
    expect(text().toLowerCase()).toContain('connection: close')
    expect(await ended).toBe('closed')
  })
})
