// dist/dockgate.mjs: what `npm start` runs. scripts/build-node.mjs writes it from this file, with
// APP naming the bundled gateway (a CommonJS script whose name carries a hash of its content).
//
// Node 20 has no module compile cache (`module.enableCompileCache` came with Node 22), so this
// loader keeps V8's code cache itself: the gateway is compiled as a `vm.Script` with the cached
// data beside it (`<APP>.v8cache`) and, when there was none or V8 refused it (another Node,
// other V8 flags), writes it once the start has compiled what starting needs. Measured under
// callgrind from spawn to listening (issue #17, bench `cold`): 1.16 G instructions with the
// cache, 1.38 G as an ES module bundle, 1.53 G as this script without it; an empty `node` 0.54 G.
//
// Safe by construction: the cache is keyed by the script's name, and the name by its content;
// V8 checks its own version and flags and refuses a cache that does not fit; a cache that cannot
// be read or written (a read-only dist/) only means compiling as without one. With
// `--enable-source-maps` (Node maps stack traces only for the scripts its own loader compiles, not
// for a `vm.Script`), the script is required as it is. Bun (JavaScriptCore, no V8 code cache)
// requires the same script as scripts/build-node.mjs compiled it for Bun (`<APP>.bun.cjs`, with
// JavaScriptCore's bytecode beside it: about 40 ms less CPU to start there), or the script as it
// is when there is none (a build without Bun installed).
import { existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs'
import { createRequire, Module } from 'node:module'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { setFlagsFromString } from 'node:v8'
import { Script } from 'node:vm'

const APP = './dockgate-chunks/app.cjs'

/**
 * How far V8 lets the old generation grow past what is live after a major collection, set once
 * the start is over rather than on Node's command line: any V8 flag there (the heap's sizes too)
 * changes the flag hash V8 checks a code cache against, so V8 refuses the cache Node ships for its
 * own built-in modules, and every built-in a start loads is compiled from source and its cache
 * made again: a bare `node:http` server 113 M instructions to listening without a flag, 180 M
 * with `--initial-old-space-size=128`; the gateway 460 M against 617 M (main, with that flag), and
 * the same bundle 209 against 268 ms to its first 200 without and with the flags (bench `cold`,
 * issue #17; bench/README.md, "Cold start, third session"). Without a heap flag, a gateway that
 * had served a burst of requests streamed logs with a major collection ten times a second
 * (bench/README.md, Findings 2, where `--heap-growing-percent=300` was the other flag measured to
 * help). V8 reads it each time it sets the old generation's next limit, so setting it now takes
 * effect (that it does as well as the command-line flag did is for a full `--only=cpu,logs` run
 * to confirm; the quick phase shows no difference). Not on Bun (no V8 flags).
 */
const HEAP_GROWTH = '--heap-growing-percent=300'
const AFTER_START_MS = 1_000

const file = join(dirname(fileURLToPath(import.meta.url)), APP)
const require = createRequire(file)

if (process.versions.bun) {
  const compiled = `${file}.bun.cjs`
  require(existsSync(compiled) ? compiled : file)
} else if (process.sourceMapsEnabled) {
  setTimeout(() => setFlagsFromString(HEAP_GROWTH), AFTER_START_MS).unref()
  require(file)
} else {
  const cacheFile = `${file}.v8cache`
  let cachedData
  try {
    cachedData = readFileSync(cacheFile)
  } catch {
    // None yet: written below.
  }
  const script = new Script(Module.wrap(readFileSync(file, 'utf8')), {
    filename: file,
    cachedData,
  })
  let write = () => {}
  if (cachedData === undefined || script.cachedDataRejected) {
    let written = false
    write = () => {
      if (written) return
      written = true
      try {
        const temporary = `${cacheFile}.${process.pid}.tmp`
        writeFileSync(temporary, script.createCachedData())
        renameSync(temporary, cacheFile)
      } catch {
        // Not writable here: the next start compiles as this one did.
      }
    }
    // On a clean way out if that comes before the start is over (below); not from a start that
    // failed, which compiled only part of what a start needs.
    process.once('exit', (code) => {
      if (code === 0) write()
    })
  }
  // Once the start is over (its functions compiled): the cache first, made under the flags it
  // was checked against, then the heap's growth (which changes them).
  setTimeout(() => {
    write()
    setFlagsFromString(HEAP_GROWTH)
  }, AFTER_START_MS).unref()
  const module = { exports: {} }
  script.runInThisContext()(module.exports, require, module, file, dirname(file))
}
