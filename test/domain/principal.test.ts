import { describe, expect, it } from 'vitest'
import { principalId } from '../../src/domain/principal.ts'

describe('principal ids', () => {
  it('keep token names bare, and put JWTs and the environment admin in namespaces of their own', () => {
    expect(principalId.token('alice')).toBe('alice')
    expect(principalId.jwt(undefined, 'alice')).toBe('jwt::alice')
    expect(principalId.jwt('https://idp.example', 'alice')).toBe('jwt:https%3A//idp.example:alice')
    expect(principalId.env()).toBe('env:admin')
  })

  it('never give two (issuer, subject) pairs the same id', () => {
    const pairs: [string | undefined, string][] = [
      ['a:b', 'c'],
      ['a', 'b:c'],
      ['a%3Ab', 'c'],
      [undefined, 'a:b:c'],
      ['', 'a'],
      ['a', ''],
    ]
    const ids = pairs.map(([issuer, subject]) => principalId.jwt(issuer, subject))
    expect(new Set(ids).size).toBe(ids.length)
  })
})
