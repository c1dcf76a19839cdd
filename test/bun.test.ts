/**
 * The Bun entry (src/bun.ts) as scripts/build-bun.mjs compiles it, one executable started as
 * `npm run start:bun` starts it, against the real engine, on what is its own: the flag and the
 * files it starts with; Bun's idle timeout, which must not cut a quiet event stream; its request
 * ids and request log on Bun's stdout; the Redis connection and the /docs renderer, modules of
 * their own in it; a graceful stop. The behaviours every runtime shares run in
 * test/runtimes/behaviour.test.ts (target `bun entry`), its exec sessions in
 * test/routes/exec-session.test.ts, its transport in test/transport/bun.test.ts.
 */
import { type ChildProcess, execFileSync } from 'node:child_process'
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { expectGracefulStop } from './support/bundle.ts'
import { direct, testEngineEnv } from './support/engine.ts'
import { uniqueName } from './support/gateway.ts'
import { TEST_LABEL, TEST_RUN } from './support/labels.ts'
import { spawnListening } from './support/listening.ts'
import { freePort } from './support/net.ts'
import { readSse } from './support/sse.ts'

const BUN = 'node_modules/.bin/bun'
const ENTRY = 'dist/dockgate-bun/dockgate'
const TOKEN = 'dgt_bun-entry-test-admin-token'

let dir: string
const children: ChildProcess[] = []

beforeAll(() => {
  execFileSync(process.execPath, ['scripts/build-bun.mjs'], { stdio: 'inherit' })
  dir = mkdtempSync(join(tmpdir(), 'dockgate-bun-entry-'))
  writeFileSync(join(dir, 'config.json'), JSON.stringify({ tokens: [] }))
}, 120_000)

afterAll(() => {
  for (const child of children) if (child.exitCode === null) child.kill('SIGKILL')
  if (dir) rmSync(dir, { recursive: true, force: true })
})

/**
 * The executable as `npm run start:bun` starts it, or with `source` Bun running src/bun.ts; in
 * `cwd` (the repository unless given).
 */
async function start(
  env: Record<string, string> = {},
  from: 'executable' | 'source' = 'executable',
  cwd?: string,
) {
  const port = await freePort()
  const [file, args] = from === 'executable' ? [resolve(ENTRY), []] : [resolve(BUN), ['src/bun.ts']]
  const { child, output } = await spawnListening(
    file,
    args,
    {
      PATH: process.env.PATH,
      HOME: dir,
      PORT: String(port),
      DOCKGATE_CONFIG: join(dir, 'config.json'),
      DOCKGATE_TOKEN: TOKEN,
      DOCKER_HOST: testEngineEnv().dockerHost,
      ...env,
    },
    undefined,
    cwd,
  )
  children.push(child)
  const call = (path: string, init: RequestInit = {}) =>
    fetch(`http://127.0.0.1:${port}${path}`, {
      ...init,
      headers: { authorization: `Bearer ${TOKEN}`, ...init.headers },
    })
  return { child, call, output }
}

/** The files of the build (a build under way has its own folder there). */
const built = () => readdirSync('dist/dockgate-bun').filter((file) => !file.startsWith('build-'))

describe('the Bun entry', () => {
  it('is one executable file, and a build replaces it whole (tests build at once)', () => {
    expect(built()).toEqual(['dockgate'])
    // An ELF executable, the runtime and the gateway's code in it.
    expect(readFileSync(ENTRY).subarray(0, 4)).toEqual(Buffer.from('\x7fELF', 'latin1'))
    expect(statSync(ENTRY).mode & 0o111).toBe(0o111)
    const before = statSync(ENTRY).ino
    execFileSync(process.execPath, ['scripts/build-bun.mjs'], { stdio: 'ignore' })
    expect(built()).toEqual(['dockgate'])
    expect(statSync(ENTRY).ino).not.toBe(before)
  }, 120_000)

  it('takes its settings from its environment and config file, not from a .env in its folder', async () => {
    const folder = mkdtempSync(join(dir, 'cwd-'))
    // Bun's standalone executables read these by default.
    writeFileSync(join(folder, '.env'), 'DOCKGATE_STORE=redis://127.0.0.1:1\n')
    writeFileSync(join(folder, 'bunfig.toml'), 'logLevel = "debug"\n')
    const gateway = await start({}, 'executable', folder)
    expect(gateway.output()).toMatch(/"msg":"listening".*"store":"memory"/)
    expect((await gateway.call('/healthz')).status).toBe(200)
    await expectGracefulStop(gateway.child)
  })

  it('keeps a quiet event stream open past Bun’s 10 s idle timeout', async () => {
    const gateway = await start()
    const created = await gateway.call('/v1/containers?start=true', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        image: testEngineEnv().image,
        name: uniqueName('bun-quiet'),
        cmd: ['sh', '-c', 'echo before; sleep 12; echo after'],
        labels: { [TEST_LABEL]: TEST_RUN },
      }),
    })
    expect(created.status).toBe(201)
    const { id } = (await created.json()) as { id: string }
    try {
      const response = await gateway.call(`/v1/containers/${id}/logs/stream`)
      const text = response.status === 200 ? '' : await response.text()
      expect(response.status, text).toBe(200)
      // Silent for 12 s (no heartbeat before 15 s): Bun closes an idle connection after 10.
      const events = await readSse(response).until('end', 20_000)
      const texts = events
        .filter((e) => e.event === 'stdout')
        .map((e) => JSON.parse(e.data).text as string)
      expect(texts).toEqual(['before', 'after'])
    } finally {
      await direct(`/containers/${id}?force=1`, { method: 'DELETE' })
      await expectGracefulStop(gateway.child)
    }
  }, 40_000)

  it.each([
    ['the executable (started with Bun’s header flag)', 'executable'],
    ['Bun running src/bun.ts without that flag', 'source'],
  ] as const)(
    'takes the longest query the OpenAPI document allows (37 KB): %s',
    async (_name, from) => {
      const gateway = await start({}, from)
      // 16 label selectors of 256 characters, each € three bytes, each byte percent-encoded.
      const selector = encodeURIComponent(`dgt-long=${'€'.repeat(247)}`)
      const query = Array.from({ length: 16 }, () => `label=${selector}`).join('&')
      expect(query.length).toBeGreaterThan(35_000)
      const response = await gateway.call(`/v1/containers?${query}`)
      expect(response.status).toBe(200)
      expect(await response.json()).toEqual({ containers: [] })
      await expectGracefulStop(gateway.child)
    },
  )

  it('answers with a request id, logs each request as a JSON line, and stops gracefully', async () => {
    const gateway = await start()
    const response = await gateway.call('/v1/system/version', {
      headers: { 'x-request-id': 'bun-entry-test-id' },
    })
    expect(response.status).toBe(200)
    expect(response.headers.get('x-request-id')).toBe('bun-entry-test-id')
    await response.body?.cancel()
    // Batched, not lost: the line is out by the time the process has exited.
    await expectGracefulStop(gateway.child)
    const lines = gateway
      .output()
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line))
    const request = lines.findIndex((l) => l.msg === 'request')
    expect(lines[request]).toMatchObject({
      requestId: 'bun-entry-test-id',
      route: '/v1/system/version',
      status: 200,
    })
    // The shutdown message follows the request line; the engine report, which waits for the
    // first answer (src/bootstrap.ts, firstAnswer), may come after it.
    const shutdown = lines.findIndex((l) => l.msg === 'shutting down' && l.signal === 'SIGTERM')
    expect(shutdown).toBeGreaterThan(request)
  })

  it('imports the /docs renderer and the Redis connection it holds', async () => {
    const memory = await start()
    const docs = await memory.call('/docs')
    expect(docs.status).toBe(200)
    const page = await docs.text()
    const asset = /src="(\/docs\/[^"]+\.js)"/.exec(page)?.[1]
    expect(asset).toBeDefined()
    const script = await memory.call(asset!)
    expect(script.status).toBe(200)
    // The renderer itself, served from the module that holds it.
    expect((await script.arrayBuffer()).byteLength).toBeGreaterThan(1_000_000)
    await expectGracefulStop(memory.child)
    // A Redis nobody listens on still lets the entry start.
    const redis = await start({
      DOCKGATE_STORE: `redis://127.0.0.1:${await freePort()}`,
      DOCKGATE_SECRET: 'bun-entry-test-secret-0123456789abcdef',
    })
    expect(redis.output()).toMatch(/"msg":"listening".*"store":"redis:\/\/127\.0\.0\.1:\d+\/0"/)
    redis.child.kill('SIGKILL')
  })
})
