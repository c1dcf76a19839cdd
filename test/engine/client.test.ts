import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'
import { afterAll, describe, expect, it } from 'vitest'
import { EngineClient } from '../../src/engine/client.ts'
import { ProblemError } from '../../src/errors.ts'
import { createNodeTransport } from '../../src/transport/node.ts'
import { direct, runDirect, testEngineEnv } from '../support/engine.ts'
import { testGateway, uniqueName } from '../support/gateway.ts'
import { TEST_LABEL, TEST_RUN } from '../support/labels.ts'

const transport = createNodeTransport({ kind: 'unix', socketPath: testEngineEnv().socketPath })
afterAll(() => transport.close())

async function failure(promise: Promise<unknown>): Promise<ProblemError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  )
  expect(error).toBeInstanceOf(ProblemError)
  return error as ProblemError
}

describe('EngineClient', () => {
  it('negotiates the API version once and pins paths to it', async () => {
    const engine = new EngineClient(transport)
    expect(await engine.apiVersion()).toBe('1.41')
    const version = (await engine.json('GET', '/version')) as { ApiVersion: string }
    expect(version.ApiVersion).toBe('1.41')
  })

  it('maps the engine’s 404 (naming what was asked for) and 400 to problems', async () => {
    const engine = new EngineClient(transport)
    const missing = await failure(engine.json('GET', '/containers/dockgate-nothing/json'))
    expect(missing).toMatchObject({
      status: 404,
      code: 'not-found',
      detail: 'No such container: dockgate-nothing',
    })
    const bad = await failure(
      engine.json('GET', '/containers/json', { query: { filters: '{"bogus":["x"]}' } }),
    )
    expect(bad).toMatchObject({ status: 400, code: 'bad-request' })
  })

  it('answers the engine’s 409 and 400 with fixed details and reports its words instead', async () => {
    const reported: { status?: number; message: string }[] = []
    const engine = new EngineClient(transport, { onEngineError: (detail) => reported.push(detail) })
    const name = uniqueName('conflict')
    const body = { Image: testEngineEnv().image, Labels: { [TEST_LABEL]: TEST_RUN } }
    const first = (await engine.json('POST', '/containers/create', { query: { name }, body })) as {
      Id: string
    }
    const clash = await failure(
      engine.json('POST', '/containers/create', { query: { name }, body }),
    )
    expect(clash).toMatchObject({ status: 409, code: 'conflict' })
    expect(clash.detail).not.toContain(first.Id.slice(0, 12))
    // The engine's own words name the other container: only the server log has them.
    expect(reported.find((r) => r.status === 409)?.message).toContain(first.Id)
    const bad = await failure(
      engine.json('GET', '/containers/json', { query: { filters: '{"bogus":["x"]}' } }),
    )
    expect(bad.detail).not.toMatch(/bogus/)
    expect(reported.find((r) => r.status === 400)?.message).toMatch(/bogus/)
  })

  it('turns the engine’s 5xx into a 502 without echoing its text', async () => {
    const reported: unknown[] = []
    const engine = new EngineClient(transport, { onEngineError: (detail) => reported.push(detail) })
    // A real engine 500: it cannot parse this `since` (the gateway's routes never send one).
    const error = await failure(
      engine.json('GET', '/events', { query: { since: 'abc', until: '1' } }),
    )
    expect(error).toMatchObject({ status: 502, code: 'engine-error' })
    expect(error.detail).not.toMatch(/strconv|ParseInt/)
    expect(JSON.stringify(reported)).toMatch(/strconv|ParseInt/)
  })

  it('answers 503 with Retry-After when nothing listens on the socket', async () => {
    const gone = createNodeTransport({ kind: 'unix', socketPath: '/nonexistent/engine.sock' })
    const error = await failure(new EngineClient(gone, { retryAfterSeconds: 7 }).ping())
    expect(error).toMatchObject({
      status: 503,
      code: 'engine-unavailable',
      headers: { 'retry-after': '7' },
    })
    await gone.close()
  })

  it('answers 504 when the engine does not answer within the timeout', async () => {
    const engine = new EngineClient(transport, { timeoutMs: 300 })
    const name = uniqueName('slow')
    await runDirect({ name, cmd: ['sleep', '5'], labels: { [TEST_LABEL]: TEST_RUN }, wait: false })
    const error = await failure(engine.json('POST', `/containers/${name}/wait`))
    expect(error).toMatchObject({ status: 504, code: 'engine-timeout' })
  })

  it('times out a streaming body beside a caller signal, whatever the garbage collector did meanwhile', async () => {
    // Node 20: AbortSignal.any holds its sources weakly and a timeout's timer its signal: a
    // collection after the headers could take the timeout, and the body then never ended.
    setFlagsFromString('--expose-gc')
    const collect = runInNewContext('gc') as () => void
    const engine = new EngineClient(transport)
    // /events follows until told to stop: only the timeout can end its body here.
    const response = await engine.request('GET', '/events', {
      signal: new AbortController().signal,
      timeoutMs: 1_000,
      held: true,
    })
    collect()
    const reader = response.body!.getReader()
    const ended = (async () => {
      for (;;) if ((await reader.read()).done) return 'ended'
    })().catch((error: unknown) => (error as Error).name)
    const idle = new Promise((resolve) => setTimeout(() => resolve('still open'), 5_000))
    setTimeout(collect, 200)
    expect(await Promise.race([ended, idle])).toBe('TimeoutError')
  })

  it('cancels the engine call when the caller aborts', async () => {
    const engine = new EngineClient(transport)
    const name = uniqueName('abort')
    await runDirect({ name, cmd: ['sleep', '5'], labels: { [TEST_LABEL]: TEST_RUN }, wait: false })
    const controller = new AbortController()
    const waiting = engine.json('POST', `/containers/${name}/wait`, {
      signal: controller.signal,
      timeoutMs: 0,
    })
    setTimeout(() => controller.abort(), 100)
    const error = await waiting.then(
      () => undefined,
      (e: unknown) => e,
    )
    expect((error as Error).name).toBe('AbortError')
  })
})

describe('a real engine 5xx through a route', () => {
  it('answers 502 for logs of a container whose log driver cannot be read', async () => {
    const gw = await testGateway()
    const name = uniqueName('nolog')
    const created = await direct(`/containers/create?name=${name}`, {
      method: 'POST',
      body: {
        Image: testEngineEnv().image,
        Cmd: ['true'],
        Labels: { [TEST_LABEL]: TEST_RUN },
        HostConfig: { NetworkMode: 'none', LogConfig: { Type: 'none' } },
      },
    })
    expect(created.status).toBe(201)
    const { status, body } = await gw.json(`/v1/containers/${name}/logs`)
    expect(status).toBe(502)
    expect(body.type).toBe('urn:dockgate:problem:engine-error')
    expect(body.detail).not.toMatch(/logging driver/)
  })
})
