"""The team planner (litellm_operator.teams.plan), case by case."""

from __future__ import annotations

from typing import Any

import pytest

from litellm_operator.fields import MANAGED_BY, MANAGER, TEAM_COLUMNS, TEAM_FIELDS, Home
from litellm_operator.litellm.models import TeamRecord
from litellm_operator.models import TeamSettings
from litellm_operator.reasons import Reason
from litellm_operator.teams.plan import (
    CreateTeam,
    DeleteTeam,
    DesiredTeam,
    ObservedTeam,
    UpdateTeam,
    behind,
    deletion_policy_of,
    deletion_team_ids,
    desired_metadata,
    keeps_keys,
    looks_for_keys,
    observed_team,
    plan_team,
    plan_team_deletion,
)
from litellm_operator.users.plan import ADOPTED, MEMBER_BUDGET, OWNER_UID, RELEASED, Owner

OWNER = Owner("team-a", "crew", "uid-1")
SETTINGS: dict[str, Any] = {
    "alias": "Crew",
    "models": ["mini"],
    "maxBudget": 50.0,
    "budgetDuration": "30d",
    "tpmLimit": 1000,
    "rpmLimit": None,
    "modelRpmLimit": {"mini": 5},
    "modelTpmLimit": {},
    "metadata": {"cost-center": "42"},
    "blocked": False,
}


def desired(adoption_allowed: bool = False, **settings: Any) -> DesiredTeam:
    return DesiredTeam(
        team_id="team-a.crew",
        owner=OWNER,
        settings=TeamSettings.model_validate({**SETTINGS, **settings}),
        policy_name="default",
        policy_generation=3,
        adoption_allowed=adoption_allowed,
    )


def held(
    the_desired: DesiredTeam | None = None,
    *,
    columns: dict[str, Any] | None = None,
    metadata: dict[str, Any] | None = None,
    members: list[str] | None = None,
) -> ObservedTeam:
    """The team as LiteLLM holds it after a create from ``the_desired``, then ``columns`` and
    ``metadata`` changed by someone else: read back through the record, as the reconciler does."""
    base = the_desired or desired()
    row = {f.litellm: f.to_litellm(getattr(base.settings, f.name)) for f in TEAM_COLUMNS}
    row.update(columns or {})
    meta = desired_metadata(base, {}) if metadata is None else metadata
    people = [{"user_id": m, "role": "user"} for m in members or []]
    record = TeamRecord.model_validate(
        {"team_id": base.team_id, **row, "metadata": meta, "members_with_roles": people}
    )
    return observed_team(record)


def test_absent_team_is_created_with_every_field_explicit() -> None:
    plan = plan_team(desired(), None)
    assert plan.ownership == "absent"
    (create,) = plan.actions
    assert isinstance(create, CreateTeam)
    body = create.request.to_wire()
    assert set(body) == {"team_id", "metadata"} | {f.litellm for f in TEAM_COLUMNS}
    assert body["team_id"] == "team-a.crew"
    assert body["rpm_limit"] is None  # "none" said explicitly, not left to LiteLLM
    assert body["metadata"]["model_rpm_limit"] == {"mini": 5}
    assert body["metadata"]["cost-center"] == "42"
    assert body["metadata"][MANAGED_BY] == MANAGER
    assert body["metadata"][OWNER_UID] == "uid-1"


def test_what_was_created_reads_back_in_sync() -> None:
    """Steady state: the created team, read back, plans nothing (0 writes)."""
    assert plan_team(desired(), held()).in_sync


@pytest.mark.parametrize(
    ("columns", "expected_body", "changed"),
    [
        pytest.param({"max_budget": 999.0}, {"max_budget": 50.0}, ("maxBudget",), id="budget"),
        pytest.param({"models": []}, {"models": ["mini"]}, ("models",), id="models-widened"),
        pytest.param({"models": ["mini"]}, {}, (), id="models-same"),
        pytest.param({"tpm_limit": None}, {"tpm_limit": 1000}, ("tpmLimit",), id="limit-cleared"),
        pytest.param({"rpm_limit": 7}, {"rpm_limit": None}, ("rpmLimit",), id="limit-added"),
        pytest.param({"team_alias": "X"}, {"team_alias": "Crew"}, ("alias",), id="alias"),
        pytest.param({"blocked": True}, {"blocked": False}, ("blocked",), id="unblocked"),
        pytest.param(
            {"budget_duration": "7d"}, {"budget_duration": "30d"}, ("budgetDuration",),
            id="duration",
        ),
        pytest.param({"max_budget": 50.0 + 1e-12}, {}, (), id="float-noise-is-not-drift"),
    ],
)  # fmt: skip
def test_drift_in_columns_is_reverted_and_only_that(
    columns: dict[str, Any], expected_body: dict[str, Any], changed: tuple[str, ...]
) -> None:
    plan = plan_team(desired(), held(columns=columns))
    if not expected_body:
        assert plan.in_sync
        return
    (update,) = plan.actions
    assert isinstance(update, UpdateTeam)
    assert update.request.to_wire() == expected_body
    assert update.changed == changed


def test_metadata_drift_keeps_foreign_keys_and_restores_the_rest() -> None:
    meta = {**desired_metadata(desired(), {}), "model_rpm_limit": {"mini": 50}, "other": "x"}
    (update,) = plan_team(desired(), held(metadata=meta)).actions
    assert isinstance(update, UpdateTeam)
    written = update.request.to_wire()["metadata"]
    assert written["model_rpm_limit"] == {"mini": 5}
    assert written["other"] == "x"  # someone else's key, kept
    assert update.changed == ("modelRpmLimit",)


def test_a_metadata_key_removed_from_the_spec_is_removed() -> None:
    before = desired_metadata(desired(metadata={"a": "1", "b": "2"}), {})
    (update,) = plan_team(desired(metadata={"a": "1"}), held(metadata=before)).actions
    assert isinstance(update, UpdateTeam)
    assert "b" not in update.request.to_wire()["metadata"]
    assert update.changed == ("metadata",)


@pytest.mark.parametrize(
    ("metadata", "adoption_allowed", "ownership", "reason"),
    [
        pytest.param({"x": "1"}, False, "unmanaged", Reason.ALREADY_EXISTS, id="unmanaged"),
        pytest.param({MANAGED_BY: MANAGER, OWNER_UID: "uid-2"}, True, "other-resource",
                     Reason.CONFLICT, id="owned-by-another-resource-even-with-adoption"),
    ],
)  # fmt: skip
def test_teams_of_others_are_refused(
    metadata: dict[str, Any], adoption_allowed: bool, ownership: str, reason: Reason
) -> None:
    plan = plan_team(desired(adoption_allowed), held(metadata=metadata))
    assert plan.ownership == ownership
    assert plan.refusal is not None
    assert plan.refusal.reason is reason
    assert len(plan.actions) == 1  # nothing else: no write


def test_another_namespace_owner_is_not_named() -> None:
    meta = {MANAGED_BY: MANAGER, OWNER_UID: "uid-2", "litellm.platform.dev/owner-namespace": "b"}
    refusal = plan_team(desired(), held(metadata=meta)).refusal
    assert refusal is not None
    assert "another namespace" in refusal.message
    assert "/crew" not in refusal.message


def test_adoption_writes_the_settings_and_the_markers() -> None:
    plan = plan_team(desired(adoption_allowed=True), held(metadata={"x": "1"}))
    assert plan.adopting
    (update,) = plan.actions
    assert isinstance(update, UpdateTeam)
    written = update.request.to_wire()["metadata"]
    assert (written[ADOPTED], written[OWNER_UID], written["x"]) == ("true", "uid-1", "1")
    adopted = held(metadata=written)
    assert plan_team(desired(adoption_allowed=True), adopted).in_sync


def test_members_are_counted_without_litellm_s_own() -> None:
    observed = held(members=["default_user_id", "alice", "bob"])
    assert observed.members == 2


def test_every_team_field_is_planned() -> None:
    """Each declared setting reaches the create body (a column or a metadata key)."""
    body = plan_team(desired(modelTpmLimit={"mini": 9}, memberBudget=7.5), None).actions[0]
    assert isinstance(body, CreateTeam)
    wire = body.request.to_wire()
    for f in TEAM_FIELDS:
        if f.home is Home.MEMBERSHIP:  # each member's budget: the team carries it as a marker
            assert wire["metadata"][MEMBER_BUDGET] == "7.5"
            continue
        assert f.litellm in wire or f.litellm in wire["metadata"] or f.name == "metadata", f.name


@pytest.mark.parametrize(
    ("held_budget", "wanted", "written"),
    [
        pytest.param(None, 7.5, "7.5", id="set"),
        pytest.param(7.5, 9.0, "9.0", id="changed"),
        pytest.param(7.5, None, None, id="removed"),
        pytest.param(7.5, 7.5, "same", id="same-no-write"),
        pytest.param(None, None, "same", id="none-no-write"),
        pytest.param("garbage", 7.5, "7.5", id="garbage-marker-rewritten"),
    ],
)
def test_member_budget_is_a_marker_planned_like_a_setting(
    held_budget: Any, wanted: float | None, written: str | None
) -> None:
    """memberBudget is no team column: it lives in the team's metadata for its members'
    reconciles, its drift reverted and reported as memberBudget."""
    before = desired_metadata(desired(), {})
    if held_budget is not None:
        before[MEMBER_BUDGET] = str(held_budget)
    plan = plan_team(desired(memberBudget=wanted), held(metadata=before))
    if written == "same":
        assert plan.in_sync
        return
    (update,) = plan.actions
    assert isinstance(update, UpdateTeam)
    assert update.request.to_wire()["metadata"].get(MEMBER_BUDGET) == written
    assert update.changed == ("memberBudget",)
    assert plan_team(
        desired(memberBudget=wanted), held(metadata=update.request.to_wire()["metadata"])
    ).in_sync


# --- deletion ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("requested", "adopted", "expected"),
    [
        pytest.param(None, False, "Delete", id="default-delete"),
        pytest.param(None, True, "Retain", id="adopted-default-retain"),
        pytest.param("Retain", False, "Retain", id="explicit-retain"),
        pytest.param("Delete", True, "Delete", id="explicit-delete"),
    ],
)
def test_deletion_policy(requested: Any, adopted: bool, expected: str) -> None:
    meta = desired_metadata(desired(), {}, adopted=adopted)
    assert deletion_policy_of(requested, held(metadata=meta)) == expected


def test_delete_removes_only_our_team() -> None:
    assert plan_team_deletion(OWNER, held(), None) == (DeleteTeam("team-a.crew"),)
    assert plan_team_deletion(OWNER, None, None) == ()
    assert plan_team_deletion(OWNER, held(metadata={"x": "1"}), "Delete") == ()
    other = {MANAGED_BY: MANAGER, OWNER_UID: "uid-2"}
    assert plan_team_deletion(OWNER, held(metadata=other), "Delete") == ()


@pytest.mark.parametrize(
    ("requested", "adopted"),
    [
        pytest.param("Retain", False, id="retain"),
        pytest.param("Delete", True, id="adopted-never-deleted"),
        pytest.param(None, True, id="adopted-default"),
    ],
)
def test_retain_releases_the_team(requested: Any, adopted: bool) -> None:
    meta = {**desired_metadata(desired(), {}, adopted=adopted), "x": "1"}
    (release,) = plan_team_deletion(OWNER, held(metadata=meta), requested)
    assert isinstance(release, UpdateTeam)
    written = release.request.to_wire()["metadata"]
    assert not [k for k in written if k.startswith("litellm.platform.dev/")]
    assert written["x"] == "1"
    assert written["cost-center"] == "42"  # the team's settings stay with it


def test_a_release_that_leaves_no_metadata_leaves_a_tombstone() -> None:
    """LiteLLM ignores {}: the markers would stay; the tombstone carries no managed-by."""
    bare = desired(metadata={}, modelRpmLimit={})
    (release,) = plan_team_deletion(
        OWNER, held(bare, metadata=desired_metadata(bare, {})), "Retain"
    )
    assert isinstance(release, UpdateTeam)
    assert release.request.to_wire()["metadata"] == {RELEASED: "true"}


@pytest.mark.parametrize(
    ("recorded", "spec_team_id", "expected"),
    [
        pytest.param("team-a.crew", None, ("team-a.crew",), id="recorded"),
        pytest.param("pinned", "later", ("pinned",), id="recorded-wins-over-spec"),
        pytest.param(None, None, ("team-a.crew",), id="unrecorded-derived"),
        pytest.param(None, "ops", ("ops", "team-a.crew"), id="unrecorded-spec-then-derived"),
        pytest.param(None, "team-a.crew", ("team-a.crew",), id="unrecorded-spec-is-derived"),
        pytest.param("", None, ("team-a.crew",), id="empty-is-unrecorded"),
    ],
)
def test_deletion_looks_where_the_team_may_have_been_created(
    recorded: str | None, spec_team_id: str | None, expected: tuple[str, ...]
) -> None:
    assert deletion_team_ids(recorded, spec_team_id, "team-a", "crew") == expected


FOREIGN = {"x": "1"}
ANOTHER_RESOURCE = {MANAGED_BY: MANAGER, OWNER_UID: "uid-2"}


@pytest.mark.parametrize(
    ("metadata", "recorded", "declared", "expected"),
    [
        pytest.param(None, False, False, True, id="unrecorded-ours-keys-before-status"),
        pytest.param(None, True, False, True, id="recorded-ours-spec-emptied"),
        pytest.param(None, True, True, True, id="recorded-ours-declared"),
        pytest.param("absent", True, True, True, id="recorded-team-gone-keys-declared"),
        pytest.param("absent", True, False, False, id="recorded-team-gone-no-keys"),
        pytest.param("absent", False, True, False, id="unrecorded-absent"),
        pytest.param(FOREIGN, False, True, False, id="unrecorded-foreign-team"),
        pytest.param(ANOTHER_RESOURCE, False, True, False, id="unrecorded-another-resource"),
        pytest.param(FOREIGN, True, False, False, id="recorded-foreign-no-keys"),
    ],
)
def test_deletion_looks_for_keys_only_of_this_resource(
    metadata: Any, recorded: bool, declared: bool, expected: bool
) -> None:
    observed = None if metadata == "absent" else held(metadata=metadata)
    assert looks_for_keys(OWNER, observed, recorded=recorded, declared=declared) == expected


@pytest.mark.parametrize(
    ("requested", "adopted", "expected"),
    [
        pytest.param(None, False, False, id="default-revokes"),
        pytest.param("Delete", False, False, id="delete-revokes"),
        pytest.param("Retain", False, True, id="retain-keeps"),
        pytest.param(None, True, True, id="adopted-keeps"),
        pytest.param("Delete", True, True, id="adopted-delete-still-keeps"),
    ],
)
def test_keys_outlive_a_retained_or_adopted_team(
    requested: Any, adopted: bool, expected: bool
) -> None:
    meta = desired_metadata(desired(), {}, adopted=adopted)
    assert keeps_keys(requested, held(metadata=meta)) == expected


def test_keys_of_a_team_gone_from_litellm_follow_the_requested_policy() -> None:
    assert keeps_keys(None, None) is False
    assert keeps_keys("Retain", None) is True


@pytest.mark.parametrize(
    ("indexed_policy", "generation", "expected"),
    [
        pytest.param({"name": "default", "generation": 2}, 2, False, id="reconciled-against-it"),
        pytest.param({"name": "default", "generation": 1}, 2, True, id="older-generation"),
        pytest.param(None, 2, True, id="never-reconciled"),
        pytest.param({"name": "default", "generation": 2}, None, True, id="policy-deleted"),
    ],
)
def test_a_team_behind_its_policy(
    indexed_policy: dict[str, Any] | None, generation: int | None, expected: bool
) -> None:
    team = {"spec": {"policyRef": "default"}, "policy": indexed_policy}
    assert behind(team, "default", generation) is expected
    assert behind(team, "other", generation) is False
