import { describe, expect, it } from 'vitest'
import { parseImageRef, policyAllowsRef, pulledRef } from '../../src/domain/images.ts'
import { PolicySchema } from '../../src/domain/policy.ts'
import type { Principal, Scope } from '../../src/domain/principal.ts'

const DIGEST = `sha256:${'b'.repeat(64)}`

describe('parseImageRef', () => {
  it.each([
    [
      'busybox',
      { registry: 'docker.io', repository: 'busybox', tag: undefined, digest: undefined },
    ],
    ['library/busybox:1.36', { registry: 'docker.io', repository: 'library/busybox', tag: '1.36' }],
    ['team/app', { registry: 'docker.io', repository: 'team/app', tag: undefined }],
    [
      '127.0.0.1:5000/team/app:1',
      { registry: '127.0.0.1:5000', repository: '127.0.0.1:5000/team/app', tag: '1' },
    ],
    [
      '127.0.0.1:5000/app',
      { registry: '127.0.0.1:5000', repository: '127.0.0.1:5000/app', tag: undefined },
    ],
    ['localhost/app:x', { registry: 'localhost', tag: 'x' }],
    ['registry.example.com/app', { registry: 'registry.example.com' }],
    ['Upper.example/app', { registry: 'Upper.example' }],
    ['Upper:5000/app', { registry: 'Upper:5000' }],
    [
      `r.example.com:443/app@${DIGEST}`,
      {
        registry: 'r.example.com:443',
        repository: 'r.example.com:443/app',
        tag: undefined,
        digest: DIGEST,
      },
    ],
    [`app:1@${DIGEST}`, { registry: 'docker.io', repository: 'app', tag: '1', digest: DIGEST }],
  ])('reads %s as Docker does', (ref, expected) => {
    expect(parseImageRef(ref)).toMatchObject(expected)
  })

  it('adds :latest only when neither a tag nor a digest is given', () => {
    expect(pulledRef('127.0.0.1:5000/app')).toBe('127.0.0.1:5000/app:latest')
    expect(pulledRef('app:1')).toBe('app:1')
    expect(pulledRef(`app@${DIGEST}`)).toBe(`app@${DIGEST}`)
  })
})

describe('policyAllowsRef', () => {
  const principal = (images: string[], scopes: Scope[] = ['images:write']): Principal => ({
    id: 'p',
    kind: 'token',
    scopes: new Set(scopes),
    policy: PolicySchema.parse({ images }),
  })

  it('matches the reference as given or with :latest, and a digest only when a pattern allows it', () => {
    // `*` spans any characters: `team/*:*` would allow a digest too (`app@sha256:…` has a colon).
    const p = principal(['r.example.com/team/app:*', 'busybox:latest'])
    expect(policyAllowsRef(p, 'r.example.com/team/app:1')).toBe(true)
    expect(policyAllowsRef(p, 'r.example.com/team/app')).toBe(true)
    expect(policyAllowsRef(p, 'busybox')).toBe(true)
    expect(policyAllowsRef(p, 'busybox:1')).toBe(false)
    expect(policyAllowsRef(p, `r.example.com/team/app@${DIGEST}`)).toBe(false)
    expect(policyAllowsRef(p, 'r.example.com/team/other:1')).toBe(false)
    expect(policyAllowsRef(principal([`busybox@${DIGEST}`]), `busybox@${DIGEST}`)).toBe(true)
  })

  it('allows nothing by default, everything to admins', () => {
    expect(policyAllowsRef(principal([]), 'busybox:latest')).toBe(false)
    expect(policyAllowsRef(principal([], ['admin']), 'anything/at:all')).toBe(true)
  })
})
