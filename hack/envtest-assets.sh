#!/usr/bin/env bash
# Print (on stdout, nothing else) a directory holding the envtest binaries: kube-apiserver, etcd
# and kubectl (a link to the machine's own kubectl).
#
# Follows controller-runtime's envtest convention:
#   - KUBEBUILDER_ASSETS set: check it holds kube-apiserver and etcd, and print it;
#   - otherwise build both once from the Go module proxy into a cache outside the repo,
#     ~/.cache/litellm-operator/envtest/<kubernetes version>, and reuse that cache afterwards.
# A warm run looks for the binaries before touching go, so it costs milliseconds.
# Concurrent callers serialise on a flock, so the binaries are built only once.
#
# Knobs (environment):
#   ENVTEST_K8S_VERSIONS  Kubernetes versions to try, in order (default: v1.37.2 v1.36.3 v1.35.4)
#   ENVTEST_ETCD_VERSION  etcd server versions to try, in order (default: v3.7.3 v3.6.16)
#   LITELLM_OPERATOR_CACHE  cache root (default: ${XDG_CACHE_HOME:-~/.cache}/litellm-operator)
# Progress messages go to stderr. hack/node-assets.sh sources this file for its functions.
set -euo pipefail

K8S_VERSIONS=${ENVTEST_K8S_VERSIONS:-v1.37.2 v1.36.3 v1.35.4}
ETCD_VERSIONS=${ENVTEST_ETCD_VERSION:-v3.7.3 v3.6.16}
CACHE_ROOT=${LITELLM_OPERATOR_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/litellm-operator}
ENVTEST_ROOT=$CACHE_ROOT/envtest
GO_ROOT=$CACHE_ROOT/go

log() { printf 'envtest-assets: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

# True when directory $1 holds runnable kube-apiserver and etcd binaries.
has_binaries() { [[ -x $1/kube-apiserver && -x $1/etcd ]]; }

# True when directory $1 holds the binaries of a finished build of ours.
is_cached() { has_binaries "$1" && [[ -f $1/.complete ]]; }

# Link the machine's kubectl into the assets directory (envtest expects it there).
link_kubectl() {
	local dir=$1 kubectl
	[[ -e $dir/kubectl ]] && return 0
	if kubectl=$(command -v kubectl); then
		ln -sf "$kubectl" "$dir/kubectl" 2>/dev/null || true
	else
		log "warning: no kubectl on PATH; $dir has no kubectl"
	fi
}

# Print the first cached assets directory among the candidate versions; fail when none exists.
find_cached() {
	local version
	for version in $K8S_VERSIONS; do
		if is_cached "$ENVTEST_ROOT/$version"; then
			link_kubectl "$ENVTEST_ROOT/$version"
			printf '%s\n' "$ENVTEST_ROOT/$version"
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
	command -v go >/dev/null 2>&1 || die "no Go toolchain found (PATH, /usr/local/go/bin); set KUBEBUILDER_ASSETS"
	export PATH
	export GOMODCACHE=$GO_ROOT/mod GOCACHE=$GO_ROOT/build GOFLAGS=-mod=mod CGO_ENABLED=0
	export GOPATH=$GO_ROOT/path GOWORK=off
	mkdir -p "$GOMODCACHE" "$GOCACHE" "$GOPATH"
}

# Size of the module cache in KiB (for the download figure in the build log).
modcache_kib() { du -sk "$GOMODCACHE" 2>/dev/null | cut -f1; }

# Write go.mod for a throw-away module that builds kube-apiserver $1 (v1.X.Y) into $2.
write_kube_module() {
	local version=$1 work=$2 gomod staging
	gomod=$(go mod download -json "k8s.io/kubernetes@$version" | sed -n 's/^\t"GoMod": "\(.*\)",$/\1/p')
	[[ -f $gomod ]] || { log "could not download the go.mod of k8s.io/kubernetes@$version"; return 1; }
	staging=$(sed -n 's#^\t\(k8s.io/[a-z0-9-]*\) => \./staging/.*#\1#p' "$gomod")
	[[ -n $staging ]] || { log "no staging replaces found in $gomod"; return 1; }
	{
		printf 'module envtest.local/kube\n\ngo 1.24\n\nrequire k8s.io/kubernetes %s\n\nreplace (\n' "$version"
		local module
		for module in $staging; do
			printf '\t%s => %s %s\n' "$module" "$module" "v0.${version#v1.}"
		done
		printf ')\n'
	} >"$work/go.mod"
}

# The -ldflags that stamp Kubernetes binaries with version $1 (v1.X.Y), as its Makefile does.
kube_ldflags() {
	local version=$1 minor pkg ldflags
	minor=${version#v1.}
	minor=${minor%%.*}
	pkg=k8s.io/component-base/version
	ldflags="-s -w -X $pkg.gitVersion=$version -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor"
	ldflags+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=1970-01-01T00:00:00Z"
	pkg=k8s.io/client-go/pkg/version
	ldflags+=" -X $pkg.gitVersion=$version -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor"
	printf '%s\n' "$ldflags"
}

# Build kube-apiserver $1 into directory $2.
build_kube_apiserver() {
	local version=$1 out=$2 work
	work=$(mktemp -d "$ENVTEST_ROOT/.work-kube.XXXXXX")
	write_kube_module "$version" "$work" || { rm -rf "$work"; return 1; }
	log "building kube-apiserver $version (takes several minutes on a cold cache)"
	(cd "$work" && go build -p 2 -trimpath -ldflags "$(kube_ldflags "$version")" \
		-o "$out/kube-apiserver" k8s.io/kubernetes/cmd/kube-apiserver) >&2
	local rc=$?
	rm -rf "$work"
	return $rc
}

# Build the etcd server $1 (v3.X.Y) into directory $2.
build_etcd() {
	local version=$1 out=$2 work
	work=$(mktemp -d "$ENVTEST_ROOT/.work-etcd.XXXXXX")
	printf 'module envtest.local/etcd\n\ngo 1.24\n\nrequire go.etcd.io/etcd/server/v3 %s\n' \
		"$version" >"$work/go.mod"
	log "building etcd $version"
	(cd "$work" && go build -p 2 -trimpath -ldflags "-s -w" -o "$out/etcd" go.etcd.io/etcd/server/v3) >&2
	local rc=$?
	rm -rf "$work"
	return $rc
}

# Build the first etcd version that builds into $1.
build_any_etcd() {
	local version
	for version in $ETCD_VERSIONS; do
		build_etcd "$version" "$1" && { echo "$version" >"$1/ETCD_VERSION"; return 0; }
		log "etcd $version failed to build"
	done
	return 1
}

# Build kube-apiserver $1 and etcd into the cache, atomically; print the directory.
build_version() {
	local version=$1 final=$ENVTEST_ROOT/$1 staging
	staging=$(mktemp -d "$ENVTEST_ROOT/.build-$version.XXXXXX")
	chmod 755 "$staging"
	if build_kube_apiserver "$version" "$staging" && build_any_etcd "$staging"; then
		echo "$version" >"$staging/KUBERNETES_VERSION"
		touch "$staging/.complete"
		rm -rf "$final"
		mv "$staging" "$final"
		link_kubectl "$final"
		printf '%s\n' "$final"
		return 0
	fi
	rm -rf "$staging"
	return 1
}

# Build the first candidate version that builds; log time and download size.
build_first() {
	local version start kib_before
	start=$(date +%s)
	kib_before=$(modcache_kib)
	for version in $K8S_VERSIONS; do
		if build_version "$version"; then
			log "built $version in $(($(date +%s) - start))s; module downloads +$((($(modcache_kib) - kib_before) / 1024)) MiB (GOMODCACHE=$GOMODCACHE)"
			return 0
		fi
		log "kubernetes $version failed to build; trying the next version"
	done
	die "no Kubernetes version among ($K8S_VERSIONS) could be built"
}

main() {
	if [[ -n ${KUBEBUILDER_ASSETS:-} ]]; then
		has_binaries "$KUBEBUILDER_ASSETS" || die "KUBEBUILDER_ASSETS=$KUBEBUILDER_ASSETS lacks kube-apiserver or etcd"
		printf '%s\n' "$KUBEBUILDER_ASSETS"
		return 0
	fi
	find_cached && return 0
	mkdir -p "$ENVTEST_ROOT"
	exec 9>"$ENVTEST_ROOT/.lock"
	if ! flock -n 9; then
		log "another build is running; waiting for its lock"
		flock 9
	fi
	find_cached && return 0 # built by whoever held the lock
	ensure_go
	build_first
}

# Sourced (hack/node-assets.sh reuses the functions above): define, do not run.
if [[ ${BASH_SOURCE[0]} == "$0" ]]; then
	main "$@"
fi
