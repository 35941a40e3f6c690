#!/usr/bin/env bash
# The Kubernetes version matrix: the CRDs (schema and CEL), the shipped admission policy and
# RBAC, and the e2e core scenarios, on each version of K8S_MATRIX (default: the oldest supported
# and the default one), each with its own envtest binaries built by hack/envtest-assets.sh
# (cached per version; about 5 minutes each on 2 cores when cold).
# Prints one line per version and exits non-zero if any failed.
set -euo pipefail
cd "$(dirname "$0")/.."
VERSIONS=${K8S_MATRIX:-v1.31.14 v1.37.2}
PY=${PY:-.venv/bin/python}
SCENARIOS=(
	tests/e2e/test_controlplane_smoke.py  # the control plane itself
	tests/e2e/test_crd_validation.py      # CRD schema, CEL and transition rules
	tests/e2e/test_deploy.py              # deploy/ applied, RBAC enough and no more, admission policy
	tests/e2e/test_aggregated_roles.py    # the aggregated ClusterRoles tenants get
	tests/e2e/test_operator.py            # create, update, policy edit, drift, delete
	tests/e2e/test_keys.py                # keys issued, rotated, revoked
	tests/e2e/test_tenancy.py             # a tenant's escalations, as its ServiceAccount
	tests/e2e/test_gitops_health.py       # kstatus and Argo CD health
)
summary=()
status=0
for version in $VERSIONS; do
	assets=$(ENVTEST_K8S_VERSIONS=$version hack/envtest-assets.sh)
	served=$("$assets/kube-apiserver" --version | awk '{print $2}')
	[[ $served == "$version" ]] || { echo "k8s-matrix: asked for $version, got $served" >&2; exit 1; }
	log=$(mktemp)
	start=$SECONDS
	if KUBEBUILDER_ASSETS=$assets "$PY" -m pytest "${SCENARIOS[@]}" -q -p no:cacheprovider ${PYTEST_ARGS:-} 2>&1 | tee "$log"; then
		result=passed
	else
		result=FAILED
		status=1
	fi
	summary+=("k8s-matrix: Kubernetes $served: $result, $(grep -E '^=* ?[0-9]+ (passed|failed)' "$log" | tail -1 | tr -d '=' | xargs) ($((SECONDS - start)) s)")
	rm -f "$log"
done
printf '%s\n' "${summary[@]}"
exit $status
