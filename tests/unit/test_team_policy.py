"""A LiteLLMTeam under its policy (litellm_operator.policies.teams), case by case."""

from __future__ import annotations

from typing import Any

import pytest

from litellm_operator.fields import TEAM_FIELDS
from litellm_operator.models import LiteLLMTeam, LiteLLMUser, ProvisioningPolicy
from litellm_operator.policies.resolve import PolicyViolation, derived_team_id, resolve
from litellm_operator.policies.teams import (
    TeamResolution,
    reference,
    resolve_team,
    team_id_of,
)
from litellm_operator.reasons import Reason
from tests.fixtures.policies import ANY_IDENTITY

TEAMS = {"maxBudget": 100, "tpmLimit": 1000, "allowedModels": ["mini", "big"]}


def policy(name: str = "default", **spec: Any) -> ProvisioningPolicy:
    body: dict[str, Any] = {
        "allowedNamespaces": ["*"],
        "identities": ANY_IDENTITY,
        "teams": TEAMS,
        **spec,
    }
    return ProvisioningPolicy.model_validate(
        {
            "apiVersion": "litellm.platform.dev/v1alpha1",
            "kind": "ProvisioningPolicy",
            "metadata": {"name": name, "generation": 4},
            "spec": {k: v for k, v in body.items() if v is not None},
        }
    )


def team(
    name: str = "crew", namespace: str = "team-a", created: str | None = None, **spec: Any
) -> LiteLLMTeam:
    metadata: dict[str, Any] = {"name": name, "namespace": namespace, "uid": "t-1"}
    if created is not None:
        metadata["creationTimestamp"] = created
    return LiteLLMTeam.model_validate(
        {
            "apiVersion": "litellm.platform.dev/v1alpha1",
            "kind": "LiteLLMTeam",
            "metadata": metadata,
            "spec": spec,
        }
    )


def refused(
    the_policy: ProvisioningPolicy, the_team: LiteLLMTeam, **kwargs: Any
) -> set[tuple[str, Reason]]:
    with pytest.raises(PolicyViolation) as caught:
        resolve_team(the_policy, the_team, **kwargs)
    return {(p.path, p.reason) for p in caught.value.problems}


def effective(resolution: TeamResolution) -> dict[str, Any]:
    return resolution.effective.model_dump(by_alias=True)


# --- the team id -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "pinned", "expected"),
    [
        pytest.param({}, None, "team-a.crew", id="derived-namespace-dot-name"),
        pytest.param({"teamId": "power-users"}, None, "power-users", id="explicit"),
        pytest.param({"teamId": "power-users"}, "team-a.crew", "team-a.crew", id="pinned-wins"),
    ],
)
def test_team_id(spec: dict[str, Any], pinned: str | None, expected: str) -> None:
    assert team_id_of(team(**spec), pinned) == expected


def test_reference_and_derived_id_never_collide() -> None:
    assert reference("team-a", "crew") == "team-a/crew"
    assert derived_team_id("team-a", "crew") == "team-a.crew"


GRANTED = [
    {"namespaces": ["team-a"], "emails": ["*"], "teamIds": ["power-*"]},
    {"namespaces": ["team-b"], "emails": ["*"], "teamIds": ["b-*"]},
]


@pytest.mark.parametrize(
    ("identities", "spec", "reason"),
    [
        pytest.param(ANY_IDENTITY, {"teamId": "power-users"}, Reason.TEAM_ID_NOT_ALLOWED,
                     id="explicit-id-without-team-ids-grant"),
        pytest.param(GRANTED, {"teamId": "b-users"}, Reason.TEAM_ID_NOT_ALLOWED,
                     id="explicit-id-granted-to-another-namespace"),
        pytest.param(GRANTED, {"teamId": "Power-users"}, Reason.TEAM_ID_NOT_ALLOWED,
                     id="team-id-globs-are-case-sensitive"),
        pytest.param([{"namespaces": ["*"], "emails": ["*"], "teamIds": ["*"]}],
                     {"teamId": "litellm-dashboard"}, Reason.TEAM_ID_NOT_ALLOWED,
                     id="litellm-own-team-never"),
    ],
)  # fmt: skip
def test_team_id_refused(identities: Any, spec: dict[str, Any], reason: Reason) -> None:
    assert refused(policy(identities=identities), team(**spec)) == {("spec.teamId", reason)}


@pytest.mark.parametrize(
    ("identities", "spec", "team_id"),
    [
        pytest.param(ANY_IDENTITY, {}, "team-a.crew", id="derived-needs-no-grant"),
        pytest.param(GRANTED, {"teamId": "power-users"}, "power-users", id="granted-glob"),
    ],
)
def test_team_id_granted(identities: Any, spec: dict[str, Any], team_id: str) -> None:
    assert resolve_team(policy(identities=identities), team(**spec)).team_id == team_id


# --- ids granted to other namespaces' users ----------------------------------------------------

EXPLICIT = [{"namespaces": ["team-a"], "emails": ["*"], "teamIds": ["*"]}]


@pytest.mark.parametrize(
    ("spec", "granted"),
    [
        pytest.param({"defaults": {"teams": ["shared"]}}, True, id="defaults-everywhere"),
        pytest.param(
            {"defaults": {"teams": ["shared"]}, "allowedNamespaces": ["team-a"]},
            False,
            id="defaults-of-a-policy-of-this-namespace-only",
        ),
        pytest.param({"overrides": {"allowedTeams": ["shared"]}}, True, id="allowed-teams"),
        pytest.param({"roles": [{"group": "g", "teams": ["shared"]}]}, True, id="role-anywhere"),
        pytest.param(
            {"roles": [{"group": "g", "teams": ["shared"], "namespaces": ["team-*"]}]},
            True,
            id="role-namespace-glob",
        ),
        pytest.param(
            {"roles": [{"group": "g", "teams": ["shared"], "namespaces": ["team-b"]}]},
            True,
            id="role-other-namespace",
        ),
        pytest.param(
            {"roles": [{"group": "g", "teams": ["shared"], "namespaces": ["team-a"]}]},
            False,
            id="role-of-this-namespace-only",
        ),
        pytest.param(
            {"roles": [{"group": "g", "teams": ["team-a/crew"], "namespaces": ["team-b"]}]},
            False,
            id="reference-to-this-team-delegates-it",
        ),
        pytest.param({"roles": [{"group": "g", "teams": ["other"]}]}, False, id="another-id"),
    ],
)
def test_team_granted_to_other_namespaces_is_refused(spec: dict[str, Any], granted: bool) -> None:
    the_policy = policy(identities=EXPLICIT, **spec)
    the_team = team(teamId="shared")
    if granted:
        assert refused(the_policy, the_team) == {("metadata.name", Reason.TEAM_NOT_ALLOWED)}
    else:
        assert resolve_team(the_policy, the_team).team_id == "shared"


def test_grants_of_every_policy_count() -> None:
    """A team under policy A is refused when policy B hands its id to other namespaces."""
    other = policy("other", roles=[{"group": "g", "teams": ["team-a.crew"]}])
    assert refused(policy(), team(), policies=[other]) == {
        ("metadata.name", Reason.TEAM_NOT_ALLOWED)
    }
    assert resolve_team(policy(), team(), policies=[policy("unrelated")]).team_id == "team-a.crew"


# --- the policy and the namespace --------------------------------------------------------------


@pytest.mark.parametrize(
    ("the_policy", "the_team", "expected"),
    [
        pytest.param(policy(teams=None), team(), {("spec.policyRef", Reason.TEAM_NOT_ALLOWED)},
                     id="no-teams-section-no-teams"),
        pytest.param(policy(allowedNamespaces=["team-b"]), team(),
                     {("metadata.namespace", Reason.NAMESPACE_NOT_ALLOWED)},
                     id="namespace-not-allowed"),
        pytest.param(policy(), team(policyRef="other"),
                     {("spec.policyRef", Reason.POLICY_MISMATCH)}, id="other-policy"),
    ],
)  # fmt: skip
def test_refused_before_anything_else(
    the_policy: ProvisioningPolicy, the_team: LiteLLMTeam, expected: set[tuple[str, Reason]]
) -> None:
    assert refused(the_policy, the_team) == expected


# --- settings ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("teams", "spec", "field", "value", "source"),
    [
        pytest.param(TEAMS, {}, "maxBudget", 100.0, "ceiling", id="omitted-budget-gets-ceiling"),
        pytest.param(TEAMS, {"maxBudget": 40}, "maxBudget", 40.0, "spec", id="budget-under"),
        pytest.param(TEAMS, {"maxBudget": 100}, "maxBudget", 100.0, "spec", id="budget-at"),
        pytest.param({}, {}, "maxBudget", None, "builtin", id="no-ceiling-no-cap"),
        pytest.param({}, {"maxBudget": 1e6}, "maxBudget", 1e6, "spec", id="no-ceiling-any"),
        pytest.param(TEAMS, {}, "models", ["mini", "big"], "ceiling", id="models-default-list"),
        pytest.param(TEAMS, {"models": ["mini"]}, "models", ["mini"], "spec", id="models-subset"),
        pytest.param({}, {}, "models", [], "builtin", id="no-allow-list-all-models"),
        pytest.param({}, {"models": []}, "models", [], "spec", id="all-models-allowed"),
        pytest.param(TEAMS, {}, "rpmLimit", None, "builtin", id="uncapped-limit-none"),
        pytest.param({"rpmLimit": 4}, {}, "rpmLimit", 4, "ceiling", id="rpm-ceiling-default"),
        pytest.param(TEAMS, {"alias": "Crew"}, "alias", "Crew", "spec", id="alias"),
        pytest.param(TEAMS, {"blocked": True}, "blocked", True, "spec", id="blocked"),
        pytest.param(TEAMS, {}, "blocked", False, "builtin", id="not-blocked"),
        pytest.param(TEAMS, {"budgetDuration": "7d"}, "budgetDuration", "7d", "spec",
                     id="duration-free"),
        pytest.param(TEAMS, {"modelRpmLimit": {"mini": 5}}, "modelRpmLimit", {"mini": 5}, "spec",
                     id="per-model-limits"),
        pytest.param(TEAMS, {"metadata": {"cost-center": "42"}}, "metadata",
                     {"cost-center": "42"}, "spec", id="metadata"),
    ],
)  # fmt: skip
def test_effective_settings(
    teams: dict[str, Any], spec: dict[str, Any], field: str, value: Any, source: str
) -> None:
    resolution = resolve_team(policy(teams=teams), team(**spec))
    assert effective(resolution)[field] == value
    assert resolution.sources[field] == source


def test_every_team_field_has_a_value_and_a_source() -> None:
    resolution = resolve_team(policy(), team())
    assert set(effective(resolution)) == set(resolution.sources) == {f.wire for f in TEAM_FIELDS}
    assert resolution.policy_generation == 4


@pytest.mark.parametrize(
    ("teams", "spec", "expected"),
    [
        pytest.param(TEAMS, {"maxBudget": 100.01}, {("spec.maxBudget", Reason.CEILING_EXCEEDED)},
                     id="budget-over-ceiling"),
        pytest.param(TEAMS, {"tpmLimit": 1001}, {("spec.tpmLimit", Reason.CEILING_EXCEEDED)},
                     id="tpm-over-ceiling"),
        pytest.param({"rpmLimit": 1}, {"rpmLimit": 2}, {("spec.rpmLimit", Reason.CEILING_EXCEEDED)},
                     id="rpm-over-ceiling"),
        pytest.param({"tpmLimit": 2}, {"tpmLimit": 2**40},
                     {("spec.tpmLimit", Reason.CEILING_EXCEEDED)}, id="huge-tpm-over-ceiling"),
        pytest.param(TEAMS, {"models": ["mini", "gpt-5"]},
                     {("spec.models", Reason.MODEL_NOT_ALLOWED)}, id="model-outside-allow-list"),
        pytest.param(TEAMS, {"models": []}, {("spec.models", Reason.MODEL_NOT_ALLOWED)},
                     id="all-models-outside-allow-list"),
        pytest.param(TEAMS, {"metadata": {"model_rpm_limit": "9"}},
                     {("spec.metadata", Reason.INVALID_SPEC)}, id="metadata-poses-as-a-setting"),
        pytest.param(TEAMS, {"metadata": {"litellm.platform.dev/managed-by": "litellm-operator"}},
                     {("spec.metadata", Reason.INVALID_SPEC)}, id="metadata-forges-the-marker"),
        pytest.param(TEAMS, {"maxBudget": 101, "models": ["x"]},
                     {("spec.maxBudget", Reason.CEILING_EXCEEDED),
                      ("spec.models", Reason.MODEL_NOT_ALLOWED)}, id="every-problem-at-once"),
    ],
)  # fmt: skip
def test_beyond_the_bounds_is_refused(
    teams: dict[str, Any], spec: dict[str, Any], expected: set[tuple[str, Reason]]
) -> None:
    assert refused(policy(teams=teams), team(**spec)) == expected


# --- adoption and the count per namespace ------------------------------------------------------


@pytest.mark.parametrize(
    ("adopt_existing", "adopt", "expected"),
    [
        pytest.param(True, True, True, id="allowed-and-asked"),
        pytest.param(True, False, False, id="allowed-not-asked"),
        pytest.param(False, True, False, id="asked-not-allowed"),
    ],
)
def test_adoption(adopt_existing: bool, adopt: bool, expected: bool) -> None:
    the_policy = policy(teams={**TEAMS, "adoptExistingTeams": adopt_existing})
    assert resolve_team(the_policy, team(adopt=adopt)).adopt is expected


OLD = "2026-01-01T00:00:00Z"
NEW = "2026-06-01T00:00:00Z"


@pytest.mark.parametrize(
    ("limit", "siblings", "me", "allowed"),
    [
        pytest.param(None, [team("a", created=OLD)] * 5, team(created=NEW), True, id="no-limit"),
        pytest.param(1, [team("a", created=OLD)], team(created=NEW), False, id="older-one-fills"),
        pytest.param(1, [team("z", created=NEW)], team(created=OLD), True, id="oldest-passes"),
        pytest.param(1, [team("a", created=OLD)], team(created=OLD), False,
                     id="same-time-by-name"),
        pytest.param(1, [team("z", created=OLD)], team(created=OLD), True, id="name-first-wins"),
        pytest.param(1, [team(created=OLD)], team(created=OLD), True, id="itself-not-counted"),
        pytest.param(1, [team("a", "team-b", created=OLD)], team(created=NEW), True,
                     id="other-namespace-not-counted"),
        pytest.param(1, [team("a", created=OLD, policyRef="x")], team(created=NEW), True,
                     id="other-policy-not-counted"),
        pytest.param(0, [], team(), False, id="zero-means-none"),
        pytest.param(2, [team("a", created=OLD)], team(), True, id="not-yet-stored-is-last"),
    ],
)  # fmt: skip
def test_count_per_namespace(
    limit: int | None, siblings: list[LiteLLMTeam], me: LiteLLMTeam, allowed: bool
) -> None:
    the_policy = policy(teams={**TEAMS, "maxPerNamespace": limit})
    if allowed:
        resolve_team(the_policy, me, siblings=siblings)
    else:
        assert refused(the_policy, me, siblings=siblings) == {
            ("metadata.name", Reason.TEAM_QUOTA_EXCEEDED)
        }


def test_parallel_requests_are_not_a_team_setting() -> None:
    """LiteLLM's /team/new and /team/update ignore max_parallel_requests: not declared."""
    assert "max_parallel_requests" not in {f.name for f in TEAM_FIELDS}


@pytest.mark.parametrize(
    ("teams", "expected"),
    [
        pytest.param(["platform/power-users"], ["platform.power-users"], id="reference"),
        pytest.param(["power-users"], ["power-users"], id="litellm-id"),
        pytest.param(["a/x", "a.x", "b"], ["a.x", "b"], id="same-team-twice-once"),
    ],
)
def test_a_role_names_a_litellm_team_by_reference(teams: list[str], expected: list[str]) -> None:
    """``<namespace>/<name>`` in a role's teams is that LiteLLMTeam's id for its members."""
    the_policy = policy(roles=[{"group": "crew", "teams": teams}])
    user = LiteLLMUser.model_validate(
        {
            "apiVersion": "litellm.platform.dev/v1alpha1",
            "kind": "LiteLLMUser",
            "metadata": {"name": "ann", "namespace": "team-b"},
            "spec": {"groups": ["crew"]},
        }
    )
    assert resolve(the_policy, user).effective.teams == expected
