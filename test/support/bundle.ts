/**
 * The Node bundle (scripts/build-node.mjs) built into a folder of a test file's own, and started
 * from there as a process: by Node (with the suite's flags) or by another runtime (Bun).
 */
import { type ChildProcess, execFileSync } from 'node:child_process'
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, expect } from 'vitest'
import { expectDocsRendererServed } from './docs.ts'
import { testEngineEnv } from './engine.ts'
import { spawnListening } from './listening.ts'
import { freePort } from './net.ts'
import { NODE_FLAGS } from './node-flags.ts'

export interface StartedBundle {
  child: ChildProcess
  url: string
  /** What it wrote so far, stdout and stderr together. */
  output(): string
}

/**
 * Builds the bundle before the file's tests (a config without tokens beside it) and removes the
 * folder, and any process still running from it, after them.
 */
export function bundleForTests(name: string, token: string) {
  const dir = mkdtempSync(join(tmpdir(), `dockgate-${name}-`))
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

  /** The bundled scripts' names (one per build; the next build's replaces it). */
  const scripts = () => readdirSync(chunks).filter((f) => /^app-[0-9a-f]{16}\.cjs$/.test(f))

  /**
   * Starts the bundle with `args` before the entry (Node's flags by default) on `runtime`, the
   * admin token given, against the test engine; resolves once it listens.
   */
  async function start(
    options: { runtime?: string; args?: readonly string[] } = {},
  ): Promise<StartedBundle> {
    const port = await freePort()
    const { child, output } = await spawnListening(
      options.runtime ?? process.execPath,
      [...(options.args ?? NODE_FLAGS), entry],
      {
        PATH: process.env.PATH,
        HOME: dir,
        PORT: String(port),
        DOCKGATE_CONFIG: join(dir, 'config.json'),
        DOCKGATE_TOKEN: token,
        DOCKER_HOST: testEngineEnv().dockerHost,
      },
    )
    children.push(child)
    return { child, url: `http://127.0.0.1:${port}`, output }
  }

  return { dir, entry, chunks, scripts, start, children }
}

/** `/healthz`, an authenticated `/v1/system/version` and the `/docs` renderer answer. */
export async function expectGatewayAnswers(url: string, token: string): Promise<void> {
  const health = await fetch(`${url}/healthz`)
  expect(health.status).toBe(200)
  expect(await health.json()).toMatchObject({ status: 'ok' })
  const version = await fetch(`${url}/v1/system/version`, {
    headers: { authorization: `Bearer ${token}` },
  })
  expect(version.status).toBe(200)
  expect(await version.json()).toMatchObject({ gateway: { version: expect.any(String) } })
  await expectDocsRendererServed(url)
}

/** Stops it with SIGTERM; expects a clean exit. */
export async function expectGracefulStop(child: ChildProcess): Promise<void> {
  const exit = new Promise<number | null>((resolve) => child.once('exit', resolve))
  child.kill('SIGTERM')
  expect(await exit).toBe(0)
}
