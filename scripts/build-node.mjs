// Bundles the Node entry (src/node.ts) and everything it imports, dependencies included, into
// one ES module: dist/dockgate.mjs (+ .map), with what only some starts need in chunks beside it
// (dist/dockgate-chunks/, see `bundle`). This is what `npm start` runs. Resolving and loading
// some 360 separate modules (dist/ and node_modules) cost Node 20 more than half of its cold
// start; one file is parsed once. (Node 20 has no module compile cache to help otherwise.)
//
//   node scripts/build-node.mjs [--outfile=PATH]
//
// Stack traces point into the bundle; `node --enable-source-maps dist/dockgate.mjs` maps them
// back to src/ (not the default: reading the map costs every start).
import { mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs'
import { basename, dirname, extname, join, relative, resolve } from 'node:path'
import { build } from 'esbuild'
import { RENDERER_MODULE, writeRendererModule } from './docs-renderer.mjs'

const ROOT = resolve(dirname(new URL(import.meta.url).pathname), '..')
const DEFAULT_OUTFILE = 'dist/dockgate.mjs'

/**
 * undici (and a few other dependencies) are CommonJS and `require()` Node's built-in modules;
 * in an ES module bundle esbuild's `require` shim needs a real `require` to hand them to.
 */
const REQUIRE_SHIM = [
  "import { createRequire as __dockgateCreateRequire } from 'node:module';",
  'const require = __dockgateCreateRequire(import.meta.url);',
].join('\n')

/**
 * Imports pointed at narrower modules (see each file): a bundle keeps whatever an imported
 * module evaluates or re-exports, and these two cost about a fifth of the start's CPU for nothing.
 */
const NARROWED = [
  { filter: /^undici$/, to: 'scripts/node-bundle/undici.mjs' },
  {
    filter: /^\.\.\/locales\/index\.js$/,
    importer: /\/node_modules\/zod\/v4\//,
    to: 'scripts/node-bundle/zod-locales.mjs',
  },
]

const narrowImports = {
  name: 'narrow-imports',
  setup(build) {
    for (const { filter, importer, to } of NARROWED) {
      build.onResolve({ filter }, (args) =>
        !importer || importer.test(args.importer) ? { path: resolve(ROOT, to) } : undefined,
      )
    }
  },
}

/**
 * The /docs renderer (about 5 MB, scripts/docs-renderer.mjs) stays out of the bundle, in a file
 * beside it that the first /docs request imports: starting does not read or parse it.
 */
const DOCS_RENDERER_FILE = 'docs-renderer.js'

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

/**
 * What only some starts need is split off into chunks beside the bundle (`<name>-chunks/`), each
 * read on its first dynamic `import()`: @redis/client, about 40 % of the bundle's bytes, only with
 * `DOCKGATE_STORE=redis://…` (src/bootstrap.ts). Parsing it cost every start about 40 ms of the
 * ~100 ms the bundle took to compile here (bench `cold`, issue #17).
 */
async function bundle(outfile) {
  const name = basename(outfile).replace(/\.m?js$/, '')
  return build({
    absWorkingDir: ROOT,
    entryPoints: { [name]: 'src/node.ts' },
    outdir: dirname(outfile),
    outExtension: { '.js': extname(outfile) || '.mjs' },
    splitting: true,
    chunkNames: `${name}-chunks/[name]-[hash]`,
    bundle: true,
    format: 'esm',
    platform: 'node',
    target: 'node20',
    sourcemap: 'linked',
    banner: { js: REQUIRE_SHIM },
    plugins: [narrowImports, docsRendererBeside],
    // Whitespace and syntax only: about 3 % fewer instructions from spawn to listening than
    // unminified (callgrind, issue #17), the same as full minification; names stay as written,
    // for stack traces (`--enable-source-maps` maps lines back to src/).
    minifyWhitespace: true,
    minifySyntax: true,
    write: false,
    logLevel: 'warning',
  })
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
writeRendererModule()
const result = await bundle(outfile)
const renderer = {
  path: join(dirname(outfile), DOCS_RENDERER_FILE),
  contents: readFileSync(RENDERER_MODULE),
}
// The renderer and the map first: a bundle never points at a file that is not there yet.
writeAtomically([
  renderer,
  ...result.outputFiles.toSorted(
    (a, b) => Number(b.path.endsWith('.map')) - Number(a.path.endsWith('.map')),
  ),
])
// Chunks of earlier builds (their names carry a hash of their content) go: only this build's
// bundle points at the ones just written. A concurrent build's `.tmp` files are its own.
const chunksDir = join(dirname(outfile), `${basename(outfile).replace(/\.m?js$/, '')}-chunks`)
const written = new Set(result.outputFiles.map((f) => f.path))
for (const file of readdirSync(chunksDir)) {
  if (!file.endsWith('.tmp') && !written.has(join(chunksDir, file))) {
    rmSync(join(chunksDir, file), { force: true })
  }
}
const bytes = result.outputFiles.find((f) => f.path === outfile)?.contents.length ?? 0
console.log(`${relative(ROOT, outfile)}: ${(bytes / 1024).toFixed(0)} KiB`)
