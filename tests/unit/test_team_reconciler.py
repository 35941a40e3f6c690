"""The team reconciler's decisions before and after LiteLLM: why nothing is written, and how a
LiteLLM error becomes an outcome (transient: retried; otherwise stalled)."""

from __future__ import annotations

from typing import Any

import pytest

from litellm_operator.litellm import (
    AuthError,
    BadRequest,
    LiteLLMError,
    RateLimited,
    ServerError,
    TeamExists,
    Unavailable,
)
from litellm_operator.models import KeyPolicy, ProvisioningPolicy
from litellm_operator.reasons import Reason
from litellm_operator.status import TeamApplied, TeamFailed
from litellm_operator.teams.reconciler import TeamResult, from_error, prepare, still_granted
from tests.fixtures.policies import ANY_IDENTITY

POLICY = ProvisioningPolicy.model_validate(
    {
        "apiVersion": "litellm.platform.dev/v1alpha1",
        "kind": "ProvisioningPolicy",
        "metadata": {"name": "default", "generation": 2},
        "spec": {"allowedNamespaces": ["*"], "identities": ANY_IDENTITY, "teams": {}},
    }
)


def team(**spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "litellm.platform.dev/v1alpha1",
        "kind": "LiteLLMTeam",
        "metadata": {"name": "crew", "namespace": "team-a", "uid": "u-1", "generation": 1},
        "spec": spec,
    }


@pytest.mark.parametrize(
    ("body", "policy", "reason"),
    [
        pytest.param(team(), None, Reason.POLICY_NOT_FOUND, id="no-policy"),
        pytest.param(team(), {"metadata": {"name": "default"}}, Reason.INVALID_SPEC,
                     id="invalid-policy"),
        pytest.param(team(maxBudget="ten"), POLICY, Reason.INVALID_SPEC, id="invalid-spec"),
        pytest.param(team(teamId="other"), POLICY, Reason.TEAM_ID_NOT_ALLOWED, id="refused"),
    ],
)  # fmt: skip
def test_nothing_to_write(body: dict[str, Any], policy: Any, reason: Reason) -> None:
    prepared = prepare(body, policy, [], [])
    assert isinstance(prepared, TeamResult)
    outcome = prepared.outcome
    assert isinstance(outcome, TeamFailed)
    assert (outcome.reason, outcome.transient) == (reason, False)


def test_prepared_team() -> None:
    prepared = prepare(team(alias="Crew"), POLICY, [POLICY], [])
    assert not isinstance(prepared, TeamResult)
    desired, applied = prepared.desired, prepared.applied
    assert desired.team_id == applied.team_id == "team-a.crew"
    assert (desired.owner.uid, applied.policy_generation) == ("u-1", 2)
    assert applied.effective["alias"] == "Crew"


APPLIED = TeamApplied("team-a.crew", {}, "default", 2)


@pytest.mark.parametrize(
    ("error", "reason", "transient"),
    [
        pytest.param(Unavailable("down"), Reason.UNAVAILABLE, True, id="unavailable"),
        pytest.param(ServerError("500", status_code=500), Reason.UNAVAILABLE, True, id="5xx"),
        pytest.param(RateLimited("slow", status_code=429), Reason.UNAVAILABLE, True, id="429"),
        pytest.param(AuthError("no", status_code=401), Reason.UNAUTHORIZED, True, id="auth"),
        pytest.param(TeamExists("taken", status_code=400), Reason.CONFLICT, True,
                     id="appeared-meanwhile"),
        pytest.param(BadRequest("bad", status_code=400), Reason.REJECTED, False, id="rejected"),
    ],
)  # fmt: skip
def test_litellm_errors(error: LiteLLMError, reason: Reason, transient: bool) -> None:
    outcome = from_error(error, APPLIED).outcome
    assert isinstance(outcome, TeamFailed)
    assert (outcome.reason, outcome.transient) == (reason, transient)
    assert outcome.applied == APPLIED


GRANTED_ELSEWHERE = {"group": "g", "teams": ["team-a.crew"]}


def policy_with(name: str = "default", **spec: Any) -> ProvisioningPolicy:
    body = POLICY.model_dump(by_alias=True)
    body["metadata"]["name"] = name
    body["spec"].update(spec)
    return ProvisioningPolicy.model_validate(body)


@pytest.mark.parametrize(
    ("policy", "others", "granted"),
    [
        pytest.param(POLICY, [], True, id="granted"),
        pytest.param(policy_with(teams={"maxBudget": 1}), [], True, id="over-a-ceiling-still-its"),
        pytest.param(None, [], False, id="policy-gone"),
        pytest.param(policy_with(allowedNamespaces=["team-b"]), [], False, id="namespace-dropped"),
        pytest.param(policy_with(teams=None), [], False, id="teams-no-longer-allowed"),
        pytest.param(POLICY, [policy_with("other", roles=[GRANTED_ELSEWHERE])], False,
                     id="now-granted-to-others"),
    ],
)  # fmt: skip
def test_delete_only_what_is_still_granted(policy: Any, others: list[Any], granted: bool) -> None:
    """A tenant deletes (deletionPolicy: Delete) only a team still granted to its namespace."""
    body = team(maxBudget=5)
    assert still_granted(body, policy, others) is granted


@pytest.mark.parametrize(
    ("keys", "policy_keys", "reason"),
    [
        pytest.param([{"name": "k"}], {"allowed": False}, Reason.OVERRIDE_FORBIDDEN, id="no-keys"),
        pytest.param(
            [{"name": "k", "maxBudget": 9}],
            {"maxBudget": 5},
            Reason.OVERRIDE_FORBIDDEN,
            id="budget",
        ),
        pytest.param(
            [{"name": "k", "models": ["o3"]}], {}, Reason.MODEL_NOT_ALLOWED, id="outside-the-team"
        ),
    ],
)
def test_a_refused_team_key_stops_the_team_before_litellm(
    keys: list[dict[str, Any]], policy_keys: dict[str, Any], reason: str
) -> None:
    """A key the policy or the team's own settings forbid stops the whole reconcile: nothing of
    the team is written (as for a user's keys), and the status says which team it would be."""
    spec = POLICY.spec.model_copy(update={"keys": KeyPolicy.model_validate(policy_keys)})
    policy = POLICY.model_copy(update={"spec": spec})
    prepared = prepare(team(models=["gpt-4o"], keys=keys), policy, [policy], [])
    assert isinstance(prepared, TeamResult)
    outcome = prepared.outcome
    assert isinstance(outcome, TeamFailed)
    assert (outcome.reason, outcome.transient) == (reason, False)
    assert outcome.applied is not None
    assert outcome.applied.team_id == "team-a.crew"


def test_prepared_team_keys_are_the_team_s() -> None:
    prepared = prepare(team(keys=[{"name": "ci"}]), POLICY, [POLICY], [])
    assert not isinstance(prepared, TeamResult)
    (key,) = prepared.keys
    assert (key.key_alias, key.secret_name) == ("team:team-a/crew/ci", "crew-ci")
