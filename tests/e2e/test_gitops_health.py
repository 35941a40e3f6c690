"""GitOps health of real objects: what Argo CD (deploy/argocd Lua) and Flux (kstatus) conclude
from the statuses the operator actually writes: Ready, Suspended, Stalled and Reconciling users."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any, cast

import pytest

from litellm_operator.models import GROUP, POLICY_PLURAL, VERSION
from tests.e2e.operator_harness import Cluster, Forwarder, OperatorProcess, eventually
from tests.fixtures.gitops import argocd_health

pytestmark = [pytest.mark.e2e, pytest.mark.integration]

POLICY: dict[str, Any] = {
    "allowedNamespaces": ["*"],
    "defaults": {"maxBudget": 10, "models": ["gpt-4o-mini"]},
}


def kstatus_status(obj: dict[str, Any]) -> str:
    """The kstatus verdict (Current / InProgress / Failed) that Flux waits on.

    kstatus's generic rules for custom resources: a pending deletion or an observedGeneration
    behind metadata.generation is InProgress; Reconciling=True is InProgress; Stalled=True is
    Failed. Then the Ready convention: Ready=True is Current, a Ready that is not True is
    InProgress. With no conditions at all kstatus has nothing to go on and says Current.
    """
    meta = obj.get("metadata") or {}
    status = obj.get("status") or {}
    if meta.get("deletionTimestamp"):
        return "InProgress"
    observed = status.get("observedGeneration")
    if observed is not None and observed != meta.get("generation"):
        return "InProgress"
    conditions = {c.get("type"): c for c in status.get("conditions") or []}
    if (conditions.get("Reconciling") or {}).get("status") == "True":
        return "InProgress"
    if (conditions.get("Stalled") or {}).get("status") == "True":
        return "Failed"
    ready = conditions.get("Ready")
    if ready is not None and ready.get("status") != "True":
        return "InProgress"
    return "Current"


def ready_message(obj: dict[str, Any]) -> str:
    (ready,) = (c for c in obj["status"]["conditions"] if c["type"] == "Ready")
    message: str = ready["message"]
    return message


def fetch(cluster: Cluster, namespace: str, name: str) -> dict[str, Any]:
    obj = cluster.get_user(namespace, name)
    assert obj is not None
    return obj


def test_unit_kstatus_rules() -> None:
    """The checker itself, on the objects kstatus documents (no cluster needed)."""
    gen = {"generation": 2}
    assert kstatus_status({"metadata": gen}) == "Current"
    assert kstatus_status({"metadata": gen, "status": {"observedGeneration": 1}}) == "InProgress"
    deleting = {**gen, "deletionTimestamp": "2025-01-01T00:00:00Z"}
    assert kstatus_status({"metadata": deleting}) == "InProgress"
    stalled = [{"type": "Stalled", "status": "True"}, {"type": "Ready", "status": "False"}]
    assert kstatus_status({"metadata": gen, "status": {"conditions": stalled}}) == "Failed"


async def test_ready_and_suspended_users(
    operator: OperatorProcess,
    cluster: Cluster,
    namespace: str,
    policy_name: str,
    ident: Callable[[str], str],
) -> None:
    del operator
    cluster.create_policy(policy_name, POLICY)
    name = ident("healthy")
    cluster.create_user(namespace, name, {"policyRef": policy_name})
    obj = cluster.wait_ready(namespace, name)
    assert argocd_health(obj) == ("Healthy", ready_message(obj))
    assert kstatus_status(obj) == "Current"

    # The same object once its spec changed and before the operator caught up.
    edited = copy.deepcopy(obj)
    edited["metadata"]["generation"] += 1
    assert argocd_health(edited)[0] == "Progressing"
    assert kstatus_status(edited) == "InProgress"

    policy = cluster.custom.get_cluster_custom_object(GROUP, VERSION, POLICY_PLURAL, policy_name)
    assert argocd_health(cast(dict[str, Any], policy))[0] == "Healthy"

    cluster.patch_user(namespace, name, {"suspend": True})

    def suspended() -> dict[str, Any] | None:
        current = fetch(cluster, namespace, name)
        status = current.get("status") or {}
        fresh = status.get("observedGeneration") == current["metadata"]["generation"]
        ready = cluster.condition(namespace, name)
        return current if fresh and ready.get("reason") == "Suspended" else None

    obj = eventually(suspended, timeout=30, what=f"{name} Suspended")
    assert argocd_health(obj) == ("Suspended", ready_message(obj))
    assert kstatus_status(obj) == "Current"


async def test_stalled_user(
    operator: OperatorProcess, cluster: Cluster, namespace: str, ident: Callable[[str], str]
) -> None:
    del operator
    name = ident("stalled")
    cluster.create_user(namespace, name, {"policyRef": ident("no-such-policy")})
    cluster.wait_reason(namespace, name, "PolicyNotFound")
    obj = fetch(cluster, namespace, name)
    assert cluster.condition(namespace, name, "Stalled")["status"] == "True"
    assert argocd_health(obj) == ("Degraded", ready_message(obj))
    assert kstatus_status(obj) == "Failed"


async def test_reconciling_user_during_an_outage(
    operator: OperatorProcess,
    cluster: Cluster,
    forwarder: Forwarder,
    namespace: str,
    policy_name: str,
    ident: Callable[[str], str],
) -> None:
    del operator
    cluster.create_policy(policy_name, POLICY)
    name = ident("outage")
    forwarder.cut()
    try:
        cluster.create_user(namespace, name, {"policyRef": policy_name})
        cluster.wait_reason(namespace, name, "LiteLLMUnavailable", timeout=60)
        obj = fetch(cluster, namespace, name)
    finally:
        forwarder.restore()
    assert cluster.condition(namespace, name, "Reconciling")["status"] == "True"
    assert argocd_health(obj) == ("Progressing", ready_message(obj))
    assert kstatus_status(obj) == "InProgress"

    obj = cluster.wait_ready(namespace, name, timeout=90)
    assert argocd_health(obj)[0] == "Healthy"
    assert kstatus_status(obj) == "Current"
