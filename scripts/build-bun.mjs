// Builds the Bun entry (src/bun.ts) as one standalone executable, dist/dockgate-bun/dockgate:
// the pinned Bun with the gateway's code in it, compiled to JavaScriptCore's bytecode (`bun build
// --compile --bytecode`). esbuild bundles first (zod's locales narrowed to English, as in the Node
// bundle), three scripts that Bun then compiles into the one file: the gateway; the /docs
// renderer (about 5 MB), imported on the first /docs request; the Redis connection with
// @redis/client, imported only with DOCKGATE_STORE=redis://… (in the gateway's script, its 0.8 MB
// cost Bun ~15 ms of CPU at every start). Bun reads code it embeds this way faster than a script
// and its `.jsc` beside it: a start to the first answer took 29 against 37 ms (bench/README.md,
// "Cold start on Bun, one executable").
//
// The executable starts as `npm run start:bun` always started the script: with
// `--max-http-header-size=65536` (src/bun.ts says why), and without reading a `.env` or
// `bunfig.toml` from the folder it starts in (Bun's standalone executables would by default): its
// settings are its environment and its config file, as on Node. And with JavaScriptCore's JIT 64
// times more reluctant to compile (`--compile-jit-policy`) until the entry's first answer, when
// src/bun.ts sets the usual policy back (`Bun.unsafe.setJITPolicy(1)`): most of a start's code
// runs once, and compiling it competed with the start for the cores (to the first 200 in 25.9
// against 38.2 ms: bench/README.md, "Cold start on Bun, one executable").
//
//   node scripts/build-bun.mjs      (`npm run build` runs it; nothing without the pinned Bun)
import { execFileSync } from 'node:child_process'
import {
  chmodSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  renameSync,
  rmSync,
  writeFileSync,
} from 'node:fs'
import { dirname, join, relative, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { build } from 'esbuild'
import { zodEnglishOnly } from './bundle-options.mjs'
import { RENDERER_MODULE, rendererAsCommonJs, writeRendererModule } from './docs-renderer.mjs'

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..')
const BUN = resolve(ROOT, 'node_modules/.bin/bun')
const OUTDIR = resolve(ROOT, 'dist/dockgate-bun')
const EXECUTABLE = 'dockgate'
/** How many times more reluctant than usual the JIT is until the first answer (see above). */
const START_JIT_POLICY = 64
const SCRIPT = 'dockgate.cjs'
const DOCS_RENDERER_FILE = 'docs-renderer.cjs'
const REDIS_FILE = 'redis-connection.cjs'
/** What earlier builds wrote here (the script, its bytecode and the modules beside it). */
const EARLIER_FILES = [SCRIPT, `${SCRIPT}.jsc`, DOCS_RENDERER_FILE, REDIS_FILE, `${REDIS_FILE}.jsc`]

const bunImports = {
  name: 'bun-imports',
  setup(build) {
    build.onResolve({ filter: /\/renderer\.generated\.js$/ }, () => ({
      path: `./${DOCS_RENDERER_FILE}`,
      external: true,
    }))
    build.onResolve({ filter: /\/redis-connection\.ts$/ }, (args) =>
      args.kind === 'entry-point' ? undefined : { path: `./${REDIS_FILE}`, external: true },
    )
  },
}

/** The scripts in `<temporary>/bundled`, compiled into `<temporary>/<executable>`. */
function compileForBun(temporary) {
  execFileSync(
    BUN,
    [
      'build',
      // From their own folder: Bun names its inputs in the executable, which must not name the
      // temporary folder.
      SCRIPT,
      // Entry points of their own, so that each stays a module of its own in the executable,
      // evaluated when the gateway first imports it.
      DOCS_RENDERER_FILE,
      REDIS_FILE,
      '--compile',
      '--bytecode',
      '--format=cjs',
      '--compile-exec-argv=--max-http-header-size=65536',
      '--no-compile-autoload-dotenv',
      '--no-compile-autoload-bunfig',
      `--compile-jit-policy=${START_JIT_POLICY}`,
      `--outfile=${join(temporary, EXECUTABLE)}`,
    ],
    { cwd: join(temporary, 'bundled'), stdio: ['ignore', 'ignore', 'inherit'] },
  )
}

if (!existsSync(BUN)) {
  console.warn(`${relative(ROOT, BUN)} not installed: no Bun entry built`)
  process.exit(0)
}
writeRendererModule()
mkdirSync(OUTDIR, { recursive: true })
const temporary = mkdtempSync(join(OUTDIR, `build-${process.pid}-`))
try {
  await build({
    absWorkingDir: ROOT,
    entryPoints: {
      [SCRIPT.replace(/\.cjs$/, '')]: 'src/bun.ts',
      [REDIS_FILE.replace(/\.cjs$/, '')]: 'src/store/redis-connection.ts',
    },
    outdir: join(temporary, 'bundled'),
    outExtension: { '.js': '.cjs' },
    bundle: true,
    format: 'cjs',
    platform: 'node',
    target: 'esnext',
    // Whitespace and syntax only, as the Node bundle: names stay as written, for stack traces.
    minifyWhitespace: true,
    minifySyntax: true,
    plugins: [bunImports, zodEnglishOnly],
    logLevel: 'warning',
  })
  writeFileSync(
    join(temporary, 'bundled', DOCS_RENDERER_FILE),
    rendererAsCommonJs(readFileSync(RENDERER_MODULE, 'utf8')),
  )
  compileForBun(temporary)
  chmodSync(join(temporary, EXECUTABLE), 0o755)
  // Renamed over the last one: a start meanwhile runs one whole executable, old or new (builds
  // run at once in the tests).
  renameSync(join(temporary, EXECUTABLE), join(OUTDIR, EXECUTABLE))
  for (const file of EARLIER_FILES) rmSync(join(OUTDIR, file), { force: true })
} finally {
  rmSync(temporary, { recursive: true, force: true })
}
console.log(`${relative(ROOT, join(OUTDIR, EXECUTABLE))}: compiled for Bun`)
