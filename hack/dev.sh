#!/usr/bin/env bash
# Local run of litellm-operator: a real control plane, a real LiteLLM, the operator in the background.
#   hack/dev.sh up     start (or reuse) everything; write .dev/env; idempotent
#   hack/dev.sh down   stop everything that `up` started, by PID
#   hack/dev.sh demo   up, apply examples/, wait for the users to be Ready, show both sides
#
# Control plane: $KUBECONFIG if set, else the envtest binaries (hack/envtest-assets.sh).
# LiteLLM: $LITELLM_URL + $LITELLM_MASTER_KEY if set, else ../shared/litellm-testbed/testbed.
# State lives in .dev/ (gitignored): env, pids, logs.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DEV=${LITELLM_OPERATOR_DEV_DIR:-$ROOT/.dev}
PY=$ROOT/.venv/bin/python
OPERATOR=$ROOT/.venv/bin/litellm-operator
say() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }
die() { printf 'dev: error: %s\n' "$*" >&2; exit 1; }
alive() { [[ -f $1 ]] && kill -0 "$(cat "$1")" 2>/dev/null; }

control_plane() {
  if [[ -n ${KUBECONFIG:-} && ! -f $DEV/controlplane/kubeconfig ]]; then
    say "using the cluster of KUBECONFIG=$KUBECONFIG"
    echo "export KUBECONFIG=$KUBECONFIG" >"$DEV/kube.env"
    return
  fi
  local assets
  assets=${KUBEBUILDER_ASSETS:-$("$ROOT/hack/envtest-assets.sh")}
  say "control plane (etcd + kube-apiserver) in .dev/controlplane"
  "$PY" -m litellm_operator.devenv.controlplane up --dir "$DEV/controlplane" --assets "$assets" >"$DEV/kube.env"
}

litellm() {
  if [[ -f $DEV/litellm.env ]] && (source "$DEV/litellm.env" && curl -sf "$LITELLM_URL/health/readiness" >/dev/null); then
    say "LiteLLM already running ($(source "$DEV/litellm.env" && echo "$LITELLM_URL"))"
    return
  fi
  if [[ -n ${LITELLM_URL:-} && -n ${LITELLM_MASTER_KEY:-} ]]; then
    say "using the LiteLLM of LITELLM_URL=$LITELLM_URL"
    printf 'export LITELLM_URL=%q\nexport LITELLM_MASTER_KEY=%q\n' "$LITELLM_URL" "$LITELLM_MASTER_KEY" >"$DEV/litellm.env"
    return
  fi
  [[ -x $ROOT/../shared/litellm-testbed/testbed ]] || die "no LiteLLM: set LITELLM_URL and LITELLM_MASTER_KEY
  (e.g. docker run -p 4000:4000 -e LITELLM_MASTER_KEY=sk-dev -e DATABASE_URL=... ghcr.io/berriai/litellm:main-stable)"
  say "LiteLLM testbed (real proxy + PostgreSQL) in .dev/litellm"
  [[ -d $DEV/litellm ]] && "$PY" -m litellm_operator.devenv.testbed down --dir "$DEV/litellm" 2>/dev/null || true
  "$PY" -m litellm_operator.devenv.testbed up --dir "$DEV/litellm" >"$DEV/litellm.env"
}

operator() {
  if alive "$DEV/operator.pid"; then
    say "operator already running (pid $(cat "$DEV/operator.pid"))"
    return
  fi
  say "CRDs"
  kubectl apply --server-side --force-conflicts -f "$ROOT/deploy/crds/" >/dev/null
  kubectl wait --for=condition=Established --timeout=60s -f "$ROOT/deploy/crds/" >/dev/null
  say "operator (log: .dev/operator.log, metrics: http://127.0.0.1:${METRICS_PORT}/metrics)"
  LITELLM_OPERATOR_METRICS_PORT=$METRICS_PORT LITELLM_OPERATOR_RESYNC_SECONDS=${LITELLM_OPERATOR_RESYNC_SECONDS:-60} \
    setsid "$OPERATOR" run --log-format plain --health-port "$HEALTH_PORT" >>"$DEV/operator.log" 2>&1 </dev/null &
  echo $! >"$DEV/operator.pid"
  for _ in $(seq 1 60); do
    curl -sf "http://127.0.0.1:$HEALTH_PORT/healthz" >/dev/null 2>&1 && return
    alive "$DEV/operator.pid" || { tail -20 "$DEV/operator.log" >&2; die "the operator exited"; }
    sleep 0.5
  done
  die "the operator did not report healthy (see .dev/operator.log)"
}

free_port() { "$PY" -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }

up() {
  mkdir -p "$DEV"
  [[ -x $OPERATOR ]] || die "no .venv: run 'make venv' first"
  control_plane
  litellm
  # shellcheck disable=SC1091
  source "$DEV/kube.env"; source "$DEV/litellm.env"
  if [[ -f $DEV/ports ]]; then source "$DEV/ports"; else
    METRICS_PORT=$(free_port); HEALTH_PORT=$(free_port)
    printf 'METRICS_PORT=%s\nHEALTH_PORT=%s\n' "$METRICS_PORT" "$HEALTH_PORT" >"$DEV/ports"
  fi
  operator
  cat "$DEV/kube.env" "$DEV/litellm.env" >"$DEV/env"
  echo "export LITELLM_OPERATOR_METRICS_URL=http://127.0.0.1:$METRICS_PORT/metrics" >>"$DEV/env"
  cat >&2 <<EOF

litellm-operator is running.
  source .dev/env                      # KUBECONFIG, LITELLM_URL, LITELLM_MASTER_KEY
  kubectl get llmusers -A              # users as Kubernetes sees them
  kubectl get llmpolicies
  tail -f .dev/operator.log
  make down                            # stop everything
EOF
}

down() {
  if alive "$DEV/operator.pid"; then
    say "stopping the operator"
    kill -TERM "$(cat "$DEV/operator.pid")"
    for _ in $(seq 1 40); do alive "$DEV/operator.pid" || break; sleep 0.25; done
    alive "$DEV/operator.pid" && kill -KILL "$(cat "$DEV/operator.pid")"
  fi
  rm -f "$DEV/operator.pid" "$DEV/ports"
  if [[ -d $DEV/litellm ]]; then
    say "stopping the LiteLLM testbed"
    "$PY" -m litellm_operator.devenv.testbed down --dir "$DEV/litellm" || true
  fi
  rm -f "$DEV/litellm.env"
  if [[ -d $DEV/controlplane ]]; then
    say "stopping the control plane"
    "$PY" -m litellm_operator.devenv.controlplane down --dir "$DEV/controlplane" || true
  fi
  rm -f "$DEV/kube.env" "$DEV/env"
}

DEMO_NAMESPACES="team-a platform"

demo() {
  up
  # shellcheck disable=SC1091
  source "$DEV/env"
  say "LiteLLM teams the example policy refers to (a platform team creates these once)"
  "$PY" "$ROOT/hack/demo_teams.py" "$ROOT/examples/policy.yaml"
  say "applying examples/"
  for ns in $DEMO_NAMESPACES; do
    kubectl create namespace "$ns" --dry-run=client -o yaml | kubectl apply -f - >/dev/null
  done
  kubectl apply -f "$ROOT/examples/policy.yaml" -f "$ROOT/examples/users/"
  say "waiting for the users to be Ready"
  for ns in $DEMO_NAMESPACES; do
    kubectl wait --for=condition=Ready --timeout=120s -n "$ns" llmusers --all
  done
  say "the users as Kubernetes sees them"
  kubectl get llmusers -A
  say "the same users as LiteLLM sees them"
  # shellcheck disable=SC2086
  "$PY" "$ROOT/hack/demo_teams.py" --show-users $DEMO_NAMESPACES
}

case ${1:-} in
  up) up ;;
  down) down ;;
  demo) demo ;;
  *) die "usage: hack/dev.sh up|down|demo" ;;
esac
