import { execFileSync } from 'node:child_process'
import { describe, expect, it } from 'vitest'
import { createDirect as createOnEngine } from '../support/engine.ts'
import { testGateway, uniqueName } from '../support/gateway.ts'
import { TEST_LABEL, TEST_RUN } from '../support/labels.ts'
import { readSse } from '../support/sse.ts'
import type { ParsedSseEvent } from '../support/sse-parse.ts'

const engine = (command: 'up' | 'down') =>
  execFileSync('bash', ['scripts/engine.sh', command], {
    env: { ...process.env, DOCKGATE_PRIVATE_ENGINE: '1' },
    stdio: ['ignore', 'pipe', 'inherit'],
  })

const createDirect = (run: string) =>
  createOnEngine({
    name: uniqueName('restart'),
    cmd: ['true'],
    labels: { [TEST_LABEL]: TEST_RUN, run },
  })

describe('the engine stopped and started under the gateway', () => {
  it('answers 503 while it is down, and the events stream resumes with no gap it does not announce', async () => {
    const gw = await testGateway({ settings: { heartbeatMs: 500 } })
    const run = uniqueName('run')
    const stream = readSse(
      await gw.call(`/v1/events?type=container&action=create&label=run=${run}`),
    )
    const first = await createDirect(run)
    expect(JSON.parse((await stream.next(10_000))!.data).actor.id).toBe(first)

    engine('down')
    const started = Date.now()
    const ready = await gw.json('/readyz', { role: null })
    const list = await gw.json('/v1/system/version')
    expect(Date.now() - started).toBeLessThan(5_000)
    expect([ready.status, list.status]).toEqual([503, 503])
    expect(ready.response.headers.get('retry-after')).toBe('5')

    engine('up')
    const second = await createDirect(run)
    // After the restart the engine's own history is gone: either the create of `second`
    // arrives as the next event, or a resync says first that something may have been missed.
    const seen: ParsedSseEvent[] = []
    for (;;) {
      const event = await stream.next(20_000)
      expect(event).toBeDefined()
      seen.push(event!)
      if (event!.event === 'container' && JSON.parse(event!.data).actor.id === second) break
    }
    const kinds = seen.map((e) =>
      e.event === 'resync' ? `resync:${JSON.parse(e.data).reason}` : e.event,
    )
    expect(kinds.filter((k) => k !== 'resync:gap')).toEqual(['container'])
    expect((await gw.json('/readyz', { role: null })).status).toBe(200)
    await stream.close()
  })
})
