#!/usr/bin/env bash
# `deno task start`: the gateway on Deno, with the narrowest permissions that work: read/write
# on the config file and each engine's socket, net on the listen address, `unix:<socket>` and the
# URL host Deno's client names (`localhost`), or each engine's host:port for TCP/TLS (and read on
# its certificates), and exactly the environment variables the gateway reads (src/deno.ts ENV_KEYS).
set -euo pipefail
# Parameter expansions and builtins only, up to `exec deno`: each command forked here (dirname,
# grep) cost ~1.5 ms of a start that the bench's cold start counts from this script's spawn.
case $0 in */*) cd "${0%/*}/.." ;; *) cd .. ;; esac
deno=node_modules/.bin/deno
[ -x "$deno" ] || deno=deno

# The /docs renderer, embedded in a module that src/docs/routes.ts imports (scripts/docs-renderer.mjs);
# rewritten only when older than the last npm install or the script (Node's start would cost
# every start about 0.1 s).
renderer=src/docs/renderer.generated.js
if [ ! -f "$renderer" ] || [ node_modules/.package-lock.json -nt "$renderer" ] ||
  [ scripts/docs-renderer.mjs -nt "$renderer" ]; then
  node scripts/docs-renderer.mjs >&2
fi

engine=${DOCKER_HOST:-unix:///var/run/docker.sock}
listen="${HOST:-127.0.0.1}:${PORT:-8080}"
config=${DOCKGATE_CONFIG:-dockgate.config.json}
read=$config
write=$config
net=$listen
# allow_engine HOST [CERT_DIR]: what reaching one engine needs; CERT_DIR when it speaks TLS with
# client certificates.
allow_engine() {
  case $1 in
    unix://*)
      local socket=${1#unix://}
      read+=",$socket"
      write+=",$socket"
      net+=",unix:$socket,localhost"
      ;;
    tcp://* | http://* | https://*)
      local authority=${1#*://}
      net+=",${authority%%/*}"
      ;;
  esac
  if [ -n "${2:-}" ]; then read+=",$2"; fi
}
default_certs=
if [ -n "${DOCKER_TLS_VERIFY:-}${DOCKER_TLS:-}" ]; then default_certs=${DOCKER_CERT_PATH:-$HOME/.docker}; fi
case $engine in unix://*) default_certs= ;; esac
allow_engine "$engine" "$default_certs"
# The config's other engines (`engines`, README "Several engines"): each host, and its certificate
# folder when `tlsVerify` (`certPath`, else ~/.docker, as src/transport/docker-host.ts reads it).
# Read with Node, which the project runs on anyway; a config that does not parse is left to the
# gateway to refuse with its own message. A config that does not say `engines` (nor hides a key
# behind a \u escape) names none: Node's start (about 40 ms, a quarter of the gateway's cold
# start on Deno, bench `cold`) is spared then.
config_text=
if [ -f "$config" ]; then IFS= read -r -d '' config_text <"$config" || true; fi
if [[ $config_text == *engines* || $config_text == *'\u'* ]]; then
  while IFS=$'\t' read -r host certs; do
    allow_engine "$host" "$certs"
  done < <(node -e '
    let config
    try { config = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8")) } catch { process.exit(0) }
    for (const e of Object.values(config?.engines ?? {})) {
      if (typeof e?.host !== "string") continue
      const certs = e.tlsVerify ? (e.certPath ?? `${process.env.HOME}/.docker`) : ""
      console.log(`${e.host}\t${certs}`)
    }' "$config")
fi
# The shared state store (DOCKGATE_STORE=redis://[user:password@]host[:port][/db]): net on its host:port.
if [[ ${DOCKGATE_STORE:-} == redis://* ]]; then
  store=${DOCKGATE_STORE#redis://}
  store=${store##*@}
  store=${store%%/*}
  [[ $store == *:* ]] || store+=:6379
  net+=",$store"
  # @redis/client reads these two of its own (debug switches) when it connects.
  extra_env_keys=,REDIS_DEBUG_MAINTENANCE,REDIS_EMIT_DIAGNOSTICS
fi
env_keys=PORT,HOST,DOCKGATE_CONFIG,DOCKGATE_TOKEN,DOCKGATE_JWT_SECRET,DOCKGATE_STORE,DOCKGATE_SECRET,DOCKER_HOST,DOCKER_TLS_VERIFY,DOCKER_TLS,DOCKER_CERT_PATH,HOME

# The heap may grow to 128 MB before V8 sizes it by what is live (Node sets its heap growth at run
# time instead: README, "npm start"): after a burst of requests a log stream otherwise ran major
# collections back to back (measured here: 30-34 µs of CPU per streamed 1 KB line instead of 15-16).
# The young generation starts at 32 MB a semi-space instead of growing from 1 MB: starting builds
# ~20 MB of long-lived objects (the schemas, the routes), which otherwise took six scavenges
# (~20 ms, each copying what survives) before the first answer; CPU to the first 200 220
# against 250 ms, medians of 11 (bench `cold`, issue #17; bench/README.md, "Cold start, third session").
# It costs memory once requests come: RSS after 1,000 requests 138-161 MB against 106-126 (16 MB a
# semi-space: 121 MB, but no gain measured at start).
v8_flags=--initial-old-space-size=128,--min-semi-space-size=32

# The entry bundled by `npm run build` (scripts/build-deno.mjs: one module instead of ~320, about a
# quarter of the start; bench/README.md, "Cold start on Deno, a bundle") while none of the files it
# was made of (dist/deno.inputs) is newer than it; else src/deno.ts itself, as before.
entry=src/deno.ts
bundle=dist/deno.js
if [ -f "$bundle" ] && [ -f dist/deno.inputs ]; then
  entry=$bundle
  mapfile -t inputs <dist/deno.inputs
  for input in "${inputs[@]}"; do
    # A file gone from the list is caught by the importer that no longer imports it.
    if [ "$input" -nt "$bundle" ]; then
      echo "$bundle is older than $input: running src/deno.ts (npm run build bundles it again)" >&2
      entry=src/deno.ts
      break
    fi
  done
fi
# V8 compiles without source positions and, the first time an Error is made, parses the function of
# each frame again to find them: at the bundle's top level (the DOMExceptions src/http/sse.ts makes
# as it is evaluated) that is the whole 700 KB module, ~30 ms. Positions made with the code instead
# (and kept in its code cache): callgrind from spawn to `listening` 0.494 against 0.391-0.396 G.
# Not for src/deno.ts, whose modules are small (0.664-0.668 G without, 0.672 G with).
if [ "$entry" = "$bundle" ]; then v8_flags+=,--no-enable-lazy-source-positions; fi

exec "$deno" run --no-prompt --unstable-no-legacy-abort --v8-flags="$v8_flags" \
  --allow-read="$read" --allow-write="$write" --allow-net="$net" --allow-env="$env_keys${extra_env_keys:-}" \
  "$entry"
