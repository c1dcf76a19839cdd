/**
 * Utf8Chunks gives the text a streaming TextDecoder (keeping a BOM) gives, however the bytes are
 * cut: characters split between chunks, chunks of only a character's tail, invalid bytes.
 */
import { describe, expect, it } from 'vitest'
import { Utf8Chunks } from '../../src/streams/utf8-chunks.ts'

const bytes = (text: string) => new TextEncoder().encode(text)

function streamingReference(chunks: Uint8Array[]): string {
  const decoder = new TextDecoder('utf-8', { ignoreBOM: true })
  return chunks.map((chunk) => decoder.decode(chunk, { stream: true })).join('') + decoder.decode()
}

function cut(all: Uint8Array, at: number[]): Uint8Array[] {
  const chunks: Uint8Array[] = []
  let from = 0
  for (const to of [...at, all.length]) {
    chunks.push(all.subarray(from, to))
    from = to
  }
  return chunks
}

describe('Utf8Chunks', () => {
  it('gives at the end what a one-shot decode gives for a character that never finished', () => {
    const decoder = new Utf8Chunks()
    expect(decoder.decode(new Uint8Array([0x61, 0xe2]))).toBe('a')
    expect(decoder.decode(new Uint8Array([0x82]))).toBe('')
    expect(decoder.end()).toBe('\uFFFD')
    expect(new TextDecoder().decode(new Uint8Array([0x61, 0xe2, 0x82]))).toBe('a\uFFFD')
    expect(decoder.end()).toBe('')
    expect(new Utf8Chunks().end()).toBe('')
  })

  it('keeps a character split between chunks whole, at every cut', () => {
    const all = bytes('a€b😀c\nzé')
    for (let i = 0; i <= all.length; i++) {
      for (let j = i; j <= all.length; j++) {
        const chunks = cut(all, [i, j])
        const decoder = new Utf8Chunks()
        expect(chunks.map((c) => decoder.decode(c)).join(''), `${i} ${j}`).toBe('a€b😀c\nzé')
      }
    }
  })

  it('agrees with a streaming decoder on invalid bytes, a BOM and empty chunks', () => {
    const cases = [
      [new Uint8Array([0xef, 0xbb, 0xbf, 0x41]), new Uint8Array([0x42])],
      [new Uint8Array([0x41, 0xe2, 0x82]), new Uint8Array([0x41])],
      [
        new Uint8Array([0xff, 0x41]),
        new Uint8Array([]),
        new Uint8Array([0xc3]),
        new Uint8Array([0xa9, 0x0a]),
      ],
      [new Uint8Array([0xf0, 0x9f]), new Uint8Array([]), new Uint8Array([0x98, 0x80])],
    ]
    for (const chunks of cases) {
      const decoder = new Utf8Chunks()
      const text = chunks.map((c) => decoder.decode(c)).join('')
      // A character cut at the very end stays pending in both until more comes.
      expect(text, JSON.stringify(chunks)).toBe(streamingReference(chunks).replace(/\uFFFD$/, ''))
    }
  })
})
