/**
 * The generated /docs renderer module (scripts/docs-renderer.mjs) and the freshness check of
 * scripts/deno-start.sh: a module older than the last npm install is rebuilt before Deno starts,
 * so one that is current must not stay older than the install, or every start pays for Node.
 */
import { execFileSync } from 'node:child_process'
import { statSync, utimesSync } from 'node:fs'
import { describe, expect, it } from 'vitest'

const MODULE = 'src/docs/renderer.generated.js'
const INSTALL = 'node_modules/.package-lock.json'

describe('the docs renderer module', () => {
  it('is touched when current, so it is no longer older than the install', () => {
    const before = statSync(MODULE).mtimeMs
    const installed = statSync(INSTALL).mtime
    const longAgo = new Date(installed.getTime() - 3_600_000)
    utimesSync(MODULE, longAgo, longAgo)
    try {
      const output = execFileSync(process.execPath, ['scripts/docs-renderer.mjs'], {
        encoding: 'utf8',
      })
      // Current: not written again
      expect(output).not.toContain('written')
      expect(statSync(MODULE).mtimeMs).toBeGreaterThan(installed.getTime())
      // What scripts/deno-start.sh asks before it starts Deno
      const stale = execFileSync(
        'bash',
        ['-c', `[ ${INSTALL} -nt ${MODULE} ] && echo stale || echo fresh`],
        {
          encoding: 'utf8',
        },
      )
      expect(stale.trim()).toBe('fresh')
    } finally {
      if (statSync(MODULE).mtimeMs < before) utimesSync(MODULE, new Date(), new Date())
    }
  })
})
