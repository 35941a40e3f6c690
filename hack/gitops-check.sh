#!/usr/bin/env bash
# Print (on stdout, nothing else) a directory holding the GitOps health checkers the tests use:
#   kstatus-check  Flux's own code: sigs.k8s.io/cli-utils and github.com/fluxcd/cli-utils kstatus,
#                  and github.com/fluxcd/pkg/ssa WaitForSet (hack/gitops-check/cmd/kstatus-check);
#   argocd-health  Argo CD's Lua set-up on github.com/yuin/gopher-lua (cmd/argocd-health).
#
# Built once from the Go module proxy (hack/gitops-check/go.mod and go.sum pin every module) into
# ~/.cache/litellm-operator/gitops-check/<hash of the sources>/, like the envtest binaries; a
# warm run costs milliseconds. Concurrent callers serialise on a flock. Progress goes to stderr.
# Knobs: LITELLM_OPERATOR_CACHE (cache root), GITOPS_CHECK_DIR (use this directory as is).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
SRC=$HERE/gitops-check
CACHE_ROOT=${LITELLM_OPERATOR_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/litellm-operator}
ROOT=$CACHE_ROOT/gitops-check
GO_ROOT=$CACHE_ROOT/go
TOOLS=(kstatus-check argocd-health)

log() { printf 'gitops-check: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

has_tools() {
	local tool
	for tool in "${TOOLS[@]}"; do [[ -x $1/$tool ]] || return 1; done
}

if [[ -n ${GITOPS_CHECK_DIR:-} ]]; then
	has_tools "$GITOPS_CHECK_DIR" || die "GITOPS_CHECK_DIR=$GITOPS_CHECK_DIR lacks ${TOOLS[*]}"
	printf '%s\n' "$GITOPS_CHECK_DIR"
	exit 0
fi

hash=$(cd "$SRC" && find . -type f \( -name '*.go' -o -name go.mod -o -name go.sum \) -print0 |
	LC_ALL=C sort -z | xargs -0 sha256sum | sha256sum | cut -c1-16)
OUT=$ROOT/$hash
if [[ -f $OUT/.complete ]] && has_tools "$OUT"; then
	printf '%s\n' "$OUT"
	exit 0
fi

mkdir -p "$ROOT"
exec 9>"$ROOT/.lock"
flock 9
if [[ -f $OUT/.complete ]] && has_tools "$OUT"; then
	printf '%s\n' "$OUT"
	exit 0
fi

if ! command -v go >/dev/null 2>&1; then
	for dir in /usr/local/go/bin /usr/lib/go/bin "$HOME/go/bin" "$HOME/sdk/go/bin"; do
		[[ -x $dir/go ]] && PATH=$dir:$PATH && break
	done
fi
command -v go >/dev/null 2>&1 || die "no Go toolchain found (PATH, /usr/local/go/bin)"
export GOMODCACHE=$GO_ROOT/mod GOCACHE=$GO_ROOT/build GOPATH=$GO_ROOT/path GOWORK=off
export GOFLAGS=-mod=readonly CGO_ENABLED=0 GOTOOLCHAIN=local
mkdir -p "$GOMODCACHE" "$GOCACHE" "$GOPATH"

staging=$(mktemp -d "$ROOT/.build.XXXXXX")
trap 'rm -rf "$staging"' EXIT
start=$(date +%s)
log "building ${TOOLS[*]} with $(go version | cut -d' ' -f3) (a few minutes on a cold cache)"
for tool in "${TOOLS[@]}"; do
	(cd "$SRC" && go build -p 2 -trimpath -ldflags "-s -w" -o "$staging/$tool" "./cmd/$tool") >&2 ||
		die "building $tool failed"
done
touch "$staging/.complete"
rm -rf "$OUT"
mv "$staging" "$OUT"
chmod 755 "$OUT"
trap - EXIT
log "built in $(($(date +%s) - start))s into $OUT"
printf '%s\n' "$OUT"
