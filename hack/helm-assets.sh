#!/usr/bin/env bash
# Print (on stdout, nothing else) the path of a helm binary for the chart tests.
#
# Like hack/envtest-assets.sh:
#   - HELM set: check it runs, and print it;
#   - otherwise build helm once from the Go module proxy (helm.sh/helm/v3/cmd/helm) into a cache
#     outside the repo, ~/.cache/litellm-operator/helm/<version>/helm, and reuse it afterwards.
# A warm run looks for the binary before touching go, so it costs milliseconds. Concurrent
# callers serialise on a flock, so helm is built only once. A helm on PATH is not used: the
# tests pin the version they were written against.
#
# Knobs (environment):
#   HELM_VERSIONS           helm versions to try, in order (default: v3.22.0 v3.21.4)
#   LITELLM_OPERATOR_CACHE  cache root (default: ${XDG_CACHE_HOME:-~/.cache}/litellm-operator)
# Progress messages go to stderr.
set -euo pipefail

HELM_VERSIONS=${HELM_VERSIONS:-v3.22.0 v3.21.4}
CACHE_ROOT=${LITELLM_OPERATOR_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/litellm-operator}
HELM_ROOT=$CACHE_ROOT/helm
GO_ROOT=$CACHE_ROOT/go

log() { printf 'helm-assets: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

# True when directory $1 holds the helm of a finished build of ours.
is_cached() { [[ -x $1/helm && -f $1/.complete ]]; }

# Print the first cached helm among the candidate versions; fail when none exists.
find_cached() {
	local version
	for version in $HELM_VERSIONS; do
		if is_cached "$HELM_ROOT/$version"; then
			printf '%s\n' "$HELM_ROOT/$version/helm"
			return 0
		fi
	done
	return 1
}

# Put a Go toolchain on PATH (the usual install location is not always on a login PATH).
ensure_go() {
	if ! command -v go >/dev/null 2>&1; then
		local dir
		for dir in /usr/local/go/bin /usr/lib/go/bin "$HOME/go/bin" "$HOME/sdk/go/bin"; do
			[[ -x $dir/go ]] && PATH=$dir:$PATH && break
		done
	fi
	command -v go >/dev/null 2>&1 || die "no Go toolchain found (PATH, /usr/local/go/bin); set HELM"
	export PATH
	export GOMODCACHE=$GO_ROOT/mod GOCACHE=$GO_ROOT/build GOFLAGS=-mod=mod CGO_ENABLED=0
	export GOPATH=$GO_ROOT/path GOWORK=off
	mkdir -p "$GOMODCACHE" "$GOCACHE" "$GOPATH"
}

# Build helm $1 (v3.X.Y) into directory $2, stamped with its version (`helm version`) and with
# the Kubernetes version of its client-go as the default .Capabilities.KubeVersion, as helm's
# own Makefile does.
build_helm() {
	local version=$1 out=$2 work kver major minor ldflags
	work=$(mktemp -d "$HELM_ROOT/.work.XXXXXX")
	printf 'module helmbuild.local\n\ngo 1.24\n\nrequire helm.sh/helm/v3 %s\n' "$version" >"$work/go.mod"
	log "building helm $version (a few minutes on a cold cache)"
	if ! (cd "$work" && go mod download helm.sh/helm/v3 >&2 && go get "helm.sh/helm/v3/cmd/helm@$version" >&2); then
		rm -rf "$work"
		return 1
	fi
	kver=$(cd "$work" && go list -m -f '{{.Version}}' k8s.io/client-go) # v0.X.Y
	kver=${kver#v0.}
	major=1
	minor=${kver%%.*}
	ldflags="-s -w -X helm.sh/helm/v3/internal/version.version=$version"
	ldflags+=" -X helm.sh/helm/v3/internal/version.gitTreeState=clean"
	local pkg
	for pkg in helm.sh/helm/v3/pkg/lint/rules helm.sh/helm/v3/pkg/chartutil; do
		ldflags+=" -X $pkg.k8sVersionMajor=$major -X $pkg.k8sVersionMinor=$minor"
	done
	(cd "$work" && go build -p 2 -trimpath -ldflags "$ldflags" -o "$out/helm" helm.sh/helm/v3/cmd/helm) >&2
	local rc=$?
	rm -rf "$work"
	return $rc
}

# Build helm $1 into the cache, atomically; print the binary's path.
build_version() {
	local version=$1 final=$HELM_ROOT/$1 staging
	staging=$(mktemp -d "$HELM_ROOT/.build-$version.XXXXXX")
	chmod 755 "$staging"
	if build_helm "$version" "$staging" && "$staging/helm" version --short >&2; then
		touch "$staging/.complete"
		rm -rf "$final"
		mv "$staging" "$final"
		printf '%s\n' "$final/helm"
		return 0
	fi
	rm -rf "$staging"
	return 1
}

build_first() {
	local version start
	start=$(date +%s)
	for version in $HELM_VERSIONS; do
		if build_version "$version"; then
			log "built helm $version in $(($(date +%s) - start))s (GOMODCACHE=$GOMODCACHE)"
			return 0
		fi
		log "helm $version failed to build; trying the next version"
	done
	die "no helm version among ($HELM_VERSIONS) could be built"
}

main() {
	if [[ -n ${HELM:-} ]]; then
		"$HELM" version --short >/dev/null 2>&1 || die "HELM=$HELM does not run"
		printf '%s\n' "$HELM"
		return 0
	fi
	find_cached && return 0
	mkdir -p "$HELM_ROOT"
	exec 9>"$HELM_ROOT/.lock"
	if ! flock -n 9; then
		log "another build is running; waiting for its lock"
		flock 9
	fi
	find_cached && return 0 # built by whoever held the lock
	ensure_go
	build_first
}

main "$@"
