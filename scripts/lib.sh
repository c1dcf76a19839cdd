# scripts/lib.sh — what the project's service scripts (engine, redis, registry, cluster) share:
# their messages, pidfiles and process checks, loopback ports, eval-able output and Debian
# installs. Sourced, never run: the script sets SCRIPT_NAME (how its messages begin) first.
# shellcheck shell=bash

log() { printf '%s: %s\n' "$SCRIPT_NAME" "$*" >&2; }

# fail CODE MESSAGE — say what went wrong and exit with CODE.
fail() {
	local code=$1
	shift
	printf '%s: error: %s\n' "$SCRIPT_NAME" "$*" >&2
	exit "$code"
}
die() { fail 2 "$@"; }

# ---------------------------------------------------------------------------
# Processes: only ever those a pidfile of ours names, and only while their command line still
# says they are ours (a pid is reused once its process is gone).
# ---------------------------------------------------------------------------

read_pid() {
	local pid=
	[[ -f $1 ]] && read -r pid <"$1" 2>/dev/null || true
	printf '%s' "$pid"
}

# pid_alive PID PATTERN — PID runs and its command line contains PATTERN. A zombie's command
# line is empty, so one that nobody has reaped yet does not count as running.
pid_alive() {
	local pid=${1:-} pattern=$2 cmdline
	[[ $pid =~ ^[0-9]+$ ]] || return 1
	cmdline=$(tr '\0' ' ' 2>/dev/null <"/proc/$pid/cmdline") || return 1
	[[ -n $cmdline && $cmdline == *"$pattern"* ]]
}

# running PID — a child we started in the background has not exited. Its command line is not
# checked: right after the fork it is still bash's. (A zombie, exited but not reaped, has not run.)
running() {
	local state
	state=$(sed -n 's/^State:[[:space:]]*\([A-Z]\).*/\1/p' 2>/dev/null <"/proc/$1/status") || return 1
	[[ -n $state && $state != Z && $state != X ]]
}

# stop_pid PID PATTERN LABEL [SECONDS] — SIGTERM, then SIGKILL when it still runs after SECONDS
# (default 10). When PID leads its own process group (setsid), the group is signalled too, so
# what it forked (socat's children, say) ends with it.
stop_pid() {
	local pid=$1 pattern=$2 label=$3 seconds=${4:-10} pgid i
	pid_alive "$pid" "$pattern" || return 0
	pgid=$(awk '{ sub(/^.*\) /, ""); print $3 }' "/proc/$pid/stat" 2>/dev/null || true)
	log "stopping $label (pid $pid)"
	kill -TERM "$pid" 2>/dev/null || true
	for ((i = 0; i < seconds * 10; i++)); do
		pid_alive "$pid" "$pattern" || break
		sleep 0.1
	done
	if pid_alive "$pid" "$pattern"; then
		log "$label did not exit within ${seconds}s; sending SIGKILL"
		if [[ $pgid == "$pid" ]]; then kill -KILL -- "-$pid" 2>/dev/null || true; fi
		kill -KILL "$pid" 2>/dev/null || true
		for ((i = 0; i < 50; i++)); do
			pid_alive "$pid" "$pattern" || break
			sleep 0.1
		done
	fi
	if [[ $pgid == "$pid" ]]; then kill -TERM -- "-$pid" 2>/dev/null || true; fi
	return 0
}

# ---------------------------------------------------------------------------
# Loopback ports
# ---------------------------------------------------------------------------

# port_busy PORT — something listens on 127.0.0.1:PORT (ss when present: it asks the kernel
# without connecting).
port_busy() {
	if command -v ss >/dev/null 2>&1; then
		[[ -n $(ss -Hltn "sport = :$1" 2>/dev/null) ]]
	else
		(exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
	fi
}

# A loopback port free right now (the kernel's choice).
free_port() {
	node -e "const s=require('node:net').createServer();s.listen(0,'127.0.0.1',()=>{console.log(s.address().port);s.close()})"
}

# ---------------------------------------------------------------------------
# Output and installation
# ---------------------------------------------------------------------------

# emit KEY VALUE — an eval-able assignment, quoted when needed.
emit() {
	local key=$1 value=$2
	if [[ $value =~ ^[A-Za-z0-9_./:@%+,=-]*$ ]]; then
		printf '%s=%s\n' "$key" "$value"
	else
		printf "%s='%s'\n" "$key" "${value//\'/\'\\\'\'}"
	fi
}

# apt_install PACKAGE... — Debian packages, as root; apt's index is refreshed once per script.
# File descriptor 9 (engine.sh's lock) is closed for apt, so a daemon a package's postinst starts
# does not hold the lock.
apt_updated=0
apt_install() {
	[[ $(id -u) == 0 ]] && command -v apt-get >/dev/null 2>&1 ||
		fail 2 "missing $* and only root with apt-get can install it here (apt-get install $*)"
	if ((apt_updated == 0)); then
		log 'apt-get update'
		apt-get update -qq >&2 9>&-
		apt_updated=1
	fi
	log "installing: $* (Debian)"
	DEBIAN_FRONTEND=noninteractive NEEDRESTART_SUSPEND=1 apt-get install -y -qq "$@" >&2 9>&-
}
