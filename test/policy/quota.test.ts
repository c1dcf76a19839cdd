import { describe, expect, it } from 'vitest'
import { MemoryStore } from '../../src/store/memory.ts'

const tick = () => new Promise((r) => setTimeout(r, 5))

describe('quota reservations in one process (MemoryStore)', () => {
  it('runs the steps of one key one at a time, in order', async () => {
    const reservations = new MemoryStore()
    let running = 0
    let most = 0
    const order: number[] = []
    await Promise.all(
      Array.from({ length: 5 }, (_, i) =>
        reservations.exclusive('a', async () => {
          running++
          most = Math.max(most, running)
          await tick()
          order.push(i)
          running--
        }),
      ),
    )
    expect(most).toBe(1)
    expect(order).toEqual([0, 1, 2, 3, 4])
    expect(reservations.busyKeys).toBe(0)
  })

  it('never makes one key wait for another', async () => {
    const reservations = new MemoryStore()
    let release!: () => void
    const held = reservations.exclusive('a', () => new Promise<void>((r) => (release = r)))
    await expect(reservations.exclusive('b', async () => 'b ran')).resolves.toBe('b ran')
    release()
    await held
  })

  it('goes on after a step that failed', async () => {
    const reservations = new MemoryStore()
    const failed = reservations.exclusive('a', async () => {
      throw new Error('over quota')
    })
    const next = reservations.exclusive('a', async () => 'next')
    await expect(failed).rejects.toThrow('over quota')
    await expect(next).resolves.toBe('next')
    expect(reservations.busyKeys).toBe(0)
  })
})
