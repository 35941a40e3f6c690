"""Every declared field goes the whole way: policy → LiteLLM bodies → observed → in sync.

A field that is declared in fields.FIELDS but not planned (not sent on create, not compared,
not sent on update, not parsed back) fails here, whatever its home in LiteLLM.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from litellm_operator.fields import FIELDS, NAMES, Home, ManagedField, markdown_table
from litellm_operator.litellm import LiteLLMUserRecord
from litellm_operator.models import LiteLLMUser, ProvisioningPolicy
from litellm_operator.policies.resolve import resolve
from litellm_operator.users.plan import (
    AddToTeam,
    CreateUser,
    Desired,
    ObservedUser,
    Owner,
    Plan,
    TeamMembership,
    UpdateTeamMembership,
    UpdateUser,
    plan_user,
)
from litellm_operator.users.reconciler import observed_from
from tests.fixtures.policies import ANY_IDENTITY

SAMPLES: dict[str, tuple[Any, Any]] = {
    "max_budget": (25.0, 40.0),
    "budget_duration": ("7d", "1mo"),
    "models": (["gpt-4o"], ["gpt-4o", "claude"]),
    "teams": (["t1"], ["t1", "t2"]),
    "max_budget_in_team": (5.0, 7.5),
    "tpm_limit": (1000, 2000),
    "rpm_limit": (10, 20),
    "max_parallel_requests": (2, 3),
    "model_rpm_limit": ({"gpt-4o": 5}, {"gpt-4o": 6, "claude": 1}),
    "model_tpm_limit": ({"gpt-4o": 500}, {"gpt-4o": 600}),
    "user_role": ("proxy_admin_viewer", "internal_user_viewer"),
    "metadata": ({"cost-center": "a"}, {"cost-center": "b"}),
}
"""Two different values of every declared field."""


def test_every_declared_field_has_samples() -> None:
    assert set(SAMPLES) == set(NAMES)


def desired_with(managed: ManagedField, value: Any) -> Desired:
    policy = ProvisioningPolicy.model_validate(
        {
            "metadata": {"name": "p", "generation": 1},
            "spec": {
                "allowedNamespaces": ["*"],
                "identities": ANY_IDENTITY,
                "defaults": {managed.wire: value},
            },
        }
    )
    user = LiteLLMUser.model_validate(
        {"metadata": {"name": "u", "namespace": "ns", "uid": "uid-1"}, "spec": {"policyRef": "p"}}
    )
    resolution = resolve(policy, user)
    assert getattr(resolution.effective, managed.name) == value
    assert resolution.sources[managed.wire] == "default"
    return Desired(
        user_id="u",
        owner=Owner("ns", "u", "uid-1"),
        settings=resolution.effective,
        policy_name="p",
        policy_generation=1,
        had_team_budget=True,
    )


def with_settings(desired: Desired, changes: dict[str, Any]) -> Desired:
    return replace(desired, settings=desired.settings.model_copy(update=changes))


def what_litellm_holds(plan: Plan) -> ObservedUser:
    """The user as ``/user/info`` (and ``/team/info``) would show it after the plan ran."""
    (create,) = [a for a in plan.actions if isinstance(a, CreateUser)]
    adds = [a for a in plan.actions if isinstance(a, AddToTeam)]
    stored = {k: v for k, v in create.fields.items() if k != "auto_create_key"}
    record = LiteLLMUserRecord.model_validate({**stored, "teams": [a.team_id for a in adds]})
    memberships = {a.team_id: TeamMembership("user", a.max_budget_in_team) for a in adds}
    return observed_from(record, None, memberships=memberships)


def updated(plan: Plan, managed: ManagedField) -> bool:
    """Whether the plan changes ``managed`` in LiteLLM."""
    for action in plan.actions:
        match action:
            case UpdateUser(changed=changed) if managed.wire in changed:
                return True
            case AddToTeam() if managed.home is Home.TEAMS:
                return True
            case UpdateTeamMembership() if managed.home is Home.MEMBERSHIP:
                return True
    return False


@pytest.mark.parametrize("managed", FIELDS, ids=[f.wire for f in FIELDS])
def test_field_goes_from_policy_to_litellm_and_back(managed: ManagedField) -> None:
    first, second = SAMPLES[managed.name]
    teams = {"teams": ["t1"]} if managed.home is Home.MEMBERSHIP else {}
    desired = with_settings(desired_with(managed, first), teams)

    created = plan_user(desired, None)
    observed = what_litellm_holds(created)
    assert managed.same(first, observed.settings.get(managed.name, first))
    assert plan_user(desired, observed).in_sync, "what was created reads back as in sync"

    changed = with_settings(desired_with(managed, second), teams)
    plan = plan_user(changed, observed)
    assert updated(plan, managed), f"{managed.wire} changed in the policy but not planned"


@pytest.mark.parametrize(
    ("managed", "written"),
    [
        pytest.param(f, f.written_as_none, id=f.wire)
        for f in FIELDS
        if f.home is Home.USER and not f.clearable and f.written_as_none is not None
    ],
)
def test_none_is_written_the_way_litellm_keeps_it(managed: ManagedField, written: Any) -> None:
    """Columns ``null`` cannot clear are written with their "none" value, read back as none."""
    none: Any = [] if isinstance(managed.builtin, list) else None
    assert managed.to_litellm(none) == written
    assert managed.from_litellm(written) == none


def test_per_model_limits_live_in_metadata_beside_foreign_keys() -> None:
    desired = desired_with(FIELDS[NAMES.index("model_rpm_limit")], {"gpt-4o": 5})
    foreign = {"ui-note": "kept", "model_rpm_limit": {"gpt-4o": 99}}
    record = LiteLLMUserRecord.model_validate({"user_id": "u", "metadata": foreign})
    plan = plan_user(replace(desired, adoption_allowed=True), observed_from(record, None))
    (update,) = [a for a in plan.actions if isinstance(a, UpdateUser)]
    assert update.fields["metadata"]["ui-note"] == "kept"
    assert update.fields["metadata"]["model_rpm_limit"] == {"gpt-4o": 5}
    assert "modelRpmLimit" in update.changed


def test_readme_field_table_is_generated_from_the_declarations() -> None:
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    section = readme.split("<!-- fields:begin -->\n", 1)[1].split("<!-- fields:end -->", 1)[0]
    assert section == markdown_table(), "regenerate the README table: make crds"
