/**
 * @module Node-only: the config file on disk, and watching it for changes.
 */
import { chmodSync, existsSync, readFileSync, watch, writeFileSync } from 'node:fs'
import { dirname, resolve } from 'node:path'
import type { ConfigFiles } from '../config-store.ts'

export const nodeFiles: ConfigFiles = {
  read: (path) => (existsSync(path) ? readFileSync(path, 'utf8') : undefined),
  writePrivate(path, text) {
    writeFileSync(path, text, { mode: 0o600 })
    chmodSync(path, 0o600)
  },
}

/**
 * Calls `reload` on SIGHUP and when the config file changes (debounced: editors write in steps).
 * Returns a function that stops watching.
 */
export function watchConfig(path: string, reload: () => void): () => void {
  let timer: ReturnType<typeof setTimeout> | undefined
  const soon = () => {
    clearTimeout(timer)
    timer = setTimeout(reload, 100)
  }
  process.on('SIGHUP', reload)
  // Watch the folder: editors and `mv` replace the file, which ends a watch on the file itself.
  const folder = dirname(resolve(path))
  const watcher = watch(folder, (_event, name) => {
    if (name && resolve(folder, name) === resolve(path)) soon()
  })
  return () => {
    clearTimeout(timer)
    watcher.close()
    process.off('SIGHUP', reload)
  }
}
