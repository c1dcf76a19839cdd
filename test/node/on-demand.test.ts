/**
 * scripts/node-bundle/on-demand.cjs, the bundle's `tls` and `https` for `ws`: every member read is
 * Node's own, and a module whose members nobody reads is never loaded. That the bundle loads
 * neither at start is proved on the bundle itself (test/node/fetch-globals.test.ts); that `ws`
 * still accepts upgrades through it, by test/routes/exec-session.test.ts (the bundle too).
 */
import https from 'node:https'
import { createRequire } from 'node:module'
import tls from 'node:tls'
import { describe, expect, it } from 'vitest'
import { builtinsLoadedBy } from '../support/builtins.ts'

const require = createRequire(import.meta.url)
const MODULE = require.resolve('../../scripts/node-bundle/on-demand.cjs')
const { onDemand } = require(MODULE) as { onDemand: (name: string) => Record<string, unknown> }

describe('Node modules on demand', () => {
  it('reads every member from Node’s module', () => {
    const lazyTls = onDemand('node:tls')
    const lazyHttps = onDemand('node:https')
    expect(lazyTls.connect).toBe(tls.connect)
    expect(lazyTls.TLSSocket).toBe(tls.TLSSocket)
    expect(lazyHttps.request).toBe(https.request)
    expect(lazyHttps.Agent).toBe(https.Agent)
    expect('connect' in lazyTls).toBe(true)
    expect('noSuchMember' in lazyTls).toBe(false)
    expect(Object.keys(lazyHttps)).toEqual(Object.keys(https))
  })

  it('loads nothing until a member is read', () => {
    const loaded = (read: boolean) =>
      builtinsLoadedBy(`const lazy = require(${JSON.stringify(MODULE)}).onDemand('node:tls')
        ${read ? 'lazy.connect' : ''}`)
    expect(loaded(false)).not.toContain('NativeModule tls')
    // The record is Node's: a name it no longer uses would make the line above pass for nothing.
    expect(loaded(true)).toContain('NativeModule tls')
  })
})
