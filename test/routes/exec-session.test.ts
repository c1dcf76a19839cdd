/**
 * The exec WebSocket (`GET /v1/containers/{id}/exec/session`) on the Deno entry (`hono/deno`'s
 * `upgradeWebSocket`), started as `deno task start` runs it, driven by a real WebSocket client
 * (undici's) against the real engine: stdin echo, a resized TTY, exit codes, bad messages, a
 * client that leaves, and the refusals made over HTTP before the upgrade.
 */
import { type ChildProcess, spawn } from 'node:child_process'
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { request as httpRequest } from 'node:http'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { chromium } from 'playwright-core'
import { WebSocket } from 'undici'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { hashToken } from '../../src/auth/tokens.ts'
import { direct, engineContainerIds, testEngineEnv } from '../support/engine.ts'
import { uniqueName } from '../support/gateway.ts'
import { TEST_LABEL, TEST_RUN } from '../support/labels.ts'
import { freePort } from '../support/net.ts'
import { engineEvents, engineNow } from '../support/reliability.ts'

const PROBE = `exec-ws-${process.pid}-${Date.now().toString(36)}`
const LABELS = { [TEST_LABEL]: TEST_RUN, 'dockgate-probe': PROBE }
const token = (name: string) => `dgt_exec-session-${name}-token`
const SCOPES = ['containers:read', 'containers:write', 'exec']
const EXEC = { allowed: true, user: '65534:65534', maxTimeoutSeconds: 20 }

let dir: string
let child: ChildProcess
let base: string
let box: string

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'dockgate-exec-ws-'))
  const tokens = await Promise.all(
    [
      ['runner', { images: ['*'], exec: EXEC }],
      ['stranger', { images: ['*'], exec: EXEC }],
      ['forbidden', { images: ['*'] }],
    ].map(async ([name, policy]) => ({
      name,
      hash: await hashToken(token(name as string)),
      scopes: SCOPES,
      policy,
    })),
  )
  const configPath = join(dir, 'config.json')
  writeFileSync(configPath, JSON.stringify({ tokens }), { mode: 0o600 })
  const port = await freePort()
  const logPath = join(dir, 'gateway.log')
  const log = openSync(logPath, 'w')
  child = spawn('bash', ['scripts/deno-start.sh'], {
    env: {
      PATH: process.env.PATH,
      HOME: dir,
      PORT: String(port),
      DOCKGATE_CONFIG: configPath,
      DOCKER_HOST: testEngineEnv().dockerHost,
    },
    stdio: ['ignore', log, log],
  })
  closeSync(log)
  base = `127.0.0.1:${port}`
  const deadline = Date.now() + 60_000
  while (!readFileSync(logPath, 'utf8').includes('"listening"')) {
    if (child.exitCode !== null || Date.now() > deadline) {
      throw new Error(`the Deno gateway did not start:\n${readFileSync(logPath, 'utf8')}`)
    }
    await new Promise((r) => setTimeout(r, 100))
  }
  box = await create('runner')
}, 90_000)

afterAll(async () => {
  if (child && child.exitCode === null) child.kill('SIGTERM')
  for (const id of await engineContainerIds(`dockgate-probe=${PROBE}`)) {
    await direct(`/containers/${id}?force=1`, { method: 'DELETE' })
  }
  if (dir) rmSync(dir, { recursive: true, force: true })
})

const call = (path: string, role: string, init: RequestInit = {}) =>
  fetch(`http://${base}${path}`, {
    ...init,
    headers: { authorization: `Bearer ${token(role)}`, ...(init.headers ?? {}) },
  })

/** A stream ticket bound to this container's session. */
async function ticketFor(role: string, id: string): Promise<string> {
  const issued = await call('/v1/stream-tickets', role, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ stream: `/v1/containers/${id}/exec/session` }),
  })
  expect(issued.status).toBe(201)
  return ((await issued.json()) as { ticket: string }).ticket
}

async function create(role: string) {
  const response = await call('/v1/containers?start=true', role, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({
      image: testEngineEnv().image,
      name: uniqueName('exec-ws'),
      cmd: ['sleep', '600'],
      labels: LABELS,
    }),
  })
  expect(response.status).toBe(201)
  return ((await response.json()) as { id: string }).id
}

interface Session {
  ws: WebSocket
  messages: any[]
  /** Resolves with the close code. */
  closed: Promise<number>
  /** The next message of this type (waiting for it). */
  next(type: string, ms?: number): Promise<any>
  send(message: unknown): void
}

/** Opens a session as a browser would: with a stream ticket in the URL. */
async function open(role = 'runner', id = box): Promise<Session> {
  const ticket = await ticketFor(role, id)
  const ws = new WebSocket(`ws://${base}/v1/containers/${id}/exec/session?ticket=${ticket}`)
  const messages: any[] = []
  let wake = () => {}
  ws.addEventListener('message', (event) => {
    messages.push(JSON.parse(String(event.data)))
    wake()
  })
  const closed = new Promise<number>((resolve) =>
    ws.addEventListener('close', (event) => {
      resolve(event.code)
      wake()
    }),
  )
  await new Promise<void>((resolve, reject) => {
    ws.addEventListener('open', () => resolve())
    ws.addEventListener('error', () => reject(new Error('the WebSocket did not open')))
  })
  let seen = 0
  return {
    ws,
    messages,
    closed,
    send: (message) => ws.send(JSON.stringify(message)),
    async next(type, ms = 10_000) {
      const until = Date.now() + ms
      for (;;) {
        const at = messages.findIndex((m, i) => i >= seen && m.type === type)
        if (at !== -1) {
          seen = at + 1
          return messages[at]
        }
        if (Date.now() > until) throw new Error(`no ${type} in ${JSON.stringify(messages)}`)
        await new Promise<void>((resolve) => {
          wake = resolve
          setTimeout(resolve, 50)
        })
      }
    },
  }
}

const output = (messages: any[], type = 'stdout') =>
  messages
    .filter((m) => m.type === type)
    .map((m) => m.data)
    .join('')

/** A WebSocket handshake that is refused: its HTTP status (fetch cannot send `upgrade`). */
function upgradeRefusal(path: string, role: string) {
  return new Promise<{ status: number; contentType: string | undefined }>((resolve, reject) => {
    const [host, port] = base.split(':')
    const req = httpRequest({
      host,
      port: Number(port),
      path,
      headers: {
        authorization: `Bearer ${token(role)}`,
        connection: 'Upgrade',
        upgrade: 'websocket',
        'sec-websocket-version': '13',
        'sec-websocket-key': 'dGhlIHNhbXBsZSBub25jZQ==',
      },
    })
    req.on('response', (res) => {
      res.resume()
      resolve({ status: res.statusCode ?? 0, contentType: res.headers['content-type'] })
    })
    req.on('upgrade', (_res, socket) => {
      socket.destroy()
      reject(new Error('upgraded'))
    })
    req.on('error', reject)
    req.end()
  })
}

async function processes(id: string): Promise<string[]> {
  const answer = await direct(`/containers/${id}/top`)
  return (answer.json() as { Processes: string[][] }).Processes.map((p) => p.join(' '))
}

describe('the exec WebSocket on Deno', () => {
  it('echoes stdin through cat, ends on eof with the exit code', async () => {
    const session = await open()
    session.send({ type: 'start', cmd: ['cat'] })
    session.send({ type: 'stdin', data: 'hello\n' })
    session.ws.send(new TextEncoder().encode('bytes too\n'))
    await new Promise((r) => setTimeout(r, 200))
    session.send({ type: 'eof' })
    expect(await session.next('exit')).toEqual({ type: 'exit', exitCode: 0, timedOut: false })
    expect(output(session.messages)).toBe('hello\nbytes too\n')
    expect(await session.closed).toBe(1000)
  })

  it('keeps stderr apart, and says the exit code', async () => {
    const session = await open()
    session.send({ type: 'start', cmd: ['sh', '-c', 'echo out; echo err >&2; exit 9'] })
    expect((await session.next('exit')).exitCode).toBe(9)
    expect(output(session.messages)).toBe('out\n')
    expect(output(session.messages, 'stderr')).toBe('err\n')
  })

  it('runs a TTY that follows resize', async () => {
    const session = await open()
    session.send({ type: 'start', cmd: ['sh', '-c', 'read line; stty size'], tty: true })
    await new Promise((r) => setTimeout(r, 300))
    session.send({ type: 'resize', rows: 33, cols: 101 })
    await new Promise((r) => setTimeout(r, 200))
    session.send({ type: 'stdin', data: 'go\r' })
    expect((await session.next('exit')).exitCode).toBe(0)
    expect(output(session.messages)).toContain('33 101')
  })

  it('kills the command when the client closes the socket', async () => {
    const session = await open()
    session.send({ type: 'start', cmd: ['sh', '-c', 'echo up; sleep 303'] })
    await session.next('stdout')
    expect((await processes(box)).some((p) => p.includes('sleep 303'))).toBe(true)
    session.ws.close()
    const until = Date.now() + 10_000
    while ((await processes(box)).some((p) => p.includes('sleep 303'))) {
      expect(Date.now()).toBeLessThan(until)
      await new Promise((r) => setTimeout(r, 100))
    }
  })

  it('answers a bad first message with a problem and close 1008; nothing reaches the engine', async () => {
    const since = engineNow()
    for (const bad of [
      { type: 'start', cmd: ['true'], user: 'root' },
      { type: 'start', cmd: [] },
      { type: 'start', cmd: ['echo', 'a\u0000b'] },
      { type: 'start', cmd: ['true'], env: { 'A=B': 'c' } },
      { type: 'start', cmd: ['true'], timeoutSeconds: 21 },
      { type: 'stdin', data: 'before start' },
    ]) {
      const session = await open()
      session.send(bad)
      const problem = await session.next('problem')
      expect(problem.problem.status, JSON.stringify(bad)).toBeGreaterThanOrEqual(400)
      expect(problem.problem.status, JSON.stringify(bad)).toBeLessThan(500)
      expect(await session.closed).toBe(1008)
    }
    await new Promise((r) => setTimeout(r, 300))
    const events = await engineEvents(since, engineNow())
    expect(events.filter((e) => e.Action.startsWith('exec_') && e.Actor.ID === box)).toEqual([])
  })

  it('refuses over HTTP before the upgrade: 426 without one, 404 for others, 403 by policy', async () => {
    const plain = await call(`/v1/containers/${box}/exec/session`, 'runner')
    expect(plain.status).toBe(426)
    expect(plain.headers.get('content-type')).toBe('application/problem+json')
    const stranger = await upgradeRefusal(`/v1/containers/${box}/exec/session`, 'stranger')
    expect(stranger.status).toBe(404)
    expect(stranger.contentType).toBe('application/problem+json')
    const forbidden = await upgradeRefusal(`/v1/containers/${box}/exec/session`, 'forbidden')
    expect(forbidden.status).toBe(403)
  })
})

describe.skipIf(process.env.DOCKGATE_SKIP_BROWSER === '1')(
  'the exec WebSocket from headless Chromium',
  () => {
    it('runs an interactive TTY shell from a page: stdin, resize, exit', async () => {
      const browser = await chromium.launch({
        executablePath: '/usr/bin/chromium',
        args: ['--no-sandbox', '--headless=new'],
        timeout: 20_000,
      })
      try {
        const page = await browser.newPage()
        // Any page of the gateway's origin; the WebSocket carries the ticket, as a browser app's would.
        await page.goto(`http://${base}/healthz`)
        const ticket = await ticketFor('runner', box)
        // As text: this module's own `WebSocket` (undici's) must not stand in for the page's.
        const url = `ws://${base}/v1/containers/${box}/exec/session?ticket=${ticket}`
        const result = (await page.evaluate(`new Promise((resolve) => {
        const ws = new WebSocket(${JSON.stringify(url)})
        let output = ''
        let exit = null
        ws.onopen = () => {
          ws.send(JSON.stringify({ type: 'start', cmd: ['sh'], tty: true }))
          ws.send(JSON.stringify({ type: 'resize', rows: 42, cols: 131 }))
          ws.send(JSON.stringify({ type: 'stdin', data: 'stty size; exit 6\\r' }))
        }
        ws.onmessage = (event) => {
          const message = JSON.parse(event.data)
          if (message.type === 'stdout') output += message.data
          if (message.type === 'exit') exit = message
        }
        ws.onclose = (event) => resolve({ output, exit, code: event.code })
      })`)) as { output: string; exit: unknown; code: number }
        expect(result.output).toContain('42 131')
        expect(result.exit).toEqual({ type: 'exit', exitCode: 6, timedOut: false })
        expect(result.code).toBe(1000)
      } finally {
        await browser.close()
      }
    }, 60_000)
  },
)
