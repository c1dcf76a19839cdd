/**
 * The request id written into the head of Node's own response (src/node/request-id.ts), over
 * real HTTP through @hono/node-server with the Node entry's `RequestIdResponse`: every kind of
 * answer carries it once, as the one header of that name.
 */
import type { AddressInfo } from 'node:net'
import { serve } from '@hono/node-server'
import { Hono } from 'hono'
import { afterAll, describe, expect, it } from 'vitest'
import type { AppEnv } from '../../src/http/context.ts'
import { writeEventStreamsTo } from '../../src/http/event-stream-output.ts'
import { requestIds } from '../../src/http/request-id.ts'
import { writeEventStreamsOnNodeResponse } from '../../src/node/event-streams.ts'
import { RequestIdResponse, writeRequestIdOnNodeResponse } from '../../src/node/request-id.ts'

const app = new Hono<AppEnv>()
app.use(requestIds(writeRequestIdOnNodeResponse))
app.use(writeEventStreamsTo(writeEventStreamsOnNodeResponse))
app.get('/json', (c) => c.json({ ok: true }))
app.get('/text', (c) => c.text('ok', 200, { 'x-other': 'kept' }))
app.get('/empty', (c) => c.body(null, 204))
app.get('/headers', (c) => {
  c.header('cache-control', 'no-store')
  return c.json({ ok: true }, 201)
})
app.get('/stream', () => {
  const body = new ReadableStream({
    start(controller) {
      controller.enqueue(new TextEncoder().encode('a'))
      controller.close()
    },
  })
  return new Response(body, { headers: { 'content-type': 'text/plain' } })
})
app.get('/events', (c) => {
  c.set('eventStream', true)
  const body = new ReadableStream({
    start(controller) {
      controller.enqueue(new TextEncoder().encode('data: x\n\n'))
      controller.close()
    },
  })
  return new Response(body, { headers: { 'content-type': 'text/event-stream' } })
})
app.get('/fails', () => {
  throw new Error('boom')
})
app.onError((_error, c) => c.json({ problem: true }, 500))

const server = serve({
  fetch: app.fetch,
  port: 0,
  hostname: '127.0.0.1',
  serverOptions: { ServerResponse: RequestIdResponse },
})
await new Promise((resolve) => server.once('listening', resolve))
const { port } = server.address() as AddressInfo
afterAll(() => new Promise((resolve) => server.close(resolve)))

/** The raw head's lines named `x-request-id`, and the status. */
async function idsOf(path: string, offered?: string) {
  const response = await fetch(`http://127.0.0.1:${port}${path}`, {
    headers: offered ? { 'x-request-id': offered } : {},
  })
  await response.arrayBuffer()
  return { status: response.status, id: response.headers.get('x-request-id'), response }
}

describe('the request id on Node’s own response', () => {
  it('is in the head of every kind of answer, once, as the caller chose it', async () => {
    for (const [path, status] of [
      ['/json', 200],
      ['/text', 200],
      ['/empty', 204],
      ['/headers', 201],
      ['/stream', 200],
      ['/events', 200],
      ['/fails', 500],
      ['/nowhere', 404],
    ] as const) {
      const offered = `trace-${path.slice(1)}`
      const { status: got, id } = await idsOf(path, offered)
      // A second header of the name would be joined into "a, b" by fetch.
      expect({ path, got, id }).toEqual({ path, got: status, id: offered })
    }
  })

  it('keeps the answer’s own headers beside it, and makes a new id when none was sent', async () => {
    const text = await idsOf('/text')
    expect(text.id).toMatch(/^[0-9a-f-]{36}$/)
    expect(text.response.headers.get('x-other')).toBe('kept')
    const headers = await idsOf('/headers', 'abc')
    expect(headers.response.headers.get('cache-control')).toBe('no-store')
    expect(headers.response.headers.get('content-type')).toMatch(/^application\/json/)
  })
})
