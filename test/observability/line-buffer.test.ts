import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { LineBuffer } from '../../src/observability/line-buffer.ts'

describe('LineBuffer', () => {
  beforeEach(() => {
    vi.useFakeTimers()
  })
  afterEach(() => {
    vi.useRealTimers()
  })

  const buffered = (options: { maxDelayMs?: number; maxChars?: number } = {}) => {
    const chunks: string[] = []
    const lines = new LineBuffer({ write: (chunk) => chunks.push(chunk), ...options })
    return { lines, chunks }
  }

  it('writes the lines of a batch together, in order, once the delay has passed', () => {
    const { lines, chunks } = buffered({ maxDelayMs: 20 })
    lines.line('one')
    lines.line('two')
    vi.advanceTimersByTime(19)
    expect(chunks).toEqual([])
    lines.line('three')
    vi.advanceTimersByTime(1)
    expect(chunks).toEqual(['one\ntwo\nthree\n'])
    expect(lines.pending).toBe(0)
  })

  it('counts the delay from the first line of each batch', () => {
    const { lines, chunks } = buffered({ maxDelayMs: 20 })
    lines.line('a')
    vi.advanceTimersByTime(20)
    lines.line('b')
    vi.advanceTimersByTime(10)
    expect(chunks).toEqual(['a\n'])
    vi.advanceTimersByTime(10)
    expect(chunks).toEqual(['a\n', 'b\n'])
  })

  it('writes at once when a batch reaches its size, never splitting a line', () => {
    const { lines, chunks } = buffered({ maxChars: 10 })
    lines.line('12345')
    expect(chunks).toEqual([])
    lines.line('67890abc')
    expect(chunks).toEqual(['12345\n67890abc\n'])
    expect(vi.getTimerCount()).toBe(0)
  })

  it('flush() writes what is pending and cancels the timer; with nothing pending it writes nothing', () => {
    const { lines, chunks } = buffered()
    lines.flush()
    expect(chunks).toEqual([])
    lines.line('x')
    lines.flush()
    expect(chunks).toEqual(['x\n'])
    expect(vi.getTimerCount()).toBe(0)
    vi.advanceTimersByTime(1_000)
    expect(chunks).toEqual(['x\n'])
  })
})
