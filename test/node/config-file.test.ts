/**
 * The config file's watch (src/node/config-file.ts): begun once a start's first answer is out,
 * without missing a change made before it began; SIGHUP reloads from the start. Real files in a
 * folder of their own, Node's own `fs.watch`.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { RememberedFiles, watchConfig } from '../../src/node/config-file.ts'

const dir = mkdtempSync(join(tmpdir(), 'dockgate-config-watch-'))
afterAll(() => rmSync(dir, { recursive: true, force: true }))

let files = 0
/** A config file of its own, holding `text`. */
function configFile(text = '{"tokens":[]}') {
  const path = join(dir, `config-${++files}.json`)
  writeFileSync(path, text)
  return path
}

/** A promise and what settles it, as a first answer's `settled`. */
function later() {
  let settle = () => {}
  const promise = new Promise<void>((resolve) => (settle = resolve))
  return { promise, settle }
}

const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

/**
 * A config file of its own, loaded through `RememberedFiles` as an entry loads it, and watched
 * from its first answer (`first.settle()`); `reloads()` counts the reloads so far.
 */
function watchedFromFirstAnswer() {
  const path = configFile()
  const remembered = new RememberedFiles()
  remembered.read(path)
  let reloads = 0
  const first = later()
  const stop = watchConfig(path, () => reloads++, { after: first.promise, files: remembered })
  return { path, first, stop, reloads: () => reloads }
}

describe('RememberedFiles', () => {
  it('tells whether a file changed since it was last read or written through it', () => {
    const path = configFile()
    const remembered = new RememberedFiles()
    expect(remembered.changed(path)).toBe(true)
    expect(remembered.read(path)).toBe('{"tokens":[]}')
    expect(remembered.changed(path)).toBe(false)
    writeFileSync(path, '{"tokens":[],"limits":{}}')
    expect(remembered.changed(path)).toBe(true)
    remembered.writePrivate(path, '{}')
    expect(remembered.changed(path)).toBe(false)
  })

  it('remembers a file that did not exist, until it does', () => {
    const path = join(dir, 'not-yet.json')
    const remembered = new RememberedFiles()
    expect(remembered.read(path)).toBeUndefined()
    expect(remembered.changed(path)).toBe(false)
    writeFileSync(path, '{}')
    expect(remembered.changed(path)).toBe(true)
  })
})

describe('watchConfig', () => {
  it('reloads on SIGHUP before its watch has begun', () => {
    let reloads = 0
    const first = later()
    const stop = watchConfig(configFile(), () => reloads++, { after: first.promise })
    try {
      process.emit('SIGHUP', 'SIGHUP')
      expect(reloads).toBe(1)
    } finally {
      stop()
    }
  })

  it('reloads once its watch begins for a change made before that', async () => {
    const { path, first, stop, reloads } = watchedFromFirstAnswer()
    try {
      writeFileSync(path, '{"tokens":[],"limits":{"burst":5}}')
      await pause(300)
      expect(reloads()).toBe(0)
      first.settle()
      await expect.poll(reloads, { timeout: 3_000 }).toBe(1)
      // And for a change after it began.
      writeFileSync(path, '{"tokens":[],"limits":{"burst":6}}')
      await expect.poll(reloads, { timeout: 3_000 }).toBe(2)
    } finally {
      stop()
    }
  })

  it('does not reload when nothing changed before its watch began', async () => {
    const { first, stop, reloads } = watchedFromFirstAnswer()
    try {
      first.settle()
      await pause(400)
      expect(reloads()).toBe(0)
    } finally {
      stop()
    }
  })

  it('reloads for its own file only, not for another one changed beside it', async () => {
    const path = configFile()
    let reloads = 0
    const stop = watchConfig(path, () => reloads++)
    try {
      writeFileSync(join(dir, 'gateway.log'), 'a line written beside the config\n')
      writeFileSync(`${path}.bak`, '{}')
      await pause(400)
      expect(reloads).toBe(0)
      writeFileSync(path, '{"tokens":[],"limits":{"burst":8}}')
      await expect.poll(() => reloads, { timeout: 3_000 }).toBe(1)
    } finally {
      stop()
    }
  })

  it('begins no watch when stopped before its first answer', async () => {
    const { path, first, stop, reloads } = watchedFromFirstAnswer()
    stop()
    first.settle()
    writeFileSync(path, '{"tokens":[],"limits":{"burst":7}}')
    await pause(400)
    expect(reloads()).toBe(0)
    process.emit('SIGHUP', 'SIGHUP')
    expect(reloads()).toBe(0)
  })
})
