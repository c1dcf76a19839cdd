#!/usr/bin/env bash
# scripts/redis.sh — a private Redis on loopback for dockgate's shared state store (tests, the
# cluster script, the benchmark).
#
# Usage: scripts/redis.sh up|down|env|status|restart
#
#   up       Start it unless it runs, then print its environment on stdout (one eval-able
#            KEY=value line: DOCKGATE_TEST_STORE=redis://127.0.0.1:<port>/0); progress on stderr.
#   env      Print the same line without starting anything (exit 1 if it is not up).
#   status   Exit 0 if it answers PING, 1 otherwise.
#   restart  Stop it and start it again on the same port (what a test of "Redis restarted" needs).
#   down     Stop only the redis-server `up` started (by the PID in its pidfile).
#
# Debian's redis-server is installed with apt when it is missing (root only). Everything lives
# under ${DOCKGATE_STATE_DIR:-<repo>/.state}/redis: redis.pid, redis.log, port. Nothing is
# persisted (no RDB, no AOF): a restart loses what it held, as a test of recovery wants. Only
# 127.0.0.1 is bound; protected mode stays on.
set -euo pipefail

REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)
SCRIPT_NAME=redis.sh
source "$REPO_ROOT/scripts/lib.sh"
STATE_DIR=${DOCKGATE_STATE_DIR:-$REPO_ROOT/.state}/redis
PORT_BASE=26379

# redis-server names itself after its address once it runs: `redis-server 127.0.0.1:<port>`.
REDIS_PATTERN=redis-server
redis_pid() { read_pid "$STATE_DIR/redis.pid"; }
port() { cat "$STATE_DIR/port" 2>/dev/null || true; }

answers() {
	local p
	p=$(port)
	[[ -n $p ]] && pid_alive "$(redis_pid)" "$REDIS_PATTERN" &&
		[[ $(redis-cli -h 127.0.0.1 -p "$p" PING 2>/dev/null) == PONG ]]
}

emit() { printf 'DOCKGATE_TEST_STORE=redis://127.0.0.1:%s/0\n' "$(port)"; }

ensure_installed() { command -v redis-server >/dev/null 2>&1 || apt_install redis-server; }

choose_port() {
	local p
	p=$(port)
	if [[ -n $p ]] && ! port_busy "$p"; then return; fi
	for ((p = PORT_BASE; p < PORT_BASE + 100; p++)); do
		if ! port_busy "$p"; then
			echo "$p" >"$STATE_DIR/port"
			return
		fi
	done
	die "no free loopback port in $PORT_BASE..$((PORT_BASE + 99))"
}

start() {
	mkdir -p "$STATE_DIR"
	choose_port
	# The Debian service may have started one on 6379; ours is separate and ends with `down`.
	redis-server --bind 127.0.0.1 --port "$(port)" --save '' --appendonly no \
		--daemonize yes --pidfile "$STATE_DIR/redis.pid" --logfile "$STATE_DIR/redis.log" \
		--dir "$STATE_DIR" >&2
	for _ in $(seq 1 100); do
		answers && return
		sleep 0.05
	done
	die "redis-server did not answer on 127.0.0.1:$(port); see $STATE_DIR/redis.log"
}

stop() {
	stop_pid "$(redis_pid)" "$REDIS_PATTERN" redis-server 5
	rm -f "$STATE_DIR/redis.pid"
}

case ${1:-} in
up)
	if ! answers; then
		ensure_installed
		start
		log "redis-server answers on 127.0.0.1:$(port) (pid $(redis_pid))"
	fi
	emit
	;;
env) answers && emit || exit 1 ;;
status) answers ;;
restart)
	stop
	start
	log "redis-server restarted on 127.0.0.1:$(port) (pid $(redis_pid))"
	emit
	;;
down) stop ;;
*) die 'usage: scripts/redis.sh up|down|env|status|restart' ;;
esac
