/**
 * The policy's glob (`globMatches`): what configured patterns mean, and that a client's pattern
 * (`/v1/events?engine=`) costs at most its length times the value's, whatever its stars.
 */
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { globMatches } from '../../src/domain/policy.ts'

/** The meaning it had as a regular expression: `*` any run, `?` one character, the rest itself. */
const asRegExp = (pattern: string, value: string) =>
  new RegExp(
    `^${pattern
      .replace(/[.+^${}()|[\]\\]/g, '\\$&')
      .replaceAll('*', '[^]*')
      .replaceAll('?', '[^]')}$`,
  ).test(value)

describe('globMatches', () => {
  it('matches as configured patterns mean', () => {
    expect(globMatches('dockgate-fixture:*', 'dockgate-fixture:busybox')).toBe(true)
    expect(globMatches('registry.local/*', 'registry.local/team/app:1')).toBe(true)
    expect(globMatches('b?', 'b1')).toBe(true)
    expect(globMatches('b?', 'b')).toBe(false)
    expect(globMatches('*', '')).toBe(true)
    expect(globMatches('', '')).toBe(true)
    expect(globMatches('a*b*c', 'aXbYbZc')).toBe(true)
    expect(globMatches('a*b*c', 'aXbYbZ')).toBe(false)
    expect(globMatches('de.ault', 'default')).toBe(false)
  })

  it('agrees with the regular expression it replaced, on arbitrary patterns and values', () => {
    const text = fc.string({ unit: fc.constantFrom('a', 'b', '.', '*', '?', '/'), maxLength: 12 })
    fc.assert(
      fc.property(
        text,
        fc.string({ unit: fc.constantFrom('a', 'b', '.', '/'), maxLength: 12 }),
        (p, v) => {
          expect(globMatches(p, v), JSON.stringify([p, v])).toBe(asRegExp(p, v))
        },
      ),
      { seed: 20261205, numRuns: 2000 },
    )
  })

  it('stays linear on runs of stars that match nothing (a client-chosen pattern)', () => {
    // As a regular expression, 34 stars then `x` against `default` blocked the loop 1.4 s.
    const started = performance.now()
    for (let i = 0; i < 1_000; i++) expect(globMatches(`${'*'.repeat(62)}x`, 'default')).toBe(false)
    // Not a timing test of the gateway: a bound a backtracking matcher could not meet at all.
    expect(performance.now() - started).toBeLessThan(5_000)
  })
})
