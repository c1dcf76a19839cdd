/**
 * The Node bundle on Bun: scripts/build-node.mjs compiles the bundled script for Bun as well
 * (`<script>.bun.cjs`, JavaScriptCore's bytecode beside it in `.jsc`), and the loader
 * (scripts/node-bundle/code-cache-loader.mjs) requires that on Bun. The gateway answers the same
 * from it, from a bytecode Bun refuses (Bun parses the source then), and from the plain script
 * when there is no compiled one.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process'
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
import { expectDocsRendererServed } from '../support/docs.ts'
import { testEngineEnv } from '../support/engine.ts'
import { untilListening } from '../support/listening.ts'
import { freePort } from '../support/net.ts'

const BUN = 'node_modules/.bin/bun'
const TOKEN = 'bun-bytecode-test-token-0123456789abcdef'
const dir = mkdtempSync(join(tmpdir(), 'dockgate-bun-bytecode-'))
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

const script = () => {
  const [name] = readdirSync(chunks).filter((f) => /^app-[0-9a-f]{16}\.cjs$/.test(f))
  return join(chunks, name!)
}
const compiled = () => `${script()}.bun.cjs`

/** Starts the bundle on Bun, checks what it answers, and stops it gracefully (SIGTERM). */
async function startAnswerStop() {
  const port = await freePort()
  const child = spawn(BUN, [entry], {
    env: {
      PATH: process.env.PATH,
      HOME: dir,
      PORT: String(port),
      DOCKGATE_CONFIG: join(dir, 'config.json'),
      DOCKGATE_TOKEN: TOKEN,
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
    headers: { authorization: `Bearer ${TOKEN}` },
  })
  expect(version.status).toBe(200)
  expect(await version.json()).toMatchObject({ gateway: { version: expect.any(String) } })
  await expectDocsRendererServed(url)
  const exit = new Promise<number | null>((resolve) => child.once('exit', resolve))
  child.kill('SIGTERM')
  expect(await exit).toBe(0)
  expect(output).not.toMatch(/"msg":"unexpected error"|Cannot find module/)
}

describe('the Node bundle on Bun', () => {
  it('is compiled for Bun beside the script, with its bytecode', () => {
    expect(readFileSync(compiled(), 'utf8')).toMatch(/^\/\/ @bun @bytecode @bun-cjs\n/)
    expect(readFileSync(`${compiled()}.jsc`).length).toBeGreaterThan(1_000_000)
  })

  it('starts from the compiled script (the plain one moved away)', async () => {
    const plain = script()
    renameSync(plain, `${plain}.away`)
    try {
      await startAnswerStop()
    } finally {
      renameSync(`${plain}.away`, plain)
    }
  }, 60_000)

  it('starts alike from bytecode Bun refuses', async () => {
    const bytecode = `${compiled()}.jsc`
    const good = readFileSync(bytecode)
    writeFileSync(bytecode, Buffer.alloc(4096, 7))
    try {
      await startAnswerStop()
    } finally {
      writeFileSync(bytecode, good)
    }
  }, 60_000)

  it('starts from the plain script when there is no compiled one', async () => {
    const bun = compiled()
    renameSync(bun, `${bun}.away`)
    try {
      expect(existsSync(bun)).toBe(false)
      await startAnswerStop()
    } finally {
      renameSync(`${bun}.away`, bun)
    }
  }, 60_000)
})
