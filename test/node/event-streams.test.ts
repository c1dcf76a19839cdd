/**
 * Event streams written straight to Node's response (src/node/event-streams.ts, handed over by
 * the app's `eventStreamOutput` port), over real HTTP through @hono/node-server, with
 * sseResponse producers of our own: no engine involved.
 */
import { type AddressInfo, connect, type Socket } from 'node:net'
import { serve } from '@hono/node-server'
import { Hono } from 'hono'
import { afterAll, describe, expect, it } from 'vitest'
import { eventStreamRoute } from '../../src/http/authentication.ts'
import type { AppEnv } from '../../src/http/context.ts'
import { type SseSink, sseResponse } from '../../src/http/sse.ts'
import { chunkFrame, writeEventStreamsOnNodeResponse } from '../../src/node/event-streams.ts'
import { ByteWriter } from '../../src/streams/byte-writer.ts'
import { onBodyEnd } from '../../src/streams/on-end.ts'
import { frontOnly } from '../support/front.ts'

const settings = { heartbeatMs: 60_000, retryMs: 1_500, bufferedBytes: 1024 }
const toProblem = () => {
  throw new Error('not expected')
}
const encoder = new TextEncoder()

/** What each test's producer does; set per test. */
let produce: (sink: SseSink) => Promise<void> = async () => {}
/** How many times each stream (by `?id=`) reported its end. */
const ends = new Map<string, number>()
const app = new Hono<AppEnv>()
/** Event streams the port wrote to Node's response itself. */
let handedOver = 0
app.use(
  frontOnly({
    eventStreamOutput: (c, status, headers) => {
      const taken = writeEventStreamsOnNodeResponse(c, status, headers)
      if (taken) handedOver++
      return taken
    },
  }),
)
app.get('/v1/events', eventStreamRoute, (c) => {
  const id = c.req.query('id') ?? ''
  const response = sseResponse(settings, toProblem, (sink) => produce(sink))
  // As the stream limiter does: the slot comes back when the stream ends.
  return new Response(
    onBodyEnd(response.body!, () => ends.set(id, (ends.get(id) ?? 0) + 1)),
    response,
  )
})
app.get('/plain', (c) => c.json({ ok: true }))

const server = serve({ fetch: app.fetch, port: 0, hostname: '127.0.0.1' })
await new Promise((resolve) => server.once('listening', resolve))
/** The server's side of each connection, newest last. */
const serverSockets: Socket[] = []
server.on('connection', (socket: Socket) => serverSockets.push(socket))
const { port } = server.address() as AddressInfo
afterAll(() => new Promise((resolve) => server.close(resolve)))

const url = (path: string) => `http://127.0.0.1:${port}${path}`

describe('event streams written straight to Node’s response', () => {
  it('sends what was queued before the takeover first, then the rest, and ends', async () => {
    produce = async (sink) => {
      await sink.send({ event: 'a', data: '1' })
      await new Promise((resolve) => setTimeout(resolve, 20))
      await sink.sendEncoded(encoder.encode('event: b\ndata: 2\n\n'))
    }
    const before = handedOver
    const response = await fetch(url('/v1/events?id=queued'))
    expect(response.status).toBe(200)
    expect(response.headers.get('content-type')).toBe('text/event-stream; charset=utf-8')
    expect(response.headers.get('cache-control')).toBe('no-cache')
    expect(await response.text()).toBe(
      ': stream open\nretry: 1500\n\nevent: a\ndata: 1\n\nevent: b\ndata: 2\n\n',
    )
    expect(ends.get('queued')).toBe(1)
    expect(handedOver).toBe(before + 1)
  })

  it('hands each write to the socket at once, not corked until the next tick', async () => {
    const corked: number[] = []
    produce = async (sink) => {
      // Past the takeover: from now on the stream writes to Node's response.
      await new Promise((resolve) => setTimeout(resolve, 20))
      const socket = serverSockets.at(-1)!
      sink.writeEncoded(encoder.encode('event: a\ndata: 1\n\n'))
      corked.push(socket.writableCorked)
      sink.writeEncoded(encoder.encode('event: b\ndata: 2\n\n'))
      corked.push(socket.writableCorked)
    }
    const response = await fetch(url('/v1/events?id=uncorked'))
    expect(await response.text()).toBe(
      ': stream open\nretry: 1500\n\nevent: a\ndata: 1\n\nevent: b\ndata: 2\n\n',
    )
    expect(corked).toEqual([0, 0])
  })

  it('writes each chunk to the socket as one chunked frame, built once for every stream', async () => {
    const chunk = encoder.encode('event: a\ndata: 1\n\n')
    const writes: unknown[] = []
    produce = async (sink) => {
      await new Promise((resolve) => setTimeout(resolve, 20))
      spyOnWrites(serverSockets.at(-1)!, writes, () => {
        sink.writeEncoded(chunk)
        sink.writeEncoded(chunk)
      })
    }
    const raw = await rawExchange(
      'GET /v1/events?id=framed HTTP/1.1\r\nHost: x\r\n\r\n',
      '0\r\n\r\n',
    )
    const frame = '12\r\nevent: a\ndata: 1\n\n\r\n'
    expect(raw).toMatch(/\r\ntransfer-encoding: chunked\r\n/i)
    expect(raw.endsWith(`${frame}${frame}0\r\n\r\n`)).toBe(true)
    // One write per chunk, the same frame both times.
    expect(writes).toHaveLength(2)
    expect(writes[0]).toBe(writes[1])
    expect(writes[0]).toBe(chunkFrame(chunk))
    expect(Buffer.from(chunkFrame(chunk)).toString('latin1')).toBe(frame)
  })

  it('writes a large chunk as it is, between its size line and CRLF, in one corked write', async () => {
    // An exec's batch of output: not copied into a frame (bench phase `exec`)
    const chunk = encoder.encode(`event: stdout\ndata: {"text":"${'x'.repeat(40_000)}"}\n\n`)
    const writes: unknown[] = []
    const corked: number[] = []
    produce = async (sink) => {
      await new Promise((resolve) => setTimeout(resolve, 20))
      const socket = serverSockets.at(-1)!
      spyOnWrites(socket, writes, () => sink.writeEncoded(chunk), corked)
      corked.push(socket.writableCorked)
    }
    const raw = await rawExchange(
      'GET /v1/events?id=large HTTP/1.1\r\nHost: x\r\n\r\n',
      '0\r\n\r\n',
    )
    const text = Buffer.from(chunk).toString('latin1')
    expect(raw.endsWith(`${chunk.length.toString(16)}\r\n${text}\r\n0\r\n\r\n`)).toBe(true)
    expect(writes).toHaveLength(3)
    expect(writes[1]).toBe(chunk)
    // Corked for the three writes, uncorked once they are made
    expect(corked).toEqual([1, 1, 1, 0])
  })

  it('leaves a kept-alive connection ready for the next request once the stream ends', async () => {
    produce = async (sink) => {
      await new Promise((resolve) => setTimeout(resolve, 20))
      sink.writeEncoded(encoder.encode('event: a\ndata: 1\n\n'))
    }
    const raw = await rawExchange(
      'GET /v1/events?id=keepalive HTTP/1.1\r\nHost: x\r\n\r\nGET /plain HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n',
      '{"ok":true}',
    )
    const [events, plain] = raw.split('\r\n0\r\n\r\n')
    expect(events).toContain('event: a\ndata: 1\n\n')
    expect(plain).toMatch(/^HTTP\/1\.1 200 OK\r\n/)
    expect(plain!.endsWith('{"ok":true}')).toBe(true)
    expect(ends.get('keepalive')).toBe(1)
  })

  it('sends an HTTP/1.0 client the bytes as they are, and closes', async () => {
    produce = async (sink) => {
      await new Promise((resolve) => setTimeout(resolve, 20))
      sink.writeEncoded(encoder.encode('event: a\ndata: 1\n\n'))
    }
    const raw = await rawExchange('GET /v1/events?id=http10 HTTP/1.0\r\nHost: x\r\n\r\n')
    expect(raw).not.toMatch(/transfer-encoding/i)
    expect(raw.endsWith('\r\n\r\n: stream open\nretry: 1500\n\nevent: a\ndata: 1\n\n')).toBe(true)
  })

  it('holds the producer while the client reads nothing, and lets it go on when it reads', async () => {
    const chunk = encoder.encode(`data: ${'x'.repeat(16 * 1024)}\n\n`)
    let sent = 0
    let stalled = false
    produce = async (sink) => {
      for (let i = 0; i < 400; i++) {
        const waiting = sink.sendEncoded(chunk)
        let settled = false
        void waiting.then(() => (settled = true))
        await new Promise((resolve) => setImmediate(resolve))
        if (!settled) stalled = true
        if (!(await waiting)) return
        sent++
      }
    }
    // A raw socket that reads nothing until told to: 400 × 16 KiB (6.4 MB) cannot all fit.
    const socket = connect(port, '127.0.0.1')
    socket.write('GET /v1/events HTTP/1.1\r\nHost: x\r\n\r\n')
    socket.pause()
    await new Promise((resolve) => setTimeout(resolve, 300))
    expect(stalled).toBe(true)
    expect(sent).toBeLessThan(400)
    let received = 0
    const done = new Promise<void>((resolve) => {
      socket.on('data', (data) => {
        received += data.length
        if (received >= 400 * chunk.length) resolve()
      })
    })
    socket.resume()
    await done
    await expect.poll(() => sent).toBe(400)
    socket.destroy()
  })

  it('says a batch wrote through only once the kernel took it all, so a reused slab never changes bytes still queued', async () => {
    // As the exec stream does (src/routes/exec.ts): take a batch, write it, give its slab back
    // when it wrote through. Each batch is 48 KiB of one letter, the next letter each time.
    const batches = 300
    const size = 48 * 1024
    let reused = 0
    let heldBack = 0
    produce = async (sink) => {
      // Once the stream is handed to Node's response (as an exec's output comes after engine calls)
      await new Promise((resolve) => setTimeout(resolve, 20))
      const writer = new ByteWriter()
      const slabs = new Set<ArrayBufferLike>()
      const fill = (i: number) => {
        writer.write(encoder.encode('data: '))
        writer.write(new Uint8Array(size).fill(0x61 + (i % 26)))
        writer.write(encoder.encode('\n\n'))
      }
      fill(0)
      for (let i = 0; i < batches; i++) {
        const batch = writer.take()
        slabs.add(batch.buffer)
        const room = sink.writeEncoded(batch)
        if (sink.wroteThrough()) {
          writer.reuse(batch)
          reused++
        } else heldBack++
        // The next batch at once, over the slab given back, before waiting for room
        if (i + 1 < batches) fill(i + 1)
        if (!room && !(await sink.whenWritable())) return
      }
      // Given back, the same slab served the batches that wrote through
      expect(slabs.size).toBeLessThan(batches)
    }
    // A client that reads nothing at first (the kernel's buffers fill, writes are left queued),
    // then everything
    const socket = connect(port, '127.0.0.1')
    socket.write('GET /v1/events?id=reuse HTTP/1.1\r\nHost: x\r\n\r\n')
    socket.pause()
    await new Promise((resolve) => setTimeout(resolve, 200))
    const parts: Buffer[] = []
    const done = new Promise<void>((resolve) => {
      socket.on('data', (data: Buffer) => {
        parts.push(data)
        if (data.includes('\r\n0\r\n\r\n')) resolve()
      })
    })
    socket.resume()
    await done
    socket.destroy()
    const body = Buffer.concat(parts).toString('latin1')
    const events = [...body.matchAll(/data: ([a-z]+)\n\n/g)].map((m) => m[1]!)
    expect(events).toHaveLength(batches)
    events.forEach((text, i) => {
      expect(text.length).toBe(size)
      expect(text === String.fromCharCode(0x61 + (i % 26)).repeat(size), `batch ${i}`).toBe(true)
    })
    // Both ways were taken: some batches wrote through, some waited in Node's queue
    expect(reused, `reused ${reused}, held back ${heldBack}`).toBeGreaterThan(0)
    expect(heldBack, `reused ${reused}, held back ${heldBack}`).toBeGreaterThan(0)
  })

  it('stops the producer and gives the slot back when the client leaves', async () => {
    let signal: AbortSignal | undefined
    produce = (sink) => {
      signal = sink.signal
      return new Promise((resolve) => sink.signal.addEventListener('abort', () => resolve()))
    }
    const controller = new AbortController()
    const response = await fetch(url('/v1/events?id=left'), { signal: controller.signal })
    const reader = response.body!.getReader()
    await reader.read()
    controller.abort()
    await expect.poll(() => signal?.aborted, { timeout: 2_000 }).toBe(true)
    expect(ends.get('left')).toBe(1)
  })

  it('leaves other answers to the adapter', async () => {
    const response = await fetch(url('/plain'))
    expect(await response.json()).toEqual({ ok: true })
  })
})

/**
 * Sends `request` on a raw connection and answers everything received, once `until` ends it or
 * the server closes the connection.
 */
function rawExchange(request: string, until?: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1')
    let received = ''
    socket.setEncoding('latin1')
    socket.on('data', (data: string) => {
      received += data
      if (until !== undefined && received.endsWith(until)) {
        socket.destroy()
        resolve(received)
      }
    })
    socket.on('end', () => resolve(received))
    socket.on('error', reject)
    socket.write(request)
  })
}

/**
 * Runs `act` with `socket.write` spied on (what reaches the socket, as the socket is given it, a
 * spy, not a stand-in): each write's first argument into `writes`, and how corked the socket was
 * at it into `corked` when given.
 */
function spyOnWrites(socket: Socket, writes: unknown[], act: () => void, corked?: number[]) {
  const write = socket.write
  socket.write = function (this: Socket, ...args: Parameters<Socket['write']>) {
    writes.push(args[0])
    corked?.push(this.writableCorked)
    return write.apply(this, args)
  } as Socket['write']
  try {
    act()
  } finally {
    socket.write = write
  }
}
