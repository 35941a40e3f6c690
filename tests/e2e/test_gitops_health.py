"""Health as Flux, Argo CD and ``kubectl wait`` see it, on real objects, through every state.

Each verdict comes from the tool's own code (tests/fixtures/gitops.py): kstatus from
sigs.k8s.io/cli-utils and fluxcd/cli-utils, Flux's ssa ``WaitForSet`` against the API server,
the Argo CD Lua under Argo CD's gopher-lua set-up, and the real ``kubectl wait``. The rule under
test: none of them calls a LiteLLMUser healthy unless LiteLLM holds its effective settings for
the current generation of the resource and of its policy; a policy is healthy only when all of
its users are.

Measured figures are printed (run with ``-s`` to see them).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, cast

import pytest

from litellm_operator.litellm import LiteLLMClient, NewUserRequest
from litellm_operator.models import API_VERSION, GROUP, POLICY_PLURAL, USER_PLURAL, VERSION
from tests.e2e.conftest import RBAC_NAMESPACE_PREFIX
from tests.e2e.operator_harness import Cluster, Forwarder, OperatorProcess, eventually
from tests.fixtures.gitops import argocd_health, flux_wait, kstatus, tools_dir
from tests.fixtures.kube import KubeEnv, fresh_namespace
from tests.fixtures.policies import ANY_IDENTITY

pytestmark = [pytest.mark.e2e, pytest.mark.integration]

POLICY: dict[str, Any] = {
    "allowedNamespaces": ["*"],
    "identities": ANY_IDENTITY,
    "defaults": {"maxBudget": 10, "models": ["gpt-4o-mini"]},
}
HEALTHY = ("Current", "Healthy", True)


@dataclass
class Health:
    """Three tools' verdicts on the objects of one test."""

    cluster: Cluster
    kube: KubeEnv
    namespace: str
    policy: str
    ident: Callable[[str], str]

    def user(self, name: str, namespace: str | None = None) -> dict[str, Any]:
        obj = self.cluster.get_user(namespace or self.namespace, name)
        assert obj is not None, f"no LiteLLMUser {name}"
        return obj

    def policy_obj(self) -> dict[str, Any]:
        obj = self.cluster.custom.get_cluster_custom_object(
            GROUP, VERSION, POLICY_PLURAL, self.policy
        )
        return cast(dict[str, Any], obj)

    def kubectl_ready(self, kind: str, name: str, namespace: str | None = None) -> bool:
        """``kubectl wait --for=condition=Ready`` met right now (checked once, not waited for)."""
        scope = ["-n", namespace or self.namespace] if kind == USER_PLURAL else []
        result = self.kube.kubectl(
            "wait", "--for=condition=Ready", "--timeout=0s", *scope, f"{kind}/{name}", check=False
        )
        return result.returncode == 0

    def of_user(self, name: str, namespace: str | None = None) -> tuple[str, str, bool]:
        obj = self.user(name, namespace)
        return kstatus(obj), argocd_health(obj)[0], self.kubectl_ready(USER_PLURAL, name, namespace)

    def of_policy(self) -> tuple[str, str, bool]:
        obj = self.policy_obj()
        return kstatus(obj), argocd_health(obj)[0], self.kubectl_ready(POLICY_PLURAL, self.policy)

    def ref(self, name: str) -> str:
        return f"{GROUP}/LiteLLMUser/{self.namespace}/{name}"

    def policy_ref(self) -> str:
        return f"{GROUP}/ProvisioningPolicy//{self.policy}"

    def create_user(self, name: str, **spec: Any) -> dict[str, Any]:
        return self.cluster.create_user(self.namespace, name, {"policyRef": self.policy, **spec})


@pytest.fixture
def health(
    operator: OperatorProcess,
    cluster: Cluster,
    kube_env: KubeEnv,
    namespace: str,
    policy_name: str,
    ident: Callable[[str], str],
) -> Health:
    del operator
    tools_dir()  # build (or find) the checkers before any timing starts
    return Health(cluster, kube_env, namespace, policy_name, ident)


def user_body(namespace: str, name: str, spec: dict[str, Any]) -> dict[str, Any]:
    meta = {"name": name, "namespace": namespace}
    return {"apiVersion": API_VERSION, "kind": "LiteLLMUser", "metadata": meta, "spec": spec}


def test_new_objects_are_in_progress_from_their_first_read(health: Health) -> None:
    """No operator acts in an ``rbac-*`` namespace here: the object stays as the API server made
    it, and every tool must keep waiting (the window that used to read Current)."""
    ns = f"{RBAC_NAMESPACE_PREFIX}gitops-{uuid.uuid4().hex[:6]}"
    with fresh_namespace(health.kube, ns):
        name = health.ident("new")
        created = cast(
            dict[str, Any],
            health.cluster.custom.create_namespaced_custom_object(
                GROUP, VERSION, ns, USER_PLURAL, user_body(ns, name, {"policyRef": "nope"})
            ),
        )
        # The create response itself already carries the schema's pending status.
        assert created["status"]["observedGeneration"] == 0
        assert kstatus(created) == "InProgress"
        assert argocd_health(created)[0] == "Progressing"
        assert health.of_user(name, ns) == ("InProgress", "Progressing", False)
        waited = flux_wait(health.kube.kubeconfig, [f"{GROUP}/LiteLLMUser/{ns}/{name}"], timeout=2)
        assert not waited.ready
        print(f"\nno-status window: 0 s (the create response has status {created['status']})")


def test_a_typo_in_policy_ref_is_never_healthy(health: Health) -> None:
    name = health.ident("typo")
    health.cluster.create_user(health.namespace, name, {"policyRef": health.ident("no-such")})
    waited = flux_wait(health.kube.kubeconfig, [health.ref(name)], timeout=10, fail_fast=True)
    assert not waited.ready
    assert "Failed" in waited.error or "failed" in waited.error, waited.error
    health.cluster.wait_reason(health.namespace, name, "PolicyNotFound")
    assert health.of_user(name) == ("Failed", "Degraded", False)


async def test_flux_wait_returns_only_once_litellm_holds_the_user(
    health: Health, litellm_client: LiteLLMClient
) -> None:
    """Flux polls right after applying; its wait must end only when LiteLLM has the user."""
    created = health.cluster.create_policy(health.policy, POLICY)
    assert kstatus(created) == "InProgress", "a new policy is in progress from its first read"
    for attempt in range(4):
        name = health.ident(f"race{attempt}")
        health.create_user(name)
        waited = flux_wait(
            health.kube.kubeconfig, [health.ref(name), health.policy_ref()], timeout=60
        )
        record = await litellm_client.get_user(name)  # read right after Flux said done
        assert waited.ready, waited.error
        assert record is not None, f"Flux said ready after {waited.seconds}s; LiteLLM has no user"
        assert record.max_budget == 10
        print(f"\nFlux WaitForSet ready after {waited.seconds:.3f}s; LiteLLM holds the user")
    eventually(lambda: health.of_policy() == HEALTHY, timeout=10, what="the policy rolled out")


async def test_lifecycle_of_one_user(health: Health, forwarder: Forwarder) -> None:
    """Ready → spec edited → suspended → LiteLLM down during a spec edit → deleting."""
    health.cluster.create_policy(health.policy, POLICY)
    name = health.ident("life")
    health.create_user(name)
    health.cluster.wait_ready(health.namespace, name)
    assert health.of_user(name) == HEALTHY
    status = health.user(name)["status"]
    assert status["maxBudget"] == 10, "BUDGET shows what LiteLLM holds"

    # Spec edited: the response to the edit itself is already in progress for every tool.
    edited = cast(
        dict[str, Any],
        health.cluster.custom.patch_namespaced_custom_object(
            GROUP, VERSION, health.namespace, USER_PLURAL, name, {"spec": {"suspend": True}}
        ),
    )
    assert kstatus(edited) == "InProgress"
    assert argocd_health(edited)[0] == "Progressing"

    def suspended() -> dict[str, Any] | None:
        obj = health.user(name)
        fresh = obj["status"].get("observedGeneration") == obj["metadata"]["generation"]
        reasons = [c["reason"] for c in obj["status"]["conditions"] if c["type"] == "Ready"]
        return obj if fresh and reasons == ["Suspended"] else None

    eventually(suspended, timeout=30, what=f"{name} Suspended")
    assert health.of_user(name) == ("Current", "Suspended", True)

    forwarder.cut()
    try:
        health.cluster.patch_user(health.namespace, name, {"suspend": False})
        health.cluster.wait_reason(health.namespace, name, "LiteLLMUnavailable", timeout=60)
        assert health.of_user(name) == ("InProgress", "Progressing", False)
        waited = flux_wait(health.kube.kubeconfig, [health.ref(name)], timeout=2)
        assert not waited.ready

        # Deleting: the finalizer holds the object while LiteLLM is unreachable.
        health.cluster.delete_user(health.namespace, name)
        deleting = health.user(name)
        assert deleting["metadata"].get("deletionTimestamp")
        assert kstatus(deleting) == "Terminating"
        assert argocd_health(deleting)[0] == "Progressing"
    finally:
        forwarder.restore()
    eventually(
        lambda: health.cluster.get_user(health.namespace, name) is None,
        timeout=90,
        what=f"{name} deleted",
    )


def until(probe: Callable[[], bool], timeout: float, every: float = 0.02) -> float:
    """Seconds until ``probe`` holds (polled every ``every``); fails after ``timeout``."""
    started = time.monotonic()
    while not probe():
        assert time.monotonic() - started < timeout, "timed out"
        time.sleep(every)
    return time.monotonic() - started


async def test_policy_edit_makes_its_users_and_itself_progress_until_litellm_has_it(
    health: Health, forwarder: Forwarder, litellm_client: LiteLLMClient
) -> None:
    health.cluster.create_policy(health.policy, POLICY)
    names = [health.ident("pe") for _ in range(3)]
    for name in names:
        health.create_user(name)
    for name in names:
        health.cluster.wait_ready(health.namespace, name)
    refs = [health.ref(n) for n in names] + [health.policy_ref()]
    waited = flux_wait(health.kube.kubeconfig, refs, timeout=30)
    assert waited.ready, waited.error
    status = health.policy_obj()["status"]
    assert (status["users"], status["updatedUsers"], status["readyUsers"]) == (3, 3, 3)
    assert health.of_policy() == HEALTHY

    forwarder.pause()  # LiteLLM hangs: a reconcile only fails after the client's timeout
    try:
        health.cluster.patch_policy(health.policy, {"defaults": {"maxBudget": 25}})

        def every_user_not_ready() -> bool:
            return all(
                health.cluster.condition(health.namespace, n)["status"] != "True" for n in names
            )

        took = until(every_user_not_ready, timeout=10)
        print(f"\nusers non-Ready {took:.3f}s after the policy edit (LiteLLM hung)")
        assert took < 2, "non-Ready only once a reconcile failed, not when the policy changed"
        for name in names:
            assert health.of_user(name) == ("InProgress", "Progressing", False)
        assert health.of_policy() == ("InProgress", "Progressing", False)
        assert not flux_wait(health.kube.kubeconfig, refs, timeout=2).ready
        # While LiteLLM stays hung, nothing turns healthy again.
        time.sleep(3)
        assert health.of_policy()[0] == "InProgress"
        assert all(health.of_user(n)[0] == "InProgress" for n in names)
    finally:
        forwarder.restore()

    waited = flux_wait(health.kube.kubeconfig, refs, timeout=90)
    assert waited.ready, waited.error
    for name in names:  # Flux said done: LiteLLM must hold the new budget for every user
        record = await litellm_client.get_user(name)
        assert record is not None
        assert record.max_budget == 25
    status = health.policy_obj()["status"]
    assert (status["users"], status["updatedUsers"], status["readyUsers"]) == (3, 3, 3)
    assert status["observedGeneration"] == 2
    print(f"policy and users ready {waited.seconds:.3f}s after LiteLLM came back")


def test_deleted_policy_turns_its_users_policy_not_found(health: Health) -> None:
    health.cluster.create_policy(health.policy, POLICY)
    names = [health.ident("pd") for _ in range(2)]
    for name in names:
        health.create_user(name)
    for name in names:
        health.cluster.wait_ready(health.namespace, name)
    health.cluster.delete_policy(health.policy)
    deleted = time.monotonic()

    def not_found() -> bool:
        return all(
            health.cluster.condition(health.namespace, n).get("reason") == "PolicyNotFound"
            for n in names
        )

    until(not_found, timeout=15, every=0.05)
    print(f"\nusers PolicyNotFound {time.monotonic() - deleted:.3f}s after the policy was deleted")
    for name in names:
        assert health.of_user(name) == ("Failed", "Degraded", False)


def test_forbidden_override_fails_the_user_and_its_policy(health: Health) -> None:
    health.cluster.create_policy(health.policy, POLICY)
    ok, bad = health.ident("ok"), health.ident("forbidden")
    health.create_user(ok)
    health.create_user(bad, overrides={"maxBudget": 5})
    health.cluster.wait_ready(health.namespace, ok)
    health.cluster.wait_reason(health.namespace, bad, "OverrideForbidden")
    assert health.of_user(bad) == ("Failed", "Degraded", False)

    def policy_stalled() -> bool:
        return health.of_policy() == ("Failed", "Degraded", False)

    until(policy_stalled, timeout=15, every=0.2)
    status = health.policy_obj()["status"]
    assert (status["users"], status["updatedUsers"], status["readyUsers"]) == (2, 2, 1)


async def test_foreign_litellm_user_is_not_healthy_and_shows_no_budget(
    health: Health, litellm_client: LiteLLMClient
) -> None:
    health.cluster.create_policy(health.policy, POLICY)
    name = health.ident("foreign")
    await litellm_client.create_user(NewUserRequest.of(user_id=name, max_budget=3.0))
    health.create_user(name)
    health.cluster.wait_reason(health.namespace, name, "AlreadyExists")
    assert health.of_user(name) == ("Failed", "Degraded", False)
    table = health.kube.kubectl("get", "llmuser", name, "-n", health.namespace).stdout
    header, row = table.splitlines()
    budget = row[header.index("BUDGET") : header.index("READY")].strip()
    assert budget == "", f"BUDGET must not show the desired budget:\n{table}"
