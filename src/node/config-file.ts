/**
 * @module Node-only (Node and Bun): the config file on disk, and watching it for changes.
 */
import { chmodSync, existsSync, readFileSync, watch, writeFileSync } from 'node:fs'
import { basename, dirname, resolve } from 'node:path'
import type { ConfigFiles } from '../config-store.ts'

export const nodeFiles: ConfigFiles = {
  read: (path) => (existsSync(path) ? readFileSync(path, 'utf8') : undefined),
  writePrivate(path, text) {
    writeFileSync(path, text, { mode: 0o600 })
    chmodSync(path, 0o600)
  },
}

/**
 * Files that remember each file's text as it was last read or written through them, so that a
 * watch begun later can tell whether the file changed in between.
 */
export class RememberedFiles implements ConfigFiles {
  readonly #files: ConfigFiles
  readonly #texts = new Map<string, string | undefined>()

  constructor(files: ConfigFiles = nodeFiles) {
    this.#files = files
  }

  read(path: string): string | undefined {
    const text = this.#files.read(path)
    this.#texts.set(path, text)
    return text
  }

  writePrivate(path: string, text: string): void {
    this.#files.writePrivate(path, text)
    this.#texts.set(path, text)
  }

  /** Whether `path` holds other text now than it last did here (or was never read here). */
  changed(path: string): boolean {
    return !this.#texts.has(path) || this.#files.read(path) !== this.#texts.get(path)
  }
}

export interface WatchOptions {
  /**
   * The file's watch begins once this settles: a start's first answer (`firstAnswer` in
   * bootstrap.ts), since beginning one cost a Bun start 1.3–5.3 ms (bench/README.md, "Cold
   * start on Bun, one executable"). SIGHUP reloads from the start.
   */
  readonly after?: Promise<unknown>
  /** What the config was loaded through: a change made before the watch began reloads too. */
  readonly files?: RememberedFiles
}

/**
 * Calls `reload` on SIGHUP and when the config file changes (debounced: editors write in steps).
 * Returns a function that stops watching.
 */
export function watchConfig(
  path: string,
  reload: () => void,
  options: WatchOptions = {},
): () => void {
  let timer: ReturnType<typeof setTimeout> | undefined
  let stopped = false
  let close = () => {}
  const soon = () => {
    clearTimeout(timer)
    timer = setTimeout(reload, 100)
  }
  const begin = () => {
    if (stopped) return
    // Watch the folder: editors and `mv` replace the file, which ends a watch on the file itself.
    // Every other file changed there is reported too (a log written beside the config, say):
    // each is told apart by its name alone.
    const file = resolve(path)
    const name = basename(file)
    const watcher = watch(dirname(file), (_event, changed) => {
      if (changed === name) soon()
    })
    close = () => watcher.close()
    if (options.files?.changed(path)) soon()
  }
  process.on('SIGHUP', reload)
  if (options.after) void options.after.then(begin, begin)
  else begin()
  return () => {
    stopped = true
    clearTimeout(timer)
    close()
    process.off('SIGHUP', reload)
  }
}
