import { describe, expect, it } from 'vitest'
import { onAbort } from '../../src/http/abort-listeners.ts'

describe('onAbort', () => {
  it('calls each listener once when the signal aborts, except those removed', () => {
    const controller = new AbortController()
    const calls: string[] = []
    onAbort(controller.signal, () => calls.push('a'))
    const removeB = onAbort(controller.signal, () => calls.push('b'))
    onAbort(controller.signal, () => calls.push('c'))
    removeB()
    removeB()
    controller.abort()
    controller.abort()
    expect(calls).toEqual(['a', 'c'])
  })

  it('calls a listener at once on a signal that has already aborted', () => {
    const calls: number[] = []
    const remove = onAbort(AbortSignal.abort(), () => calls.push(1))
    expect(calls).toEqual([1])
    remove()
  })

  it('keeps the listeners of different signals apart', () => {
    const first = new AbortController()
    const second = new AbortController()
    const calls: string[] = []
    onAbort(first.signal, () => calls.push('first'))
    onAbort(second.signal, () => calls.push('second'))
    second.abort()
    expect(calls).toEqual(['second'])
    first.abort()
    expect(calls).toEqual(['second', 'first'])
  })
})
