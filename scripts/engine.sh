#!/usr/bin/env bash
# scripts/engine.sh — provide a Docker Engine for dockgate's integration tests.
#
# Usage: scripts/engine.sh up [--swarm]|down [--swarm]|env|status [--swarm]
#
#   up      Make sure an engine is available and print its environment on
#           stdout (one eval-able KEY=value per line, nothing else on stdout;
#           all progress goes to stderr).
#   env     Print the same lines as `up` would, without starting anything
#           (exit 1 if no engine is up).
#   status  Human-readable state on stderr; exit 0 if up, 1 otherwise.
#   down    Stop only what `up` started (by the PIDs in our pidfiles).
#           Keeps the data-root (and thus the fixture image) for next time.
#
#   up --swarm    Also make the engine a Swarm manager and start a second,
#           private dockerd joined to it as a worker (see "Swarm" below).
#   down --swarm  Undo only that: the worker leaves and stops, the manager
#           leaves the swarm; the engine keeps running. (`down` undoes it too.)
#   status --swarm  Exit 0 when the engine is a manager with a ready worker.
#
# Swarm (private engine only). Both dockerds share the host's network
# namespace and talk over loopback only: the manager listens and advertises on
# ${DOCKGATE_SWARM_MANAGER_ADDR:-127.0.0.1}:${DOCKGATE_SWARM_PORT:-2377}, the
# worker on ${DOCKGATE_SWARM_WORKER_ADDR:-127.0.0.2} (its gossip port, 7946, is
# fixed, hence one address per node; a second swarm on the same host needs
# other addresses). The `ingress` overlay network is removed right after init:
# it is what opens the kernel's VXLAN socket on 0.0.0.0:4789 and creates the
# docker_gwbridge bridge (removed too); services here publish no ports and
# attach to no network, so their tasks have loopback only, as containers do.
# The worker lives under $STATE/worker (data/, exec/ or /run/dockgate-<hash>/
# worker-exec, engine.sock, dockerd.pid, dockerd.log) with containerd
# namespaces of its own, and gets the fixture images by `docker save | load`.
#
# Which engine is used:
#   1. Our private engine, if it is already running (quick, idempotent path).
#      This is checked first so that repeated `up` calls always print the same
#      thing, even if a system engine appears in between (e.g. started by
#      apt's postinst when this script installed docker.io).
#   2. Otherwise, unless DOCKGATE_PRIVATE_ENGINE=1, the user's engine if it
#      answers /_ping ($DOCKER_HOST, else unix:///var/run/docker.sock).
#      Then only DOCKER_HOST, DOCKGATE_ENGINE_OWNED=0 and the fixture image
#      are printed (we do not know TCP/TLS endpoints of someone else's engine).
#   3. Otherwise a private dockerd is started (Linux + root only; exit 2 with
#      instructions otherwise).
#
# Private engine layout — everything lives under
# ${DOCKGATE_STATE_DIR:-<repo>/.state}/engine:
#   data/            --data-root (kept across `down`, holds the fixture image)
#   exec/            --exec-root (or /run/dockgate-<hash> when the state path is
#                    too long for unix socket paths; see exec-root.path)
#   engine.sock      the API unix socket (next to exec-root in the short case)
#   dockerd.pid      --pidfile (written by dockerd)
#   tcp-forward.pid  pid of the plain-TCP forwarder (socat)
#   dockerd.log      dockerd (+ managed containerd) output
#   tcp-forward.log  plain-TCP forwarder output
#   ports.env        the two loopback ports (persisted so reuse keeps them)
#   storage-driver   "vfs" if overlay2 did not work here
#   daemon.json      empty config file (isolates us from /etc/docker/daemon.json)
#   tls/             throwaway CA, server cert, tls/client/{ca,cert,key}.pem
#
# dockerd itself serves the TLS endpoint: it listens on the unix socket and on
# 127.0.0.1:<tlsport> with
#   --tlsverify --tlscacert tls/ca.pem --tlscert tls/server-cert.pem --tlskey tls/server-key.pem
# so the TLS tests talk to the real `dockerd --tlsverify` (client certificate
# signed by our CA required) rather than to an imitation of it.
# dockerd's TLS flags are global to all of its TCP listeners, so it cannot also
# serve a plain-TCP port, and a second dockerd is too heavy. The plain endpoint
# is therefore a socat forwarder to the unix socket:
#   socat TCP-LISTEN:<tcpport>,bind=127.0.0.1,reuseaddr,fork UNIX-CONNECT:<engine.sock>
# Plain HTTP is passed through byte for byte, so from the client's point of
# view it behaves like `dockerd -H tcp://…` without TLS.
# (Older versions of this script did it the other way round — dockerd on plain
# TCP, socat doing TLS, pid in socat.pid. `down` still stops such a forwarder,
# and `up` refuses to reuse an engine started that way.)
#
# No --containerd is given: dockerd starts its own managed containerd under
# exec-root. (If a system containerd is running, dockerd 20.10 uses it instead;
# the private --containerd-namespace values below keep our containers apart
# from any system dockerd's "moby" namespace.)
#
# Network: only 127.0.0.1 and unix sockets are used. No bridge, no iptables.
set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)
REPO_ROOT=$(cd "$SCRIPT_DIR/.." && pwd -P)
SCRIPT_NAME=engine.sh
source "$SCRIPT_DIR/lib.sh"

FIXTURE_IMAGE=dockgate-fixture:busybox
FIXTURE_IMAGE_NESTED=dockgate-fixture/busybox:nested
PORT_BASE=23750
PING_TIMEOUT=60
STOP_TIMEOUT=20

# ---------------------------------------------------------------------------
# Paths
# ---------------------------------------------------------------------------
state_base=${DOCKGATE_STATE_DIR:-$REPO_ROOT/.state}
case $state_base in /*) ;; *) state_base=$PWD/$state_base ;; esac
STATE=${state_base%/}/engine
DATA_ROOT=$STATE/data
DOCKERD_PIDFILE=$STATE/dockerd.pid
FWD_PIDFILE=$STATE/tcp-forward.pid
LEGACY_SOCAT_PIDFILE=$STATE/socat.pid # TLS forwarder of older versions
DOCKERD_LOG=$STATE/dockerd.log
FWD_LOG=$STATE/tcp-forward.log
PORTS_FILE=$STATE/ports.env
DRIVER_FILE=$STATE/storage-driver
DAEMON_JSON=$STATE/daemon.json
TLS_DIR=$STATE/tls
CLIENT_CERT_DIR=$TLS_DIR/client
LOCK_FILE=$STATE/lock

# Unix socket paths are limited to 108 bytes. The deepest sockets dockerd and
# containerd create below exec-root are ~35 bytes below it, so a long state
# path gets a short exec-root (and socket) under /run instead.
if ((${#STATE} + 5 > 70 || ${#STATE} + 12 > 100)); then
	state_hash=$(printf '%s' "$STATE" | sha256sum | cut -c1-12)
	EXEC_ROOT=/run/dockgate-$state_hash/exec
	SOCK=/run/dockgate-$state_hash/engine.sock
else
	EXEC_ROOT=$STATE/exec
	SOCK=$STATE/engine.sock
fi
PRIVATE_HOST=unix://$SOCK

TCP_PORT=
TLS_PORT=
load_ports() {
	TCP_PORT=
	TLS_PORT=
	if [[ -f $PORTS_FILE ]]; then
		TCP_PORT=$(sed -n 's/^TCP_PORT=\([0-9][0-9]*\)$/\1/p' "$PORTS_FILE")
		TLS_PORT=$(sed -n 's/^TLS_PORT=\([0-9][0-9]*\)$/\1/p' "$PORTS_FILE")
	fi
}

# ---------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------

dockerd_pid() {
	local pid
	pid=$(read_pid "$DOCKERD_PIDFILE")
	pid_alive "$pid" "$DATA_ROOT" && printf '%s' "$pid"
}

# Both the forwarder and the legacy TLS forwarder have this on their command
# line; dockerd has "unix://<sock>" instead, so it never matches.
FWD_PATTERN="UNIX-CONNECT:$SOCK"

fwd_pid() {
	local pid
	pid=$(read_pid "$FWD_PIDFILE")
	pid_alive "$pid" "$FWD_PATTERN" && printf '%s' "$pid"
}

# Was our running dockerd started with the current layout (TLS on tlsport)?
dockerd_layout_ok() {
	local pid=$1
	pid_alive "$pid" "--tlsverify" && pid_alive "$pid" "-H tcp://127.0.0.1:$TLS_PORT "
}

have_curl() { command -v curl >/dev/null 2>&1; }

# engine_get HOST PATH SECS — GET PATH on the engine at HOST (unix:// or tcp://, with TLS when
# DOCKER_TLS_VERIFY is set) answers 2xx within SECS seconds.
engine_get() {
	local host=$1 p=$2 secs=$3 hostport
	have_curl || return 1
	case $host in
	unix://*)
		[[ -S ${host#unix://} ]] || return 1
		curl -sf --max-time "$secs" --unix-socket "${host#unix://}" "http://docker$p" >/dev/null 2>&1
		;;
	tcp://*)
		hostport=${host#tcp://}
		hostport=${hostport%%/*}
		if [[ -n ${DOCKER_TLS_VERIFY:-} ]]; then
			local cp=${DOCKER_CERT_PATH:-$HOME/.docker}
			curl -sf --max-time "$secs" --cacert "$cp/ca.pem" --cert "$cp/cert.pem" --key "$cp/key.pem" \
				"https://$hostport$p" >/dev/null 2>&1
		else
			curl -sf --max-time "$secs" "http://$hostport$p" >/dev/null 2>&1
		fi
		;;
	*) return 1 ;;
	esac
}

# ping_host HOST — does a Docker engine answer /_ping at HOST?
ping_host() { engine_get "$1" /_ping 2; }

# api_ok HOST PATH — GET PATH on HOST returns 2xx (used for quick image checks).
api_ok() { engine_get "$1" "$2" 5; }

# Is the private engine up (dockerd alive per pidfile and socket answers)?
private_up() {
	[[ -n $(dockerd_pid) ]] && ping_host "$PRIVATE_HOST"
}

# The user's engine, if one answers and it is not ours. Prints its DOCKER_HOST.
external_host() {
	local host=${DOCKER_HOST:-unix:///var/run/docker.sock}
	[[ ${DOCKGATE_PRIVATE_ENGINE:-} == 1 ]] && return 1
	# After `eval "$(engine.sh up)"` DOCKER_HOST points at our private engine;
	# that is not an external engine.
	load_ports
	case $host in
	"$PRIVATE_HOST") return 1 ;;
	"tcp://127.0.0.1:$TCP_PORT" | "tcp://127.0.0.1:$TLS_PORT")
		[[ -n $TCP_PORT ]] && return 1
		;;
	esac
	ping_host "$host" || return 1
	printf '%s' "$host"
}

print_private_env() {
	load_ports
	emit DOCKER_HOST "$PRIVATE_HOST"
	emit DOCKGATE_ENGINE_OWNED 1
	emit DOCKGATE_TEST_TCP_HOST "tcp://127.0.0.1:$TCP_PORT"
	emit DOCKGATE_TEST_TLS_HOST "tcp://127.0.0.1:$TLS_PORT"
	emit DOCKGATE_TEST_TLS_CERT_PATH "$CLIENT_CERT_DIR"
	emit DOCKGATE_FIXTURE_IMAGE "$FIXTURE_IMAGE"
	if swarm_up; then print_swarm_env; fi
}

print_external_env() {
	emit DOCKER_HOST "$1"
	emit DOCKGATE_ENGINE_OWNED 0
	emit DOCKGATE_FIXTURE_IMAGE "$FIXTURE_IMAGE"
}

# Choose two free loopback ports (keeping the persisted ones when still free).
choose_ports() {
	load_ports
	if [[ -n $TCP_PORT && -n $TLS_PORT && $TCP_PORT != "$TLS_PORT" ]] &&
		! port_busy "$TCP_PORT" && ! port_busy "$TLS_PORT"; then
		return 0
	fi
	local p=$PORT_BASE picked=()
	while ((${#picked[@]} < 2)); do
		((p < PORT_BASE + 500)) || fail 1 "no free loopback port found in $PORT_BASE-$((PORT_BASE + 499))"
		port_busy "$p" || picked+=("$p")
		p=$((p + 1))
	done
	TCP_PORT=${picked[0]}
	TLS_PORT=${picked[1]}
	printf 'TCP_PORT=%s\nTLS_PORT=%s\n' "$TCP_PORT" "$TLS_PORT" >"$PORTS_FILE"
	log "picked loopback ports: tcp=$TCP_PORT tls=$TLS_PORT"
}

# ---------------------------------------------------------------------------
# Installation, TLS material
# ---------------------------------------------------------------------------
can_start_private() { [[ $(uname -s) == Linux && $(id -u) == 0 ]]; }

require_root_linux() {
	can_start_private && return 0
	fail 2 "no Docker engine answers at ${DOCKER_HOST:-unix:///var/run/docker.sock} (or DOCKGATE_PRIVATE_ENGINE=1 was set) and this script can only start its own engine as root on Linux. Either start Docker and set DOCKER_HOST (e.g. DOCKER_HOST=unix:///var/run/docker.sock), or run 'sudo scripts/engine.sh up' on Linux so the script can start a private engine."
}

ensure_packages() {
	local pkgs=()
	command -v dockerd >/dev/null 2>&1 || pkgs+=(docker.io)
	[[ -x /bin/busybox ]] || pkgs+=(busybox-static)
	command -v socat >/dev/null 2>&1 || pkgs+=(socat)
	command -v openssl >/dev/null 2>&1 || pkgs+=(openssl)
	have_curl || pkgs+=(curl)
	if ((${#pkgs[@]})); then apt_install "${pkgs[@]}"; fi
	return 0
}

ensure_tls() {
	if [[ -s $TLS_DIR/server-cert.pem && -s $TLS_DIR/server-key.pem && -s $CLIENT_CERT_DIR/ca.pem &&
		-s $CLIENT_CERT_DIR/cert.pem && -s $CLIENT_CERT_DIR/key.pem && -s $TLS_DIR/ca.pem ]]; then
		return 0
	fi
	log "generating throwaway TLS material in $TLS_DIR"
	local tmp
	tmp=$(mktemp -d "$STATE/tls.tmp.XXXXXX")
	(
		set -e
		umask 077
		cd "$tmp"
		mkdir client
		gen_key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null; }
		gen_key ca-key.pem
		gen_key server-key.pem
		gen_key client/key.pem
		openssl req -x509 -new -key ca-key.pem -sha256 -days 365 -subj '/CN=dockgate-test-ca' \
			-addext 'basicConstraints=critical,CA:TRUE' \
			-addext 'keyUsage=critical,keyCertSign,cRLSign' -out ca.pem 2>/dev/null
		printf '%s\n' 'basicConstraints=CA:FALSE' 'keyUsage=critical,digitalSignature,keyEncipherment' \
			'extendedKeyUsage=serverAuth' 'subjectAltName=IP:127.0.0.1,DNS:localhost' >server.ext
		printf '%s\n' 'basicConstraints=CA:FALSE' 'keyUsage=critical,digitalSignature' \
			'extendedKeyUsage=clientAuth' >client.ext
		openssl req -new -key server-key.pem -subj '/CN=localhost' -out server.csr 2>/dev/null
		openssl x509 -req -in server.csr -CA ca.pem -CAkey ca-key.pem -CAcreateserial -CAserial ca.srl \
			-days 365 -sha256 -extfile server.ext -out server-cert.pem 2>/dev/null
		openssl req -new -key client/key.pem -subj '/CN=dockgate-test' -out client.csr 2>/dev/null
		openssl x509 -req -in client.csr -CA ca.pem -CAkey ca-key.pem -CAserial ca.srl \
			-days 365 -sha256 -extfile client.ext -out client/cert.pem 2>/dev/null
		cp ca.pem client/ca.pem
		rm -f server.csr client.csr server.ext client.ext ca.srl
		chmod 0644 ca.pem server-cert.pem client/ca.pem client/cert.pem
		chmod 0600 ca-key.pem server-key.pem client/key.pem
		chmod 0755 . client
		openssl verify -CAfile ca.pem server-cert.pem client/cert.pem >/dev/null
	) || {
		rm -rf "$tmp"
		fail 1 "generating TLS material failed"
	}
	rm -rf "$TLS_DIR"
	mv "$tmp" "$TLS_DIR"
}

# ---------------------------------------------------------------------------
# Starting / stopping processes
# ---------------------------------------------------------------------------
start_tcp_forward() {
	local pid
	pid=$(fwd_pid) || true
	if [[ -n $pid ]]; then
		port_busy "$TCP_PORT" && return 0
		stop_pid "$pid" "$FWD_PATTERN" "plain-TCP forwarder (socat)" "$STOP_TIMEOUT"
	fi
	rm -f "$FWD_PIDFILE"
	if port_busy "$TCP_PORT"; then
		fail 1 "TCP port $TCP_PORT is taken by another process; run 'scripts/engine.sh down' and 'up' again to pick new ports"
	fi
	command -v socat >/dev/null 2>&1 || apt_install socat
	log "starting plain-TCP forwarder (socat) on 127.0.0.1:$TCP_PORT"
	# nohup and setsid exec in place (we are not a process group leader), so
	# $! is socat's own pid; setsid gives it its own process group so `down`
	# also reaches the per-connection children.
	nohup setsid socat \
		"TCP-LISTEN:$TCP_PORT,bind=127.0.0.1,reuseaddr,fork" \
		"UNIX-CONNECT:$SOCK" \
		</dev/null >>"$FWD_LOG" 2>&1 9>&- &
	pid=$!
	printf '%s\n' "$pid" >"$FWD_PIDFILE"
	local i
	for ((i = 0; i < 50; i++)); do
		port_busy "$TCP_PORT" && return 0
		running "$pid" || break
		sleep 0.1
	done
	tail -n 20 "$FWD_LOG" >&2 || true
	fail 1 "socat plain-TCP forwarder did not start (see $FWD_LOG)"
}

# Leftovers of a dockerd that was SIGKILLed: its managed containerd (pidfile
# under exec-root) and shims talking to that containerd. They are identified by
# our private exec-root path on their command line, never by name alone.
stop_leftovers() {
	local cpid p q comm cmd line ppid shims=() kids
	cpid=$(read_pid "$EXEC_ROOT/containerd/containerd.pid")
	if [[ -n $cpid ]] && pid_alive "$cpid" "$EXEC_ROOT"; then
		stop_pid "$cpid" "$EXEC_ROOT" "managed containerd" "$STOP_TIMEOUT"
	fi
	for p in /proc/[0-9]*; do
		p=${p#/proc/}
		comm=
		{ read -r comm <"/proc/$p/comm"; } 2>/dev/null || continue
		[[ $comm == containerd-shim* ]] || continue
		cmd=$(tr '\0' ' ' <"/proc/$p/cmdline" 2>/dev/null) || continue
		if [[ $cmd == *"$EXEC_ROOT/containerd/containerd.sock"* ]]; then shims+=("$p"); fi
	done
	((${#shims[@]})) || return 0
	for p in "${shims[@]}"; do
		# The shim's children are the containers' init processes; killing a
		# pid namespace's init kills the whole container.
		kids=
		for q in /proc/[0-9]*; do
			{ read -r line <"$q/stat"; } 2>/dev/null || continue
			line=${line##*) }
			read -r _ ppid _ <<<"$line"
			if [[ $ppid == "$p" ]]; then kids+=" ${q#/proc/}"; fi
		done
		log "killing leftover containerd shim $p${kids:+ and its containers ($(echo $kids))}"
		for cpid in $kids; do kill -KILL "$cpid" 2>/dev/null || true; done
		kill -KILL "$p" 2>/dev/null || true
	done
	sleep 0.2
}

# dockerd bind-mounts its data-root onto itself (to make it a shared mount)
# and a dockerd that died uncleanly leaves that and container mounts behind,
# which makes the state folder impossible to delete. With our dockerd stopped,
# unmount whatever is mounted at or below our data-root / exec-root.
release_mounts() {
	[[ -r /proc/self/mountinfo && $(id -u) == 0 ]] || return 0
	[[ -z $(dockerd_pid) ]] || return 0
	local mp
	while read -r mp; do
		umount "$mp" 2>/dev/null || umount -l "$mp" 2>/dev/null || log "could not unmount $mp"
	done < <(awk -v d="$DATA_ROOT" -v e="$EXEC_ROOT" \
		'$5 == d || index($5, d "/") == 1 || index($5, e "/") == 1 { print length($5) "\t" $5 }' \
		/proc/self/mountinfo | sort -rn | cut -f2-)
	return 0
}

stop_private() {
	local pid
	pid=$(read_pid "$FWD_PIDFILE")
	if [[ -n $pid ]]; then stop_pid "$pid" "$FWD_PATTERN" "plain-TCP forwarder (socat)" "$STOP_TIMEOUT"; fi
	pid=$(read_pid "$LEGACY_SOCAT_PIDFILE")
	if [[ -n $pid ]]; then stop_pid "$pid" "$FWD_PATTERN" "TLS forwarder (socat, older engine.sh)" "$STOP_TIMEOUT"; fi
	pid=$(read_pid "$DOCKERD_PIDFILE")
	if [[ -n $pid ]]; then stop_pid "$pid" "$DATA_ROOT" dockerd "$STOP_TIMEOUT"; fi
	stop_leftovers
	release_mounts
	rm -f "$FWD_PIDFILE" "$LEGACY_SOCAT_PIDFILE" "$DOCKERD_PIDFILE"
	[[ -S $SOCK ]] && rm -f "$SOCK"
	return 0
}

# A second private engine (another DOCKGATE_STATE_DIR) that may share a system containerd
# with the first gets a namespace of its own (scripts/test.sh: dockgate-b).
CONTAINERD_NS=${DOCKGATE_CONTAINERD_NAMESPACE:-dockgate}

# launch_dockerd [extra args...] — start dockerd detached; prints its pid.
launch_dockerd() {
	[[ -f $DAEMON_JSON ]] || printf '{}\n' >"$DAEMON_JSON"
	# Keep the caller's client-side settings away from dockerd: it reads
	# DOCKER_TLS_VERIFY/DOCKER_CERT_PATH as defaults for its own TLS flags.
	# DOCKER_SERVICE_PREFER_OFFLINE_IMAGE: a swarm task of an image named by reference would first
	# try to pull it from its registry (off loopback); with it, a node runs what it has.
	env -u DOCKER_HOST -u DOCKER_TLS_VERIFY -u DOCKER_CERT_PATH -u DOCKER_CONTEXT \
		DOCKER_SERVICE_PREFER_OFFLINE_IMAGE=1 \
		nohup setsid dockerd \
		--config-file "$DAEMON_JSON" \
		--data-root "$DATA_ROOT" \
		--exec-root "$EXEC_ROOT" \
		--pidfile "$DOCKERD_PIDFILE" \
		-H "unix://$SOCK" \
		-H "tcp://127.0.0.1:$TLS_PORT" \
		--tlsverify \
		--tlscacert "$TLS_DIR/ca.pem" \
		--tlscert "$TLS_DIR/server-cert.pem" \
		--tlskey "$TLS_DIR/server-key.pem" \
		--containerd-namespace "$CONTAINERD_NS" \
		--containerd-plugins-namespace "$CONTAINERD_NS-plugins" \
		--bridge=none --iptables=false --ip-forward=false --ip-masq=false \
		"$@" \
		</dev/null >>"$DOCKERD_LOG" 2>&1 9>&- &
	printf '%s' "$!"
}

# wait_dockerd PID LOG_OFFSET — 0 when the socket answers; 1 on timeout;
# 3 when dockerd died with a storage-driver error; 4 when it died otherwise.
wait_dockerd() {
	local pid=$1 offset=$2 deadline
	deadline=$((SECONDS + PING_TIMEOUT))
	while ((SECONDS < deadline)); do
		if ping_host "$PRIVATE_HOST"; then return 0; fi
		if ! kill -0 "$pid" 2>/dev/null; then
			if tail -c +"$((offset + 1))" "$DOCKERD_LOG" | grep -qiE 'graphdriver|storage.driver|overlay'; then
				return 3
			fi
			return 4
		fi
		sleep 0.2
	done
	return 1
}

start_private() {
	require_root_linux
	ensure_packages
	ensure_tls
	mkdir -p "$DATA_ROOT" "$EXEC_ROOT"
	printf '%s\n' "$EXEC_ROOT" >"$STATE/exec-root.path"
	# Clean up whatever a crashed previous run left behind (ours only).
	stop_private
	choose_ports

	local driver_args=() pid offset rc
	if [[ -f $DRIVER_FILE ]]; then driver_args=(--storage-driver="$(cat "$DRIVER_FILE")"); fi
	while :; do
		offset=$(stat -c %s "$DOCKERD_LOG" 2>/dev/null || echo 0)
		printf '\n==== engine.sh: starting dockerd at %s %s ====\n' "$(date -Is)" "${driver_args[*]:-}" >>"$DOCKERD_LOG"
		offset=$(stat -c %s "$DOCKERD_LOG")
		log "starting private dockerd (socket $SOCK, tls 127.0.0.1:$TLS_PORT${driver_args[*]:+, ${driver_args[*]}})"
		pid=$(launch_dockerd "${driver_args[@]}")
		rc=0
		wait_dockerd "$pid" "$offset" || rc=$?
		if ((rc == 3)) && [[ ${driver_args[*]:-} != *vfs* ]]; then
			log "dockerd failed to initialise its storage driver; retrying with --storage-driver=vfs"
			echo vfs >"$DRIVER_FILE"
			driver_args=(--storage-driver=vfs)
			rm -f "$DOCKERD_PIDFILE"
			continue
		fi
		break
	done
	if ((rc != 0)); then
		if ((rc == 1)); then
			log "dockerd did not answer on $SOCK within ${PING_TIMEOUT}s; last 30 lines of $DOCKERD_LOG:"
		else
			log "dockerd exited during startup; last 30 lines of $DOCKERD_LOG:"
		fi
		tail -n 30 "$DOCKERD_LOG" >&2 || true
		stop_private >/dev/null 2>&1 || true
		exit 1
	fi
	log "dockerd is up (pid $(dockerd_pid || echo "$pid"))"
}

# ---------------------------------------------------------------------------
# Fixture image
# ---------------------------------------------------------------------------
docker_cli() {
	local host=$1
	shift
	command -v docker >/dev/null 2>&1 || fail 1 "docker CLI not found (install docker.io)"
	if [[ $host == "$PRIVATE_HOST" ]]; then
		env -u DOCKER_TLS_VERIFY -u DOCKER_CERT_PATH -u DOCKER_CONTEXT docker -H "$host" "$@"
	else
		docker -H "$host" "$@"
	fi
}

ensure_fixture() {
	local host=$1
	if api_ok "$host" "/images/$FIXTURE_IMAGE/json" && api_ok "$host" "/images/$FIXTURE_IMAGE_NESTED/json"; then
		return 0
	fi
	if ! api_ok "$host" "/images/$FIXTURE_IMAGE/json"; then
		if [[ ! -x /bin/busybox ]]; then
			can_start_private || fail 1 "/bin/busybox is missing; install busybox-static (apt-get install busybox-static) to build $FIXTURE_IMAGE"
			apt_install busybox-static
		fi
		log "building $FIXTURE_IMAGE from /bin/busybox"
		local tmp
		tmp=$(mktemp -d)
		# shellcheck disable=SC2064
		trap "rm -rf '$tmp'" EXIT
		mkdir -p "$tmp/rootfs/bin" "$tmp/rootfs/etc" "$tmp/rootfs/proc" "$tmp/rootfs/sys" "$tmp/rootfs/dev" "$tmp/rootfs/tmp"
		chmod 1777 "$tmp/rootfs/tmp"
		cp /bin/busybox "$tmp/rootfs/bin/busybox"
		chmod 0755 "$tmp/rootfs/bin/busybox"
		local applet
		while read -r applet; do
			[[ -n $applet && $applet != busybox && $applet != */* ]] || continue
			ln -sf busybox "$tmp/rootfs/bin/$applet"
		done < <("$tmp/rootfs/bin/busybox" --list)
		for applet in sh echo printf sleep cat head tr seq yes true false ls env kill dd wc; do
			[[ -L $tmp/rootfs/bin/$applet ]] || fail 1 "busybox lacks the '$applet' applet"
		done
		tar --numeric-owner --owner=0 --group=0 -C "$tmp/rootfs" -cf "$tmp/rootfs.tar" .
		docker_cli "$host" import --change 'CMD ["sh"]' "$tmp/rootfs.tar" "$FIXTURE_IMAGE" >/dev/null
		rm -rf "$tmp"
		trap - EXIT
	fi
	docker_cli "$host" tag "$FIXTURE_IMAGE" "$FIXTURE_IMAGE_NESTED"
	log "fixture images ready: $FIXTURE_IMAGE, $FIXTURE_IMAGE_NESTED"
}


# ---------------------------------------------------------------------------
# Swarm: the engine as a manager, a second private dockerd as its worker
# ---------------------------------------------------------------------------
MANAGER_ADDR=${DOCKGATE_SWARM_MANAGER_ADDR:-127.0.0.1}
WORKER_ADDR=${DOCKGATE_SWARM_WORKER_ADDR:-127.0.0.2}
SWARM_PORT=${DOCKGATE_SWARM_PORT:-2377}
WORKER=$STATE/worker
WORKER_DATA=$WORKER/data
WORKER_PIDFILE=$WORKER/dockerd.pid
WORKER_LOG=$WORKER/dockerd.log
if [[ $EXEC_ROOT == /run/* ]]; then
	WORKER_EXEC=${EXEC_ROOT%/exec}/worker-exec
	WORKER_SOCK=${EXEC_ROOT%/exec}/worker.sock
else
	WORKER_EXEC=$WORKER/exec
	WORKER_SOCK=$WORKER/engine.sock
fi
WORKER_HOST=unix://$WORKER_SOCK

worker_pid() {
	local pid
	pid=$(read_pid "$WORKER_PIDFILE")
	pid_alive "$pid" "$WORKER_DATA" && printf '%s' "$pid"
}

# engine_api SOCK METHOD PATH [JSON] — one Engine API call; the body on stdout, fails on non-2xx.
engine_api() {
	local sock=$1 method=$2 path=$3 body=${4:-}
	if [[ -n $body ]]; then
		curl -sf --max-time 30 --unix-socket "$sock" -X "$method" -H 'content-type: application/json' \
			-d "$body" "http://docker/v1.41$path"
	else
		curl -sf --max-time 30 --unix-socket "$sock" -X "$method" "http://docker/v1.41$path"
	fi
}

# swarm_state SOCK — the node's LocalNodeState (inactive, pending, active, error, locked).
swarm_state() {
	engine_api "$1" GET /info 2>/dev/null | sed -n 's/.*"LocalNodeState":"\([a-z]*\)".*/\1/p'
}

is_manager() {
	engine_api "$SOCK" GET /info 2>/dev/null | grep -q '"ControlAvailable":true'
}

swarm_up() {
	[[ $(swarm_state "$SOCK") == active ]] && is_manager && [[ -n $(worker_pid) ]] &&
		[[ $(swarm_state "$WORKER_SOCK") == active ]]
}

print_swarm_env() {
	emit DOCKGATE_TEST_SWARM 1
	emit DOCKGATE_TEST_WORKER_HOST "$WORKER_HOST"
}

start_worker() {
	if [[ -n $(worker_pid) ]] && ping_host "$WORKER_HOST"; then return 0; fi
	stop_worker
	mkdir -p "$WORKER_DATA" "$WORKER_EXEC"
	[[ -f $WORKER/daemon.json ]] || printf '{}\n' >"$WORKER/daemon.json"
	local driver_args=() pid i
	if [[ -f $DRIVER_FILE ]]; then driver_args=(--storage-driver="$(cat "$DRIVER_FILE")"); fi
	log "starting the swarm worker's dockerd (socket $WORKER_SOCK)"
	printf '\n==== engine.sh: starting worker dockerd at %s ====\n' "$(date -Is)" >>"$WORKER_LOG"
	env -u DOCKER_HOST -u DOCKER_TLS_VERIFY -u DOCKER_CERT_PATH -u DOCKER_CONTEXT \
		DOCKER_SERVICE_PREFER_OFFLINE_IMAGE=1 \
		nohup setsid dockerd \
		--config-file "$WORKER/daemon.json" \
		--data-root "$WORKER_DATA" \
		--exec-root "$WORKER_EXEC" \
		--pidfile "$WORKER_PIDFILE" \
		-H "unix://$WORKER_SOCK" \
		--containerd-namespace dockgate-worker \
		--containerd-plugins-namespace dockgate-worker-plugins \
		--bridge=none --iptables=false --ip-forward=false --ip-masq=false \
		"${driver_args[@]}" \
		</dev/null >>"$WORKER_LOG" 2>&1 9>&- &
	pid=$!
	for ((i = 0; i < PING_TIMEOUT * 5; i++)); do
		ping_host "$WORKER_HOST" && return 0
		running "$pid" || break
		sleep 0.2
	done
	tail -n 20 "$WORKER_LOG" >&2 || true
	fail 1 "the worker dockerd did not start (see $WORKER_LOG)"
}

stop_worker() {
	local pid
	pid=$(read_pid "$WORKER_PIDFILE")
	if [[ -n $pid ]]; then stop_pid "$pid" "$WORKER_DATA" "swarm worker dockerd" "$STOP_TIMEOUT"; fi
	local cpid
	cpid=$(read_pid "$WORKER_EXEC/containerd/containerd.pid")
	if [[ -n $cpid ]] && pid_alive "$cpid" "$WORKER_EXEC"; then
		stop_pid "$cpid" "$WORKER_EXEC" "worker's managed containerd" "$STOP_TIMEOUT"
	fi
	if [[ -r /proc/self/mountinfo && $(id -u) == 0 ]]; then
		local mp
		while read -r mp; do
			umount "$mp" 2>/dev/null || umount -l "$mp" 2>/dev/null || log "could not unmount $mp"
		done < <(awk -v d="$WORKER_DATA" -v e="$WORKER_EXEC" \
			'$5 == d || index($5, d "/") == 1 || index($5, e "/") == 1 { print length($5) "\t" $5 }' \
			/proc/self/mountinfo | sort -rn | cut -f2-)
	fi
	rm -f "$WORKER_PIDFILE"
	[[ -S $WORKER_SOCK ]] && rm -f "$WORKER_SOCK"
	return 0
}

# The fixture images on the worker too: services run them there from its own store (an API
# create does not resolve the image to a registry digest, so a local-only image works).
load_fixture_on_worker() {
	if api_ok "$WORKER_HOST" "/images/$FIXTURE_IMAGE/json" && api_ok "$WORKER_HOST" "/images/$FIXTURE_IMAGE_NESTED/json"; then
		return 0
	fi
	log "loading the fixture images into the worker"
	docker_cli "$PRIVATE_HOST" save "$FIXTURE_IMAGE" "$FIXTURE_IMAGE_NESTED" |
		env -u DOCKER_TLS_VERIFY -u DOCKER_CERT_PATH -u DOCKER_CONTEXT docker -H "$WORKER_HOST" load >/dev/null
}

start_swarm() {
	local state
	state=$(swarm_state "$SOCK")
	if [[ $state != active ]]; then
		log "making the engine a swarm manager on $MANAGER_ADDR:$SWARM_PORT"
		local tries=0
		# A swarm engine stopped just before (the previous run's, on this machine) can hold the
		# port for a few seconds more while it shuts down (seen: "bind: address already in use").
		until engine_api "$SOCK" POST /swarm/init \
			"{\"ListenAddr\":\"$MANAGER_ADDR:$SWARM_PORT\",\"AdvertiseAddr\":\"$MANAGER_ADDR:$SWARM_PORT\",\"DataPathAddr\":\"$MANAGER_ADDR\"}" >/dev/null; do
			tries=$((tries + 1))
			((tries < 15)) ||
				fail 1 "swarm init failed (is $MANAGER_ADDR:$SWARM_PORT taken? DOCKGATE_SWARM_MANAGER_ADDR/DOCKGATE_SWARM_PORT move it)"
			sleep 1
		done
	fi
	is_manager || fail 1 "the engine is in a swarm but not a manager; run 'scripts/engine.sh down --swarm' first"
	if ! tr '\0' '\n' <"/proc/$(dockerd_pid)/environ" 2>/dev/null | grep -qx 'DOCKER_SERVICE_PREFER_OFFLINE_IMAGE=1'; then
		log "warning: the engine was started by an older engine.sh: a task of a service that names its image by reference will try to pull it first (dockgate's services name it by id); 'down' and 'up --swarm' to restart it"
	fi
	# No routing mesh: see "Swarm" at the top.
	if engine_api "$SOCK" GET /networks/ingress >/dev/null 2>&1; then
		engine_api "$SOCK" DELETE /networks/ingress >/dev/null || log "could not remove the ingress network"
	fi
	start_worker
	load_fixture_on_worker
	if [[ $(swarm_state "$WORKER_SOCK") != active ]]; then
		local token
		token=$(engine_api "$SOCK" GET /swarm | sed -n 's/.*"Worker":"\([^"]*\)".*/\1/p')
		[[ -n $token ]] || fail 1 "could not read the swarm's worker join token"
		log "joining the worker to the swarm from $WORKER_ADDR"
		engine_api "$WORKER_SOCK" POST /swarm/join \
			"{\"ListenAddr\":\"$WORKER_ADDR:$SWARM_PORT\",\"AdvertiseAddr\":\"$WORKER_ADDR:$SWARM_PORT\",\"DataPathAddr\":\"$WORKER_ADDR\",\"RemoteAddrs\":[\"$MANAGER_ADDR:$SWARM_PORT\"],\"JoinToken\":\"$token\"}" >/dev/null ||
			fail 1 "the worker could not join the swarm (see $WORKER_LOG)"
	fi
	# Ready once the manager sees two ready nodes.
	local i
	for ((i = 0; i < 150; i++)); do
		[[ $(engine_api "$SOCK" GET /nodes | grep -o '"State":"ready"' | wc -l) -ge 2 ]] && break
		sleep 0.2
	done
	((i < 150)) || fail 1 "the worker did not become ready in the swarm"
	for net in docker_gwbridge; do
		curl -sf --max-time 10 --unix-socket "$SOCK" -X DELETE "http://docker/v1.41/networks/$net" >/dev/null 2>&1 || true
		curl -sf --max-time 10 --unix-socket "$WORKER_SOCK" -X DELETE "http://docker/v1.41/networks/$net" >/dev/null 2>&1 || true
	done
	log "swarm ready: manager $MANAGER_ADDR, worker $WORKER_ADDR"
}

stop_swarm() {
	if [[ -n $(worker_pid) ]] && ping_host "$WORKER_HOST"; then
		if [[ $(swarm_state "$WORKER_SOCK") != inactive ]]; then
			log "the worker leaves the swarm"
			engine_api "$WORKER_SOCK" POST '/swarm/leave?force=1' >/dev/null || log "the worker could not leave the swarm"
		fi
	fi
	stop_worker
	if [[ -n $(dockerd_pid) ]] && ping_host "$PRIVATE_HOST" && [[ $(swarm_state "$SOCK") != inactive ]]; then
		log "the engine leaves the swarm"
		engine_api "$SOCK" POST '/swarm/leave?force=1' >/dev/null || log "the engine could not leave the swarm"
		curl -sf --max-time 10 --unix-socket "$SOCK" -X DELETE "http://docker/v1.41/networks/docker_gwbridge" >/dev/null 2>&1 || true
	fi
	return 0
}

# ---------------------------------------------------------------------------
# Subcommands
# ---------------------------------------------------------------------------
take_lock() {
	mkdir -p "$STATE"
	exec 9>"$LOCK_FILE"
	if command -v flock >/dev/null 2>&1; then flock 9; fi
}

cmd_up() {
	local swarm=${1:-}
	take_lock
	local ext
	if private_up; then
		load_ports
		dockerd_layout_ok "$(dockerd_pid)" ||
			fail 1 "the running private engine was started by an older scripts/engine.sh (plain TCP on dockerd, TLS via socat); run 'scripts/engine.sh down' and then 'up'"
		start_tcp_forward
		ensure_fixture "$PRIVATE_HOST"
		if [[ $swarm == --swarm ]]; then start_swarm; fi
		print_private_env
		return 0
	fi
	if ext=$(external_host); then
		[[ $swarm != --swarm ]] || fail 2 "--swarm needs the project's private engine (DOCKGATE_PRIVATE_ENGINE=1): it will not turn $ext into a swarm manager"
		log "using the existing engine at $ext"
		ensure_fixture "$ext"
		print_external_env "$ext"
		return 0
	fi
	if ! have_curl; then
		require_root_linux
		apt_install curl
	fi
	start_private
	start_tcp_forward
	ensure_fixture "$PRIVATE_HOST"
	if [[ $swarm == --swarm ]]; then start_swarm; fi
	print_private_env
}

cmd_env() {
	local ext
	if private_up; then
		print_private_env
	elif ext=$(external_host); then
		print_external_env "$ext"
	else
		log "no engine is up (run: scripts/engine.sh up)"
		return 1
	fi
}

cmd_status() {
	local ext pid
	if [[ ${1:-} == --swarm ]]; then
		if private_up && swarm_up; then
			echo "swarm: UP (manager $MANAGER_ADDR:$SWARM_PORT, worker $WORKER_ADDR, pid $(worker_pid), $WORKER_HOST)" >&2
			return 0
		fi
		echo "swarm: DOWN" >&2
		return 1
	fi
	if private_up; then
		load_ports
		pid=$(dockerd_pid)
		{
			echo "private engine: UP"
			echo "  dockerd pid:    $pid"
			echo "  DOCKER_HOST:    $PRIVATE_HOST"
			if pid=$(fwd_pid) && port_busy "$TCP_PORT"; then
				echo "  tcp (socat):    tcp://127.0.0.1:$TCP_PORT (pid $pid)"
			else
				echo "  tcp (socat):    DOWN (run 'scripts/engine.sh up' to restart it)"
			fi
			if dockerd_layout_ok "$(dockerd_pid)"; then
				echo "  tls (dockerd):  tcp://127.0.0.1:$TLS_PORT (--tlsverify)"
			else
				echo "  tls:            none (engine started by an older engine.sh; run 'down' and 'up')"
			fi
			echo "  client certs:   $CLIENT_CERT_DIR"
			echo "  data-root:      $DATA_ROOT"
			echo "  exec-root:      $EXEC_ROOT"
			echo "  storage driver: $(curl -sf --max-time 2 --unix-socket "$SOCK" http://docker/info |
				sed -n 's/.*"Driver":"\([^"]*\)".*/\1/p' | head -n1)"
			echo "  log:            $DOCKERD_LOG"
		} >&2
		return 0
	fi
	if ext=$(external_host); then
		echo "external engine: UP at $ext (not managed by engine.sh)" >&2
		return 0
	fi
	{
		echo "engine: DOWN"
		pid=$(read_pid "$DOCKERD_PIDFILE")
		if [[ -n $pid ]] && pid_alive "$pid" "$DATA_ROOT"; then
			echo "  dockerd pid $pid is alive but $SOCK does not answer /_ping (see $DOCKERD_LOG)"
		fi
	} >&2
	return 1
}

cmd_down() {
	take_lock
	stop_swarm
	if [[ ${1:-} == --swarm ]]; then
		log "swarm undone (the engine keeps running)"
		return 0
	fi
	stop_private
	log "private engine stopped (data kept in $DATA_ROOT)"
}

case ${1:-} in
up) cmd_up "${2:-}" ;;
down) cmd_down "${2:-}" ;;
env) cmd_env ;;
status) cmd_status "${2:-}" ;;
*)
	echo "usage: $0 up [--swarm]|down [--swarm]|env|status [--swarm]" >&2
	exit 64
	;;
esac
