/**
 * Request variables are read with `c.get`: Hono's `c.var` builds a new object of every variable
 * (`Object.fromEntries`) on each read, and the middleware of every request read it a dozen times
 * (bench phase 2, bench/README.md "Changes and their effect"). It crept back once after it was
 * taken out: this keeps it out.
 */
import { readFileSync } from 'node:fs'
import { relative, resolve } from 'node:path'
import { describe, expect, it } from 'vitest'
import { filesUnder } from '../support/files.ts'

const SRC = resolve(import.meta.dirname, '../../src')

const sourceFiles = (dir: string) => filesUnder(dir, (name) => name.endsWith('.ts'))

describe('request variables', () => {
  it('are read with c.get, never c.var', () => {
    const readers = sourceFiles(SRC).filter((file) => /\bc\.var\b/.test(readFileSync(file, 'utf8')))
    expect(readers.map((file) => relative(SRC, file))).toEqual([])
    expect(sourceFiles(SRC).length).toBeGreaterThan(50)
  })
})
