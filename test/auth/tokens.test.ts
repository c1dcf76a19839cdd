import { createHash } from 'node:crypto'
import { describe, expect, it } from 'vitest'
import { constantTimeEqual, generateToken, hashToken, TokenStore } from '../../src/auth/tokens.ts'

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

  it('compares byte arrays by value', () => {
    expect(constantTimeEqual(new Uint8Array([1, 2]), new Uint8Array([1, 2]))).toBe(true)
    expect(constantTimeEqual(new Uint8Array([1, 2]), new Uint8Array([1, 3]))).toBe(false)
    expect(constantTimeEqual(new Uint8Array([1]), new Uint8Array([1, 2]))).toBe(false)
  })
})
