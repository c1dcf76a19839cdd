/**
 * Writes a workerd config (Cap'n Proto text, the format `workerd serve FILE.capnp config` reads)
 * that serves one ES-module worker on a loopback port. Used by test/runtimes (the gateway's edge
 * bundle on workerd), bench/coldstart.mjs (the gateway and a minimal worker) and whoever wants to
 * run the gateway on workerd by hand:
 *
 *   node scripts/build-edge.mjs
 *   DOCKER_HOST=tcp://127.0.0.1:2375 DOCKGATE_TOKEN=dgt_… \
 *     node scripts/workerd-config.mjs --port 8787 --out dist/workerd.capnp DOCKER_HOST DOCKGATE_TOKEN
 *   node_modules/.bin/workerd serve dist/workerd.capnp config
 *
 * (the bindings named on the command line take their values from the environment, so that a
 * token never shows in `ps`; the file is written mode 0600, since it holds them)
 *
 * What it declares, and why:
 * - one worker (`main`) whose only module is the bundle, embedded by a path relative to the config
 *   file (workerd resolves `embed` that way);
 * - its bindings as text bindings: the edge entry reads them from `env` (DOCKER_HOST,
 *   DOCKGATE_TOKEN, DOCKGATE_JWT_SECRET, DOCKGATE_CONFIG_JSON);
 * - `directories`, each a read-only disk service bound by name: the gateway's DOCS_ASSETS is
 *   dist/edge-assets, where scripts/build-edge.mjs puts the /docs renderer (about 5 MB) so that
 *   workerd reads it on the first /docs request instead of compiling it as a module at start;
 * - its global `fetch` through a network service that allows `local` addresses only: workerd's
 *   default outbound refuses private and loopback addresses (SSRF protection), and the gateway's
 *   one outbound is the engine, here on 127.0.0.1. Give `allow: ['public', 'local']` (or CIDRs) for
 *   an engine elsewhere;
 * - one HTTP socket on 127.0.0.1:<port>.
 * No Node compatibility flag: the bundle is platform-neutral (scripts/build-edge.mjs refuses `node:`).
 */
import { mkdirSync, writeFileSync } from 'node:fs'
import { dirname, relative, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'

export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..')
export const WORKERD = resolve(ROOT, 'node_modules/.bin/workerd')
/** The edge bundle scripts/build-edge.mjs writes. */
export const EDGE_BUNDLE = resolve(ROOT, 'dist/edge.js')
/** Its assets (the /docs renderer as JSON), the DOCS_ASSETS binding on workerd. */
export const EDGE_ASSETS = resolve(ROOT, 'dist/edge-assets')
/** The directories the gateway's worker reads: `directories` for {@link workerdConfigText}. */
export const EDGE_DIRECTORIES = { DOCS_ASSETS: EDGE_ASSETS }
/** Not newer than the installed workerd's own date (`workerd --version`), which refuses later ones. */
export const COMPATIBILITY_DATE = '2026-11-01'
/** The name of the config constant in the file: `workerd serve FILE config`. */
export const CONFIG_NAME = 'config'

/**
 * A Cap'n Proto text literal: printable ASCII as is, everything else (quotes, backslashes,
 * newlines, non-ASCII) as `\xNN` UTF-8 bytes, so any binding value (a config file's JSON) fits.
 */
export function capnpString(value) {
  let out = '"'
  for (const byte of new TextEncoder().encode(value)) {
    const printable = byte >= 0x20 && byte < 0x7f && byte !== 0x22 && byte !== 0x5c
    out += printable ? String.fromCharCode(byte) : `\\x${byte.toString(16).padStart(2, '0')}`
  }
  return `${out}"`
}

/**
 * The config's text. `modulePath` and `configPath` are file paths; `bindings` a record of strings
 * (undefined values left out); `allow` the network service's address classes or CIDRs.
 */
export function workerdConfigText({
  modulePath,
  configPath,
  port,
  bindings = {},
  directories = {},
  allow = ['local'],
  compatibilityDate = COMPATIBILITY_DATE,
  compatibilityFlags = [],
}) {
  const embedded = relative(dirname(resolve(configPath)), resolve(modulePath))
  const list = (items) => `[${items.join(', ')}]`
  const textBindings = Object.entries(bindings)
    .filter(([, value]) => value !== undefined)
    .map(([name, value]) => `\n    (name = ${capnpString(name)}, text = ${capnpString(value)})`)
  const dirs = Object.entries(directories).map(([name, path]) => ({
    name,
    service: capnpString(`dir-${name}`),
    path: capnpString(resolve(path)),
  }))
  const dirBindings = dirs.map(
    (d) => `\n    (name = ${capnpString(d.name)}, service = ${d.service})`,
  )
  const dirServices = dirs.map((d) => `\n    (name = ${d.service}, disk = (path = ${d.path})),`)
  return `# Written by scripts/workerd-config.mjs. Run: workerd serve <this file> ${CONFIG_NAME}
using Workerd = import "/workerd/workerd.capnp";

const ${CONFIG_NAME} :Workerd.Config = (
  services = [
    (name = "main", worker = .worker),
    (name = "outbound", network = (allow = ${list(allow.map(capnpString))})),${dirServices.join('')}
  ],
  sockets = [(name = "http", address = ${capnpString(`127.0.0.1:${port}`)}, http = (), service = "main")],
);

const worker :Workerd.Worker = (
  modules = [(name = "worker.js", esModule = embed ${capnpString(embedded)})],
  compatibilityDate = ${capnpString(compatibilityDate)},
  compatibilityFlags = ${list(compatibilityFlags.map(capnpString))},
  bindings = [${[...textBindings, ...dirBindings].join(',')}
  ],
  globalOutbound = "outbound",
);
`
}

/** Writes the config to `configPath` (its directory created) and returns the path. */
export function writeWorkerdConfig(options) {
  mkdirSync(dirname(resolve(options.configPath)), { recursive: true })
  writeFileSync(options.configPath, workerdConfigText(options), { mode: 0o600 })
  return options.configPath
}

/** `workerd serve` for a config this module wrote: the file and arguments to spawn. */
export function workerdCommand(configPath) {
  return { file: WORKERD, args: ['serve', resolve(configPath), CONFIG_NAME] }
}

// By hand: node scripts/workerd-config.mjs --port N --out FILE [--module dist/edge.js] NAME…
if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const args = process.argv.slice(2)
  const option = (name, fallback) => {
    const at = args.indexOf(`--${name}`)
    return at === -1 ? fallback : args.splice(at, 2)[1]
  }
  const port = Number(option('port', '8787'))
  const configPath = option('out', 'dist/workerd.capnp')
  const modulePath = option('module', EDGE_BUNDLE)
  const bindings = Object.fromEntries(
    args.map((name) => {
      if (process.env[name] === undefined) throw new Error(`${name} is not set in the environment`)
      return [name, process.env[name]]
    }),
  )
  const directories = modulePath === EDGE_BUNDLE ? EDGE_DIRECTORIES : {}
  writeWorkerdConfig({ modulePath, configPath, port, bindings, directories })
  console.log(`${configPath}: run ${WORKERD} serve ${configPath} ${CONFIG_NAME}`)
}
