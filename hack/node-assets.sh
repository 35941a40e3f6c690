#!/usr/bin/env bash
# Print (on stdout, nothing else) a directory holding the binaries of the deploy tests' node:
# kubelet, kube-controller-manager, kube-scheduler and kube-proxy of the Kubernetes version the
# envtest kube-apiserver was built at (hack/envtest-assets.sh, run first), and `pause`, the
# sandbox container's static binary (hack/pause). The directory also links kube-apiserver, etcd
# and kubectl from the envtest directory, so it holds a whole cluster.
#
# Built like the envtest binaries, with the same Go caches and module approach (this script
# sources hack/envtest-assets.sh), once, into ~/.cache/litellm-operator/node/<version>; a warm
# run costs milliseconds. Concurrent callers serialise on a flock.
#
# Knobs (environment): those of hack/envtest-assets.sh. Progress messages go to stderr.
set -euo pipefail

HACK=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=hack/envtest-assets.sh
source "$HACK/envtest-assets.sh"
NODE_ROOT=$CACHE_ROOT/node
NODE_COMMANDS=(kubelet kube-controller-manager kube-scheduler kube-proxy)

log() { printf 'node-assets: %s\n' "$*" >&2; }

node_cached() { [[ -f $1/.complete ]]; }

# Link the envtest binaries (and kubectl) into node directory $2 from envtest directory $1.
link_envtest() {
	local name
	for name in kube-apiserver etcd kubectl; do
		[[ -e $1/$name ]] && ln -sfn "$(readlink -f "$1/$name")" "$2/$name"
	done
	return 0
}

# Build the node's commands of Kubernetes $1 and the pause binary into directory $2.
build_node() {
	local version=$1 out=$2 work start command
	start=$(date +%s)
	work=$(mktemp -d "$NODE_ROOT/.work-kube.XXXXXX")
	write_kube_module "$version" "$work" || { rm -rf "$work"; return 1; }
	log "building ${NODE_COMMANDS[*]} $version (several minutes on a cold cache)"
	local packages=()
	for command in "${NODE_COMMANDS[@]}"; do packages+=("k8s.io/kubernetes/cmd/$command"); done
	(cd "$work" && go build -p 2 -trimpath -ldflags "$(kube_ldflags "$version")" -o "$out/" \
		"${packages[@]}") >&2 || { rm -rf "$work"; return 1; }
	rm -rf "$work"
	(cd "$HACK/pause" && go build -trimpath -ldflags "-s -w" -o "$out/pause" .) >&2 || return 1
	log "built the node's binaries in $(($(date +%s) - start))s"
}

node_main() {
	local envtest version final staging
	envtest=$("$HACK/envtest-assets.sh")
	version=$(cat "$envtest/KUBERNETES_VERSION" 2>/dev/null) ||
		die "$envtest has no KUBERNETES_VERSION: the node's binaries must match its kube-apiserver"
	final=$NODE_ROOT/$version
	if ! node_cached "$final"; then
		mkdir -p "$NODE_ROOT"
		exec 8>"$NODE_ROOT/.lock"
		flock 8
		if ! node_cached "$final"; then
			ensure_go
			staging=$(mktemp -d "$NODE_ROOT/.build-$version.XXXXXX")
			chmod 755 "$staging"
			build_node "$version" "$staging" || { rm -rf "$staging"; die "the node's binaries did not build"; }
			echo "$version" >"$staging/KUBERNETES_VERSION"
			touch "$staging/.complete"
			rm -rf "$final"
			mv "$staging" "$final"
		fi
	fi
	link_envtest "$envtest" "$final"
	printf '%s\n' "$final"
}

node_main "$@"
