"""Table tests of the status builder: kstatus conditions, minimal patches, stable timestamps."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from litellm_operator.status import (
    POLICY_OWNED_KEYS,
    Applied,
    Failed,
    Outcome,
    Synced,
    UserState,
    awaits_policy_reconcile,
    awaits_team,
    behind_policy,
    build_status,
    creating_status,
    policy_changed_status,
    policy_rollout,
    policy_status,
    ready_condition,
    retry_due,
    rollout_finished,
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
            "Reconciling": ("True", "TeamNotFound"),
            "Stalled": ("False", "TeamNotFound"),
        },
        id="missing-team-is-pending-not-stalled",
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


def body(
    name: str,
    *,
    policy: int | None = 2,
    observed: int = 1,
    generation: int = 1,
    ready: str = "True",
    stalled: str = "False",
) -> dict[str, Any]:
    """A LiteLLMUser body as the index holds it, reconciled against policy generation ``policy``."""
    status: dict[str, Any] = {
        "observedGeneration": observed,
        "conditions": [
            {"type": "Ready", "status": ready},
            {"type": "Stalled", "status": stalled},
        ],
    }
    if policy is not None:
        status["policy"] = {"name": "p", "generation": policy}
    return {
        "metadata": {"namespace": "ns", "name": name, "generation": generation},
        "status": status,
    }


ROLLOUT_CASES = [
    pytest.param([], (0, 0, 0, 0), (), (), ("True", "RolledOut"), id="no-users"),
    pytest.param(
        [body("a"), body("b")],
        (2, 2, 2, 2),
        (),
        (),
        ("True", "RolledOut"),
        id="all-updated-and-ready",
    ),
    pytest.param(
        [body("a"), body("b", policy=1)],
        (2, 1, 2, 1),
        (),
        ("ns/b",),
        ("False", "RollingOut"),
        id="ready-on-the-old-policy-is-not-updated",
    ),
    pytest.param(
        [body("a", observed=1, generation=2)],
        (1, 0, 1, 0),
        (),
        ("ns/a",),
        ("False", "RollingOut"),
        id="behind-its-own-spec",
    ),
    pytest.param(
        [body("a", policy=None, ready="Unknown")],
        (1, 0, 0, 0),
        (),
        ("ns/a",),
        ("False", "RollingOut"),
        id="never-reconciled",
    ),
    pytest.param(
        [body("a", ready="False")],
        (1, 1, 0, 0),
        (),
        ("ns/a",),
        ("False", "RollingOut"),
        id="updated-but-still-reconciling",
    ),
    pytest.param(
        [body("a"), body("b", ready="False", stalled="True")],
        (2, 2, 1, 1),
        ("ns/b",),
        (),
        ("False", "UsersStalled"),
        id="the-rest-stalled",
    ),
    pytest.param(
        [body("a", policy=1), body("b", ready="False", stalled="True")],
        (2, 1, 1, 0),
        ("ns/b",),
        ("ns/a",),
        ("False", "RollingOut"),
        id="stalled-and-waiting-is-rolling-out",
    ),
]


@pytest.mark.parametrize(("users", "counts", "stalled", "waiting", "ready"), ROLLOUT_CASES)
def test_policy_rollout(
    users: list[dict[str, Any]],
    counts: tuple[int, int, int, int],
    stalled: tuple[str, ...],
    waiting: tuple[str, ...],
    ready: tuple[str, str],
) -> None:
    rollout = policy_rollout("p", 2, [UserState.of(u) for u in users])
    assert (rollout.users, rollout.updated, rollout.ready, rollout.updated_ready) == counts
    assert (rollout.stalled, rollout.waiting) == (stalled, waiting)
    status = policy_status({}, 2, rollout, T0)
    assert status["observedGeneration"] == 2
    assert (status["users"], status["updatedUsers"], status["readyUsers"]) == counts[:3]
    assert by_type(status)["Ready"] == ready
    kinds = by_type(status)
    assert kinds["Stalled"][0] == ("True" if ready[1] == "UsersStalled" else "False")
    assert kinds["Reconciling"][0] == ("True" if ready[1] == "RollingOut" else "False")


def test_policy_status_stays_quiet_when_unchanged_and_names_few_users() -> None:
    users = [UserState.of(body(f"u{i}", policy=1)) for i in range(5)]
    first = policy_status({}, 2, policy_rollout("p", 2, users), T0)
    assert "waiting for ns/u0, ns/u1, ns/u2 and 2 more" in first["conditions"][0]["message"]
    again = policy_status(first, 2, policy_rollout("p", 2, users), T1)
    assert status_patch(first, again, POLICY_OWNED_KEYS) is None
    done = policy_status(first, 2, policy_rollout("p", 2, [UserState.of(body("u0"))]), T1)
    changes = status_patch(first, done, POLICY_OWNED_KEYS)
    assert changes is not None
    assert set(changes) == {"users", "updatedUsers", "readyUsers", "conditions"}
    assert by_type(done)["Ready"] == ("True", "RolledOut")


SYNCED_ON_2 = {
    "observedGeneration": 4,
    "policy": {"name": "p", "generation": 2},
    "conditions": [
        {"type": "Ready", "status": "True", "reason": "Synced", "lastTransitionTime": T0},
        {"type": "Reconciling", "status": "False", "reason": "Synced", "lastTransitionTime": T0},
        {"type": "Stalled", "status": "False", "reason": "Synced", "lastTransitionTime": T0},
    ],
}


@pytest.mark.parametrize(
    ("previous", "generation", "reason"),
    [
        pytest.param(SYNCED_ON_2, 3, "PolicyChanged", id="policy-edited"),
        pytest.param(SYNCED_ON_2, None, "PolicyDeleted", id="policy-deleted"),
        pytest.param({}, 1, "PolicyChanged", id="never-reconciled"),
        pytest.param(SYNCED_ON_2, 2, None, id="already-reconciled-against-it"),
    ],
)
def test_policy_changed_status(
    previous: dict[str, Any], generation: int | None, reason: str | None
) -> None:
    changes = policy_changed_status(previous, "p", generation, T1)
    if reason is None:
        assert changes is None
        return
    assert changes is not None
    assert set(changes) == {"conditions"}
    assert by_type(changes) == {
        "Ready": ("Unknown", reason),
        "Reconciling": ("True", reason),
        "Stalled": ("False", reason),
    }
    times = {c["type"]: c["lastTransitionTime"] for c in changes["conditions"]}
    if previous:
        assert times == {"Ready": T1, "Reconciling": T1, "Stalled": T0}
        assert all(c["observedGeneration"] == 4 for c in changes["conditions"])
    # Written once: a second policy event for the same generation writes nothing.
    assert policy_changed_status({**previous, **changes}, "p", generation, T1) is None


def test_failed_status_records_the_policy_it_was_judged_against() -> None:
    failed = Failed("OverrideForbidden", "no", transient=False)
    status = build_status(SYNCED_ON_2, 5, failed, T1, ("p", 3))
    assert status["policy"] == {"name": "p", "generation": 3}
    assert build_status(SYNCED_ON_2, 5, failed, T1)["policy"] == {"name": "p", "generation": 2}


def test_synced_status_records_the_budget_litellm_holds() -> None:
    status = build_status({}, 1, Synced(APPLIED, wrote=True, max_budget=7.5), T0)
    assert status["maxBudget"] == 7.5
    assert "maxBudget" not in build_status({}, 1, Synced(APPLIED, wrote=True), T0)


def conditions(ready: str, since: str, stalled: str = "False", reason: str = "x") -> dict[str, Any]:
    return {
        "observedGeneration": 1,
        "conditions": [
            {"type": "Ready", "status": ready, "reason": reason, "lastTransitionTime": since},
            {"type": "Stalled", "status": stalled, "reason": reason, "lastTransitionTime": since},
        ],
    }


NOW = datetime(2026, 1, 1, 0, 10, tzinfo=UTC)


@pytest.mark.parametrize(
    ("status", "due"),
    [
        pytest.param(conditions("Unknown", T1), False, id="just-turned-non-ready-is-in-progress"),
        pytest.param(conditions("False", T0), True, id="non-ready-for-an-interval-is-retried"),
        pytest.param(
            conditions("False", T1, stalled="True"), True, id="stalled-is-retried-at-once"
        ),
        pytest.param({"observedGeneration": 1}, True, id="no-conditions-is-retried"),
        pytest.param(conditions("False", "garbage"), True, id="unreadable-time-is-retried"),
        pytest.param(
            {**conditions("Unknown", "1970-01-01T00:00:00Z"), "observedGeneration": 0},
            False,
            id="never-handled-is-kopfs",
        ),
        pytest.param(
            {**conditions("False", T1, stalled="True"), "observedGeneration": 0},
            True,
            id="stalled-even-if-behind",
        ),
    ],
)
def test_retry_due(status: dict[str, Any], due: bool) -> None:
    body = {"metadata": {"generation": 1}, "status": status}
    assert retry_due(body, NOW, interval=600) is due


def user_body(status: dict[str, Any], generation: int = 1, **meta: Any) -> dict[str, Any]:
    return {"metadata": {"generation": generation, **meta}, "status": status}


@pytest.mark.parametrize(
    ("body", "awaits"),
    [
        pytest.param(
            user_body(
                {"observedGeneration": 1, **conditions("Unknown", T0, reason="PolicyChanged")}
            ),
            True,
            id="flipped-by-a-policy-edit",
        ),
        pytest.param(
            user_body(
                {"observedGeneration": 1, **conditions("Unknown", T0, reason="PolicyDeleted")}
            ),
            True,
            id="flipped-by-a-policy-deletion",
        ),
        pytest.param(
            user_body(
                {"observedGeneration": 1, **conditions("Unknown", T0, reason="PolicyChanged")},
                generation=2,
            ),
            False,
            id="spec-changed-too-so-kopf-handles-it",
        ),
        pytest.param(
            user_body(
                {"observedGeneration": 1, **conditions("Unknown", T0, reason="PolicyChanged")},
                deletionTimestamp=T1,
            ),
            False,
            id="being-deleted",
        ),
        pytest.param(
            user_body({"observedGeneration": 1, **conditions("True", T0, reason="Synced")}),
            False,
            id="ready",
        ),
        pytest.param(
            user_body(
                {"observedGeneration": 1, **conditions("False", T0, reason="PolicyNotFound")}
            ),
            False,
            id="failed-for-another-reason",
        ),
    ],
)
def test_awaits_policy_reconcile(body: dict[str, Any], awaits: bool) -> None:
    assert awaits_policy_reconcile(body) is awaits


def rolled_status(generation: int, users: int, updated: int) -> dict[str, Any]:
    rollout = policy_rollout(
        "p",
        generation,
        [UserState(f"ns/u{i}", "True", False, True, ("p", generation)) for i in range(updated)]
        + [UserState(f"ns/w{i}", "True", False, True, ("p", 0)) for i in range(users - updated)],
    )
    return policy_status({}, generation, rollout, T0)


@pytest.mark.parametrize(
    ("previous", "desired", "finished"),
    [
        pytest.param(rolled_status(2, 3, 1), rolled_status(2, 3, 3), True, id="completes"),
        pytest.param(rolled_status(2, 3, 3), rolled_status(2, 3, 3), False, id="already-done"),
        pytest.param(rolled_status(1, 3, 3), rolled_status(2, 3, 3), True, id="next-generation"),
        pytest.param(rolled_status(2, 3, 1), rolled_status(2, 3, 2), False, id="still-rolling"),
        pytest.param({}, rolled_status(1, 0, 0), False, id="no-users-nothing-to-say"),
    ],
)
def test_rollout_finished(
    previous: dict[str, Any], desired: dict[str, Any], finished: bool
) -> None:
    assert rollout_finished(previous, desired) is finished


@pytest.mark.parametrize(
    ("applied", "current", "behind"),
    [
        (1, 2, True),
        (2, 2, False),
        (3, 2, False),
        (None, 2, False),
        (1, None, False),
    ],
    ids=["older-generation", "current", "newer-than-seen", "never-reconciled", "no-generation"],
)
def test_behind_policy(applied: int | None, current: int | None, behind: bool) -> None:
    status = {} if applied is None else {"policy": {"name": "p", "generation": applied}}
    assert behind_policy({"status": status}, current) is behind


@pytest.mark.parametrize(
    ("reason", "teams", "expected"),
    [
        pytest.param("TeamNotFound", ["platform.crew"], True, id="waiting-for-it"),
        pytest.param("TeamNotFound", ["other"], False, id="waiting-for-another"),
        pytest.param("Synced", ["platform.crew"], False, id="already-in"),
    ],
)
def test_awaits_team(reason: str, teams: list[str], expected: bool) -> None:
    body = {
        "status": {
            "effective": {"teams": teams},
            "conditions": [{"type": "Ready", "status": "False", "reason": reason}],
        }
    }
    assert awaits_team(body, "platform.crew") is expected
