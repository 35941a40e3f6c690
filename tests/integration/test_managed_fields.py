"""Every managed field on the real LiteLLM: set, read back in sync, changed, removed.

The reconciler (observe → plan → act) runs against the real proxy with a policy that sets every
field; what LiteLLM then holds is read with the client, and a second reconcile must find
nothing to do (the observed parsing of each field matches what LiteLLM really stores).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from litellm_operator.fields import UNLIMITED_PARALLEL_REQUESTS
from litellm_operator.litellm import LiteLLMClient
from litellm_operator.models import API_VERSION
from litellm_operator.status import Synced, build_status
from litellm_operator.users.reconciler import Reconciler
from tests.fixtures.policies import ANY_IDENTITY

pytestmark = pytest.mark.integration


def policy(**defaults: Any) -> dict[str, Any]:
    return {
        "apiVersion": API_VERSION,
        "kind": "ProvisioningPolicy",
        "metadata": {"name": "p", "generation": 1},
        "spec": {"allowedNamespaces": ["*"], "identities": ANY_IDENTITY, "defaults": defaults},
    }


def user(user_id: str, status: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "apiVersion": API_VERSION,
        "kind": "LiteLLMUser",
        "metadata": {
            "name": user_id,
            "namespace": "ns",
            "uid": f"uid-{user_id}",
            "generation": 1,
            "creationTimestamp": "2026-01-01T00:00:00Z",
        },
        "spec": {"policyRef": "p", "alias": "Ann Example", "email": f"{user_id}@Example.COM"},
        "status": status or {},
    }


async def reconcile(
    reconciler: Reconciler, user_id: str, the_policy: dict[str, Any], status: dict[str, Any]
) -> tuple[Synced, dict[str, Any]]:
    result = await reconciler.reconcile(user(user_id, status), the_policy)
    assert isinstance(result.outcome, Synced), result.outcome
    return result.outcome, build_status(status, 1, result.outcome, "2026-01-01T00:00:00Z")


async def membership_budget(client: LiteLLMClient, team_id: str, user_id: str) -> float | None:
    team = await client.get_team(team_id)
    assert team is not None
    (membership,) = [m for m in team.memberships if m.user_id == user_id]
    return membership.max_budget_in_team


async def test_every_field_is_set_read_back_and_removed_on_litellm(
    litellm_client: LiteLLMClient, make_id: Callable[[str], str]
) -> None:
    user_id, team_id = make_id("fields"), make_id("team")
    await litellm_client.new_team(team_id)
    reconciler = Reconciler(litellm_client)
    everything = policy(
        maxBudget=12,
        budgetDuration="7d",
        models=["gpt-4o"],
        teams=[team_id],
        maxBudgetInTeam=2.5,
        tpmLimit=1000,
        rpmLimit=10,
        maxParallelRequests=3,
        modelRpmLimit={"gpt-4o": 5},
        modelTpmLimit={"gpt-4o": 500},
        userRole="internal_user_viewer",
        metadata={"cost-center": "42"},
    )

    outcome, status = await reconcile(reconciler, user_id, everything, {})
    assert outcome.wrote
    record = await litellm_client.get_user(user_id)
    assert record is not None
    assert (record.max_budget, record.budget_duration, record.models) == (12, "7d", ["gpt-4o"])
    assert (record.tpm_limit, record.rpm_limit, record.max_parallel_requests) == (1000, 10, 3)
    assert record.user_role == "internal_user_viewer"
    assert (record.user_alias, record.user_email) == ("Ann Example", f"{user_id}@example.com")
    assert record.metadata["model_rpm_limit"] == {"gpt-4o": 5}
    assert record.metadata["model_tpm_limit"] == {"gpt-4o": 500}
    assert record.metadata["cost-center"] == "42"
    assert record.teams == [team_id]
    assert await membership_budget(litellm_client, team_id, user_id) == 2.5

    outcome, status = await reconcile(reconciler, user_id, everything, status)
    assert not outcome.wrote, "what LiteLLM stores reads back as the effective settings"

    await litellm_client.update_user(user_id, {"metadata": {**record.metadata, "ui": "kept"}})
    changed = policy(
        teams=[team_id],
        maxBudgetInTeam=4,
        maxParallelRequests=None,
        modelRpmLimit={"gpt-4o": 6, "claude": 1},
    )
    outcome, status = await reconcile(reconciler, user_id, changed, status)
    assert outcome.wrote
    record = await litellm_client.get_user(user_id)
    assert record is not None
    assert record.max_parallel_requests == UNLIMITED_PARALLEL_REQUESTS  # "no limit"
    assert record.metadata["model_rpm_limit"] == {"gpt-4o": 6, "claude": 1}
    assert "model_tpm_limit" not in record.metadata
    assert record.metadata["ui"] == "kept"
    assert await membership_budget(litellm_client, team_id, user_id) == 4

    removed = policy(teams=[team_id])
    outcome, status = await reconcile(reconciler, user_id, removed, status)
    assert outcome.wrote
    assert await membership_budget(litellm_client, team_id, user_id) is None
    record = await litellm_client.get_user(user_id)
    assert record is not None
    assert "model_rpm_limit" not in record.metadata

    outcome, _ = await reconcile(reconciler, user_id, removed, status)
    assert not outcome.wrote
