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
// be read or written (a read-only dist/) only means compiling as without one. On Bun (no V8), and
// with `--enable-source-maps` (Node maps stack traces only for the scripts its own loader
// compiles, not for a `vm.Script`), the script is required as it is.
import { readFileSync, renameSync, writeFileSync } from 'node:fs'
import { createRequire, Module } from 'node:module'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { Script } from 'node:vm'

const APP = './dockgate-chunks/app.cjs'

const file = join(dirname(fileURLToPath(import.meta.url)), APP)
const require = createRequire(file)

if (process.versions.bun || process.sourceMapsEnabled) {
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
  if (cachedData === undefined || script.cachedDataRejected) {
    let written = false
    const write = () => {
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
    // Once the start is over (its functions compiled), or on a clean way out if that comes
    // first; not from a start that failed, which compiled only part of what a start needs.
    setTimeout(write, 1_000).unref()
    process.once('exit', (code) => {
      if (code === 0) write()
    })
  }
  const module = { exports: {} }
  script.runInThisContext()(module.exports, require, module, file, dirname(file))
}
