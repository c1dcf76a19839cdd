import { type ChildProcess, execFileSync } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { SignJWT } from 'jose'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { hashToken } from '../src/auth/tokens.ts'
import { createDirect, testEngineB, testEngineEnv } from './support/engine.ts'
import { uniqueName } from './support/gateway.ts'
import { TEST_LABEL, TEST_RUN } from './support/labels.ts'
import { spawnListening } from './support/listening.ts'
import { freePort } from './support/net.ts'
import { NODE_FLAGS } from './support/node-flags.ts'
import { readSse } from './support/sse.ts'

const dir = mkdtempSync(join(tmpdir(), 'dockgate-node-'))
const configPath = join(dir, 'config.json')
const children: ChildProcess[] = []

/** What `npm start` runs: the bundle. `npm run token` runs dist/cli/token.js from tsc. */
const ENTRY = 'dist/dockgate.mjs'

beforeAll(() => {
  execFileSync('npx', ['tsc', '-p', 'tsconfig.build.json'], { stdio: 'inherit' })
  execFileSync(process.execPath, ['scripts/build-node.mjs'], { stdio: 'inherit' })
})

afterAll(() => {
  for (const child of children) if (child.exitCode === null) child.kill('SIGKILL')
  rmSync(dir, { recursive: true, force: true })
})

/** Starts the gateway as `npm start` does, and waits until it listens. */
async function startGateway(env: Record<string, string>) {
  const port = await freePort()
  const { child, output } = await spawnListening(
    process.execPath,
    [...NODE_FLAGS, ENTRY],
    { PATH: process.env.PATH, HOME: dir, PORT: String(port), DOCKGATE_CONFIG: configPath, ...env },
    15_000,
  )
  children.push(child)
  return { child, url: `http://127.0.0.1:${port}`, output }
}

const exited = (child: ChildProcess) =>
  new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)))

describe('the Node entry point', () => {
  it('creates one admin token on first start, shows it once and stores only its hash', async () => {
    const gateway = await startGateway({ DOCKER_HOST: testEngineEnv().dockerHost })
    const token = /\n {2}(dgt_[A-Za-z0-9_-]{43})\n/.exec(gateway.output())?.[1]
    expect(token).toBeDefined()

    const stored = readFileSync(configPath, 'utf8')
    expect(stored).not.toContain(token)
    expect(JSON.parse(stored).tokens).toEqual([
      { name: 'admin', hash: expect.stringMatching(/^sha256:[0-9a-f]{64}$/), scopes: ['admin'] },
    ])
    expect(statSync(configPath).mode & 0o777).toBe(0o600)

    const version = await fetch(`${gateway.url}/v1/system/version`, {
      headers: { authorization: `Bearer ${token}` },
    })
    expect(version.status).toBe(200)
    expect((await fetch(`${gateway.url}/v1/system/version`)).status).toBe(401)

    const exit = exited(gateway.child)
    gateway.child.kill('SIGTERM')
    expect(await exit).toBe(0)
  })

  it('keeps the existing token on the next start and prints none', async () => {
    const before = readFileSync(configPath, 'utf8')
    const gateway = await startGateway({ DOCKER_HOST: testEngineEnv().dockerHost })
    expect(gateway.output()).not.toContain('dgt_')
    expect(readFileSync(configPath, 'utf8')).toBe(before)
    const exit = exited(gateway.child)
    gateway.child.kill('SIGINT')
    expect(await exit).toBe(0)
  })

  it('serves without an engine, says how to start one, and reports not ready', async () => {
    const gateway = await startGateway({
      DOCKER_HOST: `unix://${join(dir, 'no-engine.sock')}`,
      DOCKGATE_TOKEN: 'dgt_x',
    })
    const ready = await fetch(`${gateway.url}/readyz`)
    expect(ready.status).toBe(503)
    expect(ready.headers.get('retry-after')).toBe('5')
    const deadline = Date.now() + 5_000
    while (!gateway.output().includes('scripts/engine.sh up') && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 50))
    }
    expect(gateway.output()).toContain('scripts/engine.sh up')
    const exit = exited(gateway.child)
    gateway.child.kill('SIGTERM')
    expect(await exit).toBe(0)
  })

  it('reloads the config when the file changes: a removed token stops working at once', async () => {
    const file = join(dir, 'reload.json')
    const keep = 'dgt_keep-this-token'
    const revoke = 'dgt_revoke-this-token'
    const entry = async (name: string, token: string) => ({
      name,
      hash: await hashToken(token),
      scopes: ['system:read'],
    })
    writeFileSync(
      file,
      JSON.stringify({ tokens: [await entry('keep', keep), await entry('revoke', revoke)] }),
    )
    const gateway = await startGateway({
      DOCKER_HOST: testEngineEnv().dockerHost,
      DOCKGATE_CONFIG: file,
    })
    const status = async (token: string) =>
      (
        await fetch(`${gateway.url}/v1/system/version`, {
          headers: { authorization: `Bearer ${token}` },
        })
      ).status
    expect(await status(revoke)).toBe(200)
    writeFileSync(file, JSON.stringify({ tokens: [await entry('keep', keep)] }))
    await expect.poll(() => status(revoke), { timeout: 5_000 }).toBe(401)
    expect(await status(keep)).toBe(200)

    gateway.child.kill('SIGHUP')
    await expect
      .poll(() => gateway.output().split('config reloaded').length, { timeout: 5_000 })
      .toBe(3)
    const exit = exited(gateway.child)
    gateway.child.kill('SIGTERM')
    expect(await exit).toBe(0)
  })

  it('accepts HS256 JWTs when DOCKGATE_JWT_SECRET is set', async () => {
    const secret = 'an-automation-secret-of-32-bytes-or-more'
    const gateway = await startGateway({
      DOCKER_HOST: testEngineEnv().dockerHost,
      DOCKGATE_JWT_SECRET: secret,
      DOCKGATE_CONFIG: join(dir, 'jwt.json'),
    })
    expect(gateway.output()).not.toContain('dgt_')
    const token = await new SignJWT({ scope: 'system:read' })
      .setProtectedHeader({ alg: 'HS256' })
      .setSubject('ci')
      .setAudience('dockgate')
      .setExpirationTime('1m')
      .sign(new TextEncoder().encode(secret))
    const response = await fetch(`${gateway.url}/v1/system/version`, {
      headers: { authorization: `Bearer ${token}` },
    })
    expect(response.status).toBe(200)
    gateway.child.kill('SIGTERM')
  })

  it('creates tokens with npm run token: shown once, only the hash stored', () => {
    const file = join(dir, 'cli.json')
    const output = execFileSync(
      process.execPath,
      [
        'dist/cli/token.js',
        '--name',
        'reporting',
        '--scopes',
        'containers:read,logs:read',
        '--config',
        file,
        '--write',
      ],
      { encoding: 'utf8' },
    )
    const token = /\n {2}(dgt_[A-Za-z0-9_-]{43})\n/.exec(output)?.[1]
    expect(token).toBeDefined()
    const stored = readFileSync(file, 'utf8')
    expect(stored).not.toContain(token)
    expect(JSON.parse(stored).tokens).toEqual([
      {
        name: 'reporting',
        hash: expect.stringMatching(/^sha256:/),
        scopes: ['containers:read', 'logs:read'],
      },
    ])
    expect(statSync(file).mode & 0o777).toBe(0o600)
    expect(() =>
      execFileSync(process.execPath, ['dist/cli/token.js', '--name', 'x', '--scopes', 'root'], {
        stdio: 'pipe',
      }),
    ).toThrow()
  })

  it.each([
    [
      'a malformed DOCKGATE_STORE',
      { DOCKGATE_STORE: 'redis//:hunter2@127.0.0.1:6379' },
      /^DOCKGATE_STORE is not a URL/,
    ],
    [
      'Redis without DOCKGATE_SECRET',
      { DOCKGATE_STORE: 'redis://:hunter2@127.0.0.1:6379/0' },
      /^DOCKGATE_STORE is redis:\/\/\*\*\*@127\.0\.0\.1:6379\/0 but DOCKGATE_SECRET is not set/,
    ],
  ])('refuses to start with %s, in one line that shows no password', (_what, env, reason) => {
    let failure: { status: number; stderr: Buffer } | undefined
    try {
      execFileSync(process.execPath, [ENTRY], {
        env: { PATH: process.env.PATH, DOCKGATE_CONFIG: configPath, PORT: '0', ...env },
        stdio: 'pipe',
        timeout: 10_000,
      })
    } catch (error) {
      failure = error as { status: number; stderr: Buffer }
    }
    expect(failure?.status).toBe(1)
    const message = String(failure?.stderr).trim()
    expect(message).toMatch(reason)
    expect(message.split('\n')).toHaveLength(1)
    expect(message).not.toContain('hunter2')
  })

  it('with an unreachable Redis store: serves, /readyz says why, and the password shows nowhere', async () => {
    const port = await freePort()
    const gateway = await startGateway({
      DOCKER_HOST: testEngineEnv().dockerHost,
      DOCKGATE_STORE: `redis://:hunter2@127.0.0.1:${port}/0`,
      DOCKGATE_SECRET: 'node-test-secret-0123456789abcdef',
    })
    const ready = await fetch(`${gateway.url}/readyz`)
    expect(ready.status).toBe(503)
    const body = await ready.text()
    expect(body).toContain(`the state store redis://***@127.0.0.1:${port}/0 does not answer`)
    expect(body).not.toContain('hunter2')
    expect(gateway.output()).toContain(`"store":"redis://***@127.0.0.1:${port}/0"`)
    expect(gateway.output()).not.toContain('hunter2')
    gateway.child.kill('SIGTERM')
    expect(await exited(gateway.child)).toBe(0)
    expect(gateway.output()).not.toContain('hunter2')
  })

  it('reaches every engine of the config over its own transport, and stops cleanly', async () => {
    const b = testEngineB()
    const enginesConfig = join(dir, 'engines.json')
    const token = 'dgt_node-engines-test-token'
    writeFileSync(
      enginesConfig,
      JSON.stringify({
        tokens: [
          {
            name: 'ops',
            hash: await hashToken(token),
            scopes: ['admin'],
            policy: { engines: ['*'] },
          },
        ],
        engines: {
          b: { host: b.tlsHost, tlsVerify: true, certPath: b.certPath },
          gone: { host: `unix://${join(dir, 'no-engine-b.sock')}` },
        },
      }),
    )
    const gateway = await startGateway({
      DOCKER_HOST: testEngineEnv().dockerHost,
      DOCKGATE_CONFIG: enginesConfig,
    })
    const auth = { authorization: `Bearer ${token}` }
    const list = await fetch(`${gateway.url}/v1/engines`, { headers: auth })
    expect(list.status).toBe(200)
    const { engines } = (await list.json()) as { engines: { name: string; reachable: boolean }[] }
    expect(engines.map((e) => [e.name, e.reachable])).toEqual([
      ['b', true],
      ['default', true],
      ['gone', false],
    ])
    const onB = await fetch(`${gateway.url}/v1/engines/b/system/version`, { headers: auth })
    expect(onB.status).toBe(200)
    const gone = await fetch(`${gateway.url}/v1/engines/gone/containers`, { headers: auth })
    expect(gone.status).toBe(503)
    expect(gone.headers.get('retry-after')).toBe('5')
    // Each engine reported once the gateway has answered its first request, by name.
    const reports = [
      /"msg":"engine answers","engine":"b"/,
      /"msg":"engine gone does not answer at unix:/,
    ]
    const deadline = Date.now() + 10_000
    while (reports.some((r) => !r.test(gateway.output())) && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 50))
    }
    for (const report of reports) expect(gateway.output()).toMatch(report)
    const exit = exited(gateway.child)
    gateway.child.kill('SIGTERM')
    expect(await exit).toBe(0)
  })

  it('holds as many events for resumes as the config file says', async () => {
    const file = join(dir, 'small-ring.json')
    const token = 'dgt_node-small-ring-token'
    writeFileSync(
      file,
      JSON.stringify({
        tokens: [{ name: 'ops', hash: await hashToken(token), scopes: ['admin'] }],
        events: { ringSize: 3 },
      }),
    )
    const gateway = await startGateway({
      DOCKER_HOST: testEngineEnv().dockerHost,
      DOCKGATE_CONFIG: file,
    })
    const run = uniqueName('ring')
    const path = `${gateway.url}/v1/events?${new URLSearchParams({ label: `${TEST_LABEL}-ring=${run}` })}`
    const open = async (headers: Record<string, string> = {}) => {
      const response = await fetch(path, {
        headers: { authorization: `Bearer ${token}`, ...headers },
      })
      expect(response.status).toBe(200)
      return readSse(response)
    }
    const first = await open()
    for (let i = 0; i < 5; i++) {
      await createDirect({
        name: uniqueName('ring'),
        cmd: ['true'],
        labels: { [TEST_LABEL]: TEST_RUN, [`${TEST_LABEL}-ring`]: run },
      })
    }
    const created = await first.take(5)
    await first.close()
    // A default ring (10,000) would still hold the four events after the first: 3 do not.
    const resumed = await open({ 'last-event-id': created[0]!.id! })
    const [resync] = await resumed.take(1)
    expect(resync!.event).toBe('resync')
    expect(JSON.parse(resync!.data)).toEqual({ reason: 'gap' })
    await resumed.close()
    const exit = exited(gateway.child)
    gateway.child.kill('SIGTERM')
    expect(await exit).toBe(0)
  })

  it('refuses to start with an invalid config file and says which field is wrong', () => {
    const bad = join(dir, 'bad.json')
    execFileSync('sh', [
      '-c',
      `echo '{"tokens":[{"name":"x","hash":"plain","scopes":["admin"]}]}' > ${bad}`,
    ])
    let message = ''
    try {
      execFileSync(process.execPath, [ENTRY], {
        env: { PATH: process.env.PATH, DOCKGATE_CONFIG: bad, PORT: '0' },
        stdio: 'pipe',
        timeout: 10_000,
      })
    } catch (error) {
      message = String((error as { stderr: Buffer }).stderr)
    }
    expect(message).toContain('tokens.0.hash')
  })
})
