/**
 * The Bun entry's batched stdout (src/bun/stdout.ts), run by Bun: every line in order, those
 * still pending at exit included; and, in front of a reader that stops reading, a bounded queue
 * that drops lines and says how many once the reader is back.
 */
import { spawn } from 'node:child_process'
import { describe, expect, it } from 'vitest'

const BUN = 'node_modules/.bin/bun'

/** Runs the probe; with `stall`, reads its stdout only once it has given all its lines. */
function run(probe: string, stall = false): Promise<string> {
  const child = spawn(BUN, ['test/bun/stdout-probe.ts'], {
    env: { PATH: process.env.PATH, PROBE: probe },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let text = ''
  child.stdout.setEncoding('utf8')
  const read = () => {
    child.stdout.on('data', (chunk) => (text += chunk))
    child.stdout.resume()
  }
  if (stall) {
    // Nothing read meanwhile: the pipe fills, and the probe's writes wait.
    child.stdout.pause()
    child.stderr.on('data', (chunk) => {
      if (String(chunk).includes('all lines given')) read()
    })
  } else read()
  return new Promise((resolve, reject) => {
    child.once('error', reject)
    child.once('close', (code) => (code === 0 ? resolve(text) : reject(new Error(`exit ${code}`))))
  })
}

const parsed = (text: string) =>
  text
    .trimEnd()
    .split('\n')
    .map((line) => JSON.parse(line))

describe('the Bun entry’s stdout', () => {
  it('writes every line in order, also those pending when the process exits', async () => {
    const lines = parsed(await run('order'))
    expect(lines.map((l) => l.msg)).toEqual(Array.from({ length: 2_000 }, (_, n) => `line ${n}`))
  })

  it('drops what a stalled reader cannot take beyond the bound, and says how many lines it lost', async () => {
    const lines = parsed(await run('stalled', true))
    const notices = lines.filter((l) => l.msg?.startsWith('log lines dropped'))
    expect(notices[0]).toMatchObject({ level: 'warn', dropped: expect.any(Number) })
    const dropped = notices.reduce((sum, notice) => sum + notice.dropped, 0)
    const written = lines.filter((l) => l.msg?.startsWith('line ')).length
    // Every line is either written or counted as dropped; the last one came through.
    expect(written + dropped).toBe(20_001)
    expect(dropped).toBeGreaterThan(10_000)
    expect(lines.at(-1).msg).toBe('line -1')
  }, 20_000)
})
