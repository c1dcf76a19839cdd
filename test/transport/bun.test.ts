/**
 * The Bun transport (src/transport/bun.ts): Bun's own `fetch` to the engine over each wire, run
 * by Bun itself (test/transport/bun-probe.ts): plain calls and refusals, a followed log that
 * arrives as the container writes it (not at its end), and a held stream that ends when its
 * caller aborts. Its upgraded calls are the exec sessions of test/routes/exec-session.test.ts.
 */
import { execFileSync } from 'node:child_process'
import { describe, expect, it } from 'vitest'
import { engineWires, testEngineEnv } from '../support/engine.ts'

const BUN = 'node_modules/.bin/bun'
const env = testEngineEnv()

const wires = engineWires(env)

describe.each(wires)('the Bun transport over the %s', (_name, dockerEnv) => {
  it('calls the engine, streams a followed log as it is written, and ends a held stream on abort', () => {
    expect(dockerEnv.DOCKER_HOST, 'scripts/engine.sh up must provide this wire').toBeDefined()
    const output = execFileSync(BUN, ['test/transport/bun-probe.ts'], {
      env: {
        PATH: process.env.PATH,
        HOME: process.env.HOME,
        DOCKGATE_FIXTURE_IMAGE: env.image,
        ...dockerEnv,
      },
      encoding: 'utf8',
      timeout: 25_000,
    })
    const seen = JSON.parse(output.trim().split('\n').at(-1)!)
    const scheme = 'DOCKER_TLS_VERIFY' in dockerEnv ? 'https://' : 'http://'
    expect(seen.description).toBe(dockerEnv.DOCKER_HOST!.replace(/^tcp:\/\//, scheme))
    expect(seen.apiVersion).toBe('1.41')
    expect(seen.tags).toContain(env.image)
    expect(seen.missing).toBe(404)
    const log = seen.log as { text: string; ms: number }[]
    expect(log.map((a) => a.text).join('')).toBe('first\r\nsecond\r\n')
    // The first line was read while the container still slept (4 s; the probe asks for the log
    // well before that): a body streamed, not buffered.
    const first = log.find((a) => a.text.includes('first'))!
    const second = log.find((a) => a.text.includes('second'))!
    expect(second.ms - first.ms).toBeGreaterThan(1_000)
    expect(seen.events).toMatch(/^(ended|rejected: AbortError)$/)
  }, 30_000)
})
