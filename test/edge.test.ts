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
  it('answers 500 naming DOCKER_HOST when it is not an HTTP(S) URL', async () => {
    const response = await handler.fetch(new Request('http://gateway/healthz'), {
      DOCKER_HOST: 'unix:///var/run/docker.sock',
    })
    expect(response.status).toBe(500)
    const problem = await problemOf(response)
    expect(problem).toMatchObject({ type: 'urn:dockgate:problem:internal-error', status: 500 })
    expect(problem.detail).toBe(
      'The gateway is misconfigured: DOCKER_HOST cannot be used (its log says why)',
    )
  })

  it.each([
    // Unquoted, the password is what the runtime's own message would quote.
    ['does not parse', '{"registries":{"r.example":{"username":"u","password": hunter2-Top}}}'],
    ['does not fit', '{"registries":{"r.example":{"username":"u","password":7}}}'],
  ])(
    'answers 500 naming DOCKGATE_CONFIG_JSON when it %s, and shows none of it',
    async (_, json) => {
      const response = await handler.fetch(new Request('http://gateway/healthz'), {
        DOCKER_HOST: 'http://127.0.0.1:9',
        DOCKGATE_CONFIG_JSON: json,
      })
      expect(response.status).toBe(500)
      const text = await response.text()
      expect(JSON.parse(text).detail).toMatch(/misconfigured: DOCKGATE_CONFIG_JSON cannot be used/)
      expect(text).not.toMatch(/hunter2|r\.example|password/)
    },
  )

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
