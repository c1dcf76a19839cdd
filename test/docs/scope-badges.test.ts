import { describe, expect, it } from 'vitest'
import { scopeBadges, withScopeBadges } from '../../src/docs/scope-badges.ts'

describe('scope badges', () => {
  it('names the scopes of each security requirement: all of one, or any of several', () => {
    expect(scopeBadges([{ Bearer: ['containers:read'] }])).toEqual([
      { name: 'scope: containers:read', position: 'after' },
    ])
    expect(
      scopeBadges([{ Bearer: ['containers:read', 'logs:read'] }, { Bearer: ['admin'] }]),
    ).toEqual([
      { name: 'scope: containers:read + logs:read', position: 'after' },
      { name: 'scope: admin', position: 'after' },
    ])
  })

  it('shows no badge where no scope is named', () => {
    expect(scopeBadges(undefined)).toEqual([])
    expect(scopeBadges([])).toEqual([])
    expect(scopeBadges([{ Bearer: [] }])).toEqual([])
    expect(scopeBadges([{}, 'Bearer', { Bearer: 'admin' }])).toEqual([])
  })

  it('badges every operation of a copy, after its own badges, from the document-wide security too', () => {
    const document = {
      info: { title: 'x' },
      security: [{ Bearer: ['admin'] }],
      paths: {
        '/a': {
          parameters: [],
          get: { security: [{ Bearer: ['a:read'] }], 'x-badges': [{ name: 'Beta' }] },
          delete: {},
          post: { security: [] },
        },
      },
    }
    const before = JSON.stringify(document)
    const badged = withScopeBadges(document)
    expect(badged.paths['/a']).toEqual({
      parameters: [],
      get: {
        security: [{ Bearer: ['a:read'] }],
        'x-badges': [{ name: 'Beta' }, { name: 'scope: a:read', position: 'after' }],
      },
      delete: { 'x-badges': [{ name: 'scope: admin', position: 'after' }] },
      post: { security: [] },
    })
    expect(JSON.stringify(document)).toBe(before)
  })
})
