#!/usr/bin/env bash
# `deno task test`: brings up the project's engine, type-checks the Deno and edge entries, and
# runs the Deno-native tests (test/deno/*_test.ts) with the narrowest permissions that work:
# read/write on the engine socket, net on `unix:<socket>` and the URL host Deno's client names
# (`localhost`) (or the engine's host:port for TCP/TLS), and exactly the environment they read.
set -euo pipefail
cd "$(dirname "$0")/.."
deno=node_modules/.bin/deno
[ -x "$deno" ] || deno=deno

set -a
eval "$(bash scripts/engine.sh up)"
set +a

# The /docs renderer, embedded in a module that src/docs/routes.ts imports (scripts/docs-renderer.mjs);
# rewritten only when older than the last npm install or the script (Node's start would cost
# every start about 0.1 s).
renderer=src/docs/renderer.generated.js
if [ ! -f "$renderer" ] || [ node_modules/.package-lock.json -nt "$renderer" ] ||
  [ scripts/docs-renderer.mjs -nt "$renderer" ]; then
  node scripts/docs-renderer.mjs >&2
fi

"$deno" check src/deno.ts src/edge.ts

engine=${DOCKER_HOST:-unix:///var/run/docker.sock}
read=
write=
net=
case $engine in
  unix://*)
    socket=${engine#unix://}
    read=$socket
    write=$socket
    net="unix:$socket,localhost"
    ;;
  tcp://* | http://* | https://*)
    authority=${engine#*://}
    net=${authority%%/*}
    if [ -n "${DOCKER_TLS_VERIFY:-}${DOCKER_TLS:-}" ]; then
      read=${DOCKER_CERT_PATH:-$HOME/.docker}
    fi
    ;;
esac
permissions=(--allow-net="$net")
[ -n "$read" ] && permissions+=(--allow-read="$read")
[ -n "$write" ] && permissions+=(--allow-write="$write")
env_keys=DOCKER_HOST,DOCKER_TLS_VERIFY,DOCKER_TLS,DOCKER_CERT_PATH,HOME,DOCKGATE_FIXTURE_IMAGE,DOCKGATE_TEST_RUN

exec "$deno" test --no-prompt "${permissions[@]}" --allow-env="$env_keys" test/deno/app_test.ts "$@"
