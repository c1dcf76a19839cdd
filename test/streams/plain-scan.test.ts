import { describe, expect, it } from 'vitest'
import { isPlain } from '../../src/streams/json-text-escape.ts'
import { plainScanner, WINDOW_BYTES } from '../../src/streams/plain-scan.ts'

// Node compiles WebAssembly SIMD: the scanner must be there, or the tests below test nothing
const scanner = plainScanner()

describe('plainScanner', () => {
  it('is compiled once, where WebAssembly SIMD runs', () => {
    expect(scanner).toBeDefined()
    expect(plainScanner()).toBe(scanner)
  })

  it('stops at every byte JSON changes, at every place of a 64-byte step, and passes every plain one', () => {
    if (scanner === undefined) throw new Error('no scanner')
    for (let value = 0; value < 256; value++) {
      for (let at = 0; at < 160; at++) {
        const bytes = new Uint8Array(200).fill(0x79)
        bytes[at] = value
        for (const start of [0, 3]) {
          scanner.forget()
          const end = scanner.plainEnd(bytes, start, bytes.length)
          if (isPlain(value) || at < start) {
            // All plain: it stops where fewer than 16 bytes are left
            expect(end, `0x${value.toString(16)} at ${at} from ${start}`).toBeGreaterThan(
              bytes.length - 16,
            )
            expect(end).toBeLessThanOrEqual(bytes.length)
          } else {
            expect(end, `0x${value.toString(16)} at ${at} from ${start}`).toBe(at)
          }
        }
      }
    }
  })

  it('scans past its window of memory, and keeps the window for the scans of one text', () => {
    if (scanner === undefined) throw new Error('no scanner')
    const bytes = new Uint8Array(3 * WINDOW_BYTES).fill(0x41)
    const marks = [5, WINDOW_BYTES - 1, WINDOW_BYTES, WINDOW_BYTES + 17, 2 * WINDOW_BYTES + 100]
    for (const mark of marks) bytes[mark] = 0x22
    scanner.forget()
    const found: number[] = []
    let at = 0
    while (at < bytes.length - 16) {
      at = scanner.plainEnd(bytes, at, bytes.length)
      if (bytes[at] === 0x22) {
        found.push(at)
        at++
      }
    }
    expect(found).toEqual(marks)
    // Other bytes in the same array after forget: the window is copied again
    bytes.fill(0x41)
    bytes[40] = 0x5c
    scanner.forget()
    expect(scanner.plainEnd(bytes, 0, bytes.length)).toBe(40)
  })

  it('stays inside the range it is given', () => {
    if (scanner === undefined) throw new Error('no scanner')
    const bytes = new Uint8Array(100).fill(0x79)
    bytes[80] = 0x00
    scanner.forget()
    // The zero lies past the end: the scan stops before it, with fewer than 16 bytes left
    const end = scanner.plainEnd(bytes, 10, 80)
    expect(end).toBeGreaterThan(80 - 16)
    expect(end).toBeLessThanOrEqual(80)
  })
})
