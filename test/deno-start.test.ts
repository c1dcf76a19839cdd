/**
 * Which entry `scripts/deno-start.sh` gives Deno: the bundle `npm run build` makes
 * (scripts/build-deno.mjs, dist/deno.js) while none of the files listed beside it is newer, else
 * src/deno.ts. Run in a scratch copy of the layout the script reads, with a `deno` that prints the
 * entry it was given instead of running it.
 */
import { spawnSync } from 'node:child_process'
import {
  chmodSync,
  copyFileSync,
  mkdirSync,
  readFileSync,
  rmSync,
  utimesSync,
  writeFileSync,
} from 'node:fs'
import { dirname, join } from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { scratchDir } from './support/reliability.ts'

let root: string

const HOUR_AGO = new Date(Date.now() - 3_600_000)
const MINUTE_AGO = new Date(Date.now() - 60_000)

function put(path: string, text: string, time: Date) {
  const file = join(root, path)
  mkdirSync(dirname(file), { recursive: true })
  writeFileSync(file, text)
  utimesSync(file, time, time)
}

function start() {
  const result = spawnSync('bash', [join(root, 'scripts/deno-start.sh')], {
    encoding: 'utf8',
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: root, DOCKGATE_CONFIG: 'config.json' },
  })
  expect(result.status, result.stderr).toBe(0)
  const args = result.stdout.trim().split(' ')
  return { entry: args.at(-1), stderr: result.stderr, args }
}

beforeEach(() => {
  root = scratchDir('dockgate-deno-start')
  mkdirSync(join(root, 'scripts'))
  copyFileSync('scripts/deno-start.sh', join(root, 'scripts/deno-start.sh'))
  put('node_modules/.bin/deno', '#!/bin/sh\necho "$@"\n', HOUR_AGO)
  chmodSync(join(root, 'node_modules/.bin/deno'), 0o755)
  put('node_modules/.package-lock.json', '{}', HOUR_AGO)
  put('scripts/docs-renderer.mjs', '', HOUR_AGO)
  put('src/docs/renderer.generated.js', '', MINUTE_AGO)
  put('src/deno.ts', '', HOUR_AGO)
  put('src/app.ts', '', HOUR_AGO)
  put('dist/deno.inputs', 'src/deno.ts\nsrc/app.ts\nnode_modules/.package-lock.json\n', MINUTE_AGO)
  put('dist/deno.js', '', MINUTE_AGO)
})

afterEach(() => rmSync(root, { recursive: true, force: true }))

describe('scripts/deno-start.sh', () => {
  it('runs the bundle while no file it was made of is newer, with eager source positions', () => {
    const { entry, stderr, args } = start()
    expect({ entry, stderr }).toEqual({ entry: 'dist/deno.js', stderr: '' })
    expect(args.find((arg) => arg.startsWith('--v8-flags='))).toContain(
      ',--no-enable-lazy-source-positions',
    )
  })

  it('runs src/deno.ts, and says why, once a source or the install is newer than the bundle', () => {
    utimesSync(join(root, 'src/app.ts'), new Date(), new Date())
    const { entry, stderr, args } = start()
    expect(entry).toBe('src/deno.ts')
    expect(stderr).toContain('dist/deno.js is older than src/app.ts')
    expect(args.join(' ')).not.toContain('lazy-source-positions')

    utimesSync(join(root, 'src/app.ts'), HOUR_AGO, HOUR_AGO)
    utimesSync(join(root, 'node_modules/.package-lock.json'), new Date(), new Date())
    expect(start().entry).toBe('src/deno.ts')
  })

  it('runs src/deno.ts when there is no bundle or no list of its files', () => {
    rmSync(join(root, 'dist/deno.inputs'))
    expect(start()).toMatchObject({ entry: 'src/deno.ts', stderr: '' })
    rmSync(join(root, 'dist'), { recursive: true })
    expect(start()).toMatchObject({ entry: 'src/deno.ts', stderr: '' })
  })
})

describe('scripts/build-deno.mjs', () => {
  it('lists the sources the bundle was made of, and the install, none of them newer than it', () => {
    const build = spawnSync(process.execPath, ['scripts/build-deno.mjs'], { encoding: 'utf8' })
    expect(build.status, build.stderr).toBe(0)
    const inputs = readFileSync('dist/deno.inputs', 'utf8').trim().split('\n')
    expect(inputs).toEqual(
      expect.arrayContaining(['src/deno.ts', 'src/app.ts', 'node_modules/.package-lock.json']),
    )
    expect(inputs.filter((file) => file.startsWith('node_modules/'))).toEqual([
      'node_modules/.package-lock.json',
    ])
    // The renderer stays out of it (imported from src/ on the first /docs request).
    expect(inputs).not.toContain('src/docs/renderer.generated.js')
    const stale = spawnSync(
      'bash',
      ['-c', 'while read -r f; do [ "$f" -nt dist/deno.js ] && echo "$f"; done <dist/deno.inputs'],
      { encoding: 'utf8' },
    )
    expect(stale.stdout).toBe('')
  })
})
