/**
 * `principalOf`: how an instance that never saw a credential judges the principal of a stream
 * ticket another instance issued (by its id, against the config every instance loads).
 */
import { SignJWT } from 'jose'
import { describe, expect, it } from 'vitest'
import { firstOf, jwtAuthenticator } from '../../src/auth/jwt.ts'
import { hashToken, TokenStore } from '../../src/auth/tokens.ts'
import { principalId } from '../../src/domain/principal.ts'

const scopes = new Set(['logs:read'] as const)

describe('principalOf', () => {
  it('finds a config token by name as configured now, and DOCKGATE_TOKEN while it is set', async () => {
    const tokens = new TokenStore(
      [{ name: 'ci', hash: await hashToken('dgt_x'), scopes: ['events:read', 'logs:read'] }],
      'dgt_env',
    )
    expect(await tokens.principalOf({ id: 'ci', kind: 'token' })).toMatchObject({
      id: 'ci',
      scopes: new Set(['events:read', 'logs:read']),
    })
    expect(await tokens.principalOf({ id: 'gone', kind: 'token' })).toBeUndefined()
    expect(await tokens.principalOf({ id: 'env:admin', kind: 'env-token' })).toMatchObject({
      id: 'env:admin',
    })
    expect(
      await new TokenStore([]).principalOf({ id: 'env:admin', kind: 'env-token' }),
    ).toBeUndefined()
    // A JWT principal named like a token is not that token.
    expect(await tokens.principalOf({ id: 'ci', kind: 'jwt' })).toBeUndefined()
  })

  it('takes a JWT principal with the scopes it was issued, its policy from the config now, while its issuer is accepted', async () => {
    const policy = { mode: 'enforce', images: ['busybox:*'] } as never
    const jwt = jwtAuthenticator({
      secret: 'jwt-secret',
      issuer: 'https://idp.example',
      policyOf: (sub) => (sub === 'a:b' ? policy : undefined),
    })!
    const id = principalId.jwt('https://idp.example', 'a:b')
    expect(await jwt.principalOf?.({ id, kind: 'jwt', scopes })).toEqual({
      id,
      kind: 'jwt',
      scopes,
      policy,
    })
    const elsewhere = principalId.jwt('https://other.example', 'a:b')
    expect(await jwt.principalOf?.({ id: elsewhere, kind: 'jwt', scopes })).toBeUndefined()
    // No JWT is accepted at all: none of their tickets opens.
    const none = firstOf(new TokenStore([]), jwtAuthenticator({}))
    expect(await none.principalOf?.({ id, kind: 'jwt', scopes })).toBeUndefined()
  })

  it('refuses a credential rotated under the same name: the fingerprint it was issued for is gone', async () => {
    const before = new TokenStore(
      [{ name: 'ci', hash: await hashToken('dgt_old'), scopes: ['events:read'] }],
      'dgt_env_old',
    )
    const issued = await before.authenticate('dgt_old')
    const env = await before.authenticate('dgt_env_old')
    expect(issued?.fingerprint).toMatch(/^t:[0-9a-f]{16}$/)
    expect(env?.fingerprint).toMatch(/^t:[0-9a-f]{16}$/)
    const rotated = new TokenStore(
      [{ name: 'ci', hash: await hashToken('dgt_new'), scopes: ['events:read'] }],
      'dgt_env_new',
    )
    const ask = (principal: typeof issued) =>
      rotated.principalOf({
        id: principal!.id,
        kind: principal!.kind,
        fingerprint: principal!.fingerprint,
      })
    expect(await ask(issued)).toBeUndefined()
    expect(await ask(env)).toBeUndefined()
    // Unchanged, they still count; a ticket without a fingerprint (an older instance's) as before.
    expect(
      await before.principalOf({ id: 'ci', kind: 'token', fingerprint: issued!.fingerprint }),
    ).toMatchObject({ id: 'ci' })
    expect(
      await before.principalOf({
        id: 'env:admin',
        kind: 'env-token',
        fingerprint: env!.fingerprint,
      }),
    ).toMatchObject({ id: 'env:admin' })
    expect(await rotated.principalOf({ id: 'ci', kind: 'token' })).toMatchObject({ id: 'ci' })
  })

  it('refuses a JWT principal once the secret that verified its JWT is replaced', async () => {
    const sign = async (secret: string) =>
      new SignJWT({ scope: 'events:read' })
        .setProtectedHeader({ alg: 'HS256' })
        .setSubject('svc')
        .setAudience('dockgate')
        .setExpirationTime('5m')
        .sign(new TextEncoder().encode(secret))
    const first = jwtAuthenticator({ secret: 'first-secret-0123456789' })!
    const principal = await first.authenticate(await sign('first-secret-0123456789'))
    expect(principal?.fingerprint).toMatch(/^h:[0-9a-f]{16}$/)
    const issued = {
      id: principal!.id,
      kind: 'jwt' as const,
      scopes,
      fingerprint: principal!.fingerprint,
    }
    expect(await first.principalOf?.(issued)).toMatchObject({ id: principal!.id })
    const rotated = jwtAuthenticator({ secret: 'second-secret-0123456789' })!
    expect(await rotated.principalOf?.(issued)).toBeUndefined()
  })
})
