#!/usr/bin/env bash
# scripts/cluster.sh — three dockgate instances on loopback behind HAProxy, sharing one Redis.
#
# Usage: scripts/cluster.sh up|down|env|status|kill N [SIGNAL]|start N
#
#   up       Make sure the engine and Redis are up, build the Node bundle if it is missing or
#            older than src/, start whatever part of the cluster is not running (three
#            gateways, then HAProxy), and print its environment on stdout: eval-able KEY=value
#            lines (DOCKGATE_CLUSTER_URL, DOCKGATE_CLUSTER_TOKEN, each instance's URL and PID, …).
#            A summary of where everything is goes to stderr. Idempotent.
#   env      Print the same lines without starting anything (exit 1 if the cluster is not up).
#   status   Human-readable state on stderr; exit 0 if every part runs, 1 otherwise.
#   kill N   Send SIGNAL (default KILL: a crash) to instance N (1..3); HAProxy's health checks
#            take it out of the rotation.
#   start N  Start instance N again on its port (after `kill N`); nothing if it runs.
#   down     Stop only what `up` started, by the PIDs in its pidfiles: HAProxy, the instances,
#            and the engine or Redis when `up` was the one that started them.
#
# Environment (read by `up`):
#   DOCKGATE_STATE_DIR    where scripts/engine.sh and scripts/redis.sh keep their state (<repo>/.state)
#   DOCKGATE_CLUSTER_DIR  the cluster's own folder (default $DOCKGATE_STATE_DIR/cluster): a second
#                         cluster (a test's, the bench's) runs beside the first with another one
#   DOCKER_HOST           the engine, when it answers; otherwise scripts/engine.sh up provides one
#   DOCKGATE_STORE        the shared state store; otherwise the project's Redis (scripts/redis.sh up)
#   DOCKGATE_CONFIG       the config file every instance reads; otherwise <cluster dir>/config.json
#                         (written as `{}` when missing: the generated token is the only credential)
#   DOCKGATE_CLUSTER_BALANCERS  HAProxy processes sharing the balancer's port (SO_REUSEPORT), 1 by
#                         default. One HAProxy holds two sockets a client (client and server side),
#                         so its open-file limit caps it at about half of `ulimit -Hn` clients; more
#                         processes hold more (the bench's 10,000 subscribers on a 20,000 limit).
#
# Layout of <cluster dir>:
#   secrets.env          DOCKGATE_TOKEN and DOCKGATE_SECRET, generated once (mode 600)
#   ports.env            the balancer's and the instances' ports (kept, so a restart reuses them)
#   instance-N.pid/.log  gateway N (N = 1..3): its pid and its output (JSON lines)
#   haproxy.cfg          generated on each `up` (read it: it says why each setting is there)
#   haproxy-K.pid/.log   HAProxy process K
#   owned                "engine" / "redis" when `up` started them (so `down` stops them too)
#   run.env              what `up` used: engine, store, config (for `env` and `start N`)
#
# Only 127.0.0.1 is bound. The instances get the same config file, DOCKGATE_TOKEN, DOCKGATE_SECRET
# and DOCKGATE_STORE: once the shared state store is merged they share tickets, limits and events
# through it (today's code ignores the last two and keeps its state per instance).
set -euo pipefail

REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)
SCRIPT_NAME=cluster.sh
source "$REPO_ROOT/scripts/lib.sh"
state_base=${DOCKGATE_STATE_DIR:-$REPO_ROOT/.state}
case $state_base in /*) ;; *) state_base=$PWD/$state_base ;; esac
export DOCKGATE_STATE_DIR=$state_base
DIR=${DOCKGATE_CLUSTER_DIR:-$state_base/cluster}
case $DIR in /*) ;; *) DIR=$PWD/$DIR ;; esac
INSTANCES=3
HAPROXY=/usr/sbin/haproxy
START_TIMEOUT_S=30

# What identifies our processes: the bundle for gateways, our config for HAProxy.
instance_pid() {
	local pid
	pid=$(read_pid "$DIR/instance-$1.pid")
	pid_alive "$pid" dist/dockgate.mjs && printf '%s' "$pid"
}
haproxy_pid() {
	local pid
	pid=$(read_pid "$DIR/haproxy-$1.pid")
	pid_alive "$pid" "$DIR/haproxy.cfg" && printf '%s' "$pid"
}
haproxy_pids() {
	local f k
	for f in "$DIR"/haproxy-*.pid; do
		[[ -f $f ]] || continue
		k=${f##*/haproxy-}
		k=${k%.pid}
		haproxy_pid "$k" || true
		echo
	done | sed '/^$/d'
}

load_file() { [[ -f $1 ]] && source "$1" || true; }

healthy() { curl -sf --max-time 2 "http://127.0.0.1:$1/healthz" >/dev/null 2>&1; }

# ---------------------------------------------------------------------------
# The parts the cluster stands on
# ---------------------------------------------------------------------------

owned() { grep -qx "$1" "$DIR/owned" 2>/dev/null; }
own() { owned "$1" || echo "$1" >>"$DIR/owned"; }

engine_answers() {
	case $1 in
	unix://*) curl -sf --max-time 2 --unix-socket "${1#unix://}" http://docker/_ping >/dev/null 2>&1 ;;
	tcp://*) curl -sf --max-time 2 "http://${1#tcp://}/_ping" >/dev/null 2>&1 ;;
	*) return 1 ;;
	esac
}

ensure_engine() {
	if [[ -n ${DOCKER_HOST:-} ]] && engine_answers "$DOCKER_HOST"; then
		ENGINE_HOST=$DOCKER_HOST
		FIXTURE_IMAGE=${DOCKGATE_FIXTURE_IMAGE:-dockgate-fixture:busybox}
		return
	fi
	local was_up=0 out
	DOCKGATE_PRIVATE_ENGINE=${DOCKGATE_PRIVATE_ENGINE:-1} bash "$REPO_ROOT/scripts/engine.sh" status 2>/dev/null && was_up=1
	# 9>&-: what it starts (dockerd, socat) must not hold this script's lock.
	out=$(DOCKGATE_PRIVATE_ENGINE=${DOCKGATE_PRIVATE_ENGINE:-1} bash "$REPO_ROOT/scripts/engine.sh" up 9>&-)
	ENGINE_HOST=$(sed -n 's/^DOCKER_HOST=//p' <<<"$out")
	FIXTURE_IMAGE=$(sed -n 's/^DOCKGATE_FIXTURE_IMAGE=//p' <<<"$out")
	FIXTURE_IMAGE=${FIXTURE_IMAGE:-dockgate-fixture:busybox}
	[[ -n $ENGINE_HOST ]] || die 'scripts/engine.sh up printed no DOCKER_HOST'
	if [[ $was_up == 0 ]] && grep -qx 'DOCKGATE_ENGINE_OWNED=1' <<<"$out"; then own engine; fi
}

ensure_store() {
	if [[ -n ${DOCKGATE_STORE:-} ]]; then
		STORE=$DOCKGATE_STORE
		return
	fi
	local was_up=0 out
	bash "$REPO_ROOT/scripts/redis.sh" status 2>/dev/null && was_up=1
	out=$(bash "$REPO_ROOT/scripts/redis.sh" up 9>&-)
	STORE=$(sed -n 's/^DOCKGATE_TEST_STORE=//p' <<<"$out")
	[[ -n $STORE ]] || die 'scripts/redis.sh up printed no store URL'
	[[ $was_up == 1 ]] || own redis
}

# The bundle `npm start` runs, rebuilt when a file it is made of has changed since (--if-stale).
ensure_bundle() {
	(cd "$REPO_ROOT" && node scripts/build-node.mjs --if-stale) >&2 9>&-
}

ensure_secrets() {
	[[ -f $DIR/secrets.env ]] && return
	local token secret
	token=dgt_cluster-$(openssl rand -hex 24)
	secret=$(openssl rand -hex 32)
	(
		umask 077
		printf 'DOCKGATE_TOKEN=%s\nDOCKGATE_SECRET=%s\n' "$token" "$secret" >"$DIR/secrets.env.tmp"
	)
	mv "$DIR/secrets.env.tmp" "$DIR/secrets.env"
}

# The ports of the last `up` again (a restarted instance keeps its place in HAProxy's config),
# unless nothing of the cluster runs and someone else has taken one meanwhile.
ensure_ports() {
	load_file "$DIR/ports.env"
	local changed=0 n var fresh=1
	for ((n = 1; n <= INSTANCES; n++)); do [[ -n $(instance_pid "$n") ]] && fresh=0; done
	[[ -n $(haproxy_pids) ]] && fresh=0
	if [[ -z ${BALANCER_PORT:-} ]] || { [[ $fresh == 1 ]] && port_busy "$BALANCER_PORT"; }; then
		BALANCER_PORT=$(free_port)
		changed=1
	fi
	for ((n = 1; n <= INSTANCES; n++)); do
		var=INSTANCE_${n}_PORT
		if [[ -z ${!var:-} ]] || { [[ $fresh == 1 ]] && port_busy "${!var}"; }; then
			printf -v "$var" '%s' "$(free_port)"
			changed=1
		fi
	done
	if [[ $changed == 1 ]]; then
		{
			echo "BALANCER_PORT=$BALANCER_PORT"
			for ((n = 1; n <= INSTANCES; n++)); do
				var=INSTANCE_${n}_PORT
				echo "$var=${!var}"
			done
		} >"$DIR/ports.env"
	fi
}

instance_port() {
	local var=INSTANCE_${1}_PORT
	printf '%s' "${!var}"
}

# ---------------------------------------------------------------------------
# Instances
# ---------------------------------------------------------------------------

# Starts instance N unless it runs (answers at once; await_instance waits for it).
launch_instance() {
	local n=$1 port flags
	port=$(instance_port "$n")
	[[ -n $(instance_pid "$n") ]] && return
	flags=$(node -p "require('$REPO_ROOT/package.json').config?.nodeFlags ?? ''")
	# A process of its own session, no terminal, stdio to its log: it outlives this script and
	# the shell (or test runner) that ran it.
	# shellcheck disable=SC2086 # the flags are words
	env -i PATH="$PATH" HOME="${HOME:-/root}" NO_COLOR=1 \
		HOST=127.0.0.1 PORT="$port" DOCKER_HOST="$ENGINE_HOST" \
		DOCKGATE_CONFIG="$CONFIG" DOCKGATE_TOKEN="$DOCKGATE_TOKEN" \
		DOCKGATE_SECRET="$DOCKGATE_SECRET" DOCKGATE_STORE="$STORE" DOCKGATE_INSTANCE="dockgate-$n" \
		setsid node $flags "$REPO_ROOT/dist/dockgate.mjs" </dev/null >>"$DIR/instance-$n.log" 2>&1 9>&- &
	echo "$!" >"$DIR/instance-$n.pid"
}

# Waits until instance N answers /healthz (it dies or takes too long: the end of its log).
await_instance() {
	local n=$1 port pid
	port=$(instance_port "$n")
	pid=$(read_pid "$DIR/instance-$n.pid")
	local deadline=$((SECONDS + START_TIMEOUT_S))
	until healthy "$port"; do
		if ! running "$pid"; then
			die "instance $n exited before it answered; the end of $DIR/instance-$n.log:
$(tail -n 20 "$DIR/instance-$n.log")"
		fi
		((SECONDS < deadline)) || die "instance $n did not answer on 127.0.0.1:$port within ${START_TIMEOUT_S}s; see $DIR/instance-$n.log"
		sleep 0.1
	done
	log "instance $n answers on http://127.0.0.1:$port (pid $pid)"
}

ensure_haproxy_installed() {
	[[ -x $HAPROXY ]] && return
	command -v haproxy >/dev/null 2>&1 && {
		HAPROXY=$(command -v haproxy)
		return
	}
	# The package starts its own service on the default config; ours is separate.
	apt_install haproxy
}

write_haproxy_cfg() {
	local fd_limit maxconn n
	fd_limit=$(ulimit -Hn)
	[[ $fd_limit == unlimited ]] && fd_limit=1048576
	# Two sockets a proxied connection, plus listeners, health checks and the log.
	maxconn=$(((fd_limit - 200) / 2))
	((maxconn > 100000)) && maxconn=100000
	cat >"$DIR/haproxy.cfg.tmp" <<EOF
# Generated by scripts/cluster.sh on every \`up\`: edits are lost. dockgate cluster in $DIR.
global
    # Each proxied connection holds two sockets; the open-file limit (ulimit -Hn = $fd_limit)
    # caps the connections one process holds (DOCKGATE_CLUSTER_BALANCERS adds processes).
    maxconn $maxconn
    # Server state changes and errors go to this process's log file (no per-request log: the
    # instances log every request themselves).
    log stdout format raw local0 notice

defaults
    mode http
    log global
    option dontlognull
    maxconn $maxconn
    # Event streams (SSE) send each event as it comes: no Nagle delay on either side.
    option http-no-delay
    timeout connect 2s
    # A client has 10 s to send its request headers (the gateway allows the same).
    timeout http-request 10s
    timeout http-keep-alive 15s
    # Inactivity limits while a request or response is in progress. Event streams send a
    # heartbeat every 15 s (heartbeatMs) and so never reach them; a long container wait or a
    # quiet log follow may last minutes, so these are generous rather than 15 s.
    timeout client 10m
    timeout server 10m
    # Once a connection is a tunnel (an upgraded or CONNECT one), this applies instead.
    timeout tunnel 1h
    # A half-closed connection is not kept waiting for its other half.
    timeout client-fin 5s
    timeout server-fin 5s
    timeout queue 5s
    # A request whose instance refused the connection (killed, restarting) goes to another one
    # at once. So does a GET or HEAD sent on a kept-alive connection to an instance that has just
    # died (an empty response): without that retry HAProxy closes the client's connection with
    # no answer. Other methods are only retried when the connection failed (disable-l7-retry
    # below): a create or a stop is never sent twice.
    retries 3
    option redispatch 1
    retry-on conn-failure empty-response

    # HAProxy's own answers (no instance up, an instance gone in the middle of an answer, one too
    # slow) are problems like the gateway's: application/problem+json, Retry-After on 503.
    http-error status 502 content-type application/problem+json string '{"type":"urn:dockgate:problem:bad-gateway","title":"Bad Gateway","status":502,"detail":"A gateway instance failed while answering"}'
    http-error status 503 content-type application/problem+json string '{"type":"urn:dockgate:problem:unavailable","title":"Service Unavailable","status":503,"detail":"No gateway instance is available"}' hdr Retry-After 1
    http-error status 504 content-type application/problem+json string '{"type":"urn:dockgate:problem:gateway-timeout","title":"Gateway Timeout","status":504,"detail":"A gateway instance did not answer in time"}'

frontend dockgate
    # Loopback only.
    bind 127.0.0.1:$BALANCER_PORT
    default_backend instances

backend instances
    balance roundrobin
    http-request disable-l7-retry if !METH_GET
    # Each answer says which instance made it (the tests check the spread with it).
    http-response set-header X-Dockgate-Instance %[srv_name]
    # Liveness (/healthz), not /readyz: the engine and the store are the same for every instance,
    # so when they are away all instances are unready together, and the gateway's own 503 (with
    # the reason and Retry-After) says more than HAProxy's "no server". A dead or hung instance is
    # out after two failed checks (~0.5 s apart once one failed) and back after two good ones; a
    # refused connection takes it out at once (observe layer4).
    option httpchk
    http-check send meth GET uri /healthz
    http-check expect status 200
    default-server check inter 1s fastinter 250ms downinter 500ms fall 2 rise 2 observe layer4 error-limit 1 on-error mark-down
EOF
	for ((n = 1; n <= INSTANCES; n++)); do
		printf '    server dockgate-%s 127.0.0.1:%s\n' "$n" "$(instance_port "$n")" >>"$DIR/haproxy.cfg.tmp"
	done
	mv "$DIR/haproxy.cfg.tmp" "$DIR/haproxy.cfg"
	"$HAPROXY" -c -q -f "$DIR/haproxy.cfg" >&2 || die "haproxy refuses $DIR/haproxy.cfg"
}

start_haproxy() {
	local k=$1 pid
	[[ -n $(haproxy_pid "$k") ]] && return
	# Foreground (-db) under setsid: its pid is the one we keep; its log goes to a file.
	(
		ulimit -n "$(ulimit -Hn)"
		exec setsid "$HAPROXY" -db -f "$DIR/haproxy.cfg" </dev/null >>"$DIR/haproxy-$k.log" 2>&1 9>&-
	) &
	pid=$!
	echo "$pid" >"$DIR/haproxy-$k.pid"
	local deadline=$((SECONDS + 10))
	until curl -s --max-time 2 -o /dev/null "http://127.0.0.1:$BALANCER_PORT/healthz"; do
		running "$pid" || die "haproxy exited; see $DIR/haproxy-$k.log"
		((SECONDS < deadline)) || die "haproxy does not answer on 127.0.0.1:$BALANCER_PORT; see $DIR/haproxy-$k.log"
		sleep 0.1
	done
}

# Waits until HAProxy sends requests to each of the instances named (dockgate-N): as many answers
# in a row as there are instances name them (round robin), or it warns after 15 s.
wait_in_rotation() {
	local deadline=$((SECONDS + 15)) seen name missing
	while ((SECONDS < deadline)); do
		seen=$(for _ in $(seq 1 $((INSTANCES * 2))); do
			curl -s --max-time 2 -o /dev/null -D - "http://127.0.0.1:$BALANCER_PORT/healthz" |
				sed -n 's/^[Xx]-[Dd]ockgate-[Ii]nstance: *\([^[:space:]]*\).*/\1/p'
		done)
		missing=
		for name in "$@"; do grep -qx "$name" <<<"$seen" || missing+=" $name"; done
		[[ -z $missing ]] && return
		sleep 0.25
	done
	log "warning: not in HAProxy's rotation yet:$missing"
}

# ---------------------------------------------------------------------------
# Commands
# ---------------------------------------------------------------------------

print_env() {
	load_file "$DIR/run.env"
	load_file "$DIR/ports.env"
	load_file "$DIR/secrets.env"
	local n
	emit DOCKGATE_CLUSTER_URL "http://127.0.0.1:$BALANCER_PORT"
	emit DOCKGATE_CLUSTER_TOKEN "$DOCKGATE_TOKEN"
	emit DOCKGATE_CLUSTER_DIR "$DIR"
	emit DOCKGATE_CLUSTER_STORE "$STORE"
	emit DOCKGATE_CLUSTER_CONFIG "$CONFIG"
	emit DOCKGATE_CLUSTER_DOCKER_HOST "$ENGINE_HOST"
	emit DOCKGATE_CLUSTER_FIXTURE_IMAGE "$FIXTURE_IMAGE"
	emit DOCKGATE_CLUSTER_HAPROXY_PIDS "$(haproxy_pids | paste -sd, -)"
	for ((n = 1; n <= INSTANCES; n++)); do
		emit "DOCKGATE_CLUSTER_INSTANCE_${n}_URL" "http://127.0.0.1:$(instance_port "$n")"
		emit "DOCKGATE_CLUSTER_INSTANCE_${n}_PID" "$(instance_pid "$n" || true)"
	done
}

all_up() {
	[[ -f $DIR/run.env && -f $DIR/ports.env ]] || return 1
	load_file "$DIR/ports.env"
	local n
	for ((n = 1; n <= INSTANCES; n++)); do [[ -n $(instance_pid "$n") ]] || return 1; done
	[[ -n $(haproxy_pids) ]]
}

summary() {
	local n
	{
		printf 'dockgate cluster (%s):\n' "$DIR"
		printf '  balancer  http://127.0.0.1:%s  haproxy pid %s (config %s)\n' "$BALANCER_PORT" \
			"$(haproxy_pids | paste -sd, -)" "$DIR/haproxy.cfg"
		for ((n = 1; n <= INSTANCES; n++)); do
			printf '  instance %s http://127.0.0.1:%s  pid %s  log %s\n' "$n" "$(instance_port "$n")" \
				"$(instance_pid "$n" || echo '-')" "$DIR/instance-$n.log"
		done
		printf '  engine %s, store %s, config %s\n' "$ENGINE_HOST" "$(sed -E 's#(//[^:/@]*):[^@]*@#\1:***@#' <<<"$STORE")" "$CONFIG"
		printf '  token in %s (DOCKGATE_CLUSTER_TOKEN); stop with: scripts/cluster.sh down\n' "$DIR/secrets.env"
	} >&2
}

cmd_up() {
	ensure_engine
	ensure_store
	ensure_bundle
	ensure_haproxy_installed
	ensure_secrets
	ensure_ports
	load_file "$DIR/secrets.env"
	CONFIG=${DOCKGATE_CONFIG:-$DIR/config.json}
	[[ -n ${DOCKGATE_CONFIG:-} || -f $CONFIG ]] || echo '{}' >"$CONFIG"
	{
		emit ENGINE_HOST "$ENGINE_HOST"
		emit FIXTURE_IMAGE "$FIXTURE_IMAGE"
		emit STORE "$STORE"
		emit CONFIG "$CONFIG"
	} >"$DIR/run.env"
	chmod 600 "$DIR/run.env"
	local n k balancers=${DOCKGATE_CLUSTER_BALANCERS:-1}
	# All three start at once; a start is mostly Node reading the bundle.
	for ((n = 1; n <= INSTANCES; n++)); do launch_instance "$n"; done
	for ((n = 1; n <= INSTANCES; n++)); do await_instance "$n"; done
	write_haproxy_cfg
	for ((k = 1; k <= balancers; k++)); do start_haproxy "$k"; done
	wait_in_rotation $(for ((n = 1; n <= INSTANCES; n++)); do echo "dockgate-$n"; done)
	summary
	print_env
}

cmd_down() {
	local n f pid
	for f in "$DIR"/haproxy-*.pid; do
		[[ -f $f ]] || continue
		pid=$(read_pid "$f")
		stop_pid "$pid" "$DIR/haproxy.cfg" "haproxy"
		rm -f "$f"
	done
	for ((n = 1; n <= INSTANCES; n++)); do
		# SIGTERM: a gateway ends its streams with `shutdown` and exits.
		stop_pid "$(read_pid "$DIR/instance-$n.pid")" dist/dockgate.mjs "instance $n"
		rm -f "$DIR/instance-$n.pid"
	done
	if owned redis; then bash "$REPO_ROOT/scripts/redis.sh" down; fi
	if owned engine; then bash "$REPO_ROOT/scripts/engine.sh" down; fi
	rm -f "$DIR/owned"
	log "stopped (state kept in $DIR)"
}

need_n() {
	[[ ${1:-} =~ ^[1-9][0-9]*$ ]] && (($1 <= INSTANCES)) || die "which instance? 1..$INSTANCES"
}

main() {
	local cmd=${1:-}
	[[ $cmd == up ]] && mkdir -p "$DIR"
	# One change at a time per cluster (parallel test files may all call `up`); the children
	# close the lock's descriptor, so it is free again when this script ends.
	if [[ $cmd != env && $cmd != status && -d $DIR ]]; then
		exec 9>"$DIR/lock"
		flock -w 120 9 || die "another cluster.sh holds $DIR/lock"
	fi
	case $cmd in
	up) cmd_up ;;
	env) all_up && print_env || exit 1 ;;
	status)
		if all_up; then
			load_file "$DIR/run.env"
			summary
		else
			log "not (completely) up ($DIR)"
			exit 1
		fi
		;;
	kill)
		need_n "${2:-}"
		local pid
		pid=$(instance_pid "$2" || true)
		[[ -n $pid ]] || die "instance $2 is not running"
		kill -s "${3:-KILL}" "$pid"
		log "sent SIG${3:-KILL} to instance $2 (pid $pid)"
		;;
	start)
		need_n "${2:-}"
		[[ -f $DIR/run.env ]] || die "the cluster in $DIR was never up"
		load_file "$DIR/run.env"
		load_file "$DIR/ports.env"
		load_file "$DIR/secrets.env"
		launch_instance "$2"
		await_instance "$2"
		wait_in_rotation "dockgate-$2"
		emit "DOCKGATE_CLUSTER_INSTANCE_${2}_PID" "$(instance_pid "$2")"
		;;
	down) cmd_down ;;
	*) die 'usage: scripts/cluster.sh up|down|env|status|kill N [SIGNAL]|start N' ;;
	esac
}

main "$@"
