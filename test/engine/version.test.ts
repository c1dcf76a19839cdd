import { describe, expect, it } from 'vitest'
import { compareApiVersions, negotiateApiVersion } from '../../src/engine/version.ts'

describe('API version negotiation', () => {
  it('speaks the engine’s version within the supported range', () => {
    expect(negotiateApiVersion('1.41')).toBe('1.41')
    expect(negotiateApiVersion('1.45')).toBe('1.45')
  })

  it('caps a newer engine at the newest version dockgate was written for', () => {
    expect(negotiateApiVersion('1.52')).toBe('1.47')
    expect(negotiateApiVersion('2.0')).toBe('1.47')
  })

  it('refuses an engine older than 1.41 or an unreadable version', () => {
    expect(negotiateApiVersion('1.40')).toBeUndefined()
    expect(negotiateApiVersion('')).toBeUndefined()
    expect(negotiateApiVersion('one.two')).toBeUndefined()
  })

  it('compares numerically, not as text', () => {
    expect(compareApiVersions('1.9', '1.41')).toBeLessThan(0)
    expect(compareApiVersions('1.41', '1.41')).toBe(0)
  })
})
