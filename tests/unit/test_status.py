"""Table tests of the status builder: kstatus conditions, minimal patches, stable timestamps."""

from __future__ import annotations

from typing import Any

import pytest

from litellm_operator.status import (
    Applied,
    Failed,
    Outcome,
    Synced,
    build_status,
    creating_status,
    policy_status,
    ready_condition,
    status_patch,
)

T0 = "2026-01-01T00:00:00Z"
T1 = "2026-01-01T00:10:00Z"
APPLIED = Applied(
    user_id="alice",
    effective={"maxBudget": None, "models": [], "userRole": "internal_user"},
    sources={"maxBudget": "default"},
    matched_role=None,
    policy_name="default",
    policy_generation=2,
)


def by_type(status: dict[str, Any]) -> dict[str, tuple[str, str]]:
    return {c["type"]: (c["status"], c["reason"]) for c in status["conditions"]}


KSTATUS_CASES = [
    pytest.param(
        Synced(APPLIED, wrote=True),
        {
            "Ready": ("True", "Synced"),
            "Reconciling": ("False", "Synced"),
            "Stalled": ("False", "Synced"),
        },
        id="synced-is-current",
    ),
    pytest.param(
        Synced(APPLIED, wrote=False, suspended=True),
        {
            "Ready": ("True", "Suspended"),
            "Reconciling": ("False", "Suspended"),
            "Stalled": ("False", "Suspended"),
        },
        id="suspended-is-current",
    ),
    pytest.param(
        Failed("LiteLLMUnavailable", "connection refused", transient=True),
        {
            "Ready": ("False", "LiteLLMUnavailable"),
            "Reconciling": ("True", "LiteLLMUnavailable"),
            "Stalled": ("False", "LiteLLMUnavailable"),
        },
        id="transient-is-in-progress",
    ),
    pytest.param(
        Failed("PolicyNotFound", "no policy 'x'", transient=False),
        {
            "Ready": ("False", "PolicyNotFound"),
            "Reconciling": ("False", "PolicyNotFound"),
            "Stalled": ("True", "PolicyNotFound"),
        },
        id="permanent-is-stalled",
    ),
    pytest.param(
        Synced(APPLIED, wrote=True, missing_teams=("ghost",)),
        {
            "Ready": ("False", "TeamNotFound"),
            "Reconciling": ("False", "TeamNotFound"),
            "Stalled": ("True", "TeamNotFound"),
        },
        id="missing-team-is-stalled",
    ),
]


@pytest.mark.parametrize(("outcome", "expected"), KSTATUS_CASES)
def test_conditions_follow_kstatus(outcome: Outcome, expected: dict[str, tuple[str, str]]) -> None:
    status = build_status({}, 4, outcome, T0)
    assert by_type(status) == expected
    assert status["observedGeneration"] == 4
    assert all(c["observedGeneration"] == 4 for c in status["conditions"])


def test_nulls_are_pruned_so_stored_status_compares_equal() -> None:
    status = build_status({}, 1, Synced(APPLIED, wrote=True), T0)
    assert "maxBudget" not in status["effective"]
    assert "matchedRole" not in status
    assert "spend" not in status


def test_second_identical_reconcile_patches_nothing() -> None:
    first = build_status({}, 1, Synced(APPLIED, wrote=True, spend=1.5), T0)
    second = build_status(first, 1, Synced(APPLIED, wrote=False, spend=1.5), T1)
    assert status_patch(first, second) is None


def test_transition_time_moves_only_when_status_flips() -> None:
    ok = build_status({}, 1, Synced(APPLIED, wrote=True), T0)
    down = build_status(ok, 1, Failed("LiteLLMUnavailable", "down", transient=True), T1)
    ready = ready_condition(down)
    assert ready is not None
    assert ready["lastTransitionTime"] == T1
    stalled = next(c for c in down["conditions"] if c["type"] == "Stalled")
    assert stalled["lastTransitionTime"] == T0


def test_last_synced_moves_only_on_writes() -> None:
    first = build_status({}, 1, Synced(APPLIED, wrote=True), T0)
    quiet = build_status(first, 1, Synced(APPLIED, wrote=False), T1)
    busy = build_status(first, 1, Synced(APPLIED, wrote=True), T1)
    assert quiet["lastSyncedAt"] == T0
    assert busy["lastSyncedAt"] == T1


def test_failure_keeps_what_was_last_applied() -> None:
    first = build_status({}, 1, Synced(APPLIED, wrote=True, managed_teams=("t1",)), T0)
    failed = build_status(first, 2, Failed("Rejected", "bad", transient=False), T1)
    assert failed["managedTeams"] == ["t1"]
    assert failed["effective"] == first["effective"]


def test_patch_clears_owned_keys_that_disappeared_and_ignores_foreign_ones() -> None:
    previous = {"spend": 3.0, "kopf": {"progress": {}}, "userId": "alice"}
    assert status_patch(previous, {"userId": "alice"}) == {"spend": None}


def test_failed_before_anything_was_applied_records_the_user_id() -> None:
    status = build_status({}, 1, Failed("Conflict", "taken", transient=False, user_id="alice"), T0)
    assert status["userId"] == "alice"


def test_creating_status_is_in_progress_for_kstatus() -> None:
    status = creating_status({}, 3, T0)
    assert status["observedGeneration"] == 3
    assert by_type(status) == {
        "Ready": ("Unknown", "Creating"),
        "Reconciling": ("True", "Creating"),
        "Stalled": ("False", "Creating"),
    }


def test_creating_after_a_failure_keeps_unflipped_transition_times() -> None:
    failed = build_status({}, 1, Failed("Conflict", "taken", transient=False), T0)
    creating = creating_status(failed, 1, T1)
    times = {c["type"]: c["lastTransitionTime"] for c in creating["conditions"]}
    assert times == {"Ready": T1, "Reconciling": T1, "Stalled": T1}


def test_policy_status_counts_users_and_stays_quiet_when_unchanged() -> None:
    first = policy_status({}, 2, 3, 2, T0)
    assert first["users"] == 3
    assert first["readyUsers"] == 2
    assert by_type(first)["Ready"] == ("True", "Accepted")
    assert status_patch(first, policy_status(first, 2, 3, 2, T1)) is None
    changed = status_patch(first, policy_status(first, 2, 3, 3, T1))
    assert changed is not None
    assert changed["readyUsers"] == 3
