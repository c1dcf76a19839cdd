import { beforeAll, describe, expect, it } from 'vitest'
import { createApp } from '../../src/app.ts'
import { SwappableAuthenticator } from '../../src/auth/from-config.ts'
import { hashToken, TokenStore } from '../../src/auth/tokens.ts'
import { EngineClient } from '../../src/engine/client.ts'
import { createNodeTransport } from '../../src/transport/node.ts'
import { testEngineEnv } from '../support/engine.ts'
import { type TestGateway, testGateway, tokenOf } from '../support/gateway.ts'

let gw: TestGateway

beforeAll(async () => {
  gw = await testGateway()
})

describe('bearer authentication', () => {
  it('answers 401 problem+json with a challenge when no token is sent', async () => {
    const { status, body, response } = await gw.json('/v1/containers', { role: null })
    expect(status).toBe(401)
    expect(response.headers.get('content-type')).toBe('application/problem+json')
    expect(response.headers.get('www-authenticate')).toBe('Bearer realm="dockgate"')
    expect(body).toMatchObject({
      type: 'urn:dockgate:problem:unauthorized',
      status: 401,
      instance: '/v1/containers',
    })
  })

  it.each([
    ['an unknown token', 'Bearer dgt_not-a-real-token'],
    ['another scheme', `Basic ${btoa('admin:admin')}`],
    ['an empty bearer', 'Bearer '],
    ['a token with a space inside', `Bearer ${tokenOf('admin')} extra`],
  ])('answers 401 for %s', async (_what, authorization) => {
    const { status, body } = await gw.json('/v1/containers', {
      role: null,
      headers: { authorization },
    })
    expect(status).toBe(401)
    expect(body.type).toBe('urn:dockgate:problem:unauthorized')
  })

  it('answers 403 when the token lacks the scope, naming it', async () => {
    const { status, body, response } = await gw.json('/v1/containers', { role: 'nobody' })
    expect(status).toBe(403)
    expect(body).toMatchObject({ type: 'urn:dockgate:problem:forbidden' })
    expect(response.headers.get('www-authenticate')).toContain('scope="containers:read"')
  })

  it('lets a read-only token read but not write', async () => {
    expect((await gw.json('/v1/containers', { role: 'reader' })).status).toBe(200)
    const { status } = await gw.json('/v1/containers/x/stop', { role: 'reader', method: 'POST' })
    expect(status).toBe(403)
  })

  it('accepts DOCKGATE_TOKEN as an admin token', async () => {
    const transport = createNodeTransport({ kind: 'unix', socketPath: testEngineEnv().socketPath })
    const app = createApp({
      engine: new EngineClient(transport),
      authenticator: new TokenStore([], 'dgt_automation-token'),
      audit: () => {},
      requestLog: () => {},
    }).app
    const ok = await app.request('/v1/system/version', {
      headers: { authorization: 'Bearer dgt_automation-token' },
    })
    expect(ok.status).toBe(200)
    const bad = await app.request('/v1/system/version', {
      headers: { authorization: 'Bearer dgt_automation-tokeN' },
    })
    expect(bad.status).toBe(401)
    await transport.close()
  })

  it('refuses a token on the next request once a reload no longer accepts it', async () => {
    const transport = createNodeTransport({ kind: 'unix', socketPath: testEngineEnv().socketPath })
    const token = 'dgt_revoked-at-once'
    const entry = { name: 'soon-gone', hash: await hashToken(token), scopes: ['admin' as const] }
    const authenticator = new SwappableAuthenticator(new TokenStore([entry]))
    const app = createApp({
      engine: new EngineClient(transport),
      authenticator,
      audit: () => {},
      requestLog: () => {},
    }).app
    const version = () =>
      app.request('/v1/system/version', { headers: { authorization: `Bearer ${token}` } })
    // The second request is decided at once (its digest is known): the path a reload must reach.
    expect((await version()).status).toBe(200)
    expect(authenticator.knownPrincipal(token)?.id).toBe('soon-gone')
    expect((await version()).status).toBe(200)
    authenticator.replace(new TokenStore([]))
    const refused = await version()
    expect(refused.status).toBe(401)
    expect((await refused.json()).detail).toBe('The bearer token is not valid')
    authenticator.replace(new TokenStore([{ ...entry, scopes: ['containers:read'] }]))
    expect((await version()).status).toBe(403)
    await transport.close()
  })

  it('leaves public routes public', async () => {
    for (const path of ['/healthz', '/readyz', '/openapi.json', '/docs']) {
      expect((await gw.call(path, { role: null })).status).toBe(200)
    }
  })
})
