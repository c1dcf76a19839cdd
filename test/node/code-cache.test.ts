/**
 * The Node bundle's loader (scripts/node-bundle/code-cache-loader.mjs) and V8's code cache beside
 * the bundled script: the first start writes it, the next one uses it as it is, and a cache V8
 * refuses (here: bytes that are no code cache at all) only costs compiling, and is written anew.
 * Whatever the cache, the gateway answers the same, `/docs` included (the renderer is required
 * from beside the script: a script compiled from a code cache cannot `import()` on Node 20).
 */
import { spawn } from 'node:child_process'
import { readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { bundleForTests, expectGatewayAnswers, expectGracefulStop } from '../support/bundle.ts'
import { NODE_FLAGS } from '../support/node-flags.ts'

const TOKEN = 'code-cache-test-token-0123456789abcdef'
const bundle = bundleForTests('code-cache', TOKEN)
const { dir, entry } = bundle
const script = bundle.scripts
const cacheFile = () => join(bundle.chunks, `${script()[0]}.v8cache`)

/** Starts the bundle, checks what it answers, and stops it gracefully (SIGTERM). */
async function startAnswerStop(flags: string[] = [], { runMs = 0 } = {}) {
  const { child, url, output } = await bundle.start({ args: [...NODE_FLAGS, ...flags] })
  await expectGatewayAnswers(url, TOKEN)
  // Past the loader's end of the start (1 s), when asked.
  await new Promise((resolve) => setTimeout(resolve, runMs))
  await expectGracefulStop(child)
  // No request failed inside (the engine's own churn at shutdown, a read model still loading
  // other tests' containers, is not this test's business).
  expect(output()).not.toMatch(/"msg":"unexpected error"|ERR_VM_|Cannot find module/)
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
    bundle.children.push(child)
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
