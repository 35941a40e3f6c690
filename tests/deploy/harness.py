"""What the deploy tests share: the session's :class:`DeployEnv` and the checks every install
path passes (rolled out, one leader, no restart, /metrics through the Service, a user Ready)."""

from __future__ import annotations

import asyncio
import json
import subprocess
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import yaml

from devenv.litellm import LiteLLMEndpoint
from devenv.node import Node
from litellm_operator.litellm import LiteLLMClient
from litellm_operator.litellm.models import LiteLLMUserRecord
from tests.e2e.operator_harness import eventually

REPO_ROOT = Path(__file__).resolve().parents[2]
HACK = REPO_ROOT / "hack"
DEPLOY = REPO_ROOT / "deploy"
CHART = DEPLOY / "helm" / "litellm-operator"
EXAMPLES = REPO_ROOT / "examples"
NAMESPACE = "litellm-operator"
NEXT_TAG_SUFFIX = "-next"
"""The upgrade test's "new version": the same image under another tag (a new pod template)."""


@dataclass
class DeployEnv:
    """What the deploy tests work with: the node, its kubectl, helm, LiteLLM and the images."""

    node: Node
    litellm: LiteLLMEndpoint
    image: str
    helm_binary: str

    @property
    def repository(self) -> str:
        return self.image.rsplit(":", 1)[0]

    @property
    def tag(self) -> str:
        return self.image.rsplit(":", 1)[1]

    @property
    def next_tag(self) -> str:
        return self.tag + NEXT_TAG_SUFFIX

    def kubectl(self, *args: str, check: bool = True, timeout: float = 180) -> str:
        return self.node.kubectl(*args, check=check, timeout=timeout)

    def apply(self, document: dict[str, Any] | str) -> None:
        """``kubectl apply`` of one object (a dict) or a YAML file's text."""
        text = document if isinstance(document, str) else yaml.safe_dump(document)
        with tempfile.NamedTemporaryFile("w", suffix=".yaml") as file:
            file.write(text)
            file.flush()
            self.kubectl("apply", "-f", file.name)

    def helm(self, *args: str, timeout: float = 300) -> str:
        command = [self.helm_binary, f"--kubeconfig={self.node.kubeconfig}", *args]
        result = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
        if result.returncode != 0:
            raise AssertionError(f"helm {' '.join(args)} failed:\n{result.stderr}")
        return result.stdout

    def get(self, *args: str) -> dict[str, Any]:
        """``kubectl get ... -o json``, parsed."""
        parsed: dict[str, Any] = json.loads(self.kubectl("get", *args, "-o", "json"))
        return parsed

    def litellm_user(self, user_id: str) -> LiteLLMUserRecord | None:
        async def read() -> LiteLLMUserRecord | None:
            async with LiteLLMClient(self.litellm.url, self.litellm.master_key) as client:
                return await client.get_user(user_id)

        return asyncio.run(read())

    def delete_litellm_users(self, user_ids: list[str]) -> None:
        async def delete() -> None:
            async with LiteLLMClient(self.litellm.url, self.litellm.master_key) as client:
                await client.delete_users(user_ids)

        asyncio.run(delete())

    def master_key_secret(self, namespace: str = NAMESPACE) -> None:
        """The Install section's first step: the namespace and the master key's Secret."""
        self.kubectl("create", "namespace", namespace)
        self.kubectl(
            "-n", namespace, "create", "secret", "generic", "litellm-master-key",
            f"--from-literal=master-key={self.litellm.master_key.get_secret_value()}",
        )  # fmt: skip


def wait_for(
    what: str, probe: Callable[[], Any], timeout: float = 120, interval: float = 0.5
) -> Any:
    """:func:`tests.e2e.operator_harness.eventually` with the deploy tests' defaults (a pod
    takes longer than a process)."""
    return eventually(probe, timeout=timeout, what=what, every=interval)


def answered(response: httpx.Response | None) -> httpx.Response | None:
    """The response if it is a 200, else None (for :func:`wait_for`)."""
    return response if response is not None and response.status_code == 200 else None


def http_get(url: str) -> httpx.Response | None:
    try:
        return httpx.get(url, timeout=3)
    except httpx.HTTPError:
        return None


# ------------------------------------------------------------------------ install checks

OPERATOR_PODS = "app.kubernetes.io/name=litellm-operator,app.kubernetes.io/component=operator"
LEASE = "litellm-operator"
DEPLOYMENT = "litellm-operator"
METRICS_SERVICE = "litellm-operator-metrics"
ROLLOUT_TIMEOUT = "240s"


def install_crds(env: DeployEnv) -> None:
    env.kubectl("apply", "--server-side", "-f", str(DEPLOY / "crds"))


def apply_policy(env: DeployEnv) -> None:
    """examples/policy.yaml, once the CRDs (just installed) are served."""
    env.kubectl("wait", "--for=condition=Established", "crds", "--all", "--timeout=60s")
    env.kubectl("apply", "-f", str(EXAMPLES / "policy.yaml"))


def example_user(name: str, namespace: str | None = None) -> dict[str, Any]:
    """A LiteLLMUser from examples/users (optionally moved to another namespace)."""
    user: dict[str, Any] = yaml.safe_load((EXAMPLES / "users" / f"{name}.yaml").read_text())
    if namespace is not None:
        user["metadata"]["namespace"] = namespace
    return user


def ready_status(env: DeployEnv, namespace: str, name: str) -> dict[str, Any] | None:
    """The LiteLLMUser's status once its Ready condition is True."""
    found = env.kubectl(
        "-n", namespace, "get", "litellmuser", name, "-o", "json", "--ignore-not-found", check=False
    )  # fmt: skip
    if not found:
        return None
    status: dict[str, Any] = json.loads(found).get("status") or {}
    conditions = {c.get("type"): c.get("status") for c in status.get("conditions", [])}
    return status if conditions.get("Ready") == "True" else None


def assert_user_reconciled(env: DeployEnv, user: dict[str, Any]) -> str:
    """Apply ``user``; it reaches Ready and exists in LiteLLM as specified. Returns its id."""
    env.apply(user)
    namespace, name = user["metadata"]["namespace"], user["metadata"]["name"]
    status = wait_for(f"{namespace}/{name} Ready", lambda: ready_status(env, namespace, name))
    user_id: str = status["userId"]
    record = env.litellm_user(user_id)
    assert record is not None, f"{user_id} is Ready but not in LiteLLM"
    assert record.user_email == user["spec"].get("email")
    return user_id


def operator_pods(env: DeployEnv) -> list[dict[str, Any]]:
    """The operator's pods that are not being deleted."""
    pods = env.get("-n", NAMESPACE, "pods", "-l", OPERATOR_PODS)["items"]
    return [p for p in pods if not p["metadata"].get("deletionTimestamp")]


def restarts(pod: dict[str, Any]) -> int:
    return sum(c.get("restartCount", 0) for c in pod["status"].get("containerStatuses", []))


def is_ready(pod: dict[str, Any]) -> bool:
    conditions = {c["type"]: c["status"] for c in pod["status"].get("conditions", [])}
    return conditions.get("Ready") == "True"


def lease_holder(env: DeployEnv) -> str:
    found = env.kubectl(
        "-n", NAMESPACE, "get", "lease", LEASE, "--ignore-not-found",
        "-o", "jsonpath={.spec.holderIdentity}", check=False,
    )  # fmt: skip
    return found.strip()


def leader_pod(env: DeployEnv) -> str | None:
    """The name of the pod whose process holds the Lease (holder: pod name + suffix)."""
    holder = lease_holder(env)
    names = [p["metadata"]["name"] for p in operator_pods(env)]
    return next((n for n in names if holder.startswith(f"{n}_")), None)


def pod_metrics(pod_ip: str, port: int = 8080) -> str:
    response = http_get(f"http://{pod_ip}:{port}/metrics")
    assert response is not None, f"no /metrics on {pod_ip}"
    assert response.status_code == 200
    return response.text


def metric(text: str, name: str, **labels: str) -> float:
    """The sum of the samples of ``name`` whose labels include ``labels`` (0 if none)."""
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name) and all(f'{k}="{v}"' in line for k, v in labels.items()):
            head, value = line.rsplit(" ", 1)
            if head == name or head.startswith(name + "{"):
                total += float(value)
    return total


def assert_rolled_out(env: DeployEnv) -> list[dict[str, Any]]:
    """Both replicas Ready, zero restarts, one holds the Lease, /metrics through the Service."""
    env.kubectl(
        "-n", NAMESPACE, "rollout", "status", f"deployment/{DEPLOYMENT}",
        f"--timeout={ROLLOUT_TIMEOUT}", timeout=300,
    )  # fmt: skip

    def both_ready() -> list[dict[str, Any]] | None:
        pods = operator_pods(env)
        return pods if len(pods) == 2 and all(map(is_ready, pods)) else None

    pods: list[dict[str, Any]] = wait_for("two Ready operator pods", both_ready)
    assert [restarts(p) for p in pods] == [0, 0], "an operator container restarted"
    wait_for("a pod holding the Lease", lambda: leader_pod(env))
    service = env.get("-n", NAMESPACE, "service", METRICS_SERVICE)
    url = f"http://{service['spec']['clusterIP']}:8080/metrics"
    # Right after a rollout kube-proxy may still route the Service to the pods just replaced.
    response = wait_for("/metrics through the Service", lambda: answered(http_get(url)), timeout=60)
    assert "litellm_operator_leader" in response.text
    return pods


def assert_no_restarts(env: DeployEnv) -> None:
    counts = {p["metadata"]["name"]: restarts(p) for p in operator_pods(env)}
    assert all(count == 0 for count in counts.values()), f"restarts: {counts}"


MARKER_PREFIX = "litellm.platform.dev/"
"""The operator's ownership markers in a LiteLLM user's metadata (litellm_operator.users.plan)."""
MEASUREMENTS: list[str] = []
"""Figures the tests measured, printed at the end of the session (failover time, ...)."""


def measured(line: str) -> None:
    MEASUREMENTS.append(line)


def assert_readme_uninstall(env: DeployEnv, delete_operator: Callable[[], None]) -> None:
    """The README's uninstall steps: the LiteLLMUsers and ProvisioningPolicies first (while the
    operator runs: its finalizers), then the operator (``delete_operator``), then the CRDs.
    LiteLLM keeps exactly what the README promises: a ``Retain`` user, without the operator's
    markers; a ``Delete`` user is gone."""
    users = env.get("litellmusers", "--all-namespaces")["items"]
    ids = {u["spec"].get("deletionPolicy", "Delete"): u["status"]["userId"] for u in users}
    env.kubectl("delete", "litellmusers", "--all", "--all-namespaces", "--wait", timeout=120)
    env.kubectl("delete", "provisioningpolicies", "--all", "--wait", timeout=120)
    delete_operator()
    env.kubectl("delete", "-f", str(DEPLOY / "crds"), "--ignore-not-found", "--wait", timeout=120)
    assert env.litellm_user(ids["Delete"]) is None, "a Delete user was left in LiteLLM"
    retained = env.litellm_user(ids["Retain"])
    assert retained is not None, "a Retain user was deleted from LiteLLM"
    markers = [k for k in (retained.metadata or {}) if k.startswith(MARKER_PREFIX)]
    assert markers == [], f"the retained user still carries the operator's markers: {markers}"
    crds = env.kubectl("get", "crds", "-o", "name")
    assert "litellm.platform.dev" not in crds
    env.delete_litellm_users([ids["Retain"]])  # the next install path starts from an empty LiteLLM


def apply_example_users(env: DeployEnv) -> None:
    """bob (team-a, Delete) and carol (platform, Retain, an explicit id) Ready in LiteLLM.
    (alice's role names a LiteLLM team, which the examples do not create.)"""
    for namespace in ("team-a", "platform"):
        env.kubectl("create", "namespace", namespace)
    for name in ("bob", "carol"):
        assert_user_reconciled(env, example_user(name))


def delete_namespaces(env: DeployEnv, *names: str) -> None:
    for name in names:
        env.kubectl("delete", "namespace", name, "--ignore-not-found", "--wait", timeout=120)
