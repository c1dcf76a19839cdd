/**
 * `npm start` builds the Node bundle only when a file it was made of changed since
 * (scripts/build-node.mjs --if-stale, scripts/fresh-build.mjs): the record of the last build
 * against the files it lists.
 */
import { execFileSync } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { isFresh, recordBuild } from '../../scripts/fresh-build.mjs'

const dir = mkdtempSync(join(tmpdir(), 'dockgate-fresh-build-'))
afterAll(() => rmSync(dir, { recursive: true, force: true }))

const at = (seconds: number) => new Date(Date.UTC(2026, 0, 1, 0, 0, seconds))
function file(name: string, time: Date) {
  writeFileSync(join(dir, name), name)
  utimesSync(join(dir, name), time, time)
}

describe('a build’s record', () => {
  it('is fresh while no file it lists is newer than the build’s start, and none is gone', () => {
    file('a.ts', at(1))
    file('b.ts', at(2))
    const record = join(dir, 'out.inputs')
    recordBuild(record, ['a.ts', 'b.ts', 'a.ts'], at(3))
    expect(readFileSync(record, 'utf8')).toBe('a.ts\nb.ts\n')
    expect(isFresh(dir, record)).toBe(true)
    // Saved while the build ran, or after it
    file('b.ts', at(4))
    expect(isFresh(dir, record)).toBe(false)
    file('b.ts', at(2))
    expect(isFresh(dir, record)).toBe(true)
    rmSync(join(dir, 'a.ts'))
    expect(isFresh(dir, record)).toBe(false)
  })

  it('is stale without a record, or with an empty one', () => {
    expect(isFresh(dir, join(dir, 'none.inputs'))).toBe(false)
    recordBuild(join(dir, 'empty.inputs'), [], at(3))
    expect(isFresh(dir, join(dir, 'empty.inputs'))).toBe(false)
  })
})

describe('scripts/build-node.mjs --if-stale', () => {
  const entry = join(dir, 'dockgate.mjs')
  const build = (...args: string[]) =>
    execFileSync(process.execPath, ['scripts/build-node.mjs', `--outfile=${entry}`, ...args], {
      encoding: 'utf8',
    })

  it('builds when nothing was built, then not again while the sources stay as they are', () => {
    expect(build('--if-stale')).toMatch(/dockgate-chunks\/app-[0-9a-f]{16}\.cjs: \d+ KiB/)
    const built = statSync(entry).mtimeMs
    const record = readFileSync(join(dir, 'dockgate.inputs'), 'utf8').split('\n')
    expect(record).toEqual(
      expect.arrayContaining(['src/node.ts', 'src/app.ts', 'node_modules/.package-lock.json']),
    )
    expect(build('--if-stale')).toBe('')
    expect(statSync(entry).mtimeMs).toBe(built)
    // Without the flag it builds anyway
    expect(build()).toMatch(/KiB/)
  }, 120_000)
})
