"""The operator end to end: real API server, real LiteLLM, assertions on both sides."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import pytest

from litellm_operator.litellm import LiteLLMClient
from litellm_operator.plan import MANAGED_BY, OWNER_UID, POLICY_NAME
from tests.e2e.conftest import RESYNC_SECONDS
from tests.e2e.operator_harness import Cluster, Forwarder, OperatorProcess, eventually

pytestmark = [pytest.mark.e2e, pytest.mark.integration]

POLICY: dict[str, Any] = {
    "defaults": {
        "maxBudget": 10,
        "budgetDuration": "30d",
        "models": ["gpt-4o-mini"],
        "metadata": {"cost-center": "platform"},
    },
    "roles": [
        {"group": "ai-power-users", "maxBudget": 100, "models": ["gpt-4o", "gpt-4o-mini"]},
    ],
    "overrides": {"allowedFields": ["maxBudget"], "maxBudget": 50},
}


async def wait_litellm(
    client: LiteLLMClient, user_id: str, probe: Callable[[Any], bool], timeout: float = 30
) -> Any:
    deadline = time.monotonic() + timeout
    record = None
    while time.monotonic() < deadline:
        record = await client.get_user(user_id)
        if record is not None and probe(record):
            return record
        await asyncio.sleep(0.3)
    raise AssertionError(f"LiteLLM user {user_id} never matched; last: {record!r}")


async def test_create_update_and_delete(
    operator: OperatorProcess,
    cluster: Cluster,
    namespace: str,
    policy_name: str,
    ident: Callable[[str], str],
    litellm_client: LiteLLMClient,
) -> None:
    cluster.create_policy(policy_name, POLICY)
    name = ident("alice")
    created = cluster.create_user(
        namespace,
        name,
        {
            "policyRef": policy_name,
            "groups": ["group:default/AI-Power-Users"],
            "email": f"{name}@example.com",
        },
    )
    user = cluster.wait_ready(namespace, name)
    status = user["status"]
    assert status["userId"] == name
    assert status["matchedRole"] == "ai-power-users"
    assert status["effective"]["maxBudget"] == 100
    assert status["policy"] == {"name": policy_name, "generation": 1}
    assert status["sources"]["maxBudget"] == "role"

    record = await litellm_client.get_user(name)
    assert record is not None
    assert record.max_budget == 100
    assert sorted(record.models) == ["gpt-4o", "gpt-4o-mini"]
    assert record.user_email == f"{name}@example.com"
    assert record.user_role == "internal_user"
    assert record.metadata[MANAGED_BY] == "litellm-operator"
    assert record.metadata[OWNER_UID] == created["metadata"]["uid"]
    assert record.metadata[POLICY_NAME] == policy_name
    assert record.metadata["cost-center"] == "platform"
    reset_at = record.budget_reset_at
    assert ("Normal", "Created", f"created LiteLLM user {name!r}") in cluster.events(
        namespace, name
    )

    cluster.patch_user(namespace, name, {"overrides": {"maxBudget": 40}})
    await wait_litellm(litellm_client, name, lambda r: r.max_budget == 40)
    user = cluster.wait_ready(namespace, name)
    assert user["status"]["sources"]["maxBudget"] == "override"
    record = await litellm_client.get_user(name)
    assert record is not None
    assert record.budget_reset_at == reset_at, "an unchanged budget_duration was resent"

    cluster.delete_user(namespace, name)
    eventually(lambda: cluster.get_user(namespace, name) is None, timeout=30, what="user deleted")
    assert await litellm_client.get_user(name) is None


async def test_policy_edit_reaches_every_user_of_the_policy(
    operator: OperatorProcess,
    cluster: Cluster,
    namespace: str,
    policy_name: str,
    ident: Callable[[str], str],
    litellm_client: LiteLLMClient,
) -> None:
    cluster.create_policy(policy_name, POLICY)
    names = [ident("u") for _ in range(3)]
    for name in names:
        cluster.create_user(namespace, name, {"policyRef": policy_name})
    for name in names:
        cluster.wait_ready(namespace, name)

    started = time.monotonic()
    cluster.patch_policy(policy_name, {"defaults": {"maxBudget": 25, "tpmLimit": 5000}})
    for name in names:
        await wait_litellm(
            litellm_client, name, lambda r: r.max_budget == 25 and r.tpm_limit == 5000, timeout=20
        )
    elapsed = time.monotonic() - started
    assert elapsed < RESYNC_SECONDS * 5
    for name in names:
        user = cluster.wait_ready(namespace, name)
        assert user["status"]["policy"]["generation"] == 2


async def test_missing_policy_changes_nothing_until_it_exists(
    operator: OperatorProcess,
    cluster: Cluster,
    namespace: str,
    policy_name: str,
    ident: Callable[[str], str],
    litellm_client: LiteLLMClient,
) -> None:
    name = ident("orphan")
    cluster.create_user(namespace, name, {"policyRef": policy_name})
    cond = cluster.wait_reason(namespace, name, "PolicyNotFound")
    assert cond["status"] == "False"
    assert cluster.condition(namespace, name, "Stalled")["status"] == "True"
    assert await litellm_client.get_user(name) is None

    cluster.create_policy(policy_name, POLICY)
    cluster.wait_ready(namespace, name)
    assert await litellm_client.get_user(name) is not None


async def test_drift_is_reverted_and_steady_state_writes_nothing(
    operator: OperatorProcess,
    cluster: Cluster,
    namespace: str,
    policy_name: str,
    ident: Callable[[str], str],
    litellm_client: LiteLLMClient,
) -> None:
    team = ident("team")
    await litellm_client.new_team(team)
    cluster.create_policy(
        policy_name, {**POLICY, "defaults": {**POLICY["defaults"], "teams": [team]}}
    )
    name = ident("drift")
    cluster.create_user(namespace, name, {"policyRef": policy_name})
    user = cluster.wait_ready(namespace, name)
    assert user["status"]["managedTeams"] == [team]
    await wait_litellm(litellm_client, name, lambda r: team in r.teams)

    # Steady state: several resync intervals, no LiteLLM write and no Kubernetes write.
    await asyncio.sleep(RESYNC_SECONDS)
    version = (cluster.get_user(namespace, name) or {})["metadata"]["resourceVersion"]
    writes_before = sum(
        operator.counter("litellm_operator_litellm_requests_total", endpoint=e)
        for e in ("/user/update", "/user/new", "/team/member_add", "/team/member_delete")
    )
    lists_before = operator.counter(
        "litellm_operator_litellm_requests_total", endpoint="/user/list"
    )
    await asyncio.sleep(RESYNC_SECONDS * 3)
    writes_after = sum(
        operator.counter("litellm_operator_litellm_requests_total", endpoint=e)
        for e in ("/user/update", "/user/new", "/team/member_add", "/team/member_delete")
    )
    assert (cluster.get_user(namespace, name) or {})["metadata"]["resourceVersion"] == version
    assert writes_after == writes_before
    assert (
        operator.counter("litellm_operator_litellm_requests_total", endpoint="/user/list")
        > lists_before
    )

    # Drift: budget raised and team left behind the operator's back.
    await litellm_client.update_user(name, {"max_budget": 999.0})
    await litellm_client.remove_team_member(team, name)
    await wait_litellm(
        litellm_client,
        name,
        lambda r: r.max_budget == 10 and team in r.teams,
        timeout=RESYNC_SECONDS * 6,
    )
    assert operator.counter("litellm_operator_drift_corrections_total", field="max_budget") >= 1
    assert operator.counter("litellm_operator_drift_corrections_total", field="teams") >= 1


async def test_existing_user_is_adopted_only_when_allowed(
    operator: OperatorProcess,
    cluster: Cluster,
    namespace: str,
    policy_name: str,
    ident: Callable[[str], str],
    litellm_client: LiteLLMClient,
) -> None:
    from litellm_operator.litellm import NewUserRequest

    cluster.create_policy(policy_name, POLICY)
    name = ident("legacy")
    await litellm_client.create_user(
        NewUserRequest(user_id=name, max_budget=3.0, metadata={"owner": "ui"})
    )
    cluster.create_user(namespace, name, {"policyRef": policy_name})
    cluster.wait_reason(namespace, name, "AlreadyExists")
    record = await litellm_client.get_user(name)
    assert record is not None
    assert record.max_budget == 3.0
    assert MANAGED_BY not in record.metadata

    cluster.patch_user(namespace, name, {"adopt": True})
    user = cluster.wait_ready(namespace, name)
    assert user["status"]["adopted"] is True
    record = await litellm_client.get_user(name)
    assert record is not None
    assert record.max_budget == 10
    assert record.metadata["owner"] == "ui"
    assert record.metadata[MANAGED_BY] == "litellm-operator"

    cluster.delete_user(namespace, name)
    eventually(lambda: cluster.get_user(namespace, name) is None, timeout=30, what="user deleted")
    record = await litellm_client.get_user(name)
    assert record is not None, "an adopted user is retained by default"
    assert MANAGED_BY not in record.metadata
    assert record.metadata["owner"] == "ui"


async def test_two_resources_with_one_user_id_conflict(
    operator: OperatorProcess,
    cluster: Cluster,
    namespace: str,
    policy_name: str,
    ident: Callable[[str], str],
    litellm_client: LiteLLMClient,
) -> None:
    cluster.create_policy(policy_name, POLICY)
    user_id = ident("shared")
    cluster.create_user(namespace, "first", {"policyRef": policy_name, "userId": user_id})
    cluster.wait_ready(namespace, "first")
    cluster.create_user(
        namespace,
        "second",
        {"policyRef": policy_name, "userId": user_id, "overrides": {"maxBudget": 1}},
    )
    cond = cluster.wait_reason(namespace, "second", "Conflict")
    assert "first" in cond["message"]
    record = await litellm_client.get_user(user_id)
    assert record is not None
    assert record.max_budget == 10
    assert cluster.condition(namespace, "first")["status"] == "True"

    cluster.delete_user(namespace, "second")
    eventually(
        lambda: cluster.get_user(namespace, "second") is None, timeout=30, what="second deleted"
    )
    assert await litellm_client.get_user(user_id) is not None, "the loser must not delete the user"


async def test_retain_keeps_the_user_and_drops_the_markers(
    operator: OperatorProcess,
    cluster: Cluster,
    namespace: str,
    policy_name: str,
    ident: Callable[[str], str],
    litellm_client: LiteLLMClient,
) -> None:
    cluster.create_policy(policy_name, POLICY)
    name = ident("keep")
    cluster.create_user(namespace, name, {"policyRef": policy_name, "deletionPolicy": "Retain"})
    cluster.wait_ready(namespace, name)
    cluster.delete_user(namespace, name)
    eventually(lambda: cluster.get_user(namespace, name) is None, timeout=30, what="user deleted")
    record = await litellm_client.get_user(name)
    assert record is not None
    assert not any(
        k.startswith("litellm.platform.dev/") and k != "litellm.platform.dev/released"
        for k in record.metadata
    )
    assert record.metadata["cost-center"] == "platform"


async def test_suspend_blocks_keys_and_resume_unblocks_them(
    operator: OperatorProcess,
    cluster: Cluster,
    namespace: str,
    policy_name: str,
    ident: Callable[[str], str],
    litellm_client: LiteLLMClient,
) -> None:
    cluster.create_policy(policy_name, POLICY)
    name = ident("susp")
    cluster.create_user(namespace, name, {"policyRef": policy_name})
    cluster.wait_ready(namespace, name)
    key = await litellm_client.generate_key(user_id=name)
    cluster.patch_user(namespace, name, {"suspend": True})
    cluster.wait_reason(namespace, name, "Suspended")
    keys = await litellm_client.list_user_keys(name)
    assert keys
    assert all(k.blocked for k in keys)

    cluster.patch_user(namespace, name, {"suspend": False})
    cluster.wait_reason(namespace, name, "Synced")
    info = await litellm_client.key_info(key.key)
    assert info is not None
    assert info.blocked is False


async def test_team_that_does_not_exist_is_a_condition(
    operator: OperatorProcess,
    cluster: Cluster,
    namespace: str,
    policy_name: str,
    ident: Callable[[str], str],
    litellm_client: LiteLLMClient,
) -> None:
    ghost = ident("ghost")
    cluster.create_policy(
        policy_name, {**POLICY, "defaults": {**POLICY["defaults"], "teams": [ghost]}}
    )
    name = ident("member")
    cluster.create_user(namespace, name, {"policyRef": policy_name})
    cond = cluster.wait_reason(namespace, name, "TeamNotFound")
    assert ghost in cond["message"]
    record = await litellm_client.get_user(name)
    assert record is not None
    assert record.max_budget == 10, "every other setting is applied"

    await litellm_client.new_team(ghost)
    cluster.wait_ready(namespace, name, timeout=RESYNC_SECONDS * 8)
    await wait_litellm(litellm_client, name, lambda r: ghost in r.teams)


async def test_foreign_team_membership_is_never_removed(
    operator: OperatorProcess,
    cluster: Cluster,
    namespace: str,
    policy_name: str,
    ident: Callable[[str], str],
    litellm_client: LiteLLMClient,
) -> None:
    ours, theirs = ident("ours"), ident("theirs")
    await litellm_client.new_team(ours)
    await litellm_client.new_team(theirs)
    cluster.create_policy(
        policy_name, {**POLICY, "defaults": {**POLICY["defaults"], "teams": [ours]}}
    )
    name = ident("tm")
    cluster.create_user(namespace, name, {"policyRef": policy_name})
    cluster.wait_ready(namespace, name)
    await litellm_client.add_team_member(theirs, name)

    cluster.patch_policy(policy_name, {"defaults": {"teams": []}})
    await wait_litellm(litellm_client, name, lambda r: ours not in r.teams)
    record = await litellm_client.get_user(name)
    assert record is not None
    assert theirs in record.teams


async def test_litellm_outage_is_retried_and_recovers(
    operator: OperatorProcess,
    forwarder: Forwarder,
    cluster: Cluster,
    namespace: str,
    policy_name: str,
    ident: Callable[[str], str],
    litellm_client: LiteLLMClient,
) -> None:
    cluster.create_policy(policy_name, POLICY)
    forwarder.cut()
    try:
        name = ident("outage")
        cluster.create_user(namespace, name, {"policyRef": policy_name})
        cond = cluster.wait_reason(namespace, name, "LiteLLMUnavailable", timeout=60)
        assert cond["status"] == "False"
        assert cluster.condition(namespace, name, "Reconciling")["status"] == "True"
    finally:
        forwarder.restore()
    cluster.wait_ready(namespace, name, timeout=90)
    assert await litellm_client.get_user(name) is not None
