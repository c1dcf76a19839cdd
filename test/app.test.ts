import { spawnSync } from 'node:child_process'
import { setTimeout as sleep } from 'node:timers/promises'
import { beforeAll, describe, expect, it } from 'vitest'
import { createApp } from '../src/app.ts'
import { DEFAULT_POLICY } from '../src/domain/policy.ts'
import type { Principal } from '../src/domain/principal.ts'
import { EngineClient } from '../src/engine/client.ts'
import { Metrics } from '../src/observability/metrics.ts'
import { engineContainerIds, testEngineEnv } from './support/engine.ts'
import { postJson, type TestGateway, testGateway } from './support/gateway.ts'
import { TEST_LABEL, TEST_RUN } from './support/labels.ts'
import { recordingTransport, settle } from './support/reliability.ts'

let gw: TestGateway

beforeAll(async () => {
  gw = await testGateway({ settings: { bodyLimitBytes: 1024 } })
})

describe('errors are problem+json everywhere', () => {
  it('answers an unknown route with a 404 problem', async () => {
    const { status, body, response } = await gw.json('/v1/nothing-here')
    expect(status).toBe(404)
    expect(response.headers.get('content-type')).toBe('application/problem+json')
    expect(body).toMatchObject({
      type: 'urn:dockgate:problem:not-found',
      status: 404,
      instance: '/v1/nothing-here',
    })
  })

  it('answers a known path with the wrong method with 405 and Allow', async () => {
    const { status, body, response } = await gw.json('/v1/containers', { method: 'PUT' })
    expect(status).toBe(405)
    expect(body.type).toBe('urn:dockgate:problem:method-not-allowed')
    expect(response.headers.get('allow')).toContain('GET')
    expect(response.headers.get('allow')).toContain('POST')
  })

  it('refuses a body over the limit with 413, and creates nothing', async () => {
    const probe = `probe-${Date.now()}`
    const { status, body } = await gw.json(
      '/v1/containers',
      postJson({
        image: testEngineEnv().image,
        cmd: ['x'.repeat(2000)],
        labels: { [TEST_LABEL]: TEST_RUN, probe },
      }),
    )
    expect(status).toBe(413)
    expect(body.type).toBe('urn:dockgate:problem:payload-too-large')
    expect(await engineContainerIds(`probe=${probe}`)).toEqual([])
  })

  it('returns a request id in a header and in problem bodies', async () => {
    const { body, response } = await gw.json('/v1/nothing-here')
    const id = response.headers.get('x-request-id')
    expect(id).toMatch(/^[0-9a-f-]{36}$/)
    expect(body.requestId).toBe(id)
  })

  it('keeps a caller’s well-formed request id', async () => {
    const { response } = await gw.json('/healthz', {
      role: null,
      headers: { 'x-request-id': 'caller-123' },
    })
    expect(response.headers.get('x-request-id')).toBe('caller-123')
  })
})

describe('building is not starting', () => {
  const admin: Principal = {
    id: 'token:admin',
    kind: 'token',
    scopes: new Set(['admin']),
    policy: DEFAULT_POLICY,
  }

  /** A gateway on a recording transport, built and not started, its logs quiet. */
  function built(principal?: Principal) {
    const recorder = recordingTransport()
    const metrics = new Metrics()
    const gateway = createApp({
      engine: new EngineClient(recorder.transport),
      authenticator: { authenticate: async () => principal },
      metrics,
      audit: () => {},
      requestLog: () => {},
      // The read model's first load may still run when the transport closes.
      logError: () => {},
    })
    return { recorder, metrics, gateway }
  }

  /** Whether the gateway follows the engine: its events upstream open, the model subscribed. */
  const following = (metrics: Metrics) => () => {
    const events = metrics.events()
    return events.upstreamConnected && events.subscribers === 1
  }

  /** A promise, and the function that settles it. */
  function deferred() {
    let settleIt!: () => void
    const promise = new Promise<void>((resolve) => (settleIt = resolve))
    return { promise, settleIt }
  }

  it('builds without reaching the engine; start follows it, close lets go', async () => {
    const { recorder, metrics, gateway } = built()
    try {
      await sleep(300)
      expect(recorder.calls).toEqual([])
      expect(metrics.events()).toMatchObject({ upstreamConnected: false, subscribers: 0 })

      gateway.start()
      expect(await settle(following(metrics), Boolean, 10_000)).toBe(true)
      const paths = recorder.calls.map((call) => call.path.split('?')[0])
      expect(paths).toEqual(expect.arrayContaining([expect.stringMatching(/\/events$/)]))

      gateway.close()
      expect(metrics.events()).toMatchObject({ upstreamConnected: false, subscribers: 0 })
    } finally {
      gateway.close()
      await recorder.transport.close()
    }
  })

  it('follows the engine once `engineAfter` settles; until then routes ask the engine', async () => {
    const { recorder, metrics, gateway } = built(admin)
    const engineAfter = deferred()
    try {
      gateway.start({ engineAfter: engineAfter.promise })
      expect((await gateway.app.request('/healthz')).status).toBe(200)
      const list = await gateway.app.request('/v1/containers', {
        headers: { authorization: 'Bearer any' },
      })
      expect(list.status).toBe(200)
      await sleep(300)
      // The list was the engine's; the model had not begun to follow it (no events stream).
      const paths = recorder.calls.map((call) => call.path.split('?')[0] ?? '')
      expect(paths).toContainEqual(expect.stringMatching(/\/containers\/json$/))
      expect(paths.filter((path) => path.endsWith('/events'))).toEqual([])
      expect(metrics.events()).toMatchObject({ upstreamConnected: false, subscribers: 0 })

      engineAfter.settleIt()
      expect(await settle(following(metrics), Boolean, 10_000)).toBe(true)
    } finally {
      gateway.close()
      await recorder.transport.close()
    }
  })

  it('builds its router on `prepare()`, and answers as before', async () => {
    const { recorder, gateway } = built(admin)
    gateway.prepare()
    // Hono's router takes no route once it has built its matcher.
    expect(() => gateway.app.get('/late', (c) => c.text('late'))).toThrow(/already built/)
    expect((await gateway.app.request('/healthz')).status).toBe(200)
    expect((await gateway.app.request('/nothing-here')).status).toBe(404)
    gateway.close()
    await recorder.transport.close()
  })

  it('does not follow the engine when closed before `engineAfter` settles', async () => {
    const { recorder, metrics, gateway } = built()
    const engineAfter = deferred()
    try {
      gateway.start({ engineAfter: engineAfter.promise })
      await gateway.close()
      engineAfter.settleIt()
      await sleep(300)
      expect(recorder.calls).toEqual([])
      expect(metrics.events()).toMatchObject({ upstreamConnected: false, subscribers: 0 })
    } finally {
      await recorder.transport.close()
    }
  })
})

describe('what a start loads', () => {
  /**
   * The modules of dist/ (tsc's output, one file per module) that Node loads, in a child process
   * with a load hook: while the app is built and its router prepared, then while it answers its
   * first `/healthz`. Run `npm run build` first (scripts/test.sh does).
   */
  function modulesLoaded(): { atStart: string[]; firstRequest: string[] } {
    const hook = `import { writeSync } from 'node:fs'
export async function load(url, context, next) {
  if (url.includes('/dist/')) writeSync(2, 'LOAD ' + url.slice(url.indexOf('/dist/') + 6) + '\\n')
  return next(url, context)
}`
    const script = `import { register } from 'node:module'
import { writeSync } from 'node:fs'
register('data:text/javascript,' + encodeURIComponent(${JSON.stringify(hook)}))
const { createApp } = await import(${JSON.stringify(new URL('../dist/app.js', import.meta.url).href)})
const { EngineClient } = await import(${JSON.stringify(new URL('../dist/engine/client.js', import.meta.url).href)})
const none = { description: 'none', fetch: () => Promise.reject(new Error('no engine')), close: async () => {} }
const gateway = createApp({ engine: new EngineClient(none), authenticator: { authenticate: async () => undefined }, requestLog: () => {} })
gateway.prepare()
writeSync(2, 'PREPARED\\n')
const response = await gateway.app.request('/healthz')
writeSync(2, 'ANSWERED ' + response.status + '\\n')`
    const run = spawnSync(process.execPath, ['--input-type=module', '-e', script], {
      encoding: 'utf8',
    })
    const lines = run.stderr.split('\n')
    const prepared = lines.indexOf('PREPARED')
    expect(prepared, run.stderr).toBeGreaterThan(0)
    expect(lines).toContain('ANSWERED 200')
    const loads = (part: string[]) =>
      part.filter((line) => line.startsWith('LOAD ')).map((line) => line.slice(5))
    return { atStart: loads(lines.slice(0, prepared)), firstRequest: loads(lines.slice(prepared)) }
  }

  it('builds no route group and no schema only routes use, until a request needs them', () => {
    const { atStart, firstRequest } = modulesLoaded()
    // The app and its router (what builds no schema) load at start; a route group's modules, the
    // schemas every route shares, the `revoked` event's and the raw event's do not.
    expect(atStart).toContain('app.js')
    expect(atStart).toContain('routes/router.js')
    const routeSchemas = [
      'routes/common.js',
      'http/open-streams.schemas.js',
      'events/event.schemas.js',
    ]
    for (const module of [...routeSchemas, 'routes/system.js']) {
      expect(atStart).not.toContain(module)
    }
    // `/healthz`'s group loads with its first request, and the shared schemas with it.
    expect(firstRequest).toContain('routes/system.js')
    expect(firstRequest).toContain('routes/common.js')
  })
})
