"""The operator end to end: real API server, real LiteLLM, assertions on both sides."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, cast

import pytest

from litellm_operator.fields import MANAGED_BY
from litellm_operator.litellm import LiteLLMClient, LiteLLMUserRecord, NewUserRequest
from litellm_operator.models import GROUP, POLICY_PLURAL, VERSION
from litellm_operator.runtime.runner import FINALIZER
from litellm_operator.users.plan import OWNER_UID, POLICY_NAME
from tests.e2e.conftest import RESYNC_SECONDS
from tests.e2e.operator_harness import Cluster, Forwarder, OperatorProcess, eventually
from tests.fixtures.policies import ANY_IDENTITY

pytestmark = [pytest.mark.e2e, pytest.mark.integration]

POLICY: dict[str, Any] = {
    "allowedNamespaces": ["*"],
    "identities": ANY_IDENTITY,
    "defaults": {
        "maxBudget": 10,
        "budgetDuration": "30d",
        "models": ["gpt-4o-mini"],
        "metadata": {"cost-center": "platform"},
    },
    "roles": [
        {"group": "ai-power-users", "maxBudget": 100, "models": ["gpt-4o", "gpt-4o-mini"]},
    ],
    "overrides": {"allowedFields": ["userId", "maxBudget"], "maxBudget": 50},
}
WRITES = (
    "/user/update",
    "/user/bulk_update",
    "/user/new",
    "/team/member_add",
    "/team/member_delete",
)


def with_teams(*teams: str) -> dict[str, Any]:
    return {**POLICY, "defaults": {**POLICY["defaults"], "teams": list(teams)}}


@dataclass
class Scene:
    """One test's world: its namespace and policy, the cluster, LiteLLM, the operator."""

    operator: OperatorProcess
    cluster: Cluster
    namespace: str
    policy: str
    ident: Callable[[str], str]
    litellm: LiteLLMClient

    def create_policy(self, spec: dict[str, Any] = POLICY) -> None:
        self.cluster.create_policy(self.policy, spec)

    def create_user(self, name: str, **spec: Any) -> dict[str, Any]:
        return self.cluster.create_user(self.namespace, name, {"policyRef": self.policy, **spec})

    def patch_user(self, name: str, **spec: Any) -> None:
        self.cluster.patch_user(self.namespace, name, spec)

    def ready(self, name: str, timeout: float = 30) -> dict[str, Any]:
        return self.cluster.wait_ready(self.namespace, name, timeout=timeout)

    def reason(self, name: str, reason: str, timeout: float = 30) -> dict[str, Any]:
        return self.cluster.wait_reason(self.namespace, name, reason, timeout=timeout)

    def condition(self, name: str, kind: str) -> dict[str, Any]:
        return self.cluster.condition(self.namespace, name, kind)

    def delete(self, name: str) -> None:
        self.cluster.delete_user(self.namespace, name)
        eventually(
            lambda: self.cluster.get_user(self.namespace, name) is None,
            timeout=30,
            what=f"{name} deleted",
        )

    async def record(self, user_id: str) -> LiteLLMUserRecord:
        record = await self.litellm.get_user(user_id)
        assert record is not None, f"no LiteLLM user {user_id}"
        return record

    async def until(
        self, user_id: str, probe: Callable[[LiteLLMUserRecord], bool], timeout: float = 30
    ) -> LiteLLMUserRecord:
        deadline = time.monotonic() + timeout
        record = None
        while time.monotonic() < deadline:
            record = await self.litellm.get_user(user_id)
            if record is not None and probe(record):
                return record
            await asyncio.sleep(0.3)
        raise AssertionError(f"LiteLLM user {user_id} never matched; last: {record!r}")

    def user_events(self, outcome: str) -> float:
        """LiteLLMUser events by what became of them (runtime.kopf_watch: ``settled`` observed,
        ``followed``, ``finalized`` or ``created`` without kopf's cycle, ``processed`` by kopf)."""
        metric = "litellm_operator_watch_events_total"
        return self.operator.counter(metric, resource="litellmusers", outcome=outcome)

    def writes(self) -> float:
        metric = "litellm_operator_litellm_requests_total"
        return sum(self.operator.counter(metric, endpoint=e) for e in WRITES)


@pytest.fixture
def scene(
    operator: OperatorProcess,
    cluster: Cluster,
    namespace: str,
    policy_name: str,
    ident: Callable[[str], str],
    litellm_client: LiteLLMClient,
) -> Scene:
    return Scene(operator, cluster, namespace, policy_name, ident, litellm_client)


async def test_create_update_and_delete(scene: Scene) -> None:
    scene.create_policy()
    finalized, created_here = scene.user_events("finalized"), scene.user_events("created")
    name = scene.ident("alice")
    created = scene.create_user(
        name, groups=["group:default/AI-Power-Users"], email=f"{name}@example.com"
    )
    status = scene.ready(name)["status"]
    assert status["userId"] == name
    assert status["matchedRole"] == "ai-power-users"
    assert status["effective"]["maxBudget"] == 100
    assert status["policy"] == {"name": scene.policy, "generation": 1}
    assert status["sources"]["maxBudget"] == "role"

    record = await scene.record(name)
    assert record.max_budget == 100
    assert sorted(record.models) == ["gpt-4o", "gpt-4o-mini"]
    assert record.user_email == f"{name}@example.com"
    assert record.user_role == "internal_user"
    assert record.metadata[MANAGED_BY] == "litellm-operator"
    assert record.metadata[OWNER_UID] == created["metadata"]["uid"]
    assert record.metadata[POLICY_NAME] == scene.policy
    assert record.metadata["cost-center"] == "platform"
    created_event = ("Normal", "Created", f"created LiteLLM user {name!r}")
    assert created_event in scene.cluster.events(scene.namespace, name)
    # The finalizer was added without a cycle of kopf's, and kopf then created the user.
    assert created["metadata"].get("finalizers") is None
    assert scene.user_events("finalized") == finalized + 1
    assert scene.ready(name)["metadata"]["finalizers"] == [FINALIZER]
    # ...and the create handler ran without kopf's cycle, which stored what kopf would have:
    # the update below reaches kopf's update handler only if kopf reads it as its own.
    assert scene.user_events("created") == created_here + 1
    assert "last-handled-configuration" in scene.ready(name)["status"]["kopf"]

    scene.patch_user(name, overrides={"maxBudget": 40})
    await scene.until(name, lambda r: r.max_budget == 40)
    assert scene.ready(name)["status"]["sources"]["maxBudget"] == "override"
    after = await scene.record(name)
    assert after.budget_reset_at == record.budget_reset_at, (
        "an unchanged budget_duration was resent"
    )

    scene.delete(name)
    assert await scene.litellm.get_user(name) is None


async def test_policy_edit_reaches_every_user_of_the_policy(scene: Scene) -> None:
    scene.create_policy()
    names = [scene.ident("u") for _ in range(3)]
    for name in names:
        scene.create_user(name)
    for name in names:
        scene.ready(name)
    settled, followed = scene.user_events("settled"), scene.user_events("followed")

    started = time.monotonic()
    scene.cluster.patch_policy(scene.policy, {"defaults": {"maxBudget": 25, "tpmLimit": 5000}})
    for name in names:
        await scene.until(name, lambda r: r.max_budget == 25 and r.tpm_limit == 5000, timeout=20)
    assert time.monotonic() - started < RESYNC_SECONDS * 5, "reached by the index, not a resync"
    for name in names:
        assert scene.ready(name)["status"]["policy"]["generation"] == 2

    def policy_status() -> dict[str, Any] | None:
        policy = scene.cluster.custom.get_cluster_custom_object(
            GROUP, VERSION, POLICY_PLURAL, scene.policy
        )
        status = cast(dict[str, Any], policy).get("status") or {}
        counted = status.get("users") == 3 and status.get("readyUsers") == 3
        return status if counted and status.get("observedGeneration") == 2 else None

    status = eventually(policy_status, timeout=RESYNC_SECONDS * 4, what="policy status counts")
    assert any(c["type"] == "Ready" and c["status"] == "True" for c in status["conditions"])

    def rolled_out() -> list[str] | None:
        events = scene.cluster.events("default", scene.policy)
        said = [m for _, reason, m in events if reason == "RolledOut" and "generation 2" in m]
        return said or None

    said = eventually(rolled_out, timeout=10, what="RolledOut event on the policy")
    # Each user followed its policy without a cycle of kopf's; the events of the users' own
    # status writes were observed, not processed by kopf; the policy's counts above still
    # followed them.
    assert scene.user_events("followed") >= followed + 3
    assert scene.user_events("settled") > settled
    assert said == ["3 LiteLLMUser(s) use this policy; 3 reconciled against generation 2, 3 Ready"]
    for name in names:  # the rollout is said once, on the policy, not once per user
        updated = [e for e in scene.cluster.events(scene.namespace, name) if e[1] == "Updated"]
        assert updated == []


async def test_missing_policy_changes_nothing_until_it_exists(scene: Scene) -> None:
    name = scene.ident("orphan")
    scene.create_user(name)
    assert scene.reason(name, "PolicyNotFound")["status"] == "False"
    assert scene.condition(name, "Stalled")["status"] == "True"
    assert await scene.litellm.get_user(name) is None

    scene.create_policy()
    scene.ready(name)
    await scene.record(name)


async def test_drift_is_reverted_and_steady_state_writes_nothing(scene: Scene) -> None:
    team = scene.ident("team")
    await scene.litellm.new_team(team)
    scene.create_policy(with_teams(team))
    name = scene.ident("drift")
    scene.create_user(name)
    assert scene.ready(name)["status"]["managedTeams"] == [team]
    await scene.until(name, lambda r: team in r.teams)

    # Steady state: several resync intervals, no LiteLLM write and no Kubernetes write.
    await asyncio.sleep(RESYNC_SECONDS)
    version = (scene.cluster.get_user(scene.namespace, name) or {})["metadata"]["resourceVersion"]
    writes, lists = (
        scene.writes(),
        scene.operator.counter("litellm_operator_litellm_requests_total", endpoint="/user/list"),
    )
    await asyncio.sleep(RESYNC_SECONDS * 3)
    after = scene.cluster.get_user(scene.namespace, name) or {}
    assert after["metadata"]["resourceVersion"] == version
    assert scene.writes() == writes
    list_calls = "litellm_operator_litellm_requests_total"
    assert scene.operator.counter(list_calls, endpoint="/user/list") > lists

    # Drift behind the operator's back, one change at a time: a resync that fell between two
    # changes would count only the first (the reconcile it triggers reverts both).
    drift = "litellm_operator_drift_corrections_total"
    await scene.litellm.update_user(name, {"max_budget": 999.0})
    await scene.until(name, lambda r: r.max_budget == 10, timeout=RESYNC_SECONDS * 6)
    assert scene.operator.counter(drift, field="maxBudget") >= 1  # the CRD name
    await scene.litellm.remove_team_member(team, name)
    await scene.until(name, lambda r: team in r.teams, timeout=RESYNC_SECONDS * 6)
    assert scene.operator.counter(drift, field="teams") >= 1


async def test_existing_user_is_adopted_only_when_allowed(scene: Scene) -> None:
    scene.create_policy()
    name = scene.ident("legacy")
    await scene.litellm.create_user(
        NewUserRequest.of(user_id=name, max_budget=3.0, metadata={"owner": "ui"})
    )
    scene.create_user(name)
    scene.reason(name, "AlreadyExists")
    record = await scene.record(name)
    assert record.max_budget == 3.0
    assert MANAGED_BY not in record.metadata

    scene.patch_user(name, adopt=True)  # the tenant asks; the policy has not allowed it
    scene.reason(name, "AlreadyExists")
    time.sleep(RESYNC_SECONDS)
    assert (await scene.record(name)).max_budget == 3.0

    scene.cluster.patch_policy(scene.policy, {"adoptExistingUsers": True})
    assert scene.ready(name)["status"]["adopted"] is True
    record = await scene.record(name)
    assert record.max_budget == 10
    assert record.metadata["owner"] == "ui"
    assert record.metadata[MANAGED_BY] == "litellm-operator"

    scene.patch_user(name, deletionPolicy="Delete")
    scene.delete(name)
    record = await scene.record(name)  # adopted: retained unless the policy says otherwise
    assert MANAGED_BY not in record.metadata
    assert record.metadata["owner"] == "ui"


async def test_two_resources_with_one_user_id_conflict(scene: Scene) -> None:
    scene.create_policy()
    user_id = scene.ident("shared")
    scene.create_user("first", userId=user_id)
    scene.ready("first")
    scene.create_user("second", userId=user_id, overrides={"maxBudget": 1})
    assert "first" in scene.reason("second", "Conflict")["message"]
    assert (await scene.record(user_id)).max_budget == 10
    assert scene.condition("first", "Ready")["status"] == "True"

    scene.delete("second")
    await scene.record(user_id)  # the loser must not delete the winner's user


async def test_retain_keeps_the_user_and_drops_the_markers(scene: Scene) -> None:
    scene.create_policy()
    name = scene.ident("keep")
    scene.create_user(name, deletionPolicy="Retain")
    scene.ready(name)
    scene.delete(name)
    record = await scene.record(name)
    markers = [k for k in record.metadata if k.startswith("litellm.platform.dev/")]
    assert markers in ([], ["litellm.platform.dev/released"])
    assert record.metadata["cost-center"] == "platform"


async def test_suspend_blocks_keys_and_resume_unblocks_them(scene: Scene) -> None:
    scene.create_policy()
    name = scene.ident("susp")
    scene.create_user(name)
    scene.ready(name)
    key = await scene.litellm.generate_key(user_id=name)
    scene.patch_user(name, suspend=True)
    scene.reason(name, "Suspended")
    keys = await scene.litellm.list_user_keys(name)
    assert keys
    assert all(k.blocked for k in keys)

    scene.patch_user(name, suspend=False)
    scene.reason(name, "Synced")
    info = await scene.litellm.key_info(key.key)
    assert info is not None
    assert info.blocked is False


async def test_team_that_does_not_exist_is_a_condition(scene: Scene) -> None:
    ghost = scene.ident("ghost")
    scene.create_policy(with_teams(ghost))
    name = scene.ident("member")
    scene.create_user(name)
    assert ghost in scene.reason(name, "TeamNotFound")["message"]
    assert (await scene.record(name)).max_budget == 10, "every other setting is applied"

    await scene.litellm.new_team(ghost)
    scene.ready(name, timeout=RESYNC_SECONDS * 8)
    await scene.until(name, lambda r: ghost in r.teams)


async def test_foreign_team_membership_is_never_removed(scene: Scene) -> None:
    ours, theirs = scene.ident("ours"), scene.ident("theirs")
    await scene.litellm.new_team(ours)
    await scene.litellm.new_team(theirs)
    scene.create_policy(with_teams(ours))
    name = scene.ident("tm")
    scene.create_user(name)
    scene.ready(name)
    await scene.litellm.add_team_member(theirs, name)

    scene.cluster.patch_policy(scene.policy, {"defaults": {"teams": []}})
    await scene.until(name, lambda r: ours not in r.teams)
    assert theirs in (await scene.record(name)).teams


async def test_litellm_outage_is_retried_and_recovers(scene: Scene, forwarder: Forwarder) -> None:
    scene.create_policy()
    name = scene.ident("outage")
    forwarder.cut()
    try:
        scene.create_user(name)
        assert scene.reason(name, "LiteLLMUnavailable", timeout=60)["status"] == "False"
        assert scene.condition(name, "Reconciling")["status"] == "True"
    finally:
        forwarder.restore()
    scene.ready(name, timeout=90)
    await scene.record(name)
