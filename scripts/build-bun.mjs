// Bundles the Bun entry (src/bun.ts) and everything it imports into one CommonJS script compiled
// to JavaScriptCore's bytecode: dist/dockgate-bun/dockgate.cjs and its dockgate.cjs.jsc, which
// `bun dist/dockgate-bun/dockgate.cjs` loads instead of parsing the script (bench/README.md,
// "Cold start on Bun, an entry of its own"). esbuild bundles (zod's locales narrowed to English,
// as in the Node bundle), then `bun build --bytecode` compiles; Bun checks the bytecode against
// its own version and parses the source when it does not fit. Beside the script, and loaded only
// when needed: the /docs renderer (docs-renderer.cjs, about 5 MB, on the first /docs request)
// and the Redis connection with @redis/client (redis-connection.cjs, compiled alike, with
// DOCKGATE_STORE=redis://…; in the script, its 0.8 MB cost Bun ~15 ms of CPU at every start).
//
//   node scripts/build-bun.mjs      (`npm run build` runs it; nothing without the pinned Bun)
import { execFileSync } from 'node:child_process'
import {
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
const SCRIPT = 'dockgate.cjs'
const DOCS_RENDERER_FILE = 'docs-renderer.cjs'
const REDIS_FILE = 'redis-connection.cjs'

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

/** `<temporary>/bundled/<script>` compiled to `<temporary>/out/<script>` and its `.jsc`. */
function compileForBun(temporary, script) {
  execFileSync(
    BUN,
    [
      'build',
      // From its own folder: Bun names the input in the output, which must not name the
      // temporary folder (builds running at once must write the same files).
      script,
      '--bytecode',
      '--format=cjs',
      '--target=bun',
      // Nothing is bundled again: what the script requires that is not in it stays a require.
      '--packages=external',
      `--external=*/${DOCS_RENDERER_FILE}`,
      `--external=*/${REDIS_FILE}`,
      `--outdir=${join(temporary, 'out')}`,
    ],
    { cwd: join(temporary, 'bundled'), stdio: ['ignore', 'ignore', 'inherit'] },
  )
  // Bun names its output `.js`.
  const out = join(temporary, 'out', script.replace(/\.cjs$/, '.js'))
  renameSync(`${out}.jsc`, join(temporary, 'out', `${script}.jsc`))
  renameSync(out, join(temporary, 'out', script))
}

/** Written beside its target and renamed over it: a start meanwhile reads one whole file. */
function writeAtomically(path, contents) {
  mkdirSync(dirname(path), { recursive: true })
  const temporary = `${path}.${process.pid}.tmp`
  writeFileSync(temporary, contents)
  renameSync(temporary, path)
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
  for (const script of [REDIS_FILE, SCRIPT]) compileForBun(temporary, script)
  writeAtomically(
    join(OUTDIR, DOCS_RENDERER_FILE),
    rendererAsCommonJs(readFileSync(RENDERER_MODULE, 'utf8')),
  )
  // The bytecode before its script, the Redis script before the one that requires it: a start
  // meanwhile finds either the old files or the new ones (a script whose bytecode does not fit
  // starts from its source).
  for (const script of [REDIS_FILE, SCRIPT]) {
    renameSync(join(temporary, 'out', `${script}.jsc`), join(OUTDIR, `${script}.jsc`))
    renameSync(join(temporary, 'out', script), join(OUTDIR, script))
  }
} finally {
  rmSync(temporary, { recursive: true, force: true })
}
console.log(`${relative(ROOT, join(OUTDIR, SCRIPT))}: compiled for Bun`)
