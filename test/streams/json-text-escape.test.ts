import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { JsonTextEscaper } from '../../src/streams/json-text-escape.ts'
import { longTexts, sameBytes, viaStrings } from '../support/json-text.ts'

/** `bytes[start, end)` escaped by `escaper`, after `before` bytes already in the output. */
function escaped(escaper: JsonTextEscaper, bytes: Uint8Array, start: number, end: number) {
  const added = escaper.measure(bytes, start, end)
  const before = 5
  const buffer = new Uint8Array(before + end - start + added)
  const at = escaper.write(buffer, before, bytes, start, end, added)
  expect(at).toBe(buffer.length)
  return buffer.subarray(before)
}

// Long texts go to the WebAssembly escaper where it runs (json-escape-wasm.test.ts); this one
// escapes them where it does not (workerd)
const escaper = new JsonTextEscaper()

describe('JsonTextEscaper on long texts', () => {
  it('finds every byte value after a long plain run, at every alignment', () => {
    // Around the word scan's four-word steps
    for (let value = 0; value < 256; value++) {
      for (const at of [255, 256, 300, 319, 320, 321, 335, 336, 383, 384, 700, 1023]) {
        const bytes = new Uint8Array(1024).fill(0x79)
        bytes[at] = value
        const expected = viaStrings(bytes)
        for (const offset of [0, 1, 3]) {
          const input = new Uint8Array(offset + bytes.length + 7).fill(0x79)
          input.set(bytes, offset)
          const out = escaped(escaper, input, offset, offset + bytes.length)
          expect(sameBytes(out, expected), `0x${value.toString(16)} at ${at}+${offset}`).toBe(true)
        }
      }
    }
  })

  it('writes what JSON.stringify gives for long texts of plain runs and changes', () => {
    fc.assert(
      fc.property(longTexts(), ({ bytes, offset }) => {
        const expected = viaStrings(bytes.subarray(offset))
        expect(sameBytes(escaped(escaper, bytes, offset, bytes.length), expected)).toBe(true)
      }),
      { seed: 20261204, numRuns: 150 },
    )
  })
})
