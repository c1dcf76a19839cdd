/**
 * The Node transport keeps the calls the engine may hold (follows, streams, waits, stops, log
 * reads) out of the pool of ordinary calls: however many of them run, ordinary calls still get a
 * connection.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { EngineTransport } from '../../src/engine/transport.ts'
import { engineTargetFromEnv } from '../../src/transport/docker-host.ts'
import { createNodeTransport, heldOpenByEngine } from '../../src/transport/node.ts'
import { direct, runDirect, testEngineEnv } from '../support/engine.ts'
import { uniqueName } from '../support/gateway.ts'
import { TEST_LABEL, TEST_RUN } from '../support/labels.ts'

describe('which calls the engine may hold', () => {
  it.each([
    ['GET', '/v1.41/events?since=0', true],
    ['GET', '/v1.41/events?since=1&until=2', false],
    ['GET', '/v1.41/containers/abc/logs?stdout=1&follow=1', true],
    ['GET', '/v1.41/containers/abc/logs?stdout=1&follow=true', true],
    ['GET', '/v1.41/events', true],
    // A log read lasts as long as the log is long: it never takes a pooled connection.
    ['GET', '/v1.41/containers/abc/logs?stdout=1', true],
    ['GET', '/v1.41/containers/abc/logs?follow=0', true],
    ['GET', '/v1.41/containers/abc/stats', true],
    ['GET', '/v1.41/containers/abc/stats?stream=true', true],
    // A snapshot waits for the engine's next sample.
    ['GET', '/v1.41/containers/abc/stats?stream=false', true],
    ['POST', '/v1.41/containers/abc/wait?condition=not-running', true],
    // Stop and restart wait out their timeout for a container that ignores SIGTERM.
    ['POST', '/v1.41/containers/abc/stop?t=10', true],
    ['POST', '/v1.41/containers/abc/restart', true],
    ['POST', '/v1.41/containers/abc/kill', false],
    ['POST', '/v1.41/containers/abc/start', false],
    ['POST', '/v1.41/containers/create?name=x', false],
    ['DELETE', '/v1.41/containers/abc?force=1', false],
    ['GET', '/v1.41/containers/abc/json', false],
    ['GET', '/v1.41/containers/json?all=1', false],
    ['GET', '/_ping', false],
  ])('%s %s: %s', (method, path, held) => {
    expect(heldOpenByEngine(method, path)).toBe(held)
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

  const call = (method: string, path: string, signal: AbortSignal) =>
    transport.fetch(new Request(`http://docker${path}`, { method, signal }))

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
      call('GET', '/_ping', bounded),
      call('GET', '/v1.41/version', bounded),
      call('GET', '/v1.41/containers/json?all=1', bounded),
      call('GET', `/v1.41/containers/${sleeper}/json`, bounded),
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
