/**
 * No operation of the document answers a caller without a valid credential, and none of them
 * asks the engine for one: every operation that declares a security requirement answers 401
 * with a challenge to no token, to a header that is no bearer token and to an unknown token
 * alike. The routes are put under authentication by path (`app.use('/v1/*')`, `/metrics`), not
 * one by one: a route registered outside those paths would show here.
 */
import { describe, expect, it } from 'vitest'
import { builtGateway } from '../support/gateway.ts'
import { OPERATIONS } from '../support/openapi.ts'

// Never started: what reaches the engine is only what a request makes.
const { gateway, calls } = builtGateway('dgt_the-only-token-there-is-here')

/** The operation's path with each parameter given a value of the right shape. */
const concrete = (path: string) =>
  path.replace(/\{(\w+)\}/g, (_all, name: string) => (name === 'engine' ? 'default' : 'abc123'))

const secured = OPERATIONS.filter((op) => op.security.length > 0)

describe('a caller without a valid credential', () => {
  it('meets a security requirement on every operation but health and readiness', () => {
    expect(secured.length).toBeGreaterThan(60)
    expect(OPERATIONS.filter((op) => op.security.length === 0).map((op) => op.path)).toEqual([
      '/healthz',
      '/readyz',
    ])
  })

  it.each([
    ['no Authorization header', undefined],
    ['a header that is no bearer token', 'Basic YWRtaW46YWRtaW4='],
    ['an unknown bearer token', 'Bearer dgt_not-a-token-of-this-gateway'],
  ])('gets 401 and a challenge from every operation, with %s', async (_what, authorization) => {
    for (const op of secured) {
      const headers: Record<string, string> = { 'content-type': 'application/json' }
      if (authorization) headers.authorization = authorization
      const response = await gateway.app.request(concrete(op.path), {
        method: op.method,
        headers,
        ...(op.method === 'GET' || op.method === 'HEAD' ? {} : { body: '{}' }),
      })
      const what = `${op.method} ${op.path}`
      expect(response.status, what).toBe(401)
      expect(response.headers.get('content-type'), what).toMatch(/^application\/problem\+json/)
      expect(response.headers.get('www-authenticate'), what).toMatch(/^Bearer realm="dockgate"/)
    }
    expect(calls).toEqual([])
  })
})
