"""The Helm chart (deploy/helm/litellm-operator): lints strictly, renders what its values say,
stays equivalent to ``kubectl kustomize deploy/``, and passes a server-side dry run.

helm is built from the Go module proxy by hack/helm-assets.sh and cached under
~/.cache/litellm-operator/helm (or taken from ``$HELM``); where it cannot be had the helm tests
skip loudly, and fail when ``$CI`` is set.
"""

from __future__ import annotations

import copy
import os
import subprocess
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import pytest
import yaml

from devenv.controlplane import find_kubectl
from tests.fixtures.kube import CRD_DIR, REPO_ROOT, KubeEnv

pytestmark = [pytest.mark.e2e]

CHART = REPO_ROOT / "deploy" / "helm" / "litellm-operator"
DEPLOY = REPO_ROOT / "deploy"
HELM_SCRIPT = REPO_ROOT / "hack" / "helm-assets.sh"
RELEASE = NAMESPACE = "litellm-operator"
HELM_BUILD_TIMEOUT = 1800

HELM_ONLY_LABELS = (
    "helm.sh/chart",
    "app.kubernetes.io/instance",
    "app.kubernetes.io/version",
    "app.kubernetes.io/managed-by",
)
KUSTOMIZE_LABELS = ("app.kubernetes.io/name", "app.kubernetes.io/part-of")
EVERY_OPTION = [
    "metrics.serviceMonitor.enabled=true",
    "networkPolicy.enabled=true",
    "networkPolicy.metricsFrom[0].namespaceSelector.matchLabels.name=monitoring",
    "networkPolicy.egress[0].ports[0].port=443",
    "litellm.publicUrl=https://llm.example.com",
    "watchNamespaces={team-a,team-b}",
]

Docs = list[dict[str, Any]]


@pytest.fixture(scope="session")
def helm() -> str:
    """A helm binary: ``$HELM``, the cached build, or a fresh build from the Go module proxy."""
    result = subprocess.run(
        [str(HELM_SCRIPT)], capture_output=True, text=True, timeout=HELM_BUILD_TIMEOUT, check=False
    )
    if result.returncode != 0:
        message = f"helm could not be had: {result.stderr[-3000:]}"
        if os.environ.get("CI"):
            pytest.fail(message)
        print(f"\n!!! {message}: helm tests are SKIPPED", file=sys.stderr)
        pytest.skip(message)
    return result.stdout.strip()


def run_helm(helm: str, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run([helm, *args], capture_output=True, text=True, timeout=120, check=False)
    if check and result.returncode != 0:
        raise AssertionError(f"helm {' '.join(args)} exited {result.returncode}:\n{result.stderr}")
    return result


def render(helm: str, *sets: str, crds: bool = False) -> Docs:
    """``helm template`` of the chart as release ``litellm-operator`` in that namespace."""
    args = ["template", RELEASE, str(CHART), f"--namespace={NAMESPACE}"]
    args += ["--include-crds"] if crds else []
    for value in sets:
        args += ["--set", value]
    return [d for d in yaml.safe_load_all(run_helm(helm, *args).stdout) if d]


def kustomized() -> Docs:
    output = subprocess.run(
        [find_kubectl(), "kustomize", str(DEPLOY)],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout
    return [d for d in yaml.safe_load_all(output) if d]


def by_key(documents: Iterable[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {f"{d['kind']}/{d['metadata']['name']}": d for d in documents}


def one(documents: Docs, kind: str) -> dict[str, Any]:
    (found,) = [d for d in documents if d["kind"] == kind]
    return found


# --- files -----------------------------------------------------------------------------------


def test_chart_crds_are_the_generated_crds() -> None:
    """crds/ in the chart is a copy of deploy/crds (``make crds`` regenerates both)."""
    generated = {p.name: p.read_bytes() for p in sorted(CRD_DIR.glob("*.yaml"))}
    shipped = {p.name: p.read_bytes() for p in sorted((CHART / "crds").glob("*.yaml"))}
    assert generated, "no CRDs in deploy/crds"
    assert shipped == generated, "run `make crds` to copy deploy/crds into the chart"


# --- helm lint and template --------------------------------------------------------------------


def test_lint_strict(helm: str) -> None:
    run_helm(helm, "lint", "--strict", str(CHART))
    every = [arg for value in EVERY_OPTION for arg in ("--set", value)]
    run_helm(helm, "lint", "--strict", str(CHART), *every)


def normalise(document: dict[str, Any]) -> dict[str, Any]:
    """Drop what only Helm adds (its labels, the config checksum) and what kustomize adds to
    the CRDs (Helm installs crds/ verbatim)."""
    doc = copy.deepcopy(document)
    drop = HELM_ONLY_LABELS + (
        KUSTOMIZE_LABELS if doc["kind"] == "CustomResourceDefinition" else ()
    )

    def clean(labels: dict[str, Any] | None) -> None:
        for key in drop:
            (labels or {}).pop(key, None)

    if doc["kind"].startswith("ValidatingAdmissionPolicy"):
        # kustomize (v5.4, in kubectl 1.32) does not know these kinds are cluster-scoped and
        # sets a namespace; the API server ignores it (test_deploy's dry run applies them).
        doc["metadata"].pop("namespace", None)
    clean(doc["metadata"].get("labels"))
    if not doc["metadata"].get("labels"):
        doc["metadata"].pop("labels", None)
    spec = doc.get("spec") or {}
    if doc["kind"] in ("Service",):
        clean(spec.get("selector"))
    if doc["kind"] in ("Deployment", "PodDisruptionBudget"):
        clean(spec["selector"]["matchLabels"])
    if doc["kind"] == "Deployment":
        template = spec["template"]
        clean(template["metadata"]["labels"])
        annotations = template["metadata"].get("annotations") or {}
        annotations.pop("checksum/config", None)
        if not annotations:
            template["metadata"].pop("annotations", None)
        affinity = template["spec"]["affinity"]["podAntiAffinity"]
        for term in affinity["preferredDuringSchedulingIgnoredDuringExecution"]:
            clean(term["podAffinityTerm"]["labelSelector"]["matchLabels"])
    return doc


def test_chart_renders_what_kustomize_renders(helm: str) -> None:
    """Same kinds and names, and after the normalisation above, the same objects: RBAC rules,
    ConfigMap, Deployment (env, probes, security), Service, PDB, CRDs. Only the Namespace is the
    kustomization's own (Helm: ``--create-namespace``)."""
    chart = by_key(normalise(d) for d in render(helm, crds=True))
    kustomize = by_key(normalise(d) for d in kustomized() if d["kind"] != "Namespace")
    assert sorted(chart) == sorted(kustomize)
    for key, expected in kustomize.items():
        assert chart[key] == expected, f"{key} differs between the chart and deploy/"


def env_of(deployment: dict[str, Any]) -> dict[str, Any]:
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    return {e["name"]: e for e in container["env"]}


def config_of(documents: Docs) -> dict[str, str]:
    data: dict[str, str] = one(documents, "ConfigMap")["data"]
    return data


Check = Callable[[Docs], Any]


def _image(docs: Docs) -> str:
    (container,) = one(docs, "Deployment")["spec"]["template"]["spec"]["containers"]
    return str(container["image"])


def _kinds(docs: Docs) -> set[str]:
    return {d["kind"] for d in docs}


VALUES = [
    pytest.param(
        ["replicaCount=3"], lambda d: one(d, "Deployment")["spec"]["replicas"], 3, id="replicas"
    ),
    pytest.param(
        ["image.repository=registry.example/op", "image.tag=1.2.3"],
        _image,
        "registry.example/op:1.2.3",
        id="image",
    ),
    pytest.param(
        [], _image, "ghcr.io/litellm-operator/litellm-operator:0.1.0", id="image-appversion"
    ),
    pytest.param(
        ["watchNamespaces={team-a,team-b}"],
        lambda d: config_of(d)["LITELLM_OPERATOR_NAMESPACES"],
        "team-a,team-b",
        id="watched-namespaces",
    ),
    pytest.param(
        ["litellm.url=http://llm:4000"],
        lambda d: config_of(d)["LITELLM_URL"],
        "http://llm:4000",
        id="url",
    ),
    pytest.param(
        ["litellm.publicUrl=https://llm.example.com"],
        lambda d: config_of(d)["LITELLM_PUBLIC_URL"],
        "https://llm.example.com",
        id="public-url",
    ),
    pytest.param([], lambda d: "LITELLM_PUBLIC_URL" in config_of(d), False, id="public-url-unset"),
    pytest.param(
        ["litellm.masterKeySecret.name=llm-admin", "litellm.masterKeySecret.key=token"],
        lambda d: one(d, "Deployment")["spec"]["template"]["spec"]["volumes"][0]["secret"],
        {
            "secretName": "llm-admin",
            "defaultMode": 0o440,
            "items": [{"key": "token", "path": "master-key"}],
        },
        id="master-key-secret",
    ),
    pytest.param(
        ["resyncSeconds=120"],
        lambda d: config_of(d)["LITELLM_OPERATOR_RESYNC_SECONDS"],
        "120",
        id="resync",
    ),
    pytest.param(
        ["resources.limits.memory=1Gi"],
        lambda d: one(d, "Deployment")["spec"]["template"]["spec"]["containers"][0]["resources"][
            "limits"
        ]["memory"],
        "1Gi",
        id="resources",
    ),
    pytest.param(
        ["metrics.port=9090"],
        lambda d: (
            one(d, "Service")["spec"]["ports"][0]["port"],
            config_of(d)["LITELLM_OPERATOR_METRICS_PORT"],
        ),
        (9090, "9090"),
        id="metrics-port",
    ),
    pytest.param(
        ["metrics.serviceMonitor.enabled=true", "metrics.serviceMonitor.labels.release=prom"],
        lambda d: (
            one(d, "ServiceMonitor")["spec"]["endpoints"][0]["port"],
            one(d, "ServiceMonitor")["metadata"]["labels"]["release"],
        ),
        ("metrics", "prom"),
        id="service-monitor",
    ),
    pytest.param(
        [], lambda d: "ServiceMonitor" in _kinds(d), False, id="no-service-monitor-by-default"
    ),
    pytest.param(
        ["podDisruptionBudget.enabled=false"],
        lambda d: "PodDisruptionBudget" in _kinds(d),
        False,
        id="no-pdb",
    ),
    pytest.param(
        ["networkPolicy.enabled=true"],
        lambda d: one(d, "NetworkPolicy")["spec"]["policyTypes"],
        ["Ingress"],
        id="network-policy-ingress",
    ),
    pytest.param(
        ["networkPolicy.enabled=true", "networkPolicy.egress[0].ports[0].port=443"],
        lambda d: one(d, "NetworkPolicy")["spec"]["policyTypes"],
        ["Ingress", "Egress"],
        id="network-policy-egress",
    ),
    pytest.param(
        [], lambda d: "NetworkPolicy" in _kinds(d), False, id="no-network-policy-by-default"
    ),
    pytest.param(
        ["rbac.aggregateToDefaultRoles=false"],
        lambda d: sorted(x["metadata"]["name"] for x in d if x["kind"] == "ClusterRole"),
        ["litellm-operator"],
        id="no-aggregated-roles",
    ),
    pytest.param(
        ["leaderElection.enabled=false", "replicaCount=1"],
        lambda d: (
            config_of(d)["LITELLM_OPERATOR_LEADER_ELECTION"],
            one(d, "Deployment")["spec"]["strategy"],
            "Role" in _kinds(d),
        ),
        ("false", {"type": "Recreate"}, False),
        id="single-replica-without-election",
    ),
    pytest.param(
        ["replicaCount=1"],
        lambda d: "PodDisruptionBudget" in _kinds(d),
        False,
        id="no-pdb-for-one-replica",
    ),
    pytest.param(
        [],
        lambda d: sorted(env_of(one(d, "Deployment"))),
        ["LITELLM_MASTER_KEY_FILE", "POD_NAME", "POD_NAMESPACE"],
        id="downward-api-env",
    ),
]


@pytest.mark.parametrize(("sets", "probe", "expected"), VALUES)
def test_values_reach_the_objects(helm: str, sets: list[str], probe: Check, expected: Any) -> None:
    assert probe(render(helm, *sets)) == expected


def test_more_than_one_replica_needs_leader_election(helm: str) -> None:
    args = ["template", RELEASE, str(CHART), "--set", "leaderElection.enabled=false"]
    result = run_helm(helm, *args, check=False)
    assert result.returncode != 0
    assert "replicaCount > 1 needs leaderElection.enabled" in result.stderr


REJECTED = [
    pytest.param("replicaCount=-1", id="negative-replicas"),
    pytest.param("litellm.url=litellm:4000", id="url-without-scheme"),
    pytest.param("litellm.masterKeySecret.name=", id="no-secret-name"),
    pytest.param("metrics.port=70000", id="port-range"),
    pytest.param("resyncSeconds=0", id="zero-resync"),
    pytest.param("leaderElection.enable=true", id="misspelt-key"),
]


@pytest.mark.parametrize("value", REJECTED)
def test_values_schema_rejects(helm: str, value: str) -> None:
    result = run_helm(helm, "template", RELEASE, str(CHART), "--set", value, check=False)
    assert result.returncode != 0
    assert "values don't meet the specifications of the schema" in result.stderr, result.stderr


def test_release_name_and_namespace_are_followed(helm: str) -> None:
    args = ["template", "llm", str(CHART), "--namespace=platform"]
    documents = [d for d in yaml.safe_load_all(run_helm(helm, *args).stdout) if d]
    names = {f"{d['kind']}/{d['metadata']['name']}" for d in documents}
    assert "Deployment/llm-litellm-operator" in names
    binding = one(documents, "ClusterRoleBinding")
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": "llm-litellm-operator", "namespace": "platform"}
    ]
    assert {d["metadata"].get("namespace") for d in documents if d["kind"] != "ClusterRole"} - {
        None
    } == {"platform"}


# --- on the API server -------------------------------------------------------------------------


def test_rendered_chart_passes_server_side_dry_run(
    helm: str, kube_env: KubeEnv, crds_installed: list[str], tmp_path: Path
) -> None:
    """Every object of the chart (but the ServiceMonitor, whose CRD the test server lacks), with
    the optional NetworkPolicy on: schema, admission and PodSecurity (restricted) on the real
    API server."""
    del crds_installed
    kube_env.kubectl("apply", f"--filename={DEPLOY / 'manifests' / 'namespace.yaml'}")
    sets = [s for s in EVERY_OPTION if not s.startswith("metrics.serviceMonitor")]
    documents = render(helm, *sets, crds=True)
    manifest = tmp_path / "chart.yaml"
    manifest.write_text(yaml.safe_dump_all(documents))
    result = kube_env.kubectl("apply", "--dry-run=server", f"--filename={manifest}")
    assert "deployment.apps/litellm-operator" in result.stdout
    assert "networkpolicy.networking.k8s.io/litellm-operator" in result.stdout
    assert "poddisruptionbudget.policy/litellm-operator" in result.stdout
    assert "would violate" not in result.stderr, result.stderr
