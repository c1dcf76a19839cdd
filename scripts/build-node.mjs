// Bundles the Node entry (src/node.ts) and everything it imports, dependencies included, into
// one CommonJS script, dist/dockgate-chunks/app-<hash>.cjs (+ .map), and writes the loader that
// `npm start` runs, dist/dockgate.mjs (scripts/node-bundle/code-cache-loader.mjs), which compiles
// it with V8's code cache. Resolving and loading some 360 separate modules (dist/ and
// node_modules) cost Node 20 more than half of its cold start; one file is parsed once, and with
// the code cache most of it is not compiled again either.
//
//   node scripts/build-node.mjs [--outfile=PATH] [--if-stale]     (the loader; the rest beside it)
//
// With --if-stale nothing is built while the last build's record (`<outfile>.inputs`,
// scripts/fresh-build.mjs) says no file it read has changed since: `npm start` runs it so.
//
// Stack traces point into the bundle; `node --enable-source-maps dist/dockgate.mjs` maps them
// back to src/ (not the default: reading the map costs every start).
import { execFileSync } from 'node:child_process'
import { createHash } from 'node:crypto'
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  writeFileSync,
} from 'node:fs'
import { basename, dirname, join, relative, resolve } from 'node:path'
import { build } from 'esbuild'
import { ZOD_ENGLISH_ONLY } from './bundle-options.mjs'
import { RENDERER_MODULE, rendererAsCommonJs, writeRendererModule } from './docs-renderer.mjs'
import { isFresh, recordBuild } from './fresh-build.mjs'

const ROOT = resolve(dirname(new URL(import.meta.url).pathname), '..')
const DEFAULT_OUTFILE = 'dist/dockgate.mjs'

/**
 * Imports pointed at narrower modules (see each file): a bundle keeps whatever an imported
 * module evaluates or re-exports, and these cost about a fifth of the start's CPU for nothing.
 */
const NARROWED = [
  { filter: /^undici$/, to: 'scripts/node-bundle/undici.mjs' },
  {
    filter: /^node:http2$/,
    importer: /\/node_modules\/(@hono\/node-server|undici)\//,
    to: 'scripts/node-bundle/http2-on-demand.mjs',
  },
  ZOD_ENGLISH_ONLY,
  // undici calls `node:assert` only as a function: Node's module on the first failed check.
  {
    filter: /^node:assert$/,
    importer: /\/node_modules\/undici\//,
    to: 'scripts/node-bundle/assert-on-demand.cjs',
  },
]

/**
 * Node's built-in modules that a bundled module `require`s as it is evaluated but uses only on a
 * path the gateway never or rarely takes: loaded when a member is first read instead
 * (scripts/node-bundle/on-demand.cjs, which says why for each).
 */
const ON_DEMAND = [{ filter: /^(?:node:)?(?:tls|https)$/, importer: /\/node_modules\/ws\// }]
const ON_DEMAND_MODULE = resolve(ROOT, 'scripts/node-bundle/on-demand.cjs')

const narrowImports = {
  name: 'narrow-imports',
  setup(build) {
    for (const { filter, importer, to } of NARROWED) {
      build.onResolve({ filter }, (args) =>
        !importer || importer.test(args.importer) ? { path: resolve(ROOT, to) } : undefined,
      )
    }
    for (const { filter, importer } of ON_DEMAND) {
      build.onResolve({ filter }, (args) =>
        importer.test(args.importer)
          ? { path: `node:${args.path.replace(/^node:/, '')}`, namespace: 'on-demand' }
          : undefined,
      )
    }
    build.onLoad({ filter: /.*/, namespace: 'on-demand' }, (args) => ({
      contents: `module.exports = require(${JSON.stringify(ON_DEMAND_MODULE)}).onDemand(${JSON.stringify(args.path)})`,
      loader: 'js',
      resolveDir: ROOT,
    }))
  },
}

/**
 * The /docs renderer (about 5 MB, scripts/docs-renderer.mjs) stays out of the bundle, in a file
 * beside it that the first /docs request requires: starting does not read or parse it. CommonJS,
 * as the bundle: a script compiled from V8's code cache cannot `import()` (Node 20 loses the
 * callback), so the bundle has no dynamic import left (`supported` below).
 */
const DOCS_RENDERER_FILE = 'docs-renderer.cjs'

const docsRendererBeside = {
  name: 'docs-renderer-beside',
  setup(build) {
    build.onResolve({ filter: /\/renderer\.generated\.js$/ }, () => ({
      path: `./${DOCS_RENDERER_FILE}`,
      external: true,
    }))
  },
}

function outfileFromArgs(argv) {
  const arg = argv.find((a) => a.startsWith('--outfile='))
  return resolve(ROOT, arg ? arg.slice('--outfile='.length) : DEFAULT_OUTFILE)
}

async function bundle(chunksDir) {
  return build({
    absWorkingDir: ROOT,
    entryPoints: ['src/node.ts'],
    outfile: join(chunksDir, 'app.cjs'),
    bundle: true,
    format: 'cjs',
    platform: 'node',
    target: 'node20',
    supported: { 'dynamic-import': false },
    sourcemap: 'linked',
    plugins: [narrowImports, docsRendererBeside],
    // Whitespace and syntax only: about 3 % fewer instructions from spawn to listening than
    // unminified (callgrind, issue #17), the same as full minification; names stay as written,
    // for stack traces (`--enable-source-maps` maps lines back to src/).
    minifyWhitespace: true,
    minifySyntax: true,
    write: false,
    metafile: true,
    logLevel: 'warning',
  })
}

/** What a build reads besides the bundle's own inputs: these scripts and the installed packages. */
const BUILD_INPUTS = [
  'node_modules/.package-lock.json',
  'scripts/build-node.mjs',
  'scripts/bundle-options.mjs',
  'scripts/docs-renderer.mjs',
  'scripts/fresh-build.mjs',
  ...readdirSync(join(ROOT, 'scripts/node-bundle')).map((file) => `scripts/node-bundle/${file}`),
]

/**
 * Bun (JavaScriptCore) has no use for V8's code cache: on Bun the loader requires the script, and
 * Bun parsed all 1.9 MB of it on every start, about 40 ms of CPU (a `new Function` of it alone:
 * 34–45 ms). `bun build --bytecode` writes the same script as Bun's own CommonJS wrapper
 * (`<script>.bun.cjs`) with JavaScriptCore's bytecode beside it (`.jsc`), which Bun loads instead
 * of parsing; Bun checks the bytecode against its own version and parses the source when it does
 * not fit (a garbled `.jsc` starts alike, test/node/bun-bytecode.test.ts). Measured on Bun 1.4.4,
 * CPU from spawn to the end of the script's evaluation, 7 starts each alternating: 143 ms (137–151)
 * from the script, 103 (89–120) from the bytecode (bench/README.md, "Cold start on Bun"). Written
 * only where the pinned Bun is installed (package.json); without it Bun runs the script as before.
 */
const BUN = resolve(ROOT, 'node_modules/.bin/bun')
const BUN_SUFFIX = '.bun.cjs'

/**
 * `<chunksDir>/<app>.bun.cjs` and its `.jsc`, from the script already written there; a warning
 * instead when Bun is missing or fails, and Bun then runs the script.
 */
function writeBunBytecode(chunksDir, app) {
  if (!existsSync(BUN)) {
    console.warn(`${relative(ROOT, BUN)} not installed: no bytecode for Bun`)
    return
  }
  const temporary = mkdtempSync(join(chunksDir, `bun-${process.pid}-`))
  try {
    execFileSync(
      BUN,
      [
        'build',
        join(chunksDir, app),
        '--bytecode',
        '--format=cjs',
        '--target=bun',
        // Nothing is bundled again: the script's packages are all in it, and what it requires
        // that is not (ws's optional native helpers, the renderer beside it) stays a require.
        '--packages=external',
        `--external=*/${DOCS_RENDERER_FILE}`,
        // (One file, but Bun writes its bytecode beside only into a directory.)
        `--outdir=${temporary}`,
      ],
      { stdio: ['ignore', 'ignore', 'inherit'] },
    )
    const out = join(temporary, app.replace(/\.cjs$/, '.js'))
    // The bytecode first: a script without it still starts (from its source).
    renameSync(`${out}.jsc`, join(chunksDir, `${app}${BUN_SUFFIX}.jsc`))
    renameSync(out, join(chunksDir, `${app}${BUN_SUFFIX}`))
  } catch (error) {
    // Only Bun's start is at stake (a Bun binary this machine cannot run, say), not Node's build.
    console.warn(`bun build --bytecode failed (${error.message}): Bun will run the script itself`)
  } finally {
    rmSync(temporary, { recursive: true, force: true })
  }
}

/**
 * Each file is written beside its target and renamed over it: tests build concurrently, and a
 * gateway started meanwhile must read either the old bundle or the new one, never half of one.
 */
function writeAtomically(files) {
  for (const file of files) {
    mkdirSync(dirname(file.path), { recursive: true })
    const temporary = `${file.path}.${process.pid}.tmp`
    writeFileSync(temporary, file.contents)
    renameSync(temporary, file.path)
  }
}

const outfile = outfileFromArgs(process.argv.slice(2))
const record = outfile.replace(/\.m?js$/, '.inputs')
if (process.argv.includes('--if-stale') && existsSync(outfile) && isFresh(ROOT, record)) {
  process.exit(0)
}
const chunksDir = join(dirname(outfile), `${basename(outfile).replace(/\.m?js$/, '')}-chunks`)
// The record takes the time the build began: a file saved while it ran counts as newer.
const began = new Date()
writeRendererModule()
const result = await bundle(chunksDir)
const js = result.outputFiles.find((f) => f.path.endsWith('.cjs'))
const map = result.outputFiles.find((f) => f.path.endsWith('.cjs.map'))
// The name carries the content's hash: the code cache beside it is keyed by the name.
const app = `app-${createHash('sha256').update(js.contents).digest('hex').slice(0, 16)}.cjs`
const script = js.text.replace(
  /\/\/# sourceMappingURL=app\.cjs\.map\n?$/,
  `//# sourceMappingURL=${app}.map\n`,
)
const loader = readFileSync(join(ROOT, 'scripts/node-bundle/code-cache-loader.mjs'), 'utf8')
const loaderApp = "const APP = './dockgate-chunks/app.cjs'"
if (!loader.includes(loaderApp)) throw new Error(`code-cache-loader.mjs: no ${loaderApp}`)
// The renderer, the map and the script first: a loader never points at a file not there yet.
writeAtomically([
  {
    path: join(chunksDir, DOCS_RENDERER_FILE),
    contents: rendererAsCommonJs(readFileSync(RENDERER_MODULE, 'utf8')),
  },
  { path: join(chunksDir, `${app}.map`), contents: map.contents },
  { path: join(chunksDir, app), contents: script },
])
writeBunBytecode(chunksDir, app)
writeAtomically([
  {
    path: outfile,
    contents: loader.replace(loaderApp, `const APP = './${basename(chunksDir)}/${app}'`),
  },
])
// Earlier builds' scripts, maps and code caches go; this one's cache (once written) stays, and
// a concurrent build's `.tmp` files and `bun-` directories are its own.
for (const file of readdirSync(chunksDir)) {
  if (file.endsWith('.tmp') || file.startsWith('bun-') || file === DOCS_RENDERER_FILE) continue
  if (file.startsWith(app)) continue
  rmSync(join(chunksDir, file), { force: true })
}
recordBuild(
  record,
  [
    // The project's own files (not packages, nor the modules the plugins make, `on-demand:…`)
    ...Object.keys(result.metafile.inputs).filter(
      (file) => !file.includes('node_modules/') && !/^[\w-]+:/.test(file),
    ),
    ...BUILD_INPUTS,
  ],
  began,
)
console.log(
  `${relative(ROOT, join(chunksDir, app))}: ${(js.contents.length / 1024).toFixed(0)} KiB`,
)
