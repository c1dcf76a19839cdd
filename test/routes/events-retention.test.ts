/**
 * An open event stream keeps nothing of the request that opened it: with 10,000 subscribers,
 * each kept request (its Hono context, guard, variables, closures) is heap the garbage collector
 * marks during every fan-out (bench/README.md, "Events fan-out and one subscriber's latency").
 * Collected garbage is observed with a `WeakRef` after forced collections.
 */
import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'
import { beforeAll, describe, expect, it } from 'vitest'
import { createDirect } from '../support/engine.ts'
import { type TestGateway, testGateway, tokenOf, uniqueName } from '../support/gateway.ts'
import { TEST_LABEL, TEST_RUN } from '../support/labels.ts'
import { readSse } from '../support/sse.ts'

setFlagsFromString('--expose-gc')
const collectGarbage = runInNewContext('gc') as () => void

let gw: TestGateway
beforeAll(async () => {
  gw = await testGateway({ settings: { readModel: false } })
})

/** Opens `path` with a request only the returned `WeakRef` points to. */
async function openHeld(path: string) {
  let request: Request | undefined = new Request(`http://localhost${path}`, {
    headers: { authorization: `Bearer ${tokenOf('admin')}` },
  })
  const held = new WeakRef(request)
  const response = await gw.app.fetch(request)
  request = undefined
  return { held, response }
}

async function collect() {
  for (let i = 0; i < 5; i++) {
    collectGarbage()
    await new Promise((resolve) => setImmediate(resolve))
  }
}

describe('an open event stream', () => {
  for (const [kind, extra] of [
    ['one engine', ''],
    ['merged', '&engine=*'],
  ] as const) {
    it(`(${kind}) lets its request go, and goes on delivering`, async () => {
      const run = `retain-${process.pid}-${Date.now().toString(36)}`
      const { held, response } = await openHeld(
        `/v1/events?type=container&label=${encodeURIComponent(`retention-run=${run}`)}${extra}`,
      )
      expect(response.status).toBe(200)
      const sse = readSse(response)
      await collect()
      expect(held.deref()).toBeUndefined()
      const name = uniqueName('retain')
      await createDirect({
        name,
        cmd: ['true'],
        labels: { [TEST_LABEL]: TEST_RUN, 'retention-run': run },
      })
      const [created] = await sse.take(1)
      expect(created?.event).toBe('container')
      expect(JSON.parse(created!.data).actor.name).toBe(name)
      await sse.close()
    })
  }
})
