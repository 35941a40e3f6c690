#!/usr/bin/env bash
# Local run of litellm-operator: a real control plane, a real LiteLLM, the operator in the background.
#   hack/dev.sh up     start (or reuse) everything; write .dev/env; idempotent: restarts only
#                      what died (a control plane resumes on its ports and store), and the
#                      operator when what it points at moved (a LiteLLM started anew)
#   hack/dev.sh down   stop everything that `up` started, by PID
#   hack/dev.sh demo   up, apply examples/, wait for the team and users to be Ready, show both sides
#   hack/dev.sh status say what runs (exit 1 if the operator does not)
#
# Control plane: $KUBECONFIG if set, else the envtest binaries (hack/envtest-assets.sh).
# LiteLLM: $LITELLM_URL + $LITELLM_MASTER_KEY if set, else the project's own (devenv/litellm.py:
# the pinned proxy on a local PostgreSQL, installed once into ~/.cache/litellm-operator/litellm).
# State lives in .dev/ (gitignored): env, pids, logs.
# Liveness: the pidfile holds PID and start time, and a zombie counts as dead (where PID 1 reaps
# nothing, `kill -0` succeeds on a killed operator): see devenv/process.py.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DEV=${LITELLM_OPERATOR_DEV_DIR:-$ROOT/.dev}
PY=${DEV_PYTHON:-$ROOT/.venv/bin/python}
OPERATOR=$ROOT/.venv/bin/litellm-operator
export PYTHONPATH=$ROOT${PYTHONPATH:+:$PYTHONPATH}   # the devenv package (not in the wheel)
say() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }
die() { printf 'dev: error: %s\n' "$*" >&2; exit 1; }
alive() { "$PY" -m devenv.process alive "$1"; }
recorded_pid() { local pid _; read -r pid _ <"$1" && echo "$pid"; }

control_plane() {
  if [[ -n ${KUBECONFIG:-} && ! -f $DEV/controlplane/kubeconfig ]]; then
    say "using the cluster of KUBECONFIG=$KUBECONFIG"
    echo "export KUBECONFIG=$KUBECONFIG" >"$DEV/kube.env"
    return
  fi
  local assets
  assets=${KUBEBUILDER_ASSETS:-$("$ROOT/hack/envtest-assets.sh")}
  say "control plane (etcd + kube-apiserver) in .dev/controlplane"
  "$PY" -m devenv.controlplane up --dir "$DEV/controlplane" --assets "$assets" >"$DEV/kube.env"
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
  say "LiteLLM (the pinned proxy on a local PostgreSQL) in .dev/litellm"
  "$PY" -m devenv.litellm up --dir "$DEV/litellm" >"$DEV/litellm.env"
}

# What the operator is pointed at: the API server's address (in the kubeconfig) and LiteLLM's.
targets() { cat "$DEV/kube.env" "$DEV/controlplane/kubeconfig" "$DEV/litellm.env" 2>/dev/null || true; }

stop_operator() {
  alive "$DEV/operator.pid" || return 0
  kill -TERM "$(recorded_pid "$DEV/operator.pid")"
  for _ in $(seq 1 40); do alive "$DEV/operator.pid" || return 0; sleep 0.25; done
  kill -KILL "$(recorded_pid "$DEV/operator.pid")"
}

operator() {
  if alive "$DEV/operator.pid"; then
    say "operator already running (pid $(recorded_pid "$DEV/operator.pid"))"
    return
  fi
  say "CRDs"
  kubectl apply --server-side --force-conflicts -f "$ROOT/deploy/crds/" >/dev/null
  kubectl wait --for=condition=Established --timeout=60s -f "$ROOT/deploy/crds/" >/dev/null
  say "operator (log: .dev/operator.log, metrics: http://127.0.0.1:${METRICS_PORT}/metrics)"
  LITELLM_OPERATOR_METRICS_PORT=$METRICS_PORT LITELLM_OPERATOR_RESYNC_SECONDS=${LITELLM_OPERATOR_RESYNC_SECONDS:-60} \
    setsid "$OPERATOR" run --log-format plain --health-port "$HEALTH_PORT" >>"$DEV/operator.log" 2>&1 </dev/null &
  "$PY" -m devenv.process record "$DEV/operator.pid" $!
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
  local before
  before=$(targets)
  control_plane
  litellm
  if [[ $before != "$(targets)" ]] && alive "$DEV/operator.pid"; then
    say "the operator points at what was replaced: restarting it"
    stop_operator
  fi
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
    stop_operator
  fi
  rm -f "$DEV/operator.pid" "$DEV/ports"
  if [[ -d $DEV/litellm ]]; then
    say "stopping LiteLLM"
    "$PY" -m devenv.litellm down --dir "$DEV/litellm" || true
  fi
  rm -f "$DEV/litellm.env"
  if [[ -d $DEV/controlplane ]]; then
    say "stopping the control plane"
    "$PY" -m devenv.controlplane down --dir "$DEV/controlplane" || true
  fi
  rm -f "$DEV/kube.env" "$DEV/env"
}

DEMO_NAMESPACES="team-a platform"

demo() {
  up
  # shellcheck disable=SC1091
  source "$DEV/env"
  say "applying examples/"
  for ns in $DEMO_NAMESPACES; do
    kubectl create namespace "$ns" --dry-run=client -o yaml | kubectl apply -f - >/dev/null
  done
  # The team first: its members join it as soon as it exists in LiteLLM.
  kubectl apply -f "$ROOT/examples/policy.yaml" -f "$ROOT/examples/teams/"
  say "waiting for the teams to be Ready"
  kubectl wait --for=condition=Ready --timeout=120s -n platform llmteams --all
  kubectl apply -f "$ROOT/examples/users/"
  say "waiting for the users to be Ready"
  for ns in $DEMO_NAMESPACES; do
    kubectl wait --for=condition=Ready --timeout=120s -n "$ns" llmusers --all
  done
  say "the teams and users as Kubernetes sees them"
  kubectl get llmteams -A
  kubectl get llmusers -A
  say "the same teams and users as LiteLLM sees them"
  # shellcheck disable=SC2086
  "$PY" "$ROOT/hack/demo_teams.py" --show-teams $DEMO_NAMESPACES --show-users $DEMO_NAMESPACES
}

status() {
  local code=0
  if alive "$DEV/operator.pid"; then
    echo "operator: running (pid $(recorded_pid "$DEV/operator.pid"))"
  else
    echo "operator: not running"; code=1
  fi
  if [[ -d $DEV/litellm ]]; then echo "litellm: $("$PY" -m devenv.litellm status --dir "$DEV/litellm" 2>/dev/null || true)"; fi
  if [[ -d $DEV/controlplane ]]; then
    if "$PY" -m devenv.controlplane status --dir "$DEV/controlplane" >/dev/null 2>&1; then echo "control plane: running"; else echo "control plane: not running"; fi
  fi
  return $code
}

case ${1:-} in
  up) up ;;
  down) down ;;
  demo) demo ;;
  status) status ;;
  *) die "usage: hack/dev.sh up|down|demo|status" ;;
esac
