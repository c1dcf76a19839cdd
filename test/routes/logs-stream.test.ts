import { beforeAll, describe, expect, it } from 'vitest'
import { decodeCursor } from '../../src/engine/log-cursor.ts'
import { engineTargetFromEnv } from '../../src/transport/docker-host.ts'
import { createNodeTransport } from '../../src/transport/node.ts'
import { direct, testEngineEnv } from '../support/engine.ts'
import { postJson, type TestGateway, testGateway, uniqueName } from '../support/gateway.ts'
import { TEST_LABEL, TEST_RUN } from '../support/labels.ts'
import { tcpConnectionsTo } from '../support/net.ts'
import { readSse } from '../support/sse.ts'
import type { ParsedSseEvent } from '../support/sse-parse.ts'

let gw: TestGateway

beforeAll(async () => {
  gw = await testGateway({ settings: { heartbeatMs: 200 } })
})

/** A container made through the gateway, started unless `started` is false. */
async function start(cmd: string[], tty = false, started = true) {
  const { status, body } = await gw.json(
    `/v1/containers?start=${started}`,
    postJson({
      image: testEngineEnv().image,
      name: uniqueName('follow'),
      cmd,
      tty,
      labels: { [TEST_LABEL]: TEST_RUN },
    }),
  )
  expect(status).toBe(201)
  return body.id as string
}

const stream = (id: string, query = '', headers: Record<string, string> = {}) =>
  gw.call(`/v1/containers/${id}/logs/stream${query}`, { headers })

const lineEvents = (events: ParsedSseEvent[]) =>
  events.filter((e) => e.event === 'stdout' || e.event === 'stderr')
const texts = (events: ParsedSseEvent[]) => lineEvents(events).map((e) => JSON.parse(e.data).text)

describe('GET /v1/containers/{id}/logs/stream', () => {
  it('streams lines live as events, then `end` with the exit code', async () => {
    const id = await start(['sh', '-c', 'echo one; sleep 0.5; echo two >&2; sleep 0.5; exit 4'])
    const response = await stream(id)
    expect(response.status).toBe(200)
    expect(response.headers.get('content-type')).toMatch(/^text\/event-stream/)
    expect(response.headers.get('cache-control')).toBe('no-cache')
    expect(response.headers.get('x-accel-buffering')).toBe('no')
    const events = await readSse(response).until('end')
    expect(lineEvents(events).map((e) => [e.event, JSON.parse(e.data).text])).toEqual([
      ['stdout', 'one'],
      ['stderr', 'two'],
    ])
    expect(JSON.parse(events.at(-1)!.data)).toEqual({ exitCode: 4, state: 'exited' })
    // Each id is the line's cursor: its time in nanoseconds since the epoch (and its position)
    for (const e of lineEvents(events)) {
      expect(e.id).toMatch(/^\d+(\.\d+)?$/)
      expect(decodeCursor(e.id!)?.time).toBe(JSON.parse(e.data).time)
    }
  })

  it('ends with `end` and the exit code of its kill, not a problem, when the container is removed by force', async () => {
    const id = await start(['sh', '-c', 'echo one; sleep 30'])
    const reader = readSse(await stream(id))
    const [first] = await reader.take(1)
    expect(JSON.parse(first!.data).text).toBe('one')
    expect((await gw.call(`/v1/containers/${id}?force=true`, { method: 'DELETE' })).status).toBe(
      204,
    )
    const rest = await reader.until('end')
    expect(rest.map((e) => e.event)).toEqual(['end'])
    const end = JSON.parse(rest[0]!.data)
    expect(end.exitCode).toBe(137)
    // `removed` once the engine has removed it, `removing` while it does, `exited` before that.
    expect(['removed', 'exited', 'removing']).toContain(end.state)
  })

  it('ends at once for a container that never ran, with no exit code', async () => {
    const id = await start(['echo', 'unseen'], false, false)
    const events = await readSse(await stream(id)).until('end')
    expect(events.map((e) => [e.event, JSON.parse(e.data)])).toEqual([
      ['end', { exitCode: null, state: 'created' }],
    ])
  })

  it('tells the client how long to wait before reconnecting and sends heartbeats', async () => {
    const id = await start(['sleep', '3'])
    const response = await stream(id)
    const raw = response.body!.getReader()
    let text = ''
    const deadline = Date.now() + 3_000
    while (!text.includes(': heartbeat') && Date.now() < deadline) {
      const { value } = await raw.read()
      text += new TextDecoder().decode(value)
    }
    expect(text).toMatch(/^: stream open\nretry: 2000\n\n/)
    expect(text).toContain(': heartbeat\n\n')
    await raw.cancel()
  })

  it('resumes exactly after the last line received, also within a burst sharing one timestamp', async () => {
    // 300 lines printed as fast as possible: many share a timestamp.
    const id = await start(['sh', '-c', 'seq 1 300; sleep 1'])
    await direct(`/containers/${id}/wait`, { method: 'POST' })
    const received: string[] = []
    let lastId: string | undefined
    // Hang up after a few lines each time, at changing points, and resume with Last-Event-ID.
    for (let round = 0; round < 50; round++) {
      const reader = readSse(await stream(id, '', lastId ? { 'last-event-id': lastId } : {}))
      const take = 3 + ((round * 7) % 11)
      let ended = false
      for (let i = 0; i < take; i++) {
        const event = await reader.next()
        if (!event || event.event === 'end') {
          ended = true
          break
        }
        received.push(JSON.parse(event.data).text)
        lastId = event.id
      }
      await reader.close()
      if (ended) break
    }
    expect(received).toEqual(Array.from({ length: 300 }, (_, i) => String(i + 1)))
  })

  it("gives a long line and the other stream's line written during it once each, and resumes after either exactly", async () => {
    // The long line's last partial carries its first one's time and comes after `err` in the log.
    const id = await start([
      'sh',
      '-c',
      "head -c 20000 /dev/zero | tr '\\0' a; sleep 1; echo err >&2; sleep 1; echo",
    ])
    await direct(`/containers/${id}/wait`, { method: 'POST' })
    const shown = (events: ParsedSseEvent[]) =>
      texts(events).map((t: string) => (t.length > 20 ? `a×${t.length}` : t))
    const all = await readSse(await stream(id)).until('end')
    expect(shown(all)).toEqual(['a×20000', 'err'])
    const [long, err] = lineEvents(all)
    const afterLong = await readSse(await stream(id, '', { 'last-event-id': long!.id! })).until(
      'end',
    )
    expect(shown(afterLong)).toEqual(['err'])
    const afterErr = await readSse(await stream(id, '', { 'last-event-id': err!.id! })).until('end')
    expect(shown(afterErr)).toEqual([])
  })

  it('accepts the cursor as ?cursor= and refuses one it did not issue', async () => {
    const id = await start(['sh', '-c', 'echo a; echo b; echo c'])
    await direct(`/containers/${id}/wait`, { method: 'POST' })
    const first = await readSse(await stream(id)).until('end')
    const afterA = lineEvents(first)[0]!.id!
    const resumed = await readSse(await stream(id, `?cursor=${afterA}`)).until('end')
    expect(texts(resumed)).toEqual(['b', 'c'])
    const { status, body } = await gw.json(`/v1/containers/${id}/logs/stream?cursor=bogus`)
    expect(status).toBe(400)
    expect(body.type).toBe('urn:dockgate:problem:validation-failed')
    // Named where it came from: no Last-Event-ID was sent.
    expect(body.invalidParams).toEqual([{ name: 'query.cursor', reason: 'not a log cursor' }])
  })

  it('rejoins long lines and keeps a last line without newline', async () => {
    const id = await start(['sh', '-c', "head -c 40000 /dev/zero | tr '\\0' a; echo; printf tail"])
    const events = await readSse(await stream(id)).until('end')
    expect(texts(events).map((t: string) => t.length)).toEqual([40000, 4])
  })

  it('catches up exactly after a line of more 16 KiB partials than the catch-up reads from the end', async () => {
    // 1.1 MB of one line: 68 partials sharing one timestamp, sent in two pieces (maxLineBytes)
    const long = "head -c 1100000 /dev/zero | tr '\\0' a; echo"
    const pieces = [1024 * 1024, 1100000 - 1024 * 1024]
    for (const [cmd, expected] of [
      // The end of the log is the long line: the catch-up falls back to the plain read
      [long, pieces],
      // A short line after it: the catch-up reads from the end, starting inside the long line
      [`${long}; echo after`, [...pieces, 5]],
    ] as const) {
      const id = await start(['sh', '-c', cmd])
      const events = await readSse(await stream(id)).until('end')
      expect(texts(events).map((t: string) => t.length)).toEqual(expected)
    }
  })

  it('sends any bytes of a line as the JSON logs route shows them', async () => {
    // Quote, backslash, tab, a control, U+2028, an invalid byte, a broken sequence, a euro sign
    const id = await start(['printf', 'q"b\\\\s\\tt\\001c\\342\\200\\250u\\377v\\303(w €\\n'])
    await direct(`/containers/${id}/wait`, { method: 'POST' })
    const events = await readSse(await stream(id)).until('end')
    const { body } = await gw.json(`/v1/containers/${id}/logs`)
    expect(texts(events)).toEqual(['q"b\\s\tt\u0001c\u2028u\uFFFDv\uFFFD(w €'])
    expect(texts(events)).toEqual(body.lines.map((line: { text: string }) => line.text))
  })

  it('streams a TTY container', async () => {
    const id = await start(['sh', '-c', 'echo tty-line; sleep 0.3; echo more'], true)
    const events = await readSse(await stream(id)).until('end')
    expect(texts(events)).toEqual(['tty-line', 'more'])
  })

  it('ends at a restart instead of following into the next run', async () => {
    const id = await start(['sh', '-c', 'echo run; sleep 30'])
    const reader = readSse(await stream(id))
    expect(JSON.parse((await reader.next())!.data).text).toBe('run')
    const restarted = gw.call(`/v1/containers/${id}/restart?timeout=0`, { method: 'POST' })
    const rest = await reader.until('end')
    expect(rest.at(-1)!.event).toBe('end')
    expect(lineEvents(rest)).toEqual([])
    expect((await restarted).status).toBe(200)
  })

  it('closes the engine connection when the client leaves', async () => {
    // Over the TCP wire, so the kernel can count this process's connections to the engine.
    const tcp = testEngineEnv().tcpHost!
    const overTcp = await testGateway({
      transport: createNodeTransport(engineTargetFromEnv({ DOCKER_HOST: tcp })),
      // No read model: its events stream would be one more connection on the wire counted here.
      settings: { readModel: false },
    })
    const port = new URL(tcp.replace('tcp:', 'http:')).port
    const id = await start(['sh', '-c', 'echo up; sleep 30'])
    const reader = readSse(await overTcp.call(`/v1/containers/${id}/logs/stream`))
    // A follow has a connection of its own (src/transport/node.ts): counted once a line came.
    expect(JSON.parse((await reader.next())!.data).text).toBe('up')
    const open = tcpConnectionsTo(port)
    expect(open).toBeGreaterThan(0)
    await reader.close()
    await expect.poll(() => tcpConnectionsTo(port), { timeout: 3_000 }).toBeLessThan(open)
  })

  it('answers 404 before streaming for a missing container', async () => {
    const { status, response } = await gw.json('/v1/containers/dockgate-missing/logs/stream')
    expect(status).toBe(404)
    expect(response.headers.get('content-type')).toBe('application/problem+json')
  })

  it('ends every open stream with `shutdown` when the gateway stops', async () => {
    const shutdown = new AbortController()
    const stopping = await testGateway({ shutdown: shutdown.signal })
    const id = await start(['sleep', '30'])
    const reader = readSse(await stopping.call(`/v1/containers/${id}/logs/stream`))
    shutdown.abort()
    const events = await reader.until('shutdown')
    expect(events.at(-1)!.event).toBe('shutdown')
    expect(await reader.next()).toBeUndefined()
  })
})
