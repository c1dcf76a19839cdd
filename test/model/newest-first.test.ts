import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { compareEngineTimes, toEngineTime } from '../../src/engine/time.ts'
import type { EngineContainerInspect } from '../../src/engine/types.ts'
import { NewestFirst } from '../../src/model/newest-first.ts'
import { inspectOf } from '../support/inspect.ts'

/** The order the model used to give: the containers in insertion order, sorted newest first. */
function sortedAsBefore(byId: Map<string, EngineContainerInspect>) {
  const time = (c: EngineContainerInspect) => toEngineTime(c.Created) ?? '0'
  return [...byId.values()].sort((a, b) => compareEngineTimes(time(b), time(a)))
}

// Times a nanosecond apart (past a double's precision), the same time twice, fewer digits.
const TIMES = [
  '2026-12-03T12:00:00.123456789Z',
  '2026-12-03T12:00:00.123456790Z',
  '2026-12-03T12:00:00.5Z',
  '2026-12-03T12:00:01Z',
  '2026-12-03T13:00:00.000000001+01:00',
  '2025-01-01T00:00:00.999999999Z',
]

describe('containers newest first', () => {
  it('lists what it holds newest first, ties in the order first put, across random puts and removes', () => {
    const id = fc.constantFrom('a', 'b', 'c', 'd', 'e', 'f', 'g')
    const step = fc.oneof(
      fc.record({ op: fc.constant('put' as const), id, version: fc.nat(3) }),
      fc.record({ op: fc.constant('remove' as const), id }),
    )
    // A container's creation time never changes: each id keeps the one drawn for it.
    const createdOf = fc.record(
      Object.fromEntries(
        ['a', 'b', 'c', 'd', 'e', 'f', 'g'].map((k) => [k, fc.constantFrom(...TIMES)]),
      ),
    )
    fc.assert(
      fc.property(createdOf, fc.array(step, { maxLength: 60 }), (created, steps) => {
        const set = new NewestFirst()
        const reference = new Map<string, EngineContainerInspect>()
        for (const s of steps) {
          if (s.op === 'put') {
            const c = inspectOf(s.id, created[s.id] as string, { name: `${s.id}-${s.version}` })
            set.set(c)
            reference.set(s.id, c)
          } else {
            expect(set.delete(s.id)).toBe(reference.delete(s.id))
          }
          expect(set.newestFirst).toEqual(sortedAsBefore(reference))
          expect(set.size).toBe(reference.size)
          for (const [key, c] of reference) expect(set.get(key)).toBe(c)
        }
      }),
      { seed: 20261203, numRuns: 300 },
    )
  })

  it('puts a changed container in its old place, and gives the change, not the old answer', () => {
    const set = new NewestFirst()
    set.set(inspectOf('old', '2026-12-03T10:00:00Z'))
    set.set(inspectOf('new', '2026-12-03T11:00:00Z', { running: true }))
    const stopped = inspectOf('new', '2026-12-03T11:00:00Z', { running: false })
    set.set(stopped)
    expect(set.newestFirst.map((c) => c.Id)).toEqual(['new', 'old'])
    expect(set.get('new')).toBe(stopped)
    expect(set.newestFirst[0]).toBe(stopped)
  })

  it('places an unreadable creation time last, as the oldest', () => {
    const set = new NewestFirst()
    set.set(inspectOf('unreadable', 'not a time'))
    set.set(inspectOf('dated', '1970-01-01T00:00:01Z'))
    expect(set.newestFirst.map((c) => c.Id)).toEqual(['dated', 'unreadable'])
  })

  it('changes its version with every put and every remove, and only then', () => {
    const set = new NewestFirst()
    const versions = [set.version]
    const changed = () => {
      versions.push(set.version)
      return new Set(versions).size === versions.length
    }
    set.set(inspectOf('a', TIMES[0]!))
    expect(changed()).toBe(true)
    // The same container answered again (a re-inspection): a new answer, so a new version.
    set.set(inspectOf('a', TIMES[0]!, { running: true }))
    expect(changed()).toBe(true)
    set.set(inspectOf('b', TIMES[1]!))
    expect(changed()).toBe(true)
    expect(set.delete('a')).toBe(true)
    expect(changed()).toBe(true)
    const before = set.version
    expect(set.delete('a')).toBe(false)
    set.get('b')
    void set.newestFirst
    expect(set.version).toBe(before)
  })
})
