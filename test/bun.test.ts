/**
 * The Bun entry (src/bun.ts, as scripts/build-bun.mjs compiles it) started as `npm run start:bun`
 * starts it, against the real engine, on what is its own: Bun's idle timeout, which must not cut
 * a quiet event stream; its request ids and request log on Bun's stdout; the Redis connection,
 * a script beside the entry that only `DOCKGATE_STORE=redis://…` loads; a graceful stop. The
 * behaviours every runtime shares run in test/runtimes/behaviour.test.ts (target `bun entry`),
 * its exec sessions in test/routes/exec-session.test.ts, its transport in test/transport/bun.test.ts.
 */
import { type ChildProcess, execFileSync } from 'node:child_process'
import { createHash } from 'node:crypto'
import {
  existsSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  writeFileSync,
} from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { expectGracefulStop } from './support/bundle.ts'
import { direct, testEngineEnv } from './support/engine.ts'
import { uniqueName } from './support/gateway.ts'
import { TEST_LABEL, TEST_RUN } from './support/labels.ts'
import { spawnListening } from './support/listening.ts'
import { freePort } from './support/net.ts'
import { readSse } from './support/sse.ts'

const BUN = 'node_modules/.bin/bun'
const ENTRY = 'dist/dockgate-bun/dockgate.cjs'
const REDIS_SCRIPT = 'dist/dockgate-bun/redis-connection.cjs'
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

/** As `npm run start:bun` starts it (src/bun.ts says why). */
const HEADER_FLAG = '--max-http-header-size=65536'

async function start(env: Record<string, string> = {}, flags: readonly string[] = [HEADER_FLAG]) {
  const port = await freePort()
  const { child, output } = await spawnListening(BUN, [...flags, ENTRY], {
    PATH: process.env.PATH,
    HOME: dir,
    PORT: String(port),
    DOCKGATE_CONFIG: join(dir, 'config.json'),
    DOCKGATE_TOKEN: TOKEN,
    DOCKER_HOST: testEngineEnv().dockerHost,
    ...env,
  })
  children.push(child)
  const call = (path: string, init: RequestInit = {}) =>
    fetch(`http://127.0.0.1:${port}${path}`, {
      ...init,
      headers: { authorization: `Bearer ${TOKEN}`, ...init.headers },
    })
  return { child, call, output }
}

/** Each file of the build, with a digest of its content. */
const built = () =>
  Object.fromEntries(
    readdirSync('dist/dockgate-bun')
      .filter((file) => !file.startsWith('build-'))
      .map((file) => [
        file,
        createHash('sha256')
          .update(readFileSync(join('dist/dockgate-bun', file)))
          .digest('hex'),
      ]),
  )

describe('the Bun entry', () => {
  it('is compiled to Bun’s bytecode, the same files from every build (tests build at once)', () => {
    expect(readFileSync(ENTRY, 'utf8')).toMatch(/^\/\/ @bun @bytecode @bun-cjs\n/)
    expect(readFileSync(`${ENTRY}.jsc`).length).toBeGreaterThan(1_000_000)
    const first = built()
    expect(Object.keys(first).sort()).toEqual([
      'dockgate.cjs',
      'dockgate.cjs.jsc',
      'docs-renderer.cjs',
      'redis-connection.cjs',
      'redis-connection.cjs.jsc',
    ])
    execFileSync(process.execPath, ['scripts/build-bun.mjs'], { stdio: 'ignore' })
    expect(built()).toEqual(first)
  }, 120_000)

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
    ['started as npm run start:bun starts it', [HEADER_FLAG]],
    ['started without Bun’s header flag', []],
  ])('takes the longest query the OpenAPI document allows (37 KB), %s', async (_name, flags) => {
    const gateway = await start({}, flags)
    // 16 label selectors of 256 characters, each € three bytes, each byte percent-encoded.
    const selector = encodeURIComponent(`dgt-long=${'€'.repeat(247)}`)
    const query = Array.from({ length: 16 }, () => `label=${selector}`).join('&')
    expect(query.length).toBeGreaterThan(35_000)
    const response = await gateway.call(`/v1/containers?${query}`)
    expect(response.status).toBe(200)
    expect(await response.json()).toEqual({ containers: [] })
    await expectGracefulStop(gateway.child)
  })

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

  it('starts with the memory store without its Redis script, and loads it for a Redis store', async () => {
    renameSync(REDIS_SCRIPT, `${REDIS_SCRIPT}.away`)
    try {
      const memory = await start()
      expect((await memory.call('/healthz')).status).toBe(200)
      await expectGracefulStop(memory.child)
    } finally {
      renameSync(`${REDIS_SCRIPT}.away`, REDIS_SCRIPT)
    }
    expect(existsSync(REDIS_SCRIPT)).toBe(true)
    // No I/O before the first use: a Redis nobody listens on still lets the entry start.
    const redis = await start({
      DOCKGATE_STORE: `redis://127.0.0.1:${await freePort()}`,
      DOCKGATE_SECRET: 'bun-entry-test-secret-0123456789abcdef',
    })
    expect(redis.output()).toMatch(/"msg":"listening".*"store":"redis:\/\/127\.0\.0\.1:\d+\/0"/)
    redis.child.kill('SIGKILL')
  })
})
