"""A LiteLLMTeam's memberBudget as its members' reconcile and resync plan it (users.plan), the
marker it travels in, and the status that keeps members from reading Ready on a stale one."""

from __future__ import annotations

from typing import Any

import pytest

from litellm_operator.fields import MANAGED_BY, MANAGER
from litellm_operator.policies.teams import MemberBudget
from litellm_operator.reasons import Reason
from litellm_operator.status import POLICY_PENDING, member_of, team_budget_changed_status
from litellm_operator.users.plan import (
    MEMBER_BUDGET,
    AddToTeam,
    TeamMembership,
    UpdateTeamMembership,
    member_budget_marker,
    member_budget_of,
    member_budgets,
    plan_user,
)
from litellm_operator.users.reconciler import applied_budgets, joined_or_left
from tests.unit.test_plan import desired, in_sync_observed

OURS = {MANAGED_BY: MANAGER}


@pytest.mark.parametrize(
    ("metadata", "expected"),
    [
        pytest.param({**OURS, MEMBER_BUDGET: "7.5"}, 7.5, id="managed-team"),
        pytest.param({**OURS, MEMBER_BUDGET: 7}, 7.0, id="a-number-too"),
        pytest.param({MEMBER_BUDGET: "7.5"}, None, id="foreign-team-not-trusted"),
        pytest.param({MANAGED_BY: "someone", MEMBER_BUDGET: "7.5"}, None, id="other-manager"),
        pytest.param(OURS, None, id="no-marker"),
        pytest.param({**OURS, MEMBER_BUDGET: ""}, None, id="empty"),
        pytest.param({**OURS, MEMBER_BUDGET: "lots"}, None, id="garbage"),
        pytest.param({**OURS, MEMBER_BUDGET: "-1"}, None, id="negative"),
        pytest.param({**OURS, MEMBER_BUDGET: "nan"}, None, id="nan"),
        pytest.param({**OURS, MEMBER_BUDGET: "inf"}, None, id="infinite"),
        pytest.param({**OURS, MEMBER_BUDGET: True}, None, id="boolean"),
    ],
)
def test_member_budget_of_a_team(metadata: dict[str, Any], expected: float | None) -> None:
    assert member_budget_of(metadata) == expected


@pytest.mark.parametrize("value", [0.0, 0.1, 7.5, 1e9, 12.345678901])
def test_the_marker_reads_back_exactly(value: float) -> None:
    assert member_budget_of({**OURS, **member_budget_marker(value)}) == value


def test_no_member_budget_no_marker() -> None:
    assert member_budget_marker(None) == {}


BUDGET_CASES = [
    pytest.param(None, "builtin", {"t1": 5.0}, frozenset(), False,
                 {"t1": MemberBudget(5.0, "team")}, id="team-default"),
    pytest.param(9.0, "role", {"t1": 5.0}, frozenset(), False,
                 {"t1": MemberBudget(9.0, "role")}, id="own-wins-over-team"),
    pytest.param(9.0, "override", {}, frozenset(), False,
                 {"t1": MemberBudget(9.0, "override")}, id="own-without-team-budget"),
    pytest.param(None, "builtin", {"t1": None}, frozenset(), False, {}, id="none-anywhere"),
    pytest.param(None, "builtin", {}, frozenset(), False, {}, id="team-not-read"),
    pytest.param(None, "builtin", {"t1": None}, frozenset({"t1"}), False,
                 {"t1": MemberBudget(None, "builtin")}, id="team-budget-removed"),
    pytest.param(None, "default", {"t1": None}, frozenset(), True,
                 {"t1": MemberBudget(None, "builtin")}, id="own-budget-removed"),
    pytest.param(None, "default", {"t1": 3.0}, frozenset(), True,
                 {"t1": MemberBudget(3.0, "team")}, id="own-removed-team-takes-over"),
    pytest.param(0.0, "default", {"t1": 3.0}, frozenset(), False,
                 {"t1": MemberBudget(0.0, "default")}, id="own-zero-still-wins"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("own", "source", "team_budgets", "budgeted", "had", "expected"), BUDGET_CASES
)
def test_member_budgets(
    own: float | None,
    source: str,
    team_budgets: dict[str, float | None],
    budgeted: frozenset[str],
    had: bool,
    expected: dict[str, MemberBudget],
) -> None:
    the_desired = desired(
        settings={"teams": ["t1"], "max_budget_in_team": own},
        budget_source=source,
        budgeted_teams=budgeted,
        had_team_budget=had,
    )
    assert member_budgets(the_desired, team_budgets) == expected


ACTION_CASES = [
    pytest.param((), None, None, {"t1": 5.0}, [AddToTeam("t1", 5.0)],
                 id="joins-with-team-budget"),
    pytest.param((), None, 9.0, {"t1": 5.0}, [AddToTeam("t1", 9.0)], id="joins-with-own-budget"),
    pytest.param(("t1",), None, None, {"t1": 5.0}, [UpdateTeamMembership("t1", 5.0)],
                 id="member-gets-team-budget"),
    pytest.param(("t1",), 5.0, None, {"t1": 5.0}, [], id="in-sync"),
    pytest.param(("t1",), 5.0, None, {"t1": 5.0 + 1e-12}, [], id="float-noise-is-not-drift"),
    pytest.param(("t1",), 5.0, 2.0, {"t1": 5.0}, [UpdateTeamMembership("t1", 2.0)],
                 id="own-replaces-team-budget"),
    pytest.param(("t1",), 5.0, None, {"t1": 4.0}, [UpdateTeamMembership("t1", 4.0)],
                 id="team-budget-edited"),
    pytest.param(("t1",), 99.0, None, {"t1": 4.0}, [UpdateTeamMembership("t1", 4.0)],
                 id="drifted-member-budget-reverted"),
    pytest.param(("t1",), 7.0, None, {"t1": None}, [], id="unbudgeted-membership-left-alone"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("current", "held_budget", "own", "team_budgets", "expected"), ACTION_CASES
)
def test_membership_budget_actions(
    current: tuple[str, ...],
    held_budget: float | None,
    own: float | None,
    team_budgets: dict[str, float | None],
    expected: list[object],
) -> None:
    the_desired = desired(settings={"teams": ["t1"], "max_budget_in_team": own})
    held = {team: TeamMembership("user", held_budget) for team in current}
    observed = in_sync_observed(teams=current, memberships=held)
    assert list(plan_user(the_desired, observed, team_budgets).actions) == expected


def test_a_budget_read_from_the_team_reaches_a_create() -> None:
    """No LiteLLM user yet: its memberships are made with the team's budget at once."""
    plan = plan_user(desired(settings={"teams": ["t1"]}), None, {"t1": 5.0})
    assert plan.actions[1:] == (AddToTeam("t1", 5.0),)


def test_removed_team_budget_is_cleared_only_where_it_was_set() -> None:
    the_desired = desired(settings={"teams": ["t1", "t2"]}, budgeted_teams=frozenset({"t1"}))
    held = {"t1": TeamMembership("user", 5.0), "t2": TeamMembership("user", 8.0)}
    observed = in_sync_observed(teams=("t1", "t2"), memberships=held)
    plan = plan_user(the_desired, observed, {"t1": None, "t2": None})
    assert list(plan.actions) == [UpdateTeamMembership("t1", None)]


def test_status_lists_applied_budgets_only() -> None:
    budgets = {"t1": MemberBudget(5.0, "team"), "t2": MemberBudget(None, "builtin")}
    assert applied_budgets(budgets) == {"t1": {"maxBudgetInTeam": 5.0, "source": "team"}}


@pytest.mark.parametrize(
    ("changed", "expected"),
    [
        pytest.param(["team:t1", "maxBudget", "team:t0"], ("t0", "t1"), id="joins-and-leaves"),
        pytest.param(["maxBudgetInTeam:t1"], (), id="a-budget-is-not-a-join"),
        pytest.param([], (), id="nothing"),
    ],
)
def test_joined_or_left(changed: list[str], expected: tuple[str, ...]) -> None:
    assert joined_or_left(changed) == expected


def member(
    teams: list[str],
    own: float | None = None,
    ready: str = "True",
    generation: int = 1,
    deleting: bool = False,
) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": "alice", "namespace": "a", "generation": 2}
    if deleting:
        meta["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    effective: dict[str, Any] = {"teams": teams}
    if own is not None:
        effective["maxBudgetInTeam"] = own
    conditions = [{"type": "Ready", "status": ready, "reason": "Synced", "message": "ok"}]
    status = {"observedGeneration": generation + 1, "effective": effective}
    return {"metadata": meta, "status": {**status, "conditions": conditions}}


@pytest.mark.parametrize(
    ("body", "flips"),
    [
        pytest.param(member(["t1"]), True, id="member-on-the-team-budget"),
        pytest.param(member(["t1"], ready="False"), True, id="not-ready-member-too"),
        pytest.param(member(["t2"]), False, id="not-a-member"),
        pytest.param(member(["t1"], own=3.0), False, id="own-budget-wins"),
        pytest.param(member(["t1"], generation=0), False, id="spec-change-in-flight"),
        pytest.param(member(["t1"], deleting=True), False, id="being-deleted"),
    ],
)
def test_a_team_budget_change_turns_its_members_non_ready(
    body: dict[str, Any], flips: bool
) -> None:
    changes = team_budget_changed_status(body, "t1", "2026-01-01T00:00:01Z")
    assert (changes is not None) == flips
    if changes is None:
        return
    ready = next(c for c in changes["conditions"] if c["type"] == "Ready")
    assert ready["status"] == "Unknown"
    assert ready["reason"] == Reason.TEAM_BUDGET_CHANGED
    assert ready["reason"] in POLICY_PENDING  # the event of this write reconciles the user
    again = {**body, "status": {**body["status"], **changes}}
    assert team_budget_changed_status(again, "t1", "2026-01-01T00:00:02Z") is None


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        pytest.param(member(["t1"]), True, id="member"),
        pytest.param(member(["t1"], ready="False"), True, id="not-ready-member"),
        pytest.param(member(["t2"]), False, id="other-team"),
        pytest.param(member(["t1"], deleting=True), False, id="being-deleted"),
        pytest.param({"metadata": {"name": "new"}}, False, id="never-reconciled"),
    ],
)
def test_a_team_deletion_reconciles_its_members(body: dict[str, Any], expected: bool) -> None:
    assert member_of(body, "t1") is expected
