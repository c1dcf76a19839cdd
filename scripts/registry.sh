#!/usr/bin/env bash
# scripts/registry.sh — two private image registries on loopback for dockgate's image tests (and
# the benchmark): one open, one behind htpasswd basic auth, both with the fixture image pushed.
#
# Usage: scripts/registry.sh up|down|env|status
#
#   up      Start them unless they run, push the fixture image (DOCKGATE_FIXTURE_IMAGE) to both
#           with the docker CLI against the project's engine, then print their environment on
#           stdout (eval-able KEY=value lines, nothing else); progress on stderr.
#   env     Print the same lines without starting anything (exit 1 if they are not up).
#   status  Exit 0 if both answer /v2/, 1 otherwise.
#   down    Stop only the registries `up` started (by the PIDs in their pidfiles).
#
# The lines `up` and `env` print:
#   DOCKGATE_TEST_REGISTRY=127.0.0.1:<port>           the open one
#   DOCKGATE_TEST_REGISTRY_AUTH=127.0.0.1:<port>      the one with basic auth
#   DOCKGATE_TEST_REGISTRY_USER=dockgate
#   DOCKGATE_TEST_REGISTRY_PASSWORD=<random, made once per state dir>
#   DOCKGATE_TEST_REGISTRY_IMAGE=dockgate/fixture:busybox  (the fixture's name in both)
#
# Debian's docker-registry (distribution 2.8) is installed with apt when it is missing (root
# only). Everything lives under ${DOCKGATE_STATE_DIR:-<repo>/.state}/registry: one directory per
# instance (config.yml, registry.pid, registry.log, storage/), ports.env, htpasswd, password.
# `up` starts them with empty storage (then pushes the fixture): tests and the bench push images of
# their own and delete their tags afterwards, but a registry frees blobs only by garbage collection.
# The engine pulls from 127.0.0.1 over plain HTTP: dockerd treats loopback registries as
# insecure by default, so no TLS is needed. Only 127.0.0.1 is bound.
# The push needs the engine up (scripts/engine.sh up; DOCKER_HOST from its env or the same state
# directory).
set -euo pipefail

REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)
SCRIPT_NAME=registry.sh
source "$REPO_ROOT/scripts/lib.sh"
STATE_ROOT=${DOCKGATE_STATE_DIR:-$REPO_ROOT/.state}
STATE_DIR=$STATE_ROOT/registry
PORT_BASE=25000
USER_NAME=dockgate
REPOSITORY=dockgate/fixture:busybox
INSTANCES=(open auth)

pid_of() { read_pid "$STATE_DIR/$1/registry.pid"; }
# An instance runs as `docker-registry serve <its config.yml>`.
pattern_of() { printf '%s' "$STATE_DIR/$1/config.yml"; }
port_of() { sed -n "s/^$1=//p" "$STATE_DIR/ports.env" 2>/dev/null || true; }
password() { cat "$STATE_DIR/password" 2>/dev/null || true; }

# /v2/ answers 200 on the open one and 401 on the other: either means it serves.
answers() {
	local name=$1 port code
	port=$(port_of "$name")
	[[ -n $port ]] && pid_alive "$(pid_of "$name")" "$(pattern_of "$name")" || return 1
	code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "http://127.0.0.1:$port/v2/" || true)
	[[ $code == 200 || $code == 401 ]]
}

all_answer() {
	local name
	for name in "${INSTANCES[@]}"; do answers "$name" || return 1; done
}

emit() {
	printf 'DOCKGATE_TEST_REGISTRY=127.0.0.1:%s\n' "$(port_of open)"
	printf 'DOCKGATE_TEST_REGISTRY_AUTH=127.0.0.1:%s\n' "$(port_of auth)"
	printf 'DOCKGATE_TEST_REGISTRY_USER=%s\n' "$USER_NAME"
	printf 'DOCKGATE_TEST_REGISTRY_PASSWORD=%s\n' "$(password)"
	printf 'DOCKGATE_TEST_REGISTRY_IMAGE=%s\n' "$REPOSITORY"
}

ensure_installed() { command -v docker-registry >/dev/null 2>&1 || apt_install docker-registry; }

# Two ports kept in ports.env, so a restart serves where the pushed names say.
choose_ports() {
	local open auth p
	open=$(port_of open)
	auth=$(port_of auth)
	if [[ -n $open && -n $auth ]] && ! port_busy "$open" && ! port_busy "$auth"; then return; fi
	open='' auth=''
	for ((p = PORT_BASE; p < PORT_BASE + 100; p++)); do
		port_busy "$p" && continue
		if [[ -z $open ]]; then open=$p; else
			auth=$p
			break
		fi
	done
	[[ -n $auth ]] || die "no two free loopback ports in $PORT_BASE..$((PORT_BASE + 99))"
	printf 'open=%s\nauth=%s\n' "$open" "$auth" >"$STATE_DIR/ports.env"
}

# A bcrypt entry without Python: htpasswd (apache2-utils) when present, else Perl's crypt(),
# which is glibc/libxcrypt's and does bcrypt ($2b$, which distribution's Go bcrypt accepts).
make_htpasswd() {
	[[ -s $STATE_DIR/password ]] || head -c 18 /dev/urandom | base64 | tr '+/' 'AB' >"$STATE_DIR/password"
	local secret hash
	secret=$(password)
	if command -v htpasswd >/dev/null 2>&1; then
		htpasswd -Bbn "$USER_NAME" "$secret" | head -n 1 >"$STATE_DIR/htpasswd"
		return
	fi
	hash=$(SECRET=$secret perl -e '
		my @alphabet = ("." , "/", "A" .. "Z", "a" .. "z", "0" .. "9");
		my $salt = join "", map { $alphabet[int rand 64] } 1 .. 21;
		$salt .= (".", "O", "e", "u")[int rand 4];    # the last character holds 2 bits only
		print crypt($ENV{SECRET}, "\$2b\$10\$" . $salt);')
	[[ $hash == '$2b$10$'* && ${#hash} == 60 ]] || die "this system's crypt() does not do bcrypt; install apache2-utils (htpasswd)"
	printf '%s:%s\n' "$USER_NAME" "$hash" >"$STATE_DIR/htpasswd"
}

write_config() {
	local name=$1 dir=$STATE_DIR/$1
	mkdir -p "$dir/storage"
	{
		printf 'version: 0.1\nlog:\n  level: warn\n  accesslog:\n    disabled: true\n'
		printf 'storage:\n  filesystem:\n    rootdirectory: %s\n  delete:\n    enabled: true\n' "$dir/storage"
		printf 'http:\n  addr: 127.0.0.1:%s\n  secret: %s\n' "$(port_of "$name")" "$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')"
		if [[ $name == auth ]]; then
			printf 'auth:\n  htpasswd:\n    realm: dockgate-test\n    path: %s\n' "$STATE_DIR/htpasswd"
		fi
	} >"$dir/config.yml"
}

start_one() {
	local name=$1 dir=$STATE_DIR/$1
	answers "$name" && return
	write_config "$name"
	nohup docker-registry serve "$dir/config.yml" >>"$dir/registry.log" 2>&1 </dev/null &
	echo $! >"$dir/registry.pid"
	for _ in $(seq 1 100); do
		answers "$name" && return
		sleep 0.05
	done
	die "the $name registry did not answer on 127.0.0.1:$(port_of "$name"); see $dir/registry.log"
}

docker_host() {
	[[ -n ${DOCKER_HOST:-} ]] && {
		echo "$DOCKER_HOST"
		return
	}
	DOCKGATE_STATE_DIR=$STATE_ROOT DOCKGATE_PRIVATE_ENGINE=1 bash "$REPO_ROOT/scripts/engine.sh" env |
		sed -n 's/^DOCKER_HOST=//p'
}

# The fixture, pushed to both with the docker CLI (a login for the second, in a config directory
# of this state dir so the user's ~/.docker is left alone).
push_fixture() {
	local host image target name
	host=$(docker_host)
	[[ -n $host ]] || die 'no engine to push with: run scripts/engine.sh up first'
	image=${DOCKGATE_FIXTURE_IMAGE:-dockgate-fixture:busybox}
	export DOCKER_CONFIG=$STATE_DIR/docker-config
	mkdir -p "$DOCKER_CONFIG"
	password | docker -H "$host" login --username "$USER_NAME" --password-stdin "127.0.0.1:$(port_of auth)" >&2
	for name in "${INSTANCES[@]}"; do
		target=127.0.0.1:$(port_of "$name")/$REPOSITORY
		docker -H "$host" tag "$image" "$target" >&2
		docker -H "$host" push --quiet "$target" >&2
		docker -H "$host" rmi "$target" >/dev/null
	done
	docker -H "$host" logout "127.0.0.1:$(port_of auth)" >/dev/null 2>&1 || true
}

stop_one() {
	stop_pid "$(pid_of "$1")" "$(pattern_of "$1")" "the $1 registry" 5
	rm -f "$STATE_DIR/$1/registry.pid"
}

case ${1:-} in
up)
	if ! all_answer; then
		ensure_installed
		mkdir -p "$STATE_DIR"
		for name in "${INSTANCES[@]}"; do
			stop_one "$name"
			# Afresh: what earlier runs pushed (tests and the bench delete their tags, not the blobs) goes.
			rm -rf "${STATE_DIR:?}/$name/storage"
		done
		choose_ports
		make_htpasswd
		for name in "${INSTANCES[@]}"; do start_one "$name"; done
		push_fixture
		log "registries answer on 127.0.0.1:$(port_of open) (open) and 127.0.0.1:$(port_of auth) (basic auth)"
	fi
	emit
	;;
env) all_answer && emit || exit 1 ;;
status) all_answer ;;
down) for name in "${INSTANCES[@]}"; do stop_one "$name"; done ;;
*) die 'usage: scripts/registry.sh up|down|env|status' ;;
esac
