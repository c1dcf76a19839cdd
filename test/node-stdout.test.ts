/**
 * The Node entry writes its request log and audit records in batches (src/node/stdout.ts):
 * nothing may be lost or split on the way, also when the gateway stops right after a burst.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { testEngineEnv } from './support/engine.ts'
import { freePort } from './support/net.ts'

const dir = mkdtempSync(join(tmpdir(), 'dockgate-stdout-'))
const TOKEN = 'dgt_stdout-test-token'
let child: ChildProcess | undefined

beforeAll(() => {
  execFileSync('npx', ['tsc', '-p', 'tsconfig.build.json'], { stdio: 'inherit' })
})

afterAll(() => {
  if (child?.exitCode === null) child.kill('SIGKILL')
  rmSync(dir, { recursive: true, force: true })
})

describe('the Node entry’s stdout', () => {
  it('has every request line and audit record, whole, when it stops right after a burst', async () => {
    const port = await freePort()
    // The burst must not meet the rate limit: every request is answered by the route or by auth.
    const configPath = join(dir, 'config.json')
    writeFileSync(
      configPath,
      JSON.stringify({ limits: { requestsPerSecond: 10_000, burst: 10_000 } }),
    )
    const gateway = spawn(process.execPath, ['dist/node.js'], {
      env: {
        PATH: process.env.PATH,
        HOME: dir,
        PORT: String(port),
        DOCKER_HOST: testEngineEnv().dockerHost,
        DOCKGATE_TOKEN: TOKEN,
        DOCKGATE_CONFIG: configPath,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    child = gateway
    const exited = new Promise<number | null>((resolve) => gateway.once('exit', resolve))
    let output = ''
    gateway.stdout!.on('data', (chunk) => (output += chunk))
    gateway.stderr!.on('data', (chunk) => (output += chunk))
    await expect.poll(() => output.includes('"listening"'), { timeout: 15_000 }).toBe(true)

    const url = `http://127.0.0.1:${port}/v1/system/version`
    const authorized = { headers: { authorization: `Bearer ${TOKEN}` } }
    const statuses: number[] = []
    const ids: (string | null)[] = []
    for (let round = 0; round < 20; round++) {
      const answers = await Promise.all([
        ...Array.from({ length: 8 }, () => fetch(url, authorized)),
        ...Array.from({ length: 2 }, () => fetch(url)),
      ])
      for (const answer of answers) {
        statuses.push(answer.status)
        ids.push(answer.headers.get('x-request-id'))
        await answer.arrayBuffer()
      }
    }
    expect(statuses.filter((s) => s === 200)).toHaveLength(160)
    expect(statuses.filter((s) => s === 401)).toHaveLength(40)

    gateway.kill('SIGTERM')
    expect(await exited).toBe(0)
    const lines = output.trimEnd().split('\n')
    const records = lines.map((line) => JSON.parse(line) as Record<string, unknown>)
    const requests = records.filter((r) => r.msg === 'request' && r.path === '/v1/system/version')
    expect(requests).toHaveLength(200)
    expect(requests.filter((r) => r.status === 401)).toHaveLength(40)
    expect(records.filter((r) => r.audit === true && r.reason === 'unauthorized')).toHaveLength(40)
    // The Node entry writes the request id on Node's own response: each answer has its own,
    // the same as in its log line.
    expect(new Set(ids).size).toBe(200)
    expect(new Set(requests.map((r) => r.requestId))).toEqual(new Set(ids))
    // The shutdown message follows every request line (other messages may follow it).
    const shutdown = records.findIndex((r) => r.msg === 'shutting down' && r.signal === 'SIGTERM')
    expect(shutdown).toBeGreaterThan(records.lastIndexOf(requests.at(-1)!))
  })
})
