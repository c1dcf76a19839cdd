/**
 * The Deno transport (src/transport/deno.ts), run by Deno itself (test/transport/deno-probe.ts):
 * over each wire, an exec's output read ahead of a consumer that holds it until the engine has
 * ended it comes whole, with its exit code; through a connection that breaks mid-output, the exec
 * fails (not an end with output missing) and is stopped. Its exec sessions are
 * test/routes/exec-session.test.ts's.
 */
import { execFile } from 'node:child_process'
import { describe, expect, it } from 'vitest'
import { engineWires, testEngineEnv } from '../support/engine.ts'
import { startFaultProxy } from '../support/fault-proxy.ts'

const DENO = 'node_modules/.bin/deno'
const env = testEngineEnv()

/** Runs the probe (its `scenario`) to its end: its last line, parsed; `onLine` sees each line as it comes. */
function runProbe(
  scenario: 'held' | 'broken',
  dockerEnv: Record<string, string | undefined>,
  onLine: (line: string) => void = () => {},
) {
  return new Promise<Record<string, unknown>>((resolve, reject) => {
    const child = execFile(
      DENO,
      [
        'run',
        '--no-prompt',
        '--allow-net',
        '--allow-read',
        '--allow-write',
        '--allow-env',
        'test/transport/deno-probe.ts',
        scenario,
      ],
      {
        env: {
          PATH: process.env.PATH,
          HOME: process.env.HOME,
          ...(process.env.DENO_DIR ? { DENO_DIR: process.env.DENO_DIR } : {}),
          NO_COLOR: '1',
          DOCKGATE_FIXTURE_IMAGE: env.image,
          ...dockerEnv,
        },
        encoding: 'utf8',
        timeout: 50_000,
      },
      (error, stdout, stderr) => {
        if (error) reject(new Error(`${error.message}\n${stderr}`))
        else resolve(JSON.parse(stdout.trim().split('\n').at(-1)!))
      },
    )
    let pending = ''
    child.stdout?.on('data', (chunk: string) => {
      const lines = (pending + chunk).split('\n')
      pending = lines.pop() ?? ''
      for (const line of lines) onLine(line)
    })
  })
}

describe.each(engineWires(env))('the Deno transport over the %s', (_name, dockerEnv) => {
  it('hands on an exec output whole when the engine ended it before the consumer read it', async () => {
    expect(dockerEnv.DOCKER_HOST, 'scripts/engine.sh up must provide this wire').toBeDefined()
    const seen = await runProbe('held', dockerEnv)
    // Deno's `close()` threw at the output's end once Deno had closed the connection itself,
    // which failed the stream with the chunks read ahead still queued: a 502 after the first
    expect(seen.end).toEqual({ exitCode: 0, timedOut: false })
    expect(seen.stdoutLength).toBe(228_894)
    expect(seen.stdoutWhole).toBe(true)
    expect(seen.stderr).toBe('done\n')
  }, 60_000)
})

describe('the Deno transport through a connection that breaks mid-output', () => {
  it('fails the exec with a 502 problem (not an end with output missing), and stops it', async () => {
    expect(env.tcpHost, 'scripts/engine.sh up must provide the TCP wire').toBeDefined()
    const tcp = new URL(env.tcpHost!.replace(/^tcp:/, 'http:'))
    const proxy = await startFaultProxy({ host: tcp.hostname, port: Number(tcp.port) })
    try {
      const seen = await runProbe('broken', { DOCKER_HOST: proxy.dockerHost }, (line) => {
        // This connection is gone; the engine stays reachable
        if (line === 'cut') proxy.cut()
      })
      // A read that failed was taken for the end: the exec "ended", still running, its output cut
      expect(seen.end).toMatchObject({ status: 502 })
      expect(seen.loopsLeft).toBe(0)
    } finally {
      await proxy.close()
    }
  }, 60_000)
})
