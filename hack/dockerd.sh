#!/usr/bin/env bash
# Start (or find) a Docker daemon for `make image` and the deploy tests; stop the one we started.
#
#   hack/dockerd.sh start   a daemon answers afterwards; prints "started" if this call started
#                           one (then `stop` stops it), "running" if one was already there
#   hack/dockerd.sh stop    stops the daemon a `start` started (by its recorded PID), if any
#
# The daemon we start is Debian's dockerd (apt-get install docker.io) with overlay2 and the
# cgroupfs driver, no bridge and no iptables rules: builds and containers use the host's
# network (`--network host`), so it creates no interface and no address.
# Knobs: LITELLM_OPERATOR_CACHE (cache root; the PID file and log live in <root>/dockerd).
set -euo pipefail

CACHE_ROOT=${LITELLM_OPERATOR_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/litellm-operator}
STATE=$CACHE_ROOT/dockerd
PIDFILE=$STATE/dockerd.pid

log() { printf 'dockerd: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

answers() { docker info >/dev/null 2>&1; }

start() {
	if answers; then
		echo running
		return 0
	fi
	command -v dockerd >/dev/null || die "no dockerd: apt-get install docker.io (as root)"
	mkdir -p "$STATE"
	rm -f "$PIDFILE"
	setsid dockerd --storage-driver=overlay2 --exec-opt native.cgroupdriver=cgroupfs \
		--bridge=none --iptables=false --ip6tables=false --pidfile "$PIDFILE" \
		</dev/null >"$STATE/dockerd.log" 2>&1 &
	local i
	for i in $(seq 1 150); do
		answers && { echo started; return 0; }
		sleep 0.2
	done
	tail -n 20 "$STATE/dockerd.log" >&2
	die "dockerd did not answer within 30 s"
}

stop() {
	[[ -f $PIDFILE ]] || return 0
	local pid i
	pid=$(cat "$PIDFILE")
	if [[ $(cat "/proc/$pid/comm" 2>/dev/null) == dockerd ]]; then
		kill -TERM "$pid"
		for i in $(seq 1 150); do
			[[ -d /proc/$pid ]] || break
			sleep 0.2
		done
		[[ -d /proc/$pid ]] && kill -KILL "$pid"
		# dockerd leaves its default network namespace mounted behind it.
		if mountpoint -q /run/docker/netns/default 2>/dev/null; then umount /run/docker/netns/default; fi
	fi
	rm -f "$PIDFILE"
}

case ${1:-} in
start) start ;;
stop) stop ;;
*) die "usage: $0 start|stop" ;;
esac
