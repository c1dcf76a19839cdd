/**
 * The gateway declares the calls the engine may hold (follows, streams, waits, stops, log
 * reads), and the Node transport keeps them out of the pool of ordinary calls: however many of them run, ordinary calls still get a
 * connection.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { EngineTransport } from '../../src/engine/transport.ts'
import { engineTargetFromEnv } from '../../src/transport/docker-host.ts'
import { createNodeTransport } from '../../src/transport/node.ts'
import { direct, runDirect, testEngineEnv } from '../support/engine.ts'
import { type TestGateway, testGateway, uniqueName } from '../support/gateway.ts'
import { TEST_LABEL, TEST_RUN } from '../support/labels.ts'

describe('which calls the gateway declares held', () => {
  const calls: { call: string; held: boolean }[] = []
  let gw: TestGateway
  let sleeper: string

  beforeAll(async () => {
    const inner = createNodeTransport(
      engineTargetFromEnv({ DOCKER_HOST: testEngineEnv().dockerHost }),
    )
    gw = await testGateway({
      transport: {
        description: inner.description,
        close: () => inner.close(),
        fetch(request, options) {
          const url = new URL(request.url)
          const path = url.pathname.replace(/^\/v[\d.]+\//, '/').replace(sleeper, '{id}')
          calls.push({ call: `${request.method} ${path}`, held: options?.held === true })
          return inner.fetch(request, options)
        },
      },
      settings: { readModel: false },
    })
    sleeper = await runDirect({
      name: uniqueName('held'),
      cmd: ['sleep', '120'],
      labels: { [TEST_LABEL]: TEST_RUN },
      wait: false,
    })
  })

  afterAll(() => direct(`/containers/${sleeper}?force=1`, { method: 'DELETE' }))

  /** Whether each engine call a gateway request made was declared held. */
  async function heldCalls(path: string, init: RequestInit = {}) {
    calls.length = 0
    const response = await gw.call(path.replace('{id}', sleeper), init)
    await response.body?.cancel()
    return Object.fromEntries(calls.map(({ call, held }) => [call, held]))
  }

  it.each([
    // A log read lasts as long as the log is long; a snapshot waits for the engine's next sample.
    ['GET', '/v1/containers/{id}/logs', 'GET /containers/{id}/logs', true],
    ['GET', '/v1/containers/{id}/stats', 'GET /containers/{id}/stats', true],
    ['GET', '/v1/containers/{id}/logs/stream', 'GET /containers/{id}/logs', true],
    ['GET', '/v1/containers/{id}/stats/stream', 'GET /containers/{id}/stats', true],
    ['GET', '/v1/containers/{id}', 'GET /containers/{id}/json', false],
    ['GET', '/v1/containers', 'GET /containers/json', false],
  ])('%s %s: %s is held: %s', async (method, path, call, held) => {
    expect((await heldCalls(path, { method }))[call]).toBe(held)
  })

  it('holds the events stream, a wait and a stop, but not a kill', async () => {
    expect((await heldCalls('/v1/events'))['GET /events']).toBe(true)
    const post = { method: 'POST' }
    // Stop first, with no time to wait: the wait then answers at once.
    expect(
      (await heldCalls('/v1/containers/{id}/stop?timeout=0', post))['POST /containers/{id}/stop'],
    ).toBe(true)
    expect((await heldCalls('/v1/containers/{id}/wait', post))['POST /containers/{id}/wait']).toBe(
      true,
    )
    expect((await heldCalls('/v1/containers/{id}/kill', post))['POST /containers/{id}/kill']).toBe(
      false,
    )
  })
})

describe('more follows than the ordinary pool has connections', () => {
  const CONNECTIONS = 2
  let transport: EngineTransport
  let sleeper: string
  const following = new AbortController()

  beforeAll(async () => {
    transport = createNodeTransport(
      engineTargetFromEnv({ DOCKER_HOST: testEngineEnv().dockerHost }),
      {
        connections: CONNECTIONS,
      },
    )
    sleeper = await runDirect({
      name: uniqueName('held'),
      cmd: ['sleep', '120'],
      labels: { [TEST_LABEL]: TEST_RUN },
      wait: false,
    })
  })

  afterAll(async () => {
    following.abort()
    await transport.close()
    await direct(`/containers/${sleeper}?force=1`, { method: 'DELETE' })
  })

  // Held, as the gateway declares these calls; the ordinary ones are not.
  const call = (method: string, path: string, signal: AbortSignal, held = true) =>
    transport.fetch(new Request(`http://docker${path}`, { method, signal }), { held })

  it('still answers ordinary calls while every follow holds its connection', async () => {
    const signal = following.signal
    const follows = await Promise.all([
      call('GET', '/v1.41/events?since=0', signal),
      call('GET', '/v1.41/events?since=0', signal),
      call('GET', `/v1.41/containers/${sleeper}/logs?stdout=1&follow=1`, signal),
      call('GET', `/v1.41/containers/${sleeper}/logs?stdout=1&follow=1`, signal),
      call('GET', `/v1.41/containers/${sleeper}/stats?stream=1`, signal),
    ])
    // Each one has its answer's headers and keeps reading: each holds a connection.
    expect(follows.map((r) => r.status)).toEqual([200, 200, 200, 200, 200])
    expect(follows.length).toBeGreaterThan(CONNECTIONS)
    const waiting = call('POST', `/v1.41/containers/${sleeper}/wait`, signal).catch(() => undefined)
    // `sleep` as a container's first process ignores SIGTERM: each stop waits out its timeout,
    // and a log read streams for as long as the log is. More of them than the pool has, too.
    const stopping = Array.from({ length: CONNECTIONS + 1 }, () =>
      call('POST', `/v1.41/containers/${sleeper}/stop?t=60`, signal).catch(() => undefined),
    )
    const reads = await Promise.all(
      Array.from({ length: CONNECTIONS + 1 }, () =>
        call('GET', `/v1.41/containers/${sleeper}/logs?stdout=1`, signal),
      ),
    )
    expect(reads.map((r) => r.status)).toEqual([200, 200, 200])

    // In one shared pool these would queue behind the follows until the end of time.
    const bounded = AbortSignal.timeout(10_000)
    const ordinary = await Promise.all([
      call('GET', '/_ping', bounded, false),
      call('GET', '/v1.41/version', bounded, false),
      call('GET', '/v1.41/containers/json?all=1', bounded, false),
      call('GET', `/v1.41/containers/${sleeper}/json`, bounded, false),
      call('GET', `/v1.41/containers/${sleeper}/stats?stream=0`, bounded),
    ])
    expect(ordinary.map((r) => r.status)).toEqual([200, 200, 200, 200, 200])
    await Promise.all(ordinary.map((r) => r.arrayBuffer()))

    // The follows are still open, not ended by all this.
    const firstStats = await follows[4]!.body!.getReader().read()
    expect(firstStats.done).toBe(false)
    following.abort()
    await Promise.all([waiting, ...stopping])
  })
})
