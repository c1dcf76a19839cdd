/**
 * The exec WebSocket (`GET /v1/containers/{id}/exec/session`) on the Deno entry (`hono/deno`'s
 * `upgradeWebSocket`), started as `deno task start` runs it, on the Node entry (the bundle
 * `npm start` runs: `@hono/node-server`'s `upgradeWebSocket` with `ws`) and on the Bun entry
 * (`dist/dockgate-bun/dockgate`: `hono/bun`'s, `Bun.serve`'s own WebSockets), driven by a real WebSocket client
 * (undici's) against the real engine: stdin echo, a resized TTY, exit codes, bad messages, a
 * client that leaves, and the refusals made over HTTP before the upgrade; a session holds one of
 * its principal's stream slots while it lives, and a revoked credential or the gateway's shutdown
 * ends it and stops its command.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process'
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { request as httpRequest } from 'node:http'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { chromium } from 'playwright-core'
import { WebSocket } from 'undici'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { hashToken } from '../../src/auth/tokens.ts'
import { direct, engineContainerIds, testEngineEnv } from '../support/engine.ts'
import { type FaultProxy, startFaultProxy } from '../support/fault-proxy.ts'
import { uniqueName } from '../support/gateway.ts'
import { TEST_LABEL, TEST_RUN } from '../support/labels.ts'
import { freePort } from '../support/net.ts'
import { NODE_FLAGS } from '../support/node-flags.ts'
import { engineEvents, engineNow } from '../support/reliability.ts'

const PROBE = `exec-ws-${process.pid}-${Date.now().toString(36)}`
const LABELS = { [TEST_LABEL]: TEST_RUN, 'dockgate-probe': PROBE }
const token = (name: string) => `dgt_exec-session-${name}-token`
const SCOPES = ['containers:read', 'containers:write', 'exec']
const EXEC = { allowed: true, user: '65534:65534', maxTimeoutSeconds: 20 }
/** `limits.streamsPerClient` of these gateways: the cap a session counts against. */
const STREAMS_PER_CLIENT = 3
const ROLES: [string, object][] = [
  ['runner', { images: ['*'], exec: EXEC }],
  ['stranger', { images: ['*'], exec: EXEC }],
  ['forbidden', { images: ['*'] }],
  // These act on the runner's container: it carries the labels they may see.
  ['capped', { images: ['*'], exec: EXEC, visibleLabels: [`dockgate-probe=${PROBE}`] }],
  ['revocable', { images: ['*'], exec: EXEC, visibleLabels: [`dockgate-probe=${PROBE}`] }],
  ['changeling', { images: ['*'], exec: EXEC, visibleLabels: [`dockgate-probe=${PROBE}`] }],
]

let dir: string
let configPath: string
let child: ChildProcess
let base: string
let box: string

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
  /** The close's reason, once closed. */
  closeReason(): string
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
  let reason = ''
  ws.addEventListener('message', (event) => {
    messages.push(JSON.parse(String(event.data)))
    wake()
  })
  const closed = new Promise<number>((resolve) =>
    ws.addEventListener('close', (event) => {
      reason = event.reason
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
    closeReason: () => reason,
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
  return new Promise<{
    status: number
    contentType: string | undefined
    retryAfter: string | undefined
  }>((resolve, reject) => {
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
      resolve({
        status: res.statusCode ?? 0,
        contentType: res.headers['content-type'],
        retryAfter: res.headers['retry-after'],
      })
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

/** Waits until no process of the container's runs `command` (the engine's own `top`). */
async function gone(command: string, ms = 10_000) {
  const until = Date.now() + ms
  while ((await processes(box)).some((p) => p.includes(command))) {
    expect(Date.now(), `${command} still runs`).toBeLessThan(until)
    await new Promise((r) => setTimeout(r, 100))
  }
}

/** The gateways' config file: these roles and policies, at most a few streams per client. */
async function writeConfig(roles: [string, object][]) {
  const tokens = await Promise.all(
    roles.map(async ([name, policy]) => ({
      name,
      hash: await hashToken(token(name)),
      scopes: SCOPES,
      policy,
    })),
  )
  const limits = { streamsPerClient: STREAMS_PER_CLIENT }
  writeFileSync(configPath, JSON.stringify({ tokens, limits }), { mode: 0o600 })
}

/** Opens a session as `role`, asking again while its slots are still being given back. */
async function openWhenFree(role: string, ms = 5_000): Promise<Session> {
  const until = Date.now() + ms
  for (;;) {
    try {
      return await open(role)
    } catch (error) {
      if (Date.now() > until) throw error
      await new Promise((r) => setTimeout(r, 100))
    }
  }
}

/** The long-running entries, each started as a process of its own (Bun: its own entry). */
const RUNTIMES = ['deno', 'node', 'bun'] as const

/**
 * Builds and starts a gateway of `runtime` on a free port, with the roles' config, in front of
 * `dockerHost`; then creates the runner's container (`box`).
 */
async function startGateway(
  runtime: (typeof RUNTIMES)[number],
  dockerHost = testEngineEnv().dockerHost,
) {
  if (runtime === 'node')
    execFileSync(process.execPath, ['scripts/build-node.mjs'], { stdio: 'inherit' })
  if (runtime === 'bun')
    execFileSync(process.execPath, ['scripts/build-bun.mjs'], { stdio: 'inherit' })
  dir = mkdtempSync(join(tmpdir(), 'dockgate-exec-ws-'))
  configPath = join(dir, 'config.json')
  await writeConfig(ROLES)
  const port = await freePort()
  const logPath = join(dir, 'gateway.log')
  const log = openSync(logPath, 'w')
  const [file, args] =
    runtime === 'deno'
      ? ['bash', ['scripts/deno-start.sh']]
      : runtime === 'bun'
        ? ['dist/dockgate-bun/dockgate', []]
        : [process.execPath, [...NODE_FLAGS, 'dist/dockgate.mjs']]
  child = spawn(file, args, {
    env: {
      PATH: process.env.PATH,
      HOME: dir,
      PORT: String(port),
      DOCKGATE_CONFIG: configPath,
      DOCKER_HOST: dockerHost,
    },
    stdio: ['ignore', log, log],
  })
  closeSync(log)
  base = `127.0.0.1:${port}`
  const deadline = Date.now() + 60_000
  while (!readFileSync(logPath, 'utf8').includes('"listening"')) {
    if (child.exitCode !== null || Date.now() > deadline) {
      throw new Error(`the ${runtime} gateway did not start:\n${readFileSync(logPath, 'utf8')}`)
    }
    await new Promise((r) => setTimeout(r, 100))
  }
  box = await create('runner')
}

async function stopGateway() {
  if (child && child.exitCode === null) child.kill('SIGTERM')
  for (const id of await engineContainerIds(`dockgate-probe=${PROBE}`)) {
    await direct(`/containers/${id}?force=1`, { method: 'DELETE' })
  }
  if (dir) rmSync(dir, { recursive: true, force: true })
}

describe.each(RUNTIMES)('on %s', (runtime) => {
  beforeAll(() => startGateway(runtime), 90_000)
  afterAll(stopGateway)

  describe('the exec WebSocket', () => {
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

    it("answers a command that could not run with the fixed words, never the engine's text", async () => {
      for (const start of [
        { type: 'start', cmd: ['no-such-command-xyz'] },
        { type: 'start', cmd: ['true'], workingDir: '/no/such/dir', tty: true },
      ]) {
        const session = await open()
        session.send(start)
        const problem = await session.next('problem')
        expect(problem.problem.status, JSON.stringify(start)).toBe(400)
        expect(problem.problem.detail).toMatch(/^The command could not be run/)
        // runc's text ("OCI runtime exec failed: … executable file not found in $PATH") never comes.
        expect(JSON.stringify(session.messages)).not.toMatch(
          /OCI|runc|not found|chdir|no such file/i,
        )
        expect(await session.closed).toBe(1008)
      }
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
      const closedAt = engineNow()
      session.ws.close()
      const until = Date.now() + 10_000
      while ((await processes(box)).some((p) => p.includes('sleep 303'))) {
        expect(Date.now()).toBeLessThan(until)
        await new Promise((r) => setTimeout(r, 100))
      }
      // The kill is an exec of its own (exit 0): it has ended before the next test watches the
      // engine's exec events.
      const killerEnded = async () =>
        (await engineEvents(closedAt, engineNow())).some(
          (e) =>
            e.Action === 'exec_die' && e.Actor.ID === box && e.Actor.Attributes?.exitCode === '0',
        )
      while (!(await killerEnded())) {
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
      // An exec that reached the engine begins with its exec_create (an exec_die in the window can
      // be the previous test's killed command, whose end the engine reports after its killer's).
      const events = await engineEvents(since, engineNow())
      expect(events.filter((e) => e.Action === 'exec_create' && e.Actor.ID === box)).toEqual([])
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

  describe('an exec run to its end, its output read off the upgraded start', () => {
    const exec = (body: object, accept?: string) =>
      call(`/v1/containers/${box}/exec`, 'runner', {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...(accept ? { accept } : {}) },
        body: JSON.stringify(body),
      })

    it('answers JSON: stdout and stderr apart, the exit code', async () => {
      const response = await exec({ cmd: ['sh', '-c', 'echo out; echo err >&2; exit 3'] })
      expect(response.status).toBe(200)
      expect(await response.json()).toEqual({
        exitCode: 3,
        timedOut: false,
        stdout: 'out\n',
        stderr: 'err\n',
        truncated: false,
      })
    })

    it('answers events: an output longer than the read-ahead, whole and in order', async () => {
      const response = await exec({ cmd: ['seq', '1', '100000'] }, 'text/event-stream')
      expect(response.status).toBe(200)
      const text = await response.text()
      const stdout = [...text.matchAll(/^event: stdout\ndata: (.*)$/gm)]
        .map((m) => (JSON.parse(m[1]!) as { text: string }).text)
        .join('')
      expect(stdout === `${Array.from({ length: 100_000 }, (_, i) => i + 1).join('\n')}\n`).toBe(
        true,
      )
      expect(text).toContain('event: end\ndata: {"exitCode":0,"timedOut":false}')
    })
  })

  describe('a session counts as an open stream, and the gateway can end it', () => {
    it("holds one of its principal's stream slots while it lives: at the cap, 429 before the upgrade", async () => {
      const path = `/v1/containers/${box}/exec/session`
      const held = [] as Session[]
      for (let i = 0; i < STREAMS_PER_CLIENT; i++) held.push(await openWhenFree('capped'))
      // One runs a command, the others have sent nothing yet: each holds its slot all the same.
      held[0]!.send({ type: 'start', cmd: ['sh', '-c', 'echo up; sleep 306'] })
      await held[0]!.next('stdout')
      const refused = await upgradeRefusal(path, 'capped')
      expect(refused.status).toBe(429)
      expect(refused.contentType).toBe('application/problem+json')
      expect(refused.retryAfter).toBe('5')
      // Nothing of the refused one reached the engine, and other principals are not held back.
      const other = await open('runner')
      other.ws.close()
      await other.closed
      // A session whose command ends gives its slot back with its close …
      held[1]!.send({ type: 'start', cmd: ['true'] })
      expect((await held[1]!.next('exit')).exitCode).toBe(0)
      expect(await held[1]!.closed).toBe(1000)
      const third = await openWhenFree('capped')
      expect(await upgradeRefusal(path, 'capped')).toMatchObject({ status: 429 })
      // … and so does one the client closes.
      for (const session of [held[0]!, held[2]!, third]) session.ws.close()
      await Promise.all([held[0]!.closed, held[2]!.closed, third.closed])
      await gone('sleep 306')
      const again = [] as Session[]
      for (let i = 0; i < STREAMS_PER_CLIENT; i++) again.push(await openWhenFree('capped'))
      for (const session of again) session.ws.close()
      await Promise.all(again.map((session) => session.closed))
    }, 60_000)

    it('ends on a reload that revokes its token (4001) or changes its policy (4002), and stops the command', async () => {
      const revoked = await open('revocable')
      revoked.send({ type: 'start', cmd: ['sh', '-c', 'echo up; sleep 304'] })
      await revoked.next('stdout')
      const waiting = await open('revocable')
      const changed = await open('changeling')
      changed.send({ type: 'start', cmd: ['sh', '-c', 'echo up; sleep 307'] })
      await changed.next('stdout')
      const kept = await open('runner')
      // The token of `revocable` removed, the policy of `changeling` changed; a reload (SIGHUP).
      await writeConfig([
        ...ROLES.filter(([name]) => name !== 'revocable' && name !== 'changeling'),
        [
          'changeling',
          {
            images: ['*'],
            exec: { ...EXEC, maxTimeoutSeconds: 19 },
            visibleLabels: [`dockgate-probe=${PROBE}`],
          },
        ],
      ])
      child.kill('SIGHUP')
      expect(await revoked.next('revoked')).toEqual({
        type: 'revoked',
        reason: 'revoked',
        detail: 'The credential that opened this stream is no longer accepted',
      })
      expect(await revoked.closed).toBe(4001)
      expect(revoked.closeReason()).toBe('revoked')
      expect(await waiting.closed).toBe(4001)
      expect((await changed.next('revoked')).reason).toBe('changed')
      expect(await changed.closed).toBe(4002)
      expect(changed.closeReason()).toBe('changed')
      // The close comes once the command is stopped.
      const running = await processes(box)
      expect(running.some((p) => p.includes('sleep 304') || p.includes('sleep 307'))).toBe(false)
      // A session of a credential that still counts as it did goes on.
      kept.send({ type: 'start', cmd: ['sh', '-c', 'echo still here'] })
      expect((await kept.next('exit')).exitCode).toBe(0)
      expect(output(kept.messages)).toBe('still here\n')
      const refused = await upgradeRefusal(`/v1/containers/${box}/exec/session`, 'revocable')
      expect(refused.status).toBe(401)
    }, 60_000)

    it('ends with the gateway: a shutdown message, close 1001, the command stopped, a clean exit', async () => {
      const session = await open('runner')
      session.send({ type: 'start', cmd: ['sh', '-c', 'echo up; sleep 305'] })
      await session.next('stdout')
      const exited = new Promise<number | null>((resolve) => child.once('exit', resolve))
      child.kill('SIGTERM')
      expect(await session.next('shutdown')).toMatchObject({ type: 'shutdown', reason: 'shutdown' })
      expect(await session.closed).toBe(1001)
      expect((await processes(box)).some((p) => p.includes('sleep 305'))).toBe(false)
      // Not the forced exit (1) after 10 s: the session let the server finish.
      expect(await exited).toBe(0)
    }, 30_000)
  })
})

describe('on node, in front of a connection to the engine that is cut', () => {
  let proxy: FaultProxy
  beforeAll(async () => {
    const tcp = testEngineEnv().tcpHost
    expect(tcp, 'scripts/engine.sh up must provide the TCP wire').toBeDefined()
    const target = new URL(tcp!.replace(/^tcp:/, 'http:'))
    proxy = await startFaultProxy({ host: target.hostname, port: Number(target.port) })
    await startGateway('node', proxy.dockerHost)
  }, 90_000)
  afterAll(async () => {
    await stopGateway()
    await proxy?.close()
  })

  it('a session whose output ends while its command runs gets a 502 problem, close 1011, its command stopped', async () => {
    const session = await open()
    session.send({ type: 'start', cmd: ['sh', '-c', 'echo up; sleep 306'] })
    await session.next('stdout')
    // What the gateway reads as the end of the output, the engine never sent: it still runs.
    proxy.end()
    expect((await session.next('problem')).problem).toMatchObject({
      status: 502,
      type: expect.stringMatching(/engine-error$/),
    })
    expect(await session.closed).toBe(1011)
    await gone('sleep 306')
  }, 30_000)
})
