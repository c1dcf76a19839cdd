import { createHash } from 'node:crypto'
import { describe, expect, it } from 'vitest'
import { generateToken, hashToken, TokenStore } from '../../src/auth/tokens.ts'

describe('tokens', () => {
  it('generates distinct prefixed tokens with 256 bits of randomness', () => {
    const a = generateToken()
    const b = generateToken()
    expect(a).toMatch(/^dgt_[A-Za-z0-9_-]{43}$/)
    expect(a).not.toBe(b)
  })

  it('hashes to sha256 hex, never the token itself', async () => {
    const hash = await hashToken('dgt_abc')
    expect(hash).toBe(`sha256:${createHash('sha256').update('dgt_abc').digest('hex')}`)
    expect(hash).not.toContain('abc')
    expect(await hashToken('dgt_abc')).toBe(hash)
    expect(await hashToken('dgt_abd')).not.toBe(hash)
  })

  it('finds the principal of a stored token and nothing for others', async () => {
    const store = new TokenStore([
      { name: 'ci', hash: await hashToken('dgt_one'), scopes: ['containers:read'] },
      { name: 'ops', hash: await hashToken('dgt_two'), scopes: ['admin'] },
    ])
    expect(await store.authenticate('dgt_two')).toMatchObject({ id: 'ops', kind: 'token' })
    expect([...((await store.authenticate('dgt_one'))?.scopes ?? [])]).toEqual(['containers:read'])
    expect(await store.authenticate('dgt_three')).toBeUndefined()
    expect(await store.authenticate('')).toBeUndefined()
  })

  it('decides the same while hashing a token and once its digest is known', async () => {
    const store = new TokenStore(
      [{ name: 'ci', hash: await hashToken('dgt_cached-one'), scopes: ['containers:read'] }],
      'dgt_cached-env',
    )
    // Concurrent first calls wait for the same hashing; later calls use the known digests.
    const first = await Promise.all(
      ['dgt_cached-one', 'dgt_cached-env', 'dgt_cached-other'].map((t) => store.authenticate(t)),
    )
    const again = await Promise.all(
      ['dgt_cached-one', 'dgt_cached-env', 'dgt_cached-other'].map((t) => store.authenticate(t)),
    )
    for (const answers of [first, again]) {
      expect(answers.map((p) => p?.id)).toEqual(['ci', 'env:admin', undefined])
    }
    // A token too long to keep is hashed every time, with the same answer.
    const long = `dgt_${'x'.repeat(300)}`
    expect(await store.authenticate(long)).toBeUndefined()
    expect(await store.authenticate(long)).toBeUndefined()
  })

  it('knows a principal at once only when authenticate would answer it', async () => {
    const store = new TokenStore(
      [{ name: 'ci', hash: await hashToken('dgt_known-one'), scopes: ['containers:read'] }],
      'dgt_known-env',
    )
    // Nothing hashed yet: only authenticate can tell.
    expect(store.knownPrincipal('dgt_known-one')).toBeUndefined()
    for (const token of ['dgt_known-one', 'dgt_known-env', 'dgt_known-other']) {
      const principal = await store.authenticate(token)
      expect(store.knownPrincipal(token)).toBe(principal)
    }
    expect(store.knownPrincipal('dgt_known-other')).toBeUndefined()
  })

  it('takes the first entry of a digest given twice, and a stored token over DOCKGATE_TOKEN', async () => {
    const hash = await hashToken('dgt_twice')
    const store = new TokenStore(
      [
        { name: 'first', hash, scopes: ['containers:read'] },
        {
          name: 'second',
          hash: hash.toUpperCase().replace('SHA256:', 'sha256:'),
          scopes: ['admin'],
        },
      ],
      'dgt_twice',
    )
    expect(await store.authenticate('dgt_twice')).toMatchObject({ id: 'first', kind: 'token' })
    expect(store.knownPrincipal('dgt_twice')?.id).toBe('first')
    expect(await store.principalOf({ id: 'second', kind: 'token' })).toMatchObject({ id: 'second' })
  })

  it('finds each of 1,000 stored tokens, and no other', async () => {
    const tokens = Array.from({ length: 1_000 }, (_, i) => `dgt_many-${i}`)
    const store = new TokenStore(
      await Promise.all(
        tokens.map(async (token, i) => ({
          name: `t${i}`,
          hash: await hashToken(token),
          scopes: [],
        })),
      ),
    )
    for (const i of [0, 499, 999]) {
      expect((await store.authenticate(tokens[i]!))?.id).toBe(`t${i}`)
      expect(store.knownPrincipal(tokens[i]!)?.id).toBe(`t${i}`)
    }
    expect(await store.authenticate('dgt_many-1000')).toBeUndefined()
  })
})
