/**
 * scripts/node-bundle/assert-on-demand.cjs, the bundle's `node:assert` for undici: a check that
 * holds does nothing and loads nothing; one that fails throws Node's own AssertionError, with the
 * message given. That the pinned undici uses the module only as such a function is checked on its
 * sources here; that the bundle does not load `assert` at all, on the bundle itself
 * (test/node/fetch-globals.test.ts).
 */
import assertModule from 'node:assert'
import { readFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { builtinsLoadedBy } from '../support/builtins.ts'
import { filesUnder } from '../support/files.ts'

const require = createRequire(import.meta.url)
const MODULE = require.resolve('../../scripts/node-bundle/assert-on-demand.cjs')
const assert = require(MODULE) as (value: unknown, message?: string | Error) => void

describe('node:assert on demand for undici', () => {
  it('does nothing for a check that holds, and throws Node’s AssertionError for one that fails', () => {
    expect(assert(1)).toBeUndefined()
    expect(assert('x', 'never')).toBeUndefined()
    expect(() => assert(0, 'the reason')).toThrow(assertModule.AssertionError)
    expect(() => assert(false, 'the reason')).toThrow('the reason')
    expect(() => assert(null)).toThrow(assertModule.AssertionError)
    const own = new TypeError('own error')
    expect(() => assert(undefined, own)).toThrow(own)
  })

  it('loads Node’s module only when a check fails', () => {
    const loaded = (fail: boolean) =>
      builtinsLoadedBy(`const assert = require(${JSON.stringify(MODULE)})
        assert(true)
        ${fail ? 'try { assert(false) } catch {}' : ''}`)
    expect(loaded(false)).not.toContain('NativeModule assert')
    // The record is Node's: a name it no longer uses would make the line above pass for nothing.
    expect(loaded(true)).toContain('NativeModule assert')
  })

  it('stands for all undici needs of node:assert: a call, never a member', () => {
    const undici = join(dirname(require.resolve('undici/package.json')), 'lib')
    const users = filesUnder(undici, (name) => name.endsWith('.js')).filter((file) =>
      /require\(['"]node:assert['"]\)/.test(readFileSync(file, 'utf8')),
    )
    expect(users.length).toBeGreaterThan(0)
    for (const file of users) {
      const text = readFileSync(file, 'utf8')
      // Bound to `assert` as a whole, and used only by calling it.
      expect(text, file).toMatch(/const assert = require\(['"]node:assert['"]\)/)
      expect(text, file).not.toMatch(/\bassert\.[A-Za-z]/)
    }
  })
})
