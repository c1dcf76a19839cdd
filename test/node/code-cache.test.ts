/**
 * The Node bundle's loader (scripts/node-bundle/code-cache-loader.mjs) and V8's code cache beside
 * the bundled script: the first start writes it, the next one uses it as it is, and a cache V8
 * refuses (here: bytes that are no code cache at all) only costs compiling, and is written anew.
 * Whatever the cache, the gateway answers the same, `/docs` included (the renderer is required
 * from beside the script: a script compiled from a code cache cannot `import()` on Node 20).
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process'
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { expectDocsRendererServed } from '../support/docs.ts'
import { testEngineEnv } from '../support/engine.ts'
import { untilListening } from '../support/listening.ts'
import { freePort } from '../support/net.ts'
import { NODE_FLAGS } from '../support/node-flags.ts'

const dir = mkdtempSync(join(tmpdir(), 'dockgate-code-cache-'))
const entry = join(dir, 'dockgate.mjs')
const chunks = join(dir, 'dockgate-chunks')
const children: ChildProcess[] = []

beforeAll(() => {
  execFileSync(process.execPath, ['scripts/build-node.mjs', `--outfile=${entry}`], {
    stdio: 'inherit',
  })
  writeFileSync(join(dir, 'config.json'), JSON.stringify({ tokens: [] }))
}, 120_000)

afterAll(() => {
  for (const child of children) if (child.exitCode === null) child.kill('SIGKILL')
  rmSync(dir, { recursive: true, force: true })
})

const script = () => readdirSync(chunks).filter((f) => /^app-[0-9a-f]{16}\.cjs$/.test(f))
const cacheFile = () => join(chunks, `${script()[0]}.v8cache`)

/** Starts the bundle, checks what it answers, and stops it gracefully (SIGTERM). */
async function startAnswerStop(flags: string[] = [], { runMs = 0 } = {}) {
  const port = await freePort()
  const child = spawn(process.execPath, [...NODE_FLAGS, ...flags, entry], {
    env: {
      PATH: process.env.PATH,
      HOME: dir,
      PORT: String(port),
      DOCKGATE_CONFIG: join(dir, 'config.json'),
      DOCKGATE_TOKEN: 'code-cache-test-token-0123456789abcdef',
      DOCKER_HOST: testEngineEnv().dockerHost,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  children.push(child)
  let output = ''
  child.stdout!.on('data', (chunk) => (output += chunk))
  child.stderr!.on('data', (chunk) => (output += chunk))
  await untilListening(child, () => output)
  const url = `http://127.0.0.1:${port}`
  const health = await fetch(`${url}/healthz`)
  expect(health.status).toBe(200)
  expect(await health.json()).toMatchObject({ status: 'ok' })
  const version = await fetch(`${url}/v1/system/version`, {
    headers: { authorization: 'Bearer code-cache-test-token-0123456789abcdef' },
  })
  expect(version.status).toBe(200)
  expect(await version.json()).toMatchObject({ gateway: { version: expect.any(String) } })
  await expectDocsRendererServed(url)
  // Past the loader's end of the start (1 s), when asked.
  await new Promise((resolve) => setTimeout(resolve, runMs))
  const exit = new Promise<number | null>((resolve) => child.once('exit', resolve))
  child.kill('SIGTERM')
  expect(await exit).toBe(0)
  // No request failed inside (the engine's own churn at shutdown, a read model still loading
  // other tests' containers, is not this test's business).
  expect(output).not.toMatch(/"msg":"unexpected error"|ERR_VM_|Cannot find module/)
}

describe('the Node bundle and its code cache', () => {
  it('is one script named by its content, without a cache until the first start', () => {
    expect(script()).toHaveLength(1)
    expect(readFileSync(entry, 'utf8')).toContain(`./dockgate-chunks/${script()[0]}`)
    expect(() => statSync(cacheFile())).toThrow()
  })

  it('writes none from a start that fails (it compiled only part of a start)', async () => {
    const badConfig = join(dir, 'bad-config.json')
    writeFileSync(badConfig, '{"tokens": "not a list"}')
    const child = spawn(process.execPath, [...NODE_FLAGS, entry], {
      env: { PATH: process.env.PATH, HOME: dir, PORT: '0', DOCKGATE_CONFIG: badConfig },
      stdio: 'ignore',
    })
    children.push(child)
    const code = await new Promise<number | null>((resolve) => child.once('exit', resolve))
    expect(code).toBe(1)
    expect(() => statSync(cacheFile())).toThrow()
  }, 30_000)

  it('leaves the cache alone under --enable-source-maps (Node maps only what its loader compiles)', async () => {
    await startAnswerStop(['--enable-source-maps'])
    expect(() => statSync(cacheFile())).toThrow()
  }, 60_000)

  it('writes the cache on the first start, and uses it untouched on the next', async () => {
    await startAnswerStop()
    const written = statSync(cacheFile())
    expect(written.size).toBeGreaterThan(100_000)
    await startAnswerStop()
    const after = statSync(cacheFile())
    expect(after.mtimeMs).toBe(written.mtimeMs)
    expect(after.size).toBe(written.size)
  }, 60_000)

  it('sets the heap’s growth once the start is over, after the cache, which stays good', async () => {
    // Preloaded: every V8 flag the process sets at run time, in order, with the cache's state
    // then (the loader must write the cache before it changes the flags the cache is checked against).
    const calls = join(dir, 'flags.log')
    const preload = join(dir, 'flags.cjs')
    writeFileSync(
      preload,
      `const v8 = require('node:v8'), fs = require('node:fs'); const set = v8.setFlagsFromString
       v8.setFlagsFromString = (flags) => {
         fs.appendFileSync(${JSON.stringify(calls)}, flags + ' ' + fs.existsSync(${JSON.stringify(cacheFile())}) + '\\n')
         return set(flags)
       }\n`,
    )
    rmSync(cacheFile(), { force: true })
    await startAnswerStop(['--require', preload], { runMs: 1_500 })
    expect(readFileSync(calls, 'utf8')).toBe('--heap-growing-percent=300 true\n')
    const written = statSync(cacheFile())
    // The next start takes the cache as it is: it was made under the flags it starts with.
    await startAnswerStop([], { runMs: 1_500 })
    expect(statSync(cacheFile()).mtimeMs).toBe(written.mtimeMs)
  }, 60_000)

  it('starts alike from a cache V8 refuses, and writes a good one in its place', async () => {
    const garbage = Buffer.alloc(4096, 7)
    writeFileSync(cacheFile(), garbage)
    await startAnswerStop()
    const rewritten = readFileSync(cacheFile())
    expect(rewritten.length).toBeGreaterThan(100_000)
    expect(rewritten.equals(garbage)).toBe(false)
  }, 60_000)
})
