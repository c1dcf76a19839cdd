import { describe, expect, it } from 'vitest'
import { ServiceName } from '../../src/routes/services.schemas.ts'

describe('service names', () => {
  it('are checked in linear time, whatever the name (swarmkit’s own pattern backtracks exponentially here)', () => {
    const hostile = `a${'_-a'.repeat(20_000)}--`
    expect(ServiceName.safeParse(hostile).success).toBe(false)
    expect(
      ServiceName.safeParse('fzjxkvrae-e__Fm7mIu0S---__0tSWK6hy4r2E_-_B1aN81r--').success,
    ).toBe(false)
    for (const name of ['a', 'web', 'a-b_c', 'A1--b__2']) {
      expect(ServiceName.safeParse(name).success).toBe(true)
    }
    for (const name of ['-a', 'a-', '_', 'a.b', 'b0yxy6wrgsqqdjg9x0r9v7cth']) {
      expect(ServiceName.safeParse(name).success).toBe(false)
    }
  })
})
