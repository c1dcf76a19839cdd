/**
 * What one exec WebSocket can make the gateway do beyond its HTTP limits (which only its upgrade
 * passes): its resizes, each an engine call, and stdin its command does not read. The Node
 * bundle in front of the real engine through a Unix-socket relay of this test's that counts the
 * engine's resize calls.
 */
import { rmSync } from 'node:fs'
import { connect, createServer, type Server, type Socket } from 'node:net'
import { join } from 'node:path'
import { WebSocket } from 'undici'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { hashToken } from '../../src/auth/tokens.ts'
import { SESSION_QUEUE_BYTES } from '../../src/routes/exec-session.limits.ts'
import { direct, testEngineEnv } from '../support/engine.ts'
import { tokenOf, uniqueName } from '../support/gateway.ts'
import { TEST_LABEL, TEST_RUN } from '../support/labels.ts'
import { type SpawnedGateway, scratchDir, spawnGateway } from '../support/reliability.ts'

let dir: string
let gw: SpawnedGateway
let relay: Server
const sockets: Socket[] = []
let resizeCalls = 0
let box: string

beforeAll(async () => {
  dir = scratchDir('dockgate-exec-limits')
  const relayPath = join(dir, 'engine.sock')
  const engineSocket = testEngineEnv().socketPath
  expect(engineSocket, 'the test engine listens on a Unix socket').toBeDefined()
  relay = createServer((client) => {
    const upstream = connect(engineSocket!)
    sockets.push(client, upstream)
    client.on('error', () => {})
    upstream.on('error', () => {})
    client.on('data', (chunk: Buffer) => {
      resizeCalls +=
        chunk.toString('latin1').match(/POST \/v[\d.]+\/exec\/[^/ ]+\/resize/g)?.length ?? 0
    })
    client.pipe(upstream)
    upstream.pipe(client)
  })
  await new Promise<void>((resolve) => relay.listen(relayPath, resolve))
  gw = await spawnGateway({
    dir,
    env: { DOCKER_HOST: `unix://${relayPath}` },
    config: {
      tokens: [
        {
          name: 'tenant',
          hash: await hashToken(tokenOf('tenant')),
          scopes: ['containers:read', 'containers:write', 'exec'],
          policy: {
            images: ['*'],
            exec: { allowed: true, user: '65534:65534', maxTimeoutSeconds: 60 },
          },
        },
      ],
      limits: { requestsPerSecond: 5, burst: 5 },
    },
  })
  const created = await fetch(`${gw.url}/v1/containers?start=true`, {
    method: 'POST',
    headers: { authorization: `Bearer ${tokenOf('tenant')}`, 'content-type': 'application/json' },
    body: JSON.stringify({
      image: testEngineEnv().image,
      name: uniqueName('exec-limits'),
      cmd: ['sleep', '600'],
      labels: { [TEST_LABEL]: TEST_RUN },
    }),
  })
  expect(created.status).toBe(201)
  box = ((await created.json()) as { id: string }).id
}, 150_000)

afterAll(async () => {
  gw?.kill()
  if (box) await direct(`/containers/${box}?force=1`, { method: 'DELETE' })
  for (const socket of sockets) socket.destroy()
  await new Promise((resolve) => relay?.close(resolve))
  if (dir) rmSync(dir, { recursive: true, force: true })
})

interface Session {
  ws: WebSocket
  messages: { type: string; data?: string; problem?: { status: number; detail: string } }[]
  closed: Promise<number>
  next(type: string): Promise<Session['messages'][number]>
}

async function open(): Promise<Session> {
  const ws = new WebSocket(`${gw.url.replace('http', 'ws')}/v1/containers/${box}/exec/session`, {
    headers: { authorization: `Bearer ${tokenOf('tenant')}` },
  } as never)
  const messages: Session['messages'] = []
  const waiting: (() => void)[] = []
  ws.addEventListener('message', (e) => {
    messages.push(JSON.parse(String(e.data)))
    for (const wake of waiting.splice(0)) wake()
  })
  const closed = new Promise<number>((resolve) =>
    ws.addEventListener('close', (e) => resolve(e.code)),
  )
  await new Promise<void>((resolve, reject) => {
    ws.addEventListener('open', () => resolve())
    ws.addEventListener('error', () => reject(new Error('the session did not open')))
  })
  const next = async (type: string) => {
    const deadline = Date.now() + 15_000
    for (;;) {
      const found = messages.find((m) => m.type === type)
      if (found) return found
      if (Date.now() > deadline) throw new Error(`no ${type}: ${JSON.stringify(messages)}`)
      await new Promise<void>((resolve) => {
        waiting.push(resolve)
        setTimeout(resolve, 200)
      })
    }
  }
  return { ws, messages, closed, next }
}

describe('one exec WebSocket', () => {
  it('sends a burst of resizes to the engine as a few, the last size last', async () => {
    const session = await open()
    session.ws.send(
      JSON.stringify({ type: 'start', cmd: ['sh', '-c', 'read line; stty size'], tty: true }),
    )
    await new Promise((r) => setTimeout(r, 500))
    const before = resizeCalls
    for (let i = 0; i < 300; i++) {
      session.ws.send(JSON.stringify({ type: 'resize', rows: 10 + (i % 50), cols: 80 }))
    }
    session.ws.send(JSON.stringify({ type: 'resize', rows: 42, cols: 99 }))
    await new Promise((r) => setTimeout(r, 500))
    session.ws.send(JSON.stringify({ type: 'stdin', data: 'go\r' }))

    expect((await session.next('exit')).type).toBe('exit')
    const output = session.messages.map((m) => m.data ?? '').join('')
    expect(output).toContain('42 99')
    // One at a time, 50 ms apart at most as often: 301 messages in well under a second.
    expect(resizeCalls - before).toBeGreaterThan(0)
    expect(resizeCalls - before).toBeLessThan(30)
  }, 30_000)

  it('ends a session whose client sends more stdin than its command reads: 413 problem, close 1008', async () => {
    const session = await open()
    session.ws.send(JSON.stringify({ type: 'start', cmd: ['sleep', '30'] }))
    await new Promise((r) => setTimeout(r, 500))
    // `sleep` reads none of it: past what the engine and the sockets hold, it waits in the gateway.
    const chunk = new Uint8Array(64 * 1024).fill(120)
    for (let sent = 0; sent < 8 * SESSION_QUEUE_BYTES; sent += chunk.length) session.ws.send(chunk)

    const problem = await session.next('problem')

    expect(problem.problem?.status).toBe(413)
    expect(problem.problem?.detail).toMatch(/no faster than it reads/)
    expect(await session.closed).toBe(1008)
  }, 30_000)
})
