// Bundles src/edge.ts into an ES module (dist/edge.js) for Workers-style runtimes, refuses any
// `node:` import that sneaks in, and prints the bundle's size. The /docs renderer
// (scripts/docs-renderer.mjs, about 5 MB) stays out of it, in two forms, since starting needs neither:
// - a module beside the bundle (dist/edge-renderer.js) that the bundle imports on the first
//   /docs request, for runtimes that load modules from files (Deno, Deno Deploy);
// - dist/edge-assets/docs-renderer.json ({ file, script }), for workerd, which compiles every
//   module of its config when it starts (the renderer as a module cost about 250 ms of a cold
//   start there): a disk service serves it to the worker as the DOCS_ASSETS binding
//   (scripts/workerd-config.mjs), read on the first /docs request.
import { copyFileSync, mkdirSync, writeFileSync } from 'node:fs'
import { pathToFileURL } from 'node:url'
import { build } from 'esbuild'
import { NEUTRAL_ESM, zodEnglishOnly } from './bundle-options.mjs'
import { RENDERER_MODULE, writeRendererModule } from './docs-renderer.mjs'

writeRendererModule()

const RENDERER_BESIDE = 'edge-renderer.js'

const rendererBeside = {
  name: 'renderer-beside',
  setup(build) {
    build.onResolve({ filter: /\/renderer\.generated\.js$/ }, () => ({
      path: `./${RENDERER_BESIDE}`,
      external: true,
    }))
  },
}

const result = await build({
  entryPoints: ['src/edge.ts'],
  outfile: 'dist/edge.js',
  ...NEUTRAL_ESM,
  plugins: [rendererBeside, zodEnglishOnly],
  conditions: ['worker', 'browser', 'import'],
  minify: true,
})

for (const [file, output] of Object.entries(result.metafile.outputs)) {
  const nodeImports = output.imports.filter(
    (i) => i.path.startsWith('node:') || !i.path.includes('/'),
  )
  if (nodeImports.length > 0) {
    console.error(
      `${file} must not import runtime modules: ${nodeImports.map((i) => i.path).join(', ')}`,
    )
    process.exit(1)
  }
}

copyFileSync(RENDERER_MODULE, `dist/${RENDERER_BESIDE}`)
const renderer = await import(pathToFileURL(RENDERER_MODULE).href)
mkdirSync('dist/edge-assets', { recursive: true })
writeFileSync(
  'dist/edge-assets/docs-renderer.json',
  JSON.stringify({ file: renderer.file, script: renderer.script }),
)

const kib = (bytes) => `${(bytes / 1024).toFixed(1)} KiB`
console.log(
  `dist/edge.js: ${kib(result.metafile.outputs['dist/edge.js'].bytes)} (the /docs renderer beside it: ${kib(renderer.script.length)})`,
)
