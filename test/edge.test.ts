/**
 * The edge entry's own surface, in process: bad bindings answer a problem (an isolate has no
 * start-up to refuse), and building the gateway does no I/O (nothing listens at the engine URL
 * these tests give, and nothing is asked of it). The gateway itself on the edge, against the
 * real engine, is in test/runtimes (Deno and workerd).
 */
import { describe, expect, it } from 'vitest'
import handler from '../src/edge.ts'

const problemOf = async (response: Response) => {
  expect(response.headers.get('content-type')).toBe('application/problem+json')
  return (await response.json()) as { type: string; status: number; detail: string }
}

describe('the edge entry', () => {
  it('answers 500 with the reason when DOCKER_HOST is not an HTTP(S) URL', async () => {
    const response = await handler.fetch(new Request('http://gateway/healthz'), {
      DOCKER_HOST: 'unix:///var/run/docker.sock',
    })
    expect(response.status).toBe(500)
    const problem = await problemOf(response)
    expect(problem).toMatchObject({ type: 'urn:dockgate:problem:internal-error', status: 500 })
    expect(problem.detail).toMatch(/misconfigured: .*DOCKER_HOST must be an http/)
  })

  it('answers 500 with the reason when DOCKGATE_CONFIG_JSON does not parse', async () => {
    const response = await handler.fetch(new Request('http://gateway/healthz'), {
      DOCKER_HOST: 'http://127.0.0.1:9',
      DOCKGATE_CONFIG_JSON: '{ not json',
    })
    expect(response.status).toBe(500)
    expect((await problemOf(response)).detail).toMatch(/misconfigured: .*DOCKGATE_CONFIG_JSON/)
  })

  it('builds the gateway from the bindings in `env` on the first request, without the engine', async () => {
    const env = { DOCKER_HOST: 'tcp://127.0.0.1:9', DOCKGATE_TOKEN: 'dgt_edge-entry-test' }
    const health = await handler.fetch(new Request('http://gateway/healthz'), env)
    expect(health.status).toBe(200)
    expect(await health.json()).toEqual({ status: 'ok' })
    const none = await handler.fetch(new Request('http://gateway/v1/system/version'), env)
    expect(none.status).toBe(401)
    await none.body?.cancel()
  })
})
