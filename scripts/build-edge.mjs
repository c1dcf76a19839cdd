// Bundles src/edge.ts into one ES module (dist/edge.js) for Workers-style runtimes, refuses any
// `node:` import that sneaks in, and prints the bundle's size. The /docs renderer
// (scripts/docs-renderer.mjs, about 5 of its MB) is in it: an edge runtime has no files to read.
import { build } from 'esbuild'
import { writeRendererModule } from './docs-renderer.mjs'

writeRendererModule()

const result = await build({
  entryPoints: ['src/edge.ts'],
  outfile: 'dist/edge.js',
  bundle: true,
  format: 'esm',
  platform: 'neutral',
  target: 'es2022',
  mainFields: ['module', 'main'],
  conditions: ['worker', 'browser', 'import'],
  minify: true,
  metafile: true,
  logLevel: 'warning',
})

const output = result.metafile.outputs['dist/edge.js']
const nodeImports = output.imports.filter(
  (i) => i.path.startsWith('node:') || !i.path.includes('/'),
)
if (nodeImports.length > 0) {
  console.error(
    `dist/edge.js must not import runtime modules: ${nodeImports.map((i) => i.path).join(', ')}`,
  )
  process.exit(1)
}
console.log(`dist/edge.js: ${(output.bytes / 1024).toFixed(1)} KiB`)
