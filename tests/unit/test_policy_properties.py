"""Invariants of the effective-settings engine over generated policies and users."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic.alias_generators import to_snake

from litellm_operator.models import USER_ROLES, LiteLLMUser, ProvisioningPolicy, SettingsPatch
from litellm_operator.policies.resolve import BUILTIN, PolicyViolation, normalize_group, resolve
from tests.fixtures.policies import ANY_IDENTITY

GROUPS = ["ai", "admins", "ops", "group:default/ai", "Group:AI", "user:ai", "group:other/ai"]
MODELS = ["a", "b", "c", "d"]
TEAMS = ["t1", "t2", "t3"]
NUMERIC = ("maxBudget", "tpmLimit", "rpmLimit")
# The machine is shared with slow jobs; timing is not what these tests are about.
relaxed = settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])

budgets = st.floats(min_value=0, max_value=1e6, allow_nan=False)
limits = st.integers(min_value=0, max_value=10**7)
labels = st.dictionaries(st.sampled_from("abcd"), st.sampled_from(["x", "y", "z"]), max_size=3)
VALUES: dict[str, st.SearchStrategy[Any]] = {
    "maxBudget": budgets,
    "budgetDuration": st.sampled_from(["30d", "7d", "24h", "30m", "1mo"]),
    "models": st.lists(st.sampled_from(MODELS), unique=True, max_size=3),
    "teams": st.lists(st.sampled_from(TEAMS), unique=True, max_size=2),
    "tpmLimit": limits,
    "rpmLimit": limits,
    "userRole": st.sampled_from(USER_ROLES),
    "metadata": labels,
}


def patches(fields: tuple[str, ...] = tuple(VALUES)) -> st.SearchStrategy[dict[str, Any]]:
    """A settings patch: each field absent, null or a value."""
    return st.fixed_dictionaries({}, optional={name: st.none() | VALUES[name] for name in fields})


roles = st.lists(
    st.builds(lambda group, patch: {"group": group, **patch}, st.sampled_from(GROUPS), patches()),
    max_size=4,
)
ceilings = st.fixed_dictionaries(
    {}, optional={"maxBudget": budgets, "tpmLimit": limits, "rpmLimit": limits}
)


@st.composite
def cases(draw: st.DrawFn) -> tuple[ProvisioningPolicy, LiteLLMUser]:
    overrides = {
        "allowedFields": list(VALUES),
        "allowedModels": MODELS,
        "allowedTeams": TEAMS,
        "allowedUserRoles": list(USER_ROLES),
        **draw(ceilings),
    }
    policy = ProvisioningPolicy.model_validate(
        {
            "apiVersion": "litellm.platform.dev/v1alpha1",
            "kind": "ProvisioningPolicy",
            "metadata": {"name": "default"},
            "spec": {
                "allowedNamespaces": ["*"],
                "identities": ANY_IDENTITY,
                "defaults": draw(patches()),
                "roles": draw(roles),
                "overrides": overrides,
            },
        }
    )
    # budgetDuration overrides are judged against the period the user would get (tested by
    # table in test_policy.py); here every drawn override is within an explicit allow-list.
    user_overrides = draw(patches(tuple(f for f in VALUES if f != "budgetDuration")))
    if user_overrides.get("models") == []:
        del user_overrides["models"]  # [] = all models, outside the allow-list
    user = LiteLLMUser.model_validate(
        {
            "apiVersion": "litellm.platform.dev/v1alpha1",
            "kind": "LiteLLMUser",
            "metadata": {"name": "u", "namespace": "ns"},
            "spec": {
                "groups": draw(st.lists(st.sampled_from(GROUPS), max_size=3)),
                "overrides": user_overrides,
            },
        }
    )
    return policy, user


def without_overrides(policy: ProvisioningPolicy, user: LiteLLMUser) -> dict[str, Any]:
    """The effective settings the user would get with no overrides at all."""
    plain = user.model_copy(deep=True)
    plain.spec.overrides = SettingsPatch()
    return resolve(policy, plain).effective.model_dump(by_alias=True)


def layer_of(source: str, policy: ProvisioningPolicy, user: LiteLLMUser, role: Any) -> Any:
    return {
        "default": policy.spec.defaults,
        "role": role,
        "override": user.spec.overrides,
    }[source]


@relaxed
@given(cases())
def test_every_source_matches_where_the_value_came_from(
    case: tuple[ProvisioningPolicy, LiteLLMUser],
) -> None:
    policy, user = case
    resolution = resolve(policy, user)
    effective = resolution.effective.model_dump(by_alias=True)
    builtin = BUILTIN.model_dump(by_alias=True)
    role = next((r for r in policy.spec.roles if r.group == resolution.matched_role), None)
    for name, value in effective.items():
        source = resolution.sources[name]
        if name == "metadata":
            continue
        if source == "builtin":
            assert value == builtin[name]
            continue
        raw = layer_of(source, policy, user, role).model_dump(by_alias=True)[name]
        if source == "override" and name in NUMERIC:
            ceiling = policy.spec.overrides.model_dump(by_alias=True)[name]
            if ceiling is None:
                ceiling = without_overrides(policy, user)[name]
            assert value == (raw if ceiling is None else min(raw, ceiling))
        else:
            assert value == raw


@relaxed
@given(cases())
def test_higher_layers_that_set_a_field_win(case: tuple[ProvisioningPolicy, LiteLLMUser]) -> None:
    policy, user = case
    resolution = resolve(policy, user)
    overrides = user.spec.overrides.model_dump(by_alias=True)
    for name, value in overrides.items():
        if value is not None:
            assert resolution.sources[name] == "override"


@relaxed
@given(cases())
def test_metadata_merges_every_layer_in_order(case: tuple[ProvisioningPolicy, LiteLLMUser]) -> None:
    policy, user = case
    resolution = resolve(policy, user)
    role = next((r for r in policy.spec.roles if r.group == resolution.matched_role), None)
    expected = {
        **(policy.spec.defaults.metadata or {}),
        **((role.metadata if role else None) or {}),
        **(user.spec.overrides.metadata or {}),
    }
    assert resolution.effective.metadata == expected


@relaxed
@given(cases())
def test_overrides_never_exceed_ceilings(case: tuple[ProvisioningPolicy, LiteLLMUser]) -> None:
    policy, user = case
    resolution = resolve(policy, user)
    effective = resolution.effective.model_dump(by_alias=True)
    ceilings = policy.spec.overrides.model_dump(by_alias=True)
    baseline = without_overrides(policy, user)
    for name in NUMERIC:
        if resolution.sources[name] != "override":
            continue
        ceiling = ceilings[name] if ceilings[name] is not None else baseline[name]
        if ceiling is not None:
            assert effective[name] <= ceiling
    if resolution.sources["models"] == "override":
        assert set(resolution.effective.models) <= set(MODELS)


@relaxed
@given(cases())
def test_no_group_match_means_no_role_source(case: tuple[ProvisioningPolicy, LiteLLMUser]) -> None:
    policy, user = case
    user_groups = {normalize_group(g) for g in user.spec.groups}
    matching = [
        r
        for r in policy.spec.roles
        if normalize_group(r.group) in user_groups and normalize_group(r.group).startswith("group:")
    ]
    resolution = resolve(policy, user)
    if not matching:
        assert resolution.matched_role is None
        assert "role" not in resolution.sources.values()
    else:
        assert resolution.matched_role == matching[0].group


@relaxed
@given(cases())
def test_resolve_is_pure(case: tuple[ProvisioningPolicy, LiteLLMUser]) -> None:
    policy, user = case
    before = (policy.model_dump(), user.model_dump())
    assert resolve(policy, user) == resolve(policy, user)
    assert (policy.model_dump(), user.model_dump()) == before


@relaxed
@given(cases(), st.sampled_from(list(VALUES)), st.data())
def test_forbidden_overrides_always_raise(
    case: tuple[ProvisioningPolicy, LiteLLMUser], field: str, data: st.DataObject
) -> None:
    policy, user = case
    allowed = [f for f in policy.spec.overrides.allowed_fields if f != field]
    policy.spec.overrides.allowed_fields = allowed
    value = data.draw(VALUES[field].filter(lambda v: v != []))
    user.spec.overrides = user.spec.overrides.model_copy(update={to_snake(field): value})
    with pytest.raises(PolicyViolation) as caught:
        resolve(policy, user)
    assert f"spec.overrides.{field}" in {p.path for p in caught.value.problems}


@relaxed
@given(st.text(max_size=30))
def test_normalize_group_is_idempotent(ref: str) -> None:
    once = normalize_group(ref)
    assert normalize_group(once) == once
