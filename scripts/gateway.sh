#!/usr/bin/env bash
# Quick start: runs the gateway against a local engine — the one at DOCKER_HOST or the default
# socket when it answers, else the project's own (scripts/engine.sh up starts it).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund
fi
engine_env=$(bash scripts/engine.sh up)
set -a
eval "$engine_env"
set +a
echo "dockgate: engine at $DOCKER_HOST" >&2
exec npm start
