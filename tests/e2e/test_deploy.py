"""deploy/: the kustomization applies on a real API server, and its RBAC is enough and no more.

The operator runs here as the ServiceAccount of deploy/manifests (a TokenRequest token, bound by
the shipped ClusterRoleBinding and the leader-election RoleBinding), with leader election on as
in the shipped ConfigMap, restricted to one ``rbac-*`` namespace, which the session operator of
tests/e2e/conftest.py excludes. Its log must show no permission error, and a user's whole
lifecycle (create, policy edit, delete with the finalizer) must complete.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes.client import ApiException

from devenv.litellm import LiteLLMEndpoint
from litellm_operator.litellm import LiteLLMClient, LiteLLMUserRecord
from tests.e2e.conftest import RBAC_NAMESPACE_PREFIX
from tests.e2e.operator_harness import (
    Cluster,
    OperatorProcess,
    eventually,
    free_port,
    permission_errors,
)
from tests.fixtures.kube import REPO_ROOT, KubeEnv, fresh_namespace
from tests.fixtures.policies import ANY_IDENTITY

pytestmark = [pytest.mark.e2e]

DEPLOY = REPO_ROOT / "deploy"
MANIFESTS = DEPLOY / "manifests"
NAMESPACE = "litellm-operator"
SERVICE_ACCOUNT = "litellm-operator"
SUBJECT = f"system:serviceaccount:{NAMESPACE}:{SERVICE_ACCOUNT}"
RBAC_FILES = (
    "namespace.yaml",
    "serviceaccount.yaml",
    "clusterrole.yaml",
    "clusterrolebinding.yaml",
    "role.yaml",
    "rolebinding.yaml",
)

GROUP = "litellm.platform.dev"
EXPECTED_RULES = [
    {"apiGroups": [GROUP], "resources": ["litellmusers"], "verbs": ["list", "watch", "patch"]},
    {"apiGroups": [GROUP], "resources": ["litellmusers/status"], "verbs": ["patch"]},
    {
        "apiGroups": [GROUP],
        "resources": ["provisioningpolicies"],
        "verbs": ["list", "watch", "patch"],
    },
    {"apiGroups": [GROUP], "resources": ["provisioningpolicies/status"], "verbs": ["patch"]},
    {"apiGroups": [GROUP], "resources": ["litellmteams"], "verbs": ["list", "watch", "patch"]},
    {"apiGroups": [GROUP], "resources": ["litellmteams/status"], "verbs": ["patch"]},
    {"apiGroups": [""], "resources": ["events"], "verbs": ["create"]},
    {
        "apiGroups": [""],
        "resources": ["secrets"],
        "verbs": ["list", "watch", "create", "patch", "delete"],
    },
    {
        "apiGroups": ["apiextensions.k8s.io"],
        "resources": ["customresourcedefinitions"],
        "verbs": ["list", "watch"],
    },
    {"apiGroups": [""], "resources": ["namespaces"], "verbs": ["list", "watch"]},
]
EXPECTED_LEASE_RULES = [
    {
        "apiGroups": ["coordination.k8s.io"],
        "resources": ["leases"],
        "verbs": ["get", "create", "update"],
    }
]


def load(name: str) -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load((MANIFESTS / name).read_text())
    return document


def rendered(kube_env: KubeEnv) -> list[dict[str, Any]]:
    """``kubectl kustomize deploy/``: what ``kubectl apply -k deploy/`` sends."""
    output = kube_env.kubectl("kustomize", str(DEPLOY)).stdout
    return [doc for doc in yaml.safe_load_all(output) if doc]


# --- the manifests as files ------------------------------------------------------------------


def test_clusterrole_is_exactly_what_the_operator_needs() -> None:
    role = load("clusterrole.yaml")
    assert role["kind"] == "ClusterRole"
    rules = role["rules"]
    for rule in rules:
        assert set(rule) == {"apiGroups", "resources", "verbs"}, "no resourceNames, no URLs"
        for field in ("apiGroups", "resources", "verbs"):
            assert "*" not in rule[field], f"wildcard in {field}: {rule}"
        if "secrets" in rule["resources"]:  # the keys' Secrets; never read one by name
            assert rule["resources"] == ["secrets"]
            assert not {"get", "update", "deletecollection"} & set(rule["verbs"]), rule
            continue
        assert not {"delete", "deletecollection", "create", "update", "escalate", "bind"} & (
            set(rule["verbs"]) - ({"create"} if rule["resources"] == ["events"] else set())
        ), rule
    assert rules == EXPECTED_RULES


def test_leader_election_role_is_namespaced_and_only_for_leases() -> None:
    role = load("role.yaml")
    binding = load("rolebinding.yaml")
    assert role["kind"] == "Role"
    assert role["metadata"]["namespace"] == NAMESPACE
    assert role["rules"] == EXPECTED_LEASE_RULES
    assert binding["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "Role",
        "name": role["metadata"]["name"],
    }
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": SERVICE_ACCOUNT, "namespace": NAMESPACE}
    ]


def test_kustomization_renders_a_hardened_operator(kube_env: KubeEnv) -> None:
    documents = rendered(kube_env)
    kinds = sorted(f"{d['kind']}/{d['metadata']['name']}" for d in documents)
    assert kinds == [
        "ClusterRole/litellm-operator",
        "ClusterRole/litellm-operator-edit",
        "ClusterRole/litellm-operator-view",
        "ClusterRoleBinding/litellm-operator",
        "ConfigMap/litellm-operator",
        f"CustomResourceDefinition/litellmteams.{GROUP}",
        f"CustomResourceDefinition/litellmusers.{GROUP}",
        f"CustomResourceDefinition/provisioningpolicies.{GROUP}",
        "Deployment/litellm-operator",
        "Namespace/litellm-operator",
        "PodDisruptionBudget/litellm-operator",
        "Role/litellm-operator-leader-election",
        "RoleBinding/litellm-operator-leader-election",
        "Service/litellm-operator-metrics",
        "ServiceAccount/litellm-operator",
        "ValidatingAdmissionPolicy/litellm-operator-annotation-budget",
        "ValidatingAdmissionPolicyBinding/litellm-operator-annotation-budget",
    ], "no Secret is shipped: the user creates litellm-master-key"
    by_kind = {d["kind"]: d for d in documents}
    config = by_kind["ConfigMap"]["data"]
    assert set(config) == {
        "LITELLM_URL",
        "LITELLM_OPERATOR_NAMESPACES",
        "LITELLM_OPERATOR_LEADER_ELECTION",
        "LITELLM_OPERATOR_RESYNC_SECONDS",
        "LITELLM_OPERATOR_CONCURRENCY",
        "LITELLM_OPERATOR_TIMEOUT_SECONDS",
        "LITELLM_OPERATOR_METRICS_PORT",
    }
    deployment = by_kind["Deployment"]
    spec = deployment["spec"]
    assert config["LITELLM_OPERATOR_LEADER_ELECTION"] == "true", "two replicas need the Lease"
    assert spec["replicas"] == 2
    assert spec["strategy"]["type"] == "RollingUpdate"
    assert by_kind["PodDisruptionBudget"]["spec"] == {
        "minAvailable": 1,
        "selector": spec["selector"],
    }
    pod = spec["template"]["spec"]
    assert pod["serviceAccountName"] == SERVICE_ACCOUNT
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] == 65532
    (container,) = pod["containers"]
    assert container["image"] == "ghcr.io/litellm-operator/litellm-operator:0.1.0"
    assert container["args"] == ["run"]
    security = container["securityContext"]
    assert security["readOnlyRootFilesystem"] is True
    assert security["allowPrivilegeEscalation"] is False
    assert security["capabilities"] == {"drop": ["ALL"]}
    assert security["seccompProfile"] == {"type": "RuntimeDefault"}
    assert {"requests", "limits"} <= set(container["resources"])
    for probe in ("livenessProbe", "readinessProbe"):
        assert container[probe]["httpGet"]["path"] == "/healthz"
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports == {"metrics": 8080, "health": 8081}
    # The master key: a file from the user's Secret, never an environment value.
    env = {e["name"]: e for e in container["env"]}
    assert "LITELLM_MASTER_KEY" not in env
    for name, field in (("POD_NAMESPACE", "metadata.namespace"), ("POD_NAME", "metadata.name")):
        assert env[name]["valueFrom"] == {"fieldRef": {"fieldPath": field}}
    key_file = Path(env["LITELLM_MASTER_KEY_FILE"]["value"])
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    (volume,) = (name for name, path in mounts.items() if Path(path) == key_file.parent)
    assert volumes[volume]["secret"]["secretName"] == "litellm-master-key"
    assert volumes[volume]["secret"]["items"] == [{"key": "master-key", "path": key_file.name}]
    assert container["envFrom"] == [{"configMapRef": {"name": "litellm-operator"}}]


# --- on the API server -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def rbac_installed(kube_env: KubeEnv, crds_installed: list[str]) -> Iterator[None]:
    """Namespace, ServiceAccount, ClusterRole and binding of deploy/manifests (no Deployment)."""
    del crds_installed
    files = [f"--filename={MANIFESTS / name}" for name in RBAC_FILES]
    kube_env.kubectl("apply", *files)
    yield
    kube_env.kubectl("delete", "--ignore-not-found", "--wait=false", *files[1:])


@pytest.fixture(scope="module")
def sa_kube(
    kube_env: KubeEnv, rbac_installed: None, tmp_path_factory: pytest.TempPathFactory
) -> KubeEnv:
    """The API server as the operator's ServiceAccount (a TokenRequest token)."""
    del rbac_installed
    token = kube_env.kubectl(
        "create", "token", SERVICE_ACCOUNT, f"--namespace={NAMESPACE}", "--duration=1h"
    ).stdout.strip()
    assert token.count(".") == 2, "not a JWT"
    path = Path(tmp_path_factory.mktemp("rbac")) / "kubeconfig"
    return kube_env.with_token(token, path)


@pytest.fixture
def rbac_namespace(kube_env: KubeEnv) -> Iterator[str]:
    """A fresh namespace the session operator does not watch."""
    with fresh_namespace(kube_env, f"{RBAC_NAMESPACE_PREFIX}{uuid.uuid4().hex[:8]}") as name:
        yield name


def test_apply_k_passes_server_side_dry_run(kube_env: KubeEnv, rbac_installed: None) -> None:
    """``kubectl apply -k deploy/`` against the real API server: schema, admission, PodSecurity."""
    result = kube_env.kubectl("apply", "--dry-run=server", "-k", str(DEPLOY))
    assert "deployment.apps/litellm-operator" in result.stdout
    assert "PodSecurity" not in result.stderr, result.stderr
    assert "would violate" not in result.stderr, result.stderr


def test_whoami_is_the_service_account(sa_kube: KubeEnv) -> None:
    result = sa_kube.kubectl("auth", "whoami", "--output=jsonpath={.status.userInfo.username}")
    assert result.stdout.strip() == SUBJECT


ALLOWED = [
    ("patch", "litellmusers.litellm.platform.dev/status", "team-a"),
    ("patch", "litellmusers.litellm.platform.dev", "team-a"),
    ("watch", "litellmusers.litellm.platform.dev", None),
    ("patch", "litellmteams.litellm.platform.dev/status", "team-a"),
    ("watch", "litellmteams.litellm.platform.dev", None),
    ("list", "provisioningpolicies.litellm.platform.dev", None),
    ("patch", "provisioningpolicies.litellm.platform.dev", None),
    ("patch", "provisioningpolicies.litellm.platform.dev/status", None),
    ("create", "events", "team-a"),
    ("watch", "customresourcedefinitions.apiextensions.k8s.io", None),
    ("list", "namespaces", None),
    ("list", "secrets", "team-a"),
    ("watch", "secrets", None),
    ("create", "secrets", "team-a"),
    ("patch", "secrets", "team-a"),
    ("delete", "secrets", "team-a"),
    ("get", "leases.coordination.k8s.io", NAMESPACE),
    ("create", "leases.coordination.k8s.io", NAMESPACE),
    ("update", "leases.coordination.k8s.io", NAMESPACE),
]
DENIED = [
    ("get", "secrets", NAMESPACE),
    ("update", "secrets", "team-a"),
    ("delete", "namespaces", None),
    ("create", "pods", "team-a"),
    ("create", "litellmusers.litellm.platform.dev", "team-a"),
    ("delete", "litellmusers.litellm.platform.dev", "team-a"),
    ("update", "litellmusers.litellm.platform.dev/status", "team-a"),
    ("create", "litellmteams.litellm.platform.dev", "team-a"),
    ("delete", "litellmteams.litellm.platform.dev", "team-a"),
    ("create", "provisioningpolicies.litellm.platform.dev", None),
    ("delete", "provisioningpolicies.litellm.platform.dev", None),
    ("update", "customresourcedefinitions.apiextensions.k8s.io", None),
    ("get", "configmaps", NAMESPACE),
    ("create", "serviceaccounts/token", NAMESPACE),
    ("create", "clusterrolebindings.rbac.authorization.k8s.io", None),
    ("update", "leases.coordination.k8s.io", "team-a"),
    ("delete", "leases.coordination.k8s.io", NAMESPACE),
    ("list", "leases.coordination.k8s.io", None),
]


def can_i(kube: KubeEnv, verb: str, resource: str, namespace: str | None) -> bool:
    scope = [f"--namespace={namespace}"] if namespace else ["--all-namespaces"]
    resource, _, subresource = resource.partition("/")  # kubectl reads "kind/x" as a name
    if subresource:
        scope.append(f"--subresource={subresource}")
    result = kube.kubectl("auth", "can-i", verb, resource, *scope, check=False)
    answer = result.stdout.strip()
    assert answer in ("yes", "no"), result.stderr
    return answer == "yes"


@pytest.mark.parametrize(("verb", "resource", "namespace"), ALLOWED)
def test_service_account_may(sa_kube: KubeEnv, verb: str, resource: str, namespace: str) -> None:
    assert can_i(sa_kube, verb, resource, namespace)


@pytest.mark.parametrize(("verb", "resource", "namespace"), DENIED)
def test_service_account_may_not(
    sa_kube: KubeEnv, verb: str, resource: str, namespace: str
) -> None:
    assert not can_i(sa_kube, verb, resource, namespace)


class HealthCheckedOperator(OperatorProcess):
    """The harness's operator process, with kopf's liveness endpoint on (as in the Deployment)."""

    def __init__(self, env: dict[str, str], log_path: Path) -> None:
        super().__init__(env, log_path)
        self.health_port = free_port()

    def start(self) -> None:
        exe = Path(sys.executable).with_name("litellm-operator")
        args = ["run", "--log-format", "plain", "--health-port", str(self.health_port)]
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                [str(exe), *args],
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        eventually(lambda: self.metrics() != "", timeout=30, what="operator metrics endpoint")

    def healthz(self) -> int:
        url = f"http://127.0.0.1:{self.health_port}/healthz"
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                status: int = response.status
                return status
        except OSError:
            return 0


@pytest.fixture
def sa_operator(
    sa_kube: KubeEnv,
    rbac_namespace: str,
    litellm_env: LiteLLMEndpoint,
    tmp_path: Path,
) -> Iterator[HealthCheckedOperator]:
    env = {
        **os.environ,
        "KUBECONFIG": str(sa_kube.kubeconfig),
        "LITELLM_URL": litellm_env.url,
        "LITELLM_MASTER_KEY": litellm_env.master_key.get_secret_value(),
        "LITELLM_OPERATOR_NAMESPACES": rbac_namespace,
        "LITELLM_OPERATOR_RESYNC_SECONDS": "3",
        "LITELLM_OPERATOR_METRICS_PORT": str(free_port()),
        "LITELLM_OPERATOR_TIMEOUT_SECONDS": "3",
        # As shipped: the Lease in the operator's namespace, with the Role's permissions only.
        "LITELLM_OPERATOR_LEADER_ELECTION": "true",
        "POD_NAMESPACE": NAMESPACE,
        "POD_NAME": "rbac-test",
    }
    process = HealthCheckedOperator(env, tmp_path / "operator.log")
    try:
        process.start()
        yield process
    finally:
        process.stop()
        print(f"\nservice-account operator log: {process.log_path}")


async def wait_litellm(
    client: LiteLLMClient,
    user_id: str,
    probe: Callable[[LiteLLMUserRecord | None], bool],
    timeout: float = 30,
) -> None:
    deadline = time.monotonic() + timeout
    record = None
    while time.monotonic() < deadline:
        record = await client.get_user(user_id)
        if probe(record):
            return
        await asyncio.sleep(0.3)
    raise AssertionError(f"LiteLLM user {user_id}: never as expected; last: {record!r}")


def api_key(cluster: Cluster, namespace: str, name: str) -> str | None:
    """The Secret's ``api_key`` (base64, as stored), ``None`` while absent."""
    try:
        found = cluster.core.read_namespaced_secret(name, namespace)
    except ApiException as exc:
        if exc.status == 404:
            return None
        raise
    value = (found.data or {}).get("api_key")
    return None if value is None else str(value)


def secret_exists(cluster: Cluster, namespace: str, name: str) -> bool:
    return api_key(cluster, namespace, name) is not None or bool(
        cluster.core.list_namespaced_secret(namespace, field_selector=f"metadata.name={name}").items
    )


@pytest.mark.integration
async def test_operator_lifecycle_as_the_service_account(
    sa_operator: HealthCheckedOperator,
    cluster: Cluster,
    rbac_namespace: str,
    policy_name: str,
    litellm_client: LiteLLMClient,
) -> None:
    ns = rbac_namespace
    name = f"sa-{uuid.uuid4().hex[:8]}"
    eventually(lambda: sa_operator.healthz() == 200, timeout=30, what="kopf /healthz")
    eventually(lambda: sa_operator.gauge("litellm_operator_leader") == 1, timeout=30, what="lead")

    cluster.create_policy(
        policy_name,
        {
            "allowedNamespaces": ["*"],
            "identities": ANY_IDENTITY,
            "defaults": {"maxBudget": 10, "models": ["gpt-4o-mini"]},
        },
    )
    cluster.create_user(ns, name, {"policyRef": policy_name, "keys": [{"name": "app"}]})
    user = cluster.wait_ready(ns, name, timeout=60)
    assert user["status"]["userId"] == name
    assert user["status"]["effective"]["maxBudget"] == 10
    assert "litellm.platform.dev/finalizer" in user["metadata"]["finalizers"]
    await wait_litellm(litellm_client, name, lambda r: r is not None and r.max_budget == 10)
    assert ("Normal", "Created", f"created LiteLLM user {name!r}") in cluster.events(ns, name)

    # A policy edit reaches the user (nudge annotation or, at worst, the 3 s resync).
    cluster.patch_policy(policy_name, {"defaults": {"maxBudget": 25}})
    await wait_litellm(litellm_client, name, lambda r: r is not None and r.max_budget == 25)
    eventually(
        lambda: (
            (cluster.get_user(ns, name) or {}).get("status", {}).get("policy", {})
            == {"name": policy_name, "generation": 2}
        ),
        timeout=30,
        what="status.policy at generation 2",
    )

    # Keys: the Secret is created (create, list), its key promoted (patch); deleted by someone,
    # it is noticed (watch) and issued again; deleted with the user (delete).
    secret = f"{name}-app"
    first = eventually(lambda: api_key(cluster, ns, secret), timeout=30, what="key Secret")
    cluster.core.delete_namespaced_secret(secret, ns)
    eventually(
        lambda: api_key(cluster, ns, secret) not in (None, first), timeout=30, what="re-issued"
    )

    cluster.delete_user(ns, name)
    eventually(lambda: cluster.get_user(ns, name) is None, timeout=30, what="finalizer removed")
    await wait_litellm(litellm_client, name, lambda r: r is None)
    eventually(lambda: not secret_exists(cluster, ns, secret), timeout=30, what="Secret deleted")

    assert sa_operator.healthz() == 200
    assert sa_operator.proc is not None
    assert sa_operator.proc.poll() is None, "the operator exited"
    problems = permission_errors(sa_operator.log_text())
    assert not problems, "permission errors in the operator log:\n" + "\n".join(problems)
