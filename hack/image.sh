#!/usr/bin/env bash
# `make image`: build the operator's image from the Dockerfile and print its name and size.
#
# The base image (the Dockerfile's BASE_IMAGE) is, in order:
#   - $BASE_IMAGE when set;
#   - python:3.11-slim when it is present or can be pulled;
#   - otherwise litellm-operator-base:bookworm, made here from Debian packages only:
#     `debootstrap --variant=minbase bookworm` plus python3 and python3-venv, with this machine's
#     certificate store (so that pip inside the build trusts what this machine trusts), imported
#     with `docker import`. Built once; the root filesystem is cached as a tarball in
#     ~/.cache/litellm-operator/image and re-imported from there when the daemon lost it.
# A Docker daemon is started for the build when none answers (hack/dockerd.sh) and stopped
# afterwards. The legacy builder is used (DOCKER_BUILDKIT=0: Debian's docker has no buildx), on
# the host's network.
#
# Knobs (environment):
#   IMAGE                   the tag to build (default: litellm-operator:dev)
#   BASE_IMAGE              the base image, skipping the choice above
#   DEBIAN_MIRROR           for debootstrap (default: the first deb.debian.org-style URI in apt's
#                           sources, else http://deb.debian.org/debian)
#   LITELLM_OPERATOR_CACHE  cache root (default: ${XDG_CACHE_HOME:-~/.cache}/litellm-operator)
# Progress goes to stderr; stdout gets "<image> <size in MB>".
set -euo pipefail

REPO=$(cd "$(dirname "$0")/.." && pwd)
IMAGE=${IMAGE:-litellm-operator:dev}
DEFAULT_BASE=python:3.11-slim
DEBIAN_BASE=litellm-operator-base:bookworm
CACHE_ROOT=${LITELLM_OPERATOR_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/litellm-operator}
IMAGE_ROOT=$CACHE_ROOT/image
ROOTFS_TAR=$IMAGE_ROOT/bookworm-python3.tar

log() { printf 'image: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

has_image() { docker image inspect "$1" >/dev/null 2>&1; }

# The Debian mirror apt already uses (debootstrap needs the archive root, not a suite).
debian_mirror() {
	if [[ -n ${DEBIAN_MIRROR:-} ]]; then
		echo "$DEBIAN_MIRROR"
		return
	fi
	local uri
	uri=$(grep -rhoE '(URIs:|^deb) +https?://[^ ]+/debian/?( |$)' /etc/apt/sources.list /etc/apt/sources.list.d/ 2>/dev/null |
		grep -oE 'https?://[^ ]+' | head -n 1 || true)
	echo "${uri:-http://deb.debian.org/debian}"
}

# Build the root filesystem tarball of the Debian base into $ROOTFS_TAR.
build_rootfs() {
	command -v debootstrap >/dev/null || die "no debootstrap: apt-get install debootstrap (as root)"
	local work rootfs start
	start=$(date +%s)
	work=$(mktemp -d "$IMAGE_ROOT/.rootfs.XXXXXX")
	rootfs=$work/rootfs
	log "debootstrap --variant=minbase bookworm + python3 from $(debian_mirror) (once; a few minutes)"
	if ! debootstrap --variant=minbase --include=python3,python3-venv bookworm "$rootfs" \
		"$(debian_mirror)" >"$work/debootstrap.log" 2>&1; then
		tail -n 20 "$work/debootstrap.log" >&2
		rm -rf "$work"
		die "debootstrap failed"
	fi
	# This machine's certificate store: pip in the build (and the operator) trust what it trusts.
	mkdir -p "$rootfs/etc/ssl/certs"
	cp -L /etc/ssl/certs/ca-certificates.crt "$rootfs/etc/ssl/certs/ca-certificates.crt"
	# What a container never uses: documentation, manuals, translations, apt's lists and caches.
	rm -rf "$rootfs"/usr/share/{doc,man,info,locale,lintian} "$rootfs"/var/lib/apt/lists/* \
		"$rootfs"/var/cache/apt/* "$rootfs"/var/cache/debconf/*-old "$rootfs"/var/log/*
	tar --numeric-owner -C "$rootfs" -cf "$work/rootfs.tar" .
	mv "$work/rootfs.tar" "$ROOTFS_TAR"
	rm -rf "$work"
	log "base root filesystem built in $(($(date +%s) - start))s"
}

# Import the Debian base into the daemon (building its root filesystem first if needed).
debian_base() {
	has_image "$DEBIAN_BASE" && return 0
	mkdir -p "$IMAGE_ROOT"
	exec 9>"$IMAGE_ROOT/.lock"
	flock 9
	has_image "$DEBIAN_BASE" && return 0
	[[ -f $ROOTFS_TAR ]] || build_rootfs
	log "importing $DEBIAN_BASE"
	docker import \
		--change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
		--change 'ENV SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt' \
		--change 'ENV PIP_CERT=/etc/ssl/certs/ca-certificates.crt' \
		--change 'CMD ["python3"]' \
		"$ROOTFS_TAR" "$DEBIAN_BASE" >/dev/null
}

choose_base() {
	if [[ -n ${BASE_IMAGE:-} ]]; then
		echo "$BASE_IMAGE"
	elif has_image "$DEFAULT_BASE" || timeout 120 docker pull -q "$DEFAULT_BASE" >/dev/null 2>&1; then
		echo "$DEFAULT_BASE"
	else
		log "$DEFAULT_BASE cannot be pulled here: using a base made from Debian packages"
		debian_base
		echo "$DEBIAN_BASE"
	fi
}

main() {
	local daemon base start size
	daemon=$("$REPO/hack/dockerd.sh" start)
	[[ $daemon == started ]] && trap '"$REPO/hack/dockerd.sh" stop' EXIT
	mkdir -p "$IMAGE_ROOT"
	base=$(choose_base)
	start=$(date +%s)
	log "building $IMAGE on $base"
	DOCKER_BUILDKIT=0 docker build --network host --build-arg "BASE_IMAGE=$base" -t "$IMAGE" \
		"$REPO" >"$IMAGE_ROOT/build.log" 2>&1 || {
		tail -n 30 "$IMAGE_ROOT/build.log" >&2
		die "docker build failed (log: $IMAGE_ROOT/build.log)"
	}
	size=$(docker image inspect -f '{{.Size}}' "$IMAGE")
	log "built $IMAGE in $(($(date +%s) - start))s: $((size / 1000000)) MB"
	echo "$IMAGE $((size / 1000000))"
}

main "$@"
