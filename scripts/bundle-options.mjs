// What the bundles of the gateway (scripts/build-node.mjs, build-deno.mjs, build-edge.mjs) say
// the same way, said once here.
import { resolve } from 'node:path'
import { fileURLToPath } from 'node:url'

const ROOT = resolve(fileURLToPath(new URL('.', import.meta.url)), '..')

/**
 * zod's `locales` namespace pointed at English only (scripts/node-bundle/zod-locales.mjs): the
 * full one is some 60 unused locales that a cold start would compile and evaluate.
 */
export const ZOD_ENGLISH_ONLY = {
  filter: /^\.\.\/locales\/index\.js$/,
  importer: /\/node_modules\/zod\/v4\//,
  to: 'scripts/node-bundle/zod-locales.mjs',
}

/** {@link ZOD_ENGLISH_ONLY} as an esbuild plugin. */
export const zodEnglishOnly = {
  name: 'zod-english-only',
  setup(build) {
    const { filter, importer, to } = ZOD_ENGLISH_ONLY
    build.onResolve({ filter }, (args) =>
      importer.test(args.importer) ? { path: resolve(ROOT, to) } : undefined,
    )
  },
}

/**
 * One ES module for a runtime with Web APIs and no Node built-ins assumed (Deno, workerd):
 * packages' ES module builds first, and the input files listed in the metafile.
 */
export const NEUTRAL_ESM = {
  bundle: true,
  format: 'esm',
  platform: 'neutral',
  target: 'es2022',
  mainFields: ['module', 'main'],
  metafile: true,
  logLevel: 'warning',
}
