import { createServer, type Server } from 'node:http'
import { exportJWK, generateKeyPair, type JWK, SignJWT } from 'jose'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createApp } from '../../src/app.ts'
import { authenticatorFromConfig } from '../../src/auth/from-config.ts'
import { firstOf, jwtAuthenticator } from '../../src/auth/jwt.ts'
import { TokenStore } from '../../src/auth/tokens.ts'
import { parseConfigFile } from '../../src/config.ts'
import { PolicySchema } from '../../src/domain/policy.ts'
import { EngineClient } from '../../src/engine/client.ts'
import { createNodeTransport } from '../../src/transport/node.ts'
import { testEngineEnv } from '../support/engine.ts'
import { TEST_LABEL, TEST_RUN } from '../support/labels.ts'

const SECRET = 'a-test-secret-of-at-least-32-bytes!!'
const transport = createNodeTransport({ kind: 'unix', socketPath: testEngineEnv().socketPath })
let rsa: { privateKey: CryptoKey; publicJwk: JWK }
let jwksServer: Server
let jwksUrl: string

beforeAll(async () => {
  const pair = await generateKeyPair('RS256', { extractable: true })
  rsa = {
    privateKey: pair.privateKey,
    publicJwk: { ...(await exportJWK(pair.publicKey)), kid: 'k1', alg: 'RS256' },
  }
  jwksServer = createServer((_req, res) => {
    res.setHeader('content-type', 'application/json')
    res.end(JSON.stringify({ keys: [rsa.publicJwk] }))
  })
  await new Promise<void>((resolve) => jwksServer.listen(0, '127.0.0.1', resolve))
  jwksUrl = `http://127.0.0.1:${(jwksServer.address() as { port: number }).port}/jwks.json`
})

afterAll(async () => {
  jwksServer.close()
  await transport.close()
})

function gateway(settings: Parameters<typeof jwtAuthenticator>[0]) {
  return createApp({
    engine: new EngineClient(transport),
    authenticator: firstOf(new TokenStore([]), jwtAuthenticator(settings)),
    audit: () => {},
    requestLog: () => {},
  }).app
}

const hs256 = (
  claims: Record<string, unknown>,
  options: { exp?: string | number; aud?: string; secret?: string; iat?: number | null } = {},
) => {
  const jwt = new SignJWT(claims)
    .setProtectedHeader({ alg: 'HS256' })
    .setSubject(typeof claims.sub === 'string' ? claims.sub : 'svc-reporting')
    .setAudience(options.aud ?? 'dockgate')
    .setExpirationTime(options.exp ?? '5m')
  if (options.iat !== null) jwt.setIssuedAt(options.iat)
  return jwt.sign(new TextEncoder().encode(options.secret ?? SECRET))
}

const nowSeconds = () => Math.floor(Date.now() / 1000)

async function call(app: ReturnType<typeof gateway>, path: string, token: string) {
  const response = await app.request(path, { headers: { authorization: `Bearer ${token}` } })
  return { status: response.status, body: await response.json() }
}

describe('JWT bearer tokens', () => {
  it('accept an HS256 token: sub is the principal, scope the scopes', async () => {
    const app = gateway({ secret: SECRET })
    const token = await hs256({ scope: 'system:read containers:read unknown:scope' })
    expect((await call(app, '/v1/system/version', token)).status).toBe(200)
    expect((await call(app, '/v1/images', token)).status).toBe(403)
  })

  it.each([
    [
      'expired',
      () => hs256({ scope: 'system:read' }, { exp: Math.floor(Date.now() / 1000) - 60 }),
      /expired/,
    ],
    ['for another audience', () => hs256({ scope: 'system:read' }, { aud: 'someone-else' }), /aud/],
    [
      'signed with another secret',
      () => hs256({ scope: 'system:read' }, { secret: 'x'.repeat(40) }),
      /signature/,
    ],
  ])('refuse a token %s with 401', async (_what, make, detail) => {
    const { status, body } = await call(
      gateway({ secret: SECRET }),
      '/v1/system/version',
      await make(),
    )
    expect(status).toBe(401)
    expect(body.type).toBe('urn:dockgate:problem:unauthorized')
    expect(body.detail).toMatch(detail)
  })

  it('judge a token as of a given time when asked (how open streams are re-checked at a reload)', async () => {
    const authenticator = jwtAuthenticator({ secret: SECRET })!
    const exp = Math.floor(Date.now() / 1000) - 60
    // Issued 5 minutes before it expired, a minute ago: valid when a stream opened with it.
    const token = await new SignJWT({ scope: 'events:read' })
      .setProtectedHeader({ alg: 'HS256' })
      .setSubject('svc-reporting')
      .setAudience('dockgate')
      .setIssuedAt(exp - 300)
      .setExpirationTime(exp)
      .sign(new TextEncoder().encode(SECRET))
    await expect(authenticator.authenticate(token)).rejects.toThrow(/expired/)
    const then = new Date((exp - 30) * 1000)
    expect(await authenticator.authenticate(token, { at: then })).toMatchObject({
      id: 'jwt::svc-reporting',
      kind: 'jwt',
    })
    // Its key gone, it is refused whenever it is judged.
    const rotated = jwtAuthenticator({ secret: 'y'.repeat(40) })!
    await expect(rotated.authenticate(token, { at: then })).rejects.toThrow(/signature/)
  })

  it('refuse a token issued in the future, beyond a minute of clock skew', async () => {
    const app = gateway({ secret: SECRET })
    const future = await hs256({ scope: 'system:read' }, { iat: nowSeconds() + 3600, exp: '2h' })
    const { status, body } = await call(app, '/v1/system/version', future)
    expect(status).toBe(401)
    expect(body.detail).toMatch(/issued in the future/)
    const skewed = await hs256({ scope: 'system:read' }, { iat: nowSeconds() + 30 })
    expect((await call(app, '/v1/system/version', skewed)).status).toBe(200)
  })

  it('refuse, with jwt.maxAgeSeconds, a token issued longer ago or saying no iat', async () => {
    const app = gateway({ secret: SECRET, maxAgeSeconds: 3600 })
    const old = await hs256({ scope: 'system:read' }, { iat: nowSeconds() - 7200, exp: '1h' })
    const refused = await call(app, '/v1/system/version', old)
    expect(refused.status).toBe(401)
    expect(refused.body.detail).toMatch(/older than 3600 seconds/)
    const undated = await hs256({ scope: 'system:read' }, { iat: null })
    expect((await call(app, '/v1/system/version', undated)).body.detail).toMatch(/iat/)
    const fresh = await hs256({ scope: 'system:read' }, { iat: nowSeconds() - 60 })
    expect((await call(app, '/v1/system/version', fresh)).status).toBe(200)
    // Without the setting, age alone refuses nothing.
    expect((await call(gateway({ secret: SECRET }), '/v1/system/version', old)).status).toBe(200)
  })

  it('take the maximum age from the config file', async () => {
    const config = parseConfigFile('{"jwt":{"maxAgeSeconds":600}}', 'dockgate.config.json')
    const authenticator = authenticatorFromConfig(config, { jwtSecret: SECRET })
    const old = await hs256({ scope: 'system:read' }, { iat: nowSeconds() - 601 })
    await expect(authenticator.authenticate(old)).rejects.toMatchObject({ status: 401 })
    const fresh = await hs256({ scope: 'system:read' })
    expect(await authenticator.authenticate(fresh)).toMatchObject({
      kind: 'jwt',
      id: 'jwt::svc-reporting',
    })
  })

  it('refuse to start with a shared secret shorter than the hash (32 bytes)', () => {
    const config = parseConfigFile('{}', 'dockgate.config.json')
    expect(() => authenticatorFromConfig(config, { jwtSecret: 'a' })).toThrow(
      /DOCKGATE_JWT_SECRET must be at least 32 bytes/,
    )
    expect(() => authenticatorFromConfig(config, { jwtSecret: 'x'.repeat(31) })).toThrow(/32 bytes/)
    expect(authenticatorFromConfig(config, { jwtSecret: 'x'.repeat(32) })).toBeDefined()
  })

  it('refuse a token without exp', async () => {
    const token = await new SignJWT({ scope: 'system:read' })
      .setProtectedHeader({ alg: 'HS256' })
      .setSubject('svc')
      .setAudience('dockgate')
      .sign(new TextEncoder().encode(SECRET))
    expect((await call(gateway({ secret: SECRET }), '/v1/system/version', token)).status).toBe(401)
  })

  it('refuse an unsigned (alg none) token', async () => {
    const header = btoa(JSON.stringify({ alg: 'none' })).replace(/=+$/, '')
    const payload = btoa(
      JSON.stringify({ sub: 'x', aud: 'dockgate', scope: 'admin', exp: 9e9 }),
    ).replace(/=+$/, '')
    expect(
      (await call(gateway({ secret: SECRET }), '/v1/containers', `${header}.${payload}.x`)).status,
    ).toBe(401)
  })

  it('accept RS256 tokens verified against a JWKS, from a document or a URL', async () => {
    const token = await new SignJWT({ scope: 'system:read' })
      .setProtectedHeader({ alg: 'RS256', kid: 'k1' })
      .setSubject('svc-rsa')
      .setIssuer('https://issuer.test')
      .setAudience('dockgate')
      .setExpirationTime('5m')
      .sign(rsa.privateKey)
    const fromDocument = gateway({ jwks: { keys: [rsa.publicJwk] }, issuer: 'https://issuer.test' })
    expect((await call(fromDocument, '/v1/system/version', token)).status).toBe(200)
    const fromUrl = gateway({ jwksUrl, issuer: 'https://issuer.test' })
    expect((await call(fromUrl, '/v1/system/version', token)).status).toBe(200)
    const wrongIssuer = gateway({ jwks: { keys: [rsa.publicJwk] }, issuer: 'https://other.test' })
    expect((await call(wrongIssuer, '/v1/system/version', token)).body.detail).toMatch(/iss/)
  })

  it('give a JWT principal the policy configured for its sub, else the default', async () => {
    const policy = PolicySchema.parse({ images: ['dockgate-fixture:*'] })
    const app = gateway({
      secret: SECRET,
      policyOf: (sub) => (sub === 'svc-reporting' ? policy : undefined),
    })
    const create = async (subject: string) => {
      const token = await hs256({ sub: subject, scope: 'containers:write containers:read' })
      return app.request('/v1/containers', {
        method: 'POST',
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
        body: JSON.stringify({
          image: testEngineEnv().image,
          cmd: ['true'],
          labels: { [TEST_LABEL]: TEST_RUN },
        }),
      })
    }
    const allowed = await create('svc-reporting')
    expect(allowed.status).toBe(201)
    expect((await allowed.json()).config.labels['dockgate.owner']).toBe('jwt::svc-reporting')
    const denied = await create('svc-other')
    expect(denied.status).toBe(403)
    expect((await denied.json()).detail).toMatch(/allowlist/)
  })
})
