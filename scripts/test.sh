#!/usr/bin/env bash
# The whole test suite (`npm test`), on a fresh machine too: installs the dependencies, brings up
# the project's own engine (scripts/engine.sh), runs every check and test, and stops the engine
# again if this run started it (KEEP_ENGINE=1 keeps it for the next run).
set -euo pipefail
cd "$(dirname "$0")/.."
SCRIPT_NAME=test.sh
source scripts/lib.sh

# export_env LINES — the eval-able KEY=value lines a part's `up` printed, exported. (The `up` runs
# in an assignment of its own first, so that its failure stops this script.)
export_env() {
  set -a
  eval "$1"
  set +a
}

if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund
fi

# The browser tests (test/browser) drive Debian's Chromium; install it as engine.sh installs
# docker.io. Without it they fail, unless DOCKGATE_SKIP_BROWSER=1 skips them.
if [ ! -x /usr/bin/chromium ] && [ "${DOCKGATE_SKIP_BROWSER:-}" != 1 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    apt_install chromium
  else
    log '/usr/bin/chromium is missing and only root can install it here (apt-get install chromium); the browser tests will fail (DOCKGATE_SKIP_BROWSER=1 skips them)'
  fi
fi

# The tests need the TCP and TLS listeners only the project's own engine has.
export DOCKGATE_PRIVATE_ENGINE=1
was_up=0
bash scripts/engine.sh status 2>/dev/null && was_up=1
# The Swarm tests (test/routes/services.test.ts) need the engine to be a manager with a worker.
swarm_was_up=0
bash scripts/engine.sh status --swarm 2>/dev/null && swarm_was_up=1
engine_env=''
stop_engine() {
  [ -z "${KEEP_ENGINE:-}" ] || return 0
  # An `up` that failed part-way (its swarm init, say) may have started the engine all the same:
  # it was down before this run, so it is this run's to stop.
  if [ -z "$engine_env" ]; then
    if [ "$was_up" = 0 ]; then bash scripts/engine.sh down; fi
    return 0
  fi
  [ "${DOCKGATE_ENGINE_OWNED:-0}" = 1 ] || return 0
  if [ "$was_up" = 0 ]; then
    bash scripts/engine.sh down
  elif [ "$swarm_was_up" = 0 ]; then
    # The engine was up before this run, its swarm was not: undo only the swarm.
    bash scripts/engine.sh down --swarm
  fi
}
# The multi-engine tests' second engine: a separate private dockerd with its own state
# (data, exec root, ports, TLS material; its own managed containerd), which the gateway reaches
# over TLS while the main one is reached over its Unix socket.
ENGINE_B_STATE="${DOCKGATE_STATE_DIR:-$PWD/.state}/engine-b"
engine_b() {
  DOCKGATE_STATE_DIR="$ENGINE_B_STATE" DOCKGATE_CONTAINERD_NAMESPACE=dockgate-b bash scripts/engine.sh "$@"
}
# Stops what this run started, also when a later part fails to start: a part counts as this
# run's only once it was found down before its `up`.
redis_was_up=1
registry_was_up=1
engine_b_was_up=1
stop_parts() {
  stop_engine
  if [ "$engine_b_was_up" = 0 ] && [ -z "${KEEP_ENGINE:-}" ]; then engine_b down; fi
  if [ "$redis_was_up" = 0 ] && [ -z "${KEEP_ENGINE:-}" ]; then bash scripts/redis.sh down; fi
  if [ "$registry_was_up" = 0 ] && [ -z "${KEEP_ENGINE:-}" ]; then bash scripts/registry.sh down; fi
}
trap stop_parts EXIT
engine_env=$(bash scripts/engine.sh up --swarm)
export_env "$engine_env"
# The shared state store's tests (and the cluster's) need a Redis: the project's own, on loopback.
redis_was_up=0
bash scripts/redis.sh status 2>/dev/null && redis_was_up=1
redis_env=$(bash scripts/redis.sh up)
export_env "$redis_env"
# The image tests pull from two loopback registries (scripts/registry.sh; the fixture pushed to both).
registry_was_up=0
bash scripts/registry.sh status 2>/dev/null && registry_was_up=1
registry_env=$(bash scripts/registry.sh up)
export_env "$registry_env"

engine_b_was_up=0
engine_b status 2>/dev/null && engine_b_was_up=1
engine_b_env=$(engine_b up)
# Only what the tests need of it, under names of their own (its DOCKER_HOST is not ours).
export DOCKGATE_TEST_ENGINE_B_TLS_HOST DOCKGATE_TEST_ENGINE_B_CERT_PATH DOCKGATE_TEST_ENGINE_B_SOCKET
DOCKGATE_TEST_ENGINE_B_TLS_HOST=$(printf '%s\n' "$engine_b_env" | sed -n 's/^DOCKGATE_TEST_TLS_HOST=//p')
DOCKGATE_TEST_ENGINE_B_CERT_PATH=$(printf '%s\n' "$engine_b_env" | sed -n 's/^DOCKGATE_TEST_TLS_CERT_PATH=//p')
DOCKGATE_TEST_ENGINE_B_SOCKET=$(printf '%s\n' "$engine_b_env" | sed -n 's|^DOCKER_HOST=unix://||p')

step() { printf '\n== %s\n' "$*"; }
step lint && npx biome ci .
step typecheck && npx tsc -p tsconfig.json --noEmit
step 'build: dist/ (tsc) and the Node bundle dist/dockgate.mjs' && npm run -s build
step 'deno: type-check the Deno and edge entries' && node_modules/.bin/deno check src/deno.ts src/edge.ts
step 'openapi: committed document is current' && node scripts/openapi.mjs check
step 'openapi: lint' && npx redocly lint openapi/openapi.json --format=stylish
step 'openapi: spectral (recommended rules, warnings fail)' && npx spectral lint openapi/openapi.json --fail-severity=warn
step tests && npx vitest run
step 'tests: the engine stopped and started under the gateway' && npx vitest run --config vitest.restart.config.ts
# The quick benchmark: printed for the record, never asserted (these machines are noisy).
step 'benchmark --quick (printed, not asserted)' && { npm run -s bench:quick || echo "benchmark did not complete (not asserted)"; }
