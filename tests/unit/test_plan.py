"""Table tests of the planner: desired + observed → actions, with no I/O."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from litellm_operator.fields import (
    ALL_PROXY_MODELS,
    MANAGED_BY,
    MANAGER,
    UNLIMITED_PARALLEL_REQUESTS,
)
from litellm_operator.litellm.models import UpdateUserRequest
from litellm_operator.models import EffectiveSettings
from litellm_operator.users.plan import (
    ADOPTED,
    DELETE_ADOPTED,
    MANAGED_KEYS,
    OWNER_NAME,
    OWNER_NAMESPACE,
    OWNER_UID,
    POLICY_GENERATION,
    POLICY_NAME,
    RELEASED,
    AddToTeam,
    BlockKey,
    CreateUser,
    DeleteUser,
    Desired,
    ObservedKey,
    ObservedUser,
    Owner,
    Refuse,
    RemoveFromTeam,
    UnblockKey,
    UpdateUser,
    desired_metadata,
    observed_settings,
    plan_deletion,
    plan_user,
)

OWNER = Owner(namespace="team-a", name="alice", uid="uid-1")
SETTINGS = EffectiveSettings.model_validate(
    {
        "max_budget": 10.0,
        "budget_duration": "30d",
        "models": ["gpt-4o"],
        "teams": [],
        "tpm_limit": None,
        "rpm_limit": None,
        "user_role": "internal_user",
        "metadata": {"cost-center": "42"},
    }
)
MARKERS = {
    MANAGED_BY: MANAGER,
    OWNER_NAMESPACE: "team-a",
    OWNER_NAME: "alice",
    OWNER_UID: "uid-1",
    POLICY_NAME: "default",
    POLICY_GENERATION: "3",
    MANAGED_KEYS: "cost-center",
}


def desired(**changes: Any) -> Desired:
    settings = SETTINGS.model_copy(update=changes.pop("settings", {}))
    base = Desired(
        user_id="alice",
        owner=OWNER,
        settings=settings,
        policy_name="default",
        policy_generation=3,
    )
    return replace(base, **changes)


IN_SYNC_COLUMNS: dict[str, Any] = {
    "user_role": "internal_user",
    "max_budget": 10.0,
    "budget_duration": "30d",
    "models": ["gpt-4o"],
    "max_parallel_requests": UNLIMITED_PARALLEL_REQUESTS,
}
"""LiteLLM's columns of a user holding SETTINGS (raw: read through the declarations)."""
OBSERVED_ONLY = {"email", "alias", "keys", "email_in_use", "memberships"}


def in_sync_observed(**changes: Any) -> ObservedUser:
    """The user as LiteLLM would hold ``desired()``; ``changes`` are raw LiteLLM values."""
    metadata = changes.pop("metadata", {"cost-center": "42", **MARKERS})
    teams = list(changes.pop("teams", ()))
    extra = {k: changes.pop(k) for k in list(changes) if k in OBSERVED_ONLY}
    columns = {**IN_SYNC_COLUMNS, **changes}
    return ObservedUser(
        user_id="alice",
        settings=observed_settings(columns, metadata, teams),
        metadata=metadata,
        **{"keys": (), **extra},
    )


def test_absent_user_is_created_with_every_managed_field_explicit() -> None:
    plan = plan_user(desired(email="a@example.com"), None)
    assert plan.ownership == "absent"
    (create,) = plan.actions
    assert isinstance(create, CreateUser)
    assert create.fields == {
        "user_id": "alice",
        "user_email": "a@example.com",
        "user_role": "internal_user",
        "max_budget": 10.0,
        "budget_duration": "30d",
        "models": ["gpt-4o"],
        "tpm_limit": None,
        "rpm_limit": None,
        "max_parallel_requests": UNLIMITED_PARALLEL_REQUESTS,
        "metadata": {"cost-center": "42", **MARKERS},
        "auto_create_key": False,
    }


def test_created_user_joins_desired_teams_after_creation() -> None:
    plan = plan_user(desired(settings={"teams": ["t2", "t1"]}), None)
    assert plan.actions[1:] == (AddToTeam("t1"), AddToTeam("t2"))


def test_in_sync_user_needs_nothing() -> None:
    plan = plan_user(desired(), in_sync_observed())
    assert plan.in_sync
    assert plan.ownership == "ours"


UPDATE_CASES = [
    pytest.param({"settings": {"max_budget": 25.0}}, {}, {"max_budget": 25.0}, id="budget-raised"),
    pytest.param({}, {"max_budget": 500.0}, {"max_budget": 10.0}, id="budget-drift-reverted"),
    pytest.param({"settings": {"max_budget": None}}, {}, {"max_budget": None}, id="cap-removed"),
    pytest.param({}, {"max_budget": 10.0 + 1e-12}, {}, id="float-noise-is-not-drift"),
    pytest.param(
        {"settings": {"budget_duration": "7d"}}, {}, {"budget_duration": "7d"}, id="new-period"
    ),
    pytest.param({"settings": {"tpm_limit": 1000}}, {}, {"tpm_limit": 1000}, id="tpm-set"),
    pytest.param({}, {"rpm_limit": 5}, {"rpm_limit": None}, id="rpm-drift-cleared"),
    pytest.param(
        {"settings": {"user_role": "proxy_admin"}}, {}, {"user_role": "proxy_admin"}, id="role"
    ),
    pytest.param({}, {"models": ("gpt-4o", "claude")}, {"models": ["gpt-4o"]}, id="model-added"),
    pytest.param(
        {"settings": {"models": ["b", "a"]}}, {"models": ("a", "b")}, {}, id="model-order-ignored"
    ),
    pytest.param(
        {"settings": {"models": []}},
        {},
        {"models": [ALL_PROXY_MODELS]},
        id="all-models-written-as-special-name",
    ),
    pytest.param(
        {"settings": {"models": []}}, {"models": (ALL_PROXY_MODELS,)}, {}, id="all-models-in-sync"
    ),
    pytest.param(
        {"email": "new@x.io"}, {"email": "old@x.io"}, {"user_email": "new@x.io"}, id="email"
    ),
    pytest.param({}, {"email": "someone@x.io"}, {}, id="unmanaged-email-left-alone"),
    pytest.param({"alias": "Alice"}, {}, {"user_alias": "Alice"}, id="alias"),
]


@pytest.mark.parametrize(("desired_changes", "observed_changes", "expected"), UPDATE_CASES)
def test_update_sends_only_the_fields_that_differ(
    desired_changes: dict[str, Any], observed_changes: dict[str, Any], expected: dict[str, Any]
) -> None:
    plan = plan_user(desired(**desired_changes), in_sync_observed(**observed_changes))
    updates = [a for a in plan.actions if isinstance(a, UpdateUser)]
    assert (updates[0].fields if updates else {}) == expected


def test_unchanged_budget_duration_is_never_resent() -> None:
    plan = plan_user(desired(settings={"max_budget": 99.0}), in_sync_observed())
    (update,) = plan.actions
    assert isinstance(update, UpdateUser)
    assert "budget_duration" not in update.fields


METADATA_CASES = [
    pytest.param(
        {"owner-set": "x"},
        {"cost-center": "42"},
        {"owner-set": "x", "cost-center": "42"},
        id="foreign-key-preserved",
    ),
    pytest.param(
        {"cost-center": "1", MANAGED_KEYS: "cost-center"},
        {"cost-center": "42"},
        {"cost-center": "42"},
        id="managed-key-updated",
    ),
    pytest.param(
        {"old": "v", MANAGED_KEYS: "old"},
        {},
        {},
        id="key-dropped-from-policy-is-removed",
    ),
    pytest.param(
        {"team": "ui-set"},
        {"team": "policy"},
        {"team": "policy"},
        id="policy-wins-over-foreign-key-of-same-name",
    ),
    pytest.param(
        {RELEASED: "true", "x": "y"}, {}, {"x": "y"}, id="release-tombstone-dropped-on-adoption"
    ),
]


@pytest.mark.parametrize(("observed", "policy", "expected_payload"), METADATA_CASES)
def test_desired_metadata(
    observed: dict[str, str], policy: dict[str, str], expected_payload: dict[str, str]
) -> None:
    result = desired_metadata(desired(settings={"metadata": policy}), observed)
    payload = {k: v for k, v in result.items() if not k.startswith("litellm.platform.dev/")}
    assert payload == expected_payload
    assert result[OWNER_UID] == "uid-1"
    assert result.get(MANAGED_KEYS, "") == ",".join(sorted(policy))


OWNERSHIP_CASES = [
    pytest.param({}, False, "unmanaged", "AlreadyExists", id="unmanaged-without-adoption"),
    pytest.param(
        {MANAGED_BY: MANAGER, OWNER_UID: "uid-2", OWNER_NAMESPACE: "b", OWNER_NAME: "bob"},
        False,
        "other-resource",
        "Conflict",
        id="owned-by-another-resource",
    ),
    pytest.param(
        {MANAGED_BY: MANAGER, OWNER_UID: "uid-2"},
        True,
        "other-resource",
        "Conflict",
        id="adoption-never-steals-from-another-resource",
    ),
    pytest.param(
        {MANAGED_BY: "someone-else", OWNER_UID: "uid-1"},
        False,
        "unmanaged",
        "AlreadyExists",
        id="foreign-manager-is-unmanaged",
    ),
]


@pytest.mark.parametrize(("metadata", "adoption", "ownership", "reason"), OWNERSHIP_CASES)
def test_users_the_operator_does_not_own_are_refused(
    metadata: dict[str, str], adoption: bool, ownership: str, reason: str
) -> None:
    plan = plan_user(
        desired(adoption_allowed=adoption), in_sync_observed(metadata=metadata, max_budget=999.0)
    )
    assert plan.ownership == ownership
    assert plan.actions == (plan.refusal,)
    assert isinstance(plan.refusal, Refuse)
    assert plan.refusal.reason == reason


def test_adoption_rewrites_owned_fields_and_adds_markers() -> None:
    observed = in_sync_observed(metadata={"ui": "kept"}, max_budget=999.0)
    plan = plan_user(desired(adoption_allowed=True), observed)
    assert plan.adopting
    (update,) = plan.actions
    assert isinstance(update, UpdateUser)
    assert update.fields["max_budget"] == 10.0
    assert update.fields["metadata"]["ui"] == "kept"
    assert update.fields["metadata"][OWNER_UID] == "uid-1"
    assert update.fields["metadata"][ADOPTED] == "true"


ADOPTION_ROLE_CASES = [
    pytest.param("proxy_admin", "internal_user", "Provider", False, id="admin-under-provider-role"),
    pytest.param("proxy_admin", "internal_user", None, False, id="admin-under-operator-role"),
    pytest.param("proxy_admin_viewer", "internal_user", None, False, id="admin-viewer"),
    pytest.param("org_admin", "proxy_admin", None, False, id="unranked-role-counts-as-above"),
    pytest.param("proxy_admin", "proxy_admin", "Provider", True, id="the-granted-role"),
    pytest.param("internal_user_viewer", "internal_user", "Provider", True, id="below-the-grant"),
    pytest.param(None, "internal_user", None, True, id="no-role-is-litellm-default"),
]


@pytest.mark.parametrize(("held", "granted", "owner", "adopted"), ADOPTION_ROLE_CASES)
def test_adoption_never_keeps_a_role_above_the_grant(
    held: str | None, granted: str, owner: str | None, adopted: bool
) -> None:
    provider = frozenset({"userRole"}) if owner == "Provider" else frozenset()
    wanted = desired(
        adoption_allowed=True, provider_owned=provider, settings={"user_role": granted}
    )
    plan = plan_user(wanted, in_sync_observed(metadata={}, user_role=held))
    assert plan.adopting is adopted
    if not adopted:
        assert plan.actions == (plan.refusal,)
        assert plan.refusal is not None
        assert plan.refusal.reason == "AdoptionRefused"
        assert str(held) not in plan.refusal.message, "the held role is not revealed"


@pytest.mark.parametrize("delete_adopted", [True, False])
def test_the_adopting_policy_s_deletion_decision_is_recorded_once(delete_adopted: bool) -> None:
    plan = plan_user(
        desired(adoption_allowed=True, delete_adopted=delete_adopted),
        in_sync_observed(metadata={}),
    )
    (update,) = plan.actions
    assert isinstance(update, UpdateUser)
    assert (DELETE_ADOPTED in update.fields["metadata"]) is delete_adopted
    recorded = in_sync_observed(metadata={"cost-center": "42", **update.fields["metadata"]})
    for later in (True, False):  # whatever the policy says later: the record stands
        assert plan_user(desired(delete_adopted=later), recorded).in_sync


def test_adopted_marker_is_kept_once_owned() -> None:
    observed = in_sync_observed(metadata={"cost-center": "42", **MARKERS, ADOPTED: "true"})
    assert plan_user(desired(), observed).in_sync


@pytest.mark.parametrize(
    ("owner_namespace", "named", "hidden"),
    [
        pytest.param("team-a", "LiteLLMUser team-a/bob", None, id="same-namespace-is-named"),
        pytest.param("team-b", "another namespace", "team-b", id="other-namespace-is-not"),
    ],
)
def test_conflict_names_only_resources_of_the_same_namespace(
    owner_namespace: str, named: str, hidden: str | None
) -> None:
    foreign = {MANAGED_BY: MANAGER, OWNER_UID: "uid-2", OWNER_NAMESPACE: owner_namespace}
    refusal = plan_user(desired(), in_sync_observed(metadata={**foreign, OWNER_NAME: "bob"}))
    assert isinstance(refusal.refusal, Refuse)
    assert named in refusal.refusal.message
    if hidden:
        assert hidden not in refusal.refusal.message
        assert "bob" not in refusal.refusal.message


@pytest.mark.parametrize(
    ("wanted", "held", "in_use", "expected"),
    [
        pytest.param("Ben@X.io", "ben@x.io", False, None, id="case-only-is-not-drift"),
        pytest.param("Ben@X.io", None, False, "ben@x.io", id="written-lower-cased"),
        pytest.param("ben@x.io", "old@x.io", False, "ben@x.io", id="changed"),
        pytest.param("ben@x.io", "old@x.io", True, "EmailInUse", id="held-by-another-user"),
        pytest.param(None, "old@x.io", False, None, id="unset-leaves-litellm-alone"),
    ],
)
def test_email(wanted: str | None, held: str | None, in_use: bool, expected: str | None) -> None:
    plan = plan_user(desired(email=wanted), in_sync_observed(email=held, email_in_use=in_use))
    if expected == "EmailInUse":
        assert plan.actions == (plan.refusal,)
        assert plan.refusal is not None
        assert plan.refusal.reason == "EmailInUse"
    elif expected is None:
        assert plan.in_sync
    else:
        assert plan.actions == (UpdateUser(UpdateUserRequest.of(**{"user_email": expected})),)


def test_created_user_gets_a_lower_cased_email() -> None:
    (create,) = plan_user(desired(email="Ann@X.io"), None).actions
    assert isinstance(create, CreateUser)
    assert create.fields["user_email"] == "ann@x.io"


TEAM_CASES = [
    pytest.param(["t1"], (), frozenset(), [AddToTeam("t1")], id="join"),
    pytest.param(["t1"], ("t1",), frozenset(), [], id="already-member"),
    pytest.param([], ("t1",), frozenset({"t1"}), [RemoveFromTeam("t1")], id="leave-managed-team"),
    pytest.param([], ("t1",), frozenset(), [], id="foreign-membership-kept"),
    pytest.param(
        ["t1"], ("t1", "sso-group"), frozenset({"t1"}), [], id="membership-added-by-sso-kept"
    ),
    pytest.param(
        ["t1"], (), frozenset({"t1"}), [AddToTeam("t1")], id="drift-removed-team-rejoined"
    ),
    pytest.param([], (), frozenset({"t1"}), [], id="managed-team-already-left"),
    pytest.param(
        ["t2"], ("t1",), frozenset({"t1"}), [AddToTeam("t2"), RemoveFromTeam("t1")], id="switch"
    ),
]


@pytest.mark.parametrize(("wanted", "current", "managed", "expected"), TEAM_CASES)
def test_team_membership(
    wanted: list[str], current: tuple[str, ...], managed: frozenset[str], expected: list[object]
) -> None:
    plan = plan_user(
        desired(settings={"teams": wanted}, managed_teams=managed), in_sync_observed(teams=current)
    )
    assert list(plan.actions) == expected


KEY_CASES = [
    pytest.param(
        True,
        (ObservedKey("h1", False), ObservedKey("h2", True)),
        frozenset(),
        [BlockKey("h1")],
        id="suspend-blocks-active-keys",
    ),
    pytest.param(
        False, (ObservedKey("h1", True),), frozenset({"h1"}), [UnblockKey("h1")], id="resume"
    ),
    pytest.param(
        False, (ObservedKey("h1", True),), frozenset(), [], id="key-blocked-by-someone-else-kept"
    ),
    pytest.param(True, None, frozenset(), [], id="keys-not-observed"),
]


@pytest.mark.parametrize(("suspend", "keys", "blocked", "expected"), KEY_CASES)
def test_suspension(
    suspend: bool,
    keys: tuple[ObservedKey, ...] | None,
    blocked: frozenset[str],
    expected: list[object],
) -> None:
    plan = plan_user(desired(suspend=suspend, blocked_keys=blocked), in_sync_observed(keys=keys))
    assert list(plan.actions) == expected


DELETION_CASES = [
    pytest.param(None, "Delete", (), id="already-gone"),
    pytest.param(in_sync_observed(), "Delete", (DeleteUser("alice"),), id="delete-owned"),
    pytest.param(in_sync_observed(metadata={}), "Delete", (), id="never-delete-unmanaged"),
    pytest.param(
        in_sync_observed(metadata={**MARKERS, OWNER_UID: "uid-2"}),
        "Delete",
        (),
        id="never-delete-another-resources-user",
    ),
    pytest.param(
        in_sync_observed(metadata={"ui": "x", "cost-center": "42", **MARKERS}),
        "Retain",
        (UpdateUser(UpdateUserRequest.of(**{"metadata": {"ui": "x", "cost-center": "42"}})),),
        id="retain-strips-markers-only",
    ),
    pytest.param(
        in_sync_observed(metadata=dict(MARKERS)),
        "Retain",
        (UpdateUser(UpdateUserRequest.of(**{"metadata": {RELEASED: "true"}})),),
        id="retain-leaves-tombstone-when-nothing-else",
    ),
    pytest.param(
        in_sync_observed(metadata={**MARKERS, ADOPTED: "true"}),
        "Delete",
        (UpdateUser(UpdateUserRequest.of(**{"metadata": {RELEASED: "true"}})),),
        id="adopted-user-is-released-not-deleted",
    ),
]


@pytest.mark.parametrize(("observed", "policy", "expected"), DELETION_CASES)
def test_deletion(observed: ObservedUser | None, policy: str, expected: tuple[object, ...]) -> None:
    assert plan_deletion(OWNER, observed, policy) == expected  # type: ignore[arg-type]


def test_adopted_user_is_deleted_only_where_the_adopting_policy_allowed_it() -> None:
    observed = in_sync_observed(metadata={**MARKERS, ADOPTED: "true", DELETE_ADOPTED: "true"})
    assert plan_deletion(OWNER, observed, "Delete") == (DeleteUser("alice"),)
    assert plan_deletion(OWNER, observed, "Retain") == (
        UpdateUser(UpdateUserRequest.of(**{"metadata": {RELEASED: "true"}})),
    )
