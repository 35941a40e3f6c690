"""The Argo CD health checks of deploy/argocd, run under gopher-lua with Argo CD's own library
set-up (tests/fixtures/gitops.py), on hand-written status objects and on those the operator's
status code builds."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from litellm_operator.reasons import Reason
from litellm_operator.status import (
    Applied,
    Failed,
    Synced,
    TeamApplied,
    TeamFailed,
    TeamSynced,
    build_status,
    build_team_status,
)
from tests.fixtures import gitops
from tests.fixtures.gitops import ARGOCD_DIR, SCRIPTS, argocd_health, argocd_health_many

NOW = "2025-01-01T00:00:00Z"


def cond(kind: str, status: str, reason: str = "Synced", message: str = "m") -> dict[str, Any]:
    return {"type": kind, "status": status, "reason": reason, "message": message}


def kstatus(ready: str, reconciling: str, stalled: str, reason: str, message: str) -> list[Any]:
    return [
        cond("Ready", ready, reason, message),
        cond("Reconciling", reconciling, reason, message),
        cond("Stalled", stalled, reason, message),
    ]


def user(status: dict[str, Any] | None, generation: int = 1, **meta: Any) -> dict[str, Any]:
    obj: dict[str, Any] = {
        "apiVersion": "litellm.platform.dev/v1alpha1",
        "kind": "LiteLLMUser",
        "metadata": {"name": "alice", "namespace": "team-a", "generation": generation, **meta},
        "spec": {"policyRef": "default"},
    }
    if status is not None:
        obj["status"] = status
    return obj


def policy(status: dict[str, Any] | None = None, generation: int = 1) -> dict[str, Any]:
    obj: dict[str, Any] = {
        "apiVersion": "litellm.platform.dev/v1alpha1",
        "kind": "ProvisioningPolicy",
        "metadata": {"name": "default", "generation": generation},
        "spec": {"defaults": {"maxBudget": 10}},
    }
    if status is not None:
        obj["status"] = status
    return obj


SYNCED = kstatus("True", "False", "False", "Synced", "LiteLLM user matches")
SUSPENDED = kstatus("True", "False", "False", "Suspended", "user is suspended")
UNAVAILABLE = kstatus("False", "True", "False", "LiteLLMUnavailable", "connection refused")
NOT_FOUND = kstatus("False", "False", "True", "PolicyNotFound", "policy 'x' does not exist")

USER_CASES: list[tuple[str, dict[str, Any], str, str | None]] = [
    ("no status", user(None), "Progressing", None),
    ("status without conditions", user({"userId": "alice"}), "Progressing", None),
    (
        "ready, generation observed",
        user({"observedGeneration": 3, "conditions": SYNCED}, generation=3),
        "Healthy",
        "LiteLLM user matches",
    ),
    (
        "ready, older generation",
        user({"observedGeneration": 2, "conditions": SYNCED}, generation=3),
        "Progressing",
        "Waiting for the operator to reconcile generation 3",
    ),
    (
        "ready, observedGeneration missing",
        user({"conditions": SYNCED}, generation=3),
        "Progressing",
        None,
    ),
    (
        "suspended",
        user({"observedGeneration": 1, "conditions": SUSPENDED}),
        "Suspended",
        "user is suspended",
    ),
    (
        "transient failure (Reconciling)",
        user({"observedGeneration": 1, "conditions": UNAVAILABLE}),
        "Progressing",
        "connection refused",
    ),
    (
        "stalled",
        user({"observedGeneration": 1, "conditions": NOT_FOUND}),
        "Degraded",
        "policy 'x' does not exist",
    ),
    (
        "stalled but generation not observed yet",
        user({"observedGeneration": 1, "conditions": NOT_FOUND}, generation=2),
        "Progressing",
        None,
    ),
    (
        "Ready=False alone",
        user({"observedGeneration": 1, "conditions": [cond("Ready", "False", "X", "why")]}),
        "Progressing",
        "why",
    ),
    (
        "Ready=Unknown",
        user({"observedGeneration": 1, "conditions": [cond("Ready", "Unknown", "X", "?")]}),
        "Progressing",
        "?",
    ),
    (
        "Ready=True alone (no kstatus companions)",
        user({"observedGeneration": 1, "conditions": [cond("Ready", "True", "Synced", "ok")]}),
        "Healthy",
        "ok",
    ),
    (
        "kopf's status and unknown condition types are ignored",
        user(
            {
                "observedGeneration": 1,
                "kopf": {"progress": {}},
                "conditions": [cond("Other", "True"), *SYNCED],
            }
        ),
        "Healthy",
        None,
    ),
]


@pytest.mark.parametrize(
    ("obj", "expected", "message"),
    [case[1:] for case in USER_CASES],
    ids=[case[0] for case in USER_CASES],
)
def test_user_health(obj: dict[str, Any], expected: str, message: str | None) -> None:
    status, text = argocd_health(obj)
    assert status == expected
    if message is not None:
        assert text == message


ROLLED_OUT = kstatus("True", "False", "False", "RolledOut", "3 users; all Ready")
ROLLING_OUT = kstatus("False", "True", "False", "RollingOut", "waiting for a/b")
USERS_STALLED = kstatus("False", "False", "True", "UsersStalled", "stalled: a/b")

POLICY_CASES: list[tuple[str, dict[str, Any], str]] = [
    ("exists, no status", policy(), "Progressing"),
    ("kopf status only", policy({"kopf": {"progress": {}}}), "Progressing"),
    ("observedGeneration without conditions", policy({"observedGeneration": 2}, 2), "Progressing"),
    (
        "rolled out, older observedGeneration",
        policy({"observedGeneration": 1, "conditions": ROLLED_OUT}, generation=2),
        "Progressing",
    ),
    ("rolled out", policy({"observedGeneration": 2, "conditions": ROLLED_OUT}, 2), "Healthy"),
    ("rolling out", policy({"observedGeneration": 2, "conditions": ROLLING_OUT}, 2), "Progressing"),
    (
        "users stalled",
        policy({"observedGeneration": 2, "conditions": USERS_STALLED}, 2),
        "Degraded",
    ),
    (
        "being deleted",
        {
            **policy({"observedGeneration": 1, "conditions": ROLLED_OUT}),
            "metadata": {"name": "p", "generation": 1, "deletionTimestamp": NOW},
        },
        "Progressing",
    ),
]


@pytest.mark.parametrize(
    ("obj", "expected"), [case[1:] for case in POLICY_CASES], ids=[c[0] for c in POLICY_CASES]
)
def test_policy_health(obj: dict[str, Any], expected: str) -> None:
    assert argocd_health(obj)[0] == expected


APPLIED = Applied(
    user_id="alice",
    effective={"maxBudget": 10.0, "models": [], "teams": [], "userRole": "internal_user"},
    sources={"maxBudget": "default"},
    matched_role=None,
    policy_name="default",
    policy_generation=1,
)
OUTCOMES = [
    ("synced", Synced(APPLIED, wrote=True), "Healthy"),
    ("suspended", Synced(APPLIED, wrote=False, suspended=True), "Suspended"),
    ("missing team", Synced(APPLIED, wrote=True, missing_teams=["t1"]), "Progressing"),
    ("unavailable", Failed(Reason.UNAVAILABLE, "down", transient=True), "Progressing"),
    ("policy not found", Failed(Reason.POLICY_NOT_FOUND, "gone", transient=False), "Degraded"),
]


@pytest.mark.parametrize(
    ("outcome", "expected"), [o[1:] for o in OUTCOMES], ids=[o[0] for o in OUTCOMES]
)
def test_every_outcome_of_the_operator(outcome: Any, expected: str) -> None:
    """The statuses the operator writes (status.build_status) get the intended verdicts."""
    status = build_status({}, 4, outcome, NOW)
    assert argocd_health(user(status, generation=4))[0] == expected
    assert argocd_health(user(status, generation=5))[0] == "Progressing"


TEAM_APPLIED = TeamApplied("team-a.crew", {"maxBudget": 10.0, "blocked": False}, "default", 1)
TEAM_OUTCOMES = [
    ("synced", TeamSynced(TEAM_APPLIED, wrote=True, members=2), "Healthy", "Current"),
    ("unavailable", TeamFailed(Reason.UNAVAILABLE, "down", transient=True), "Progressing",
     "InProgress"),
    ("ceiling", TeamFailed(Reason.CEILING_EXCEEDED, "over", transient=False), "Degraded",
     "Failed"),
    ("conflict", TeamFailed(Reason.CONFLICT, "theirs", False, TEAM_APPLIED), "Degraded", "Failed"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("outcome", "argo", "flux"), [o[1:] for o in TEAM_OUTCOMES], ids=[o[0] for o in TEAM_OUTCOMES]
)
def test_every_team_outcome(outcome: Any, argo: str, flux: str) -> None:
    """A LiteLLMTeam's statuses (status.build_team_status) under the same script and kstatus."""
    status = build_team_status({}, 4, outcome, NOW)
    team = {**user(status, generation=4), "kind": "LiteLLMTeam"}
    assert argocd_health(team)[0] == argo
    assert gitops.kstatus(team) == flux
    stale = {**user(status, generation=5), "kind": "LiteLLMTeam"}
    assert argocd_health(stale)[0] == "Progressing"


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        pytest.param(
            'return {status = "Healthy", message = tostring(#obj.spec)}', "Healthy", id="base"
        ),
        pytest.param('return {status = string.lower("Healthy")}', None, id="no-string-library"),
        pytest.param("return {status = math.floor(1)}", None, id="no-math-library"),
        pytest.param('return {status = "Fine"}', "Unknown", id="invalid-status-is-unknown"),
    ],
)
def test_checker_has_argocd_library_set_up(tmp_path: Any, body: str, expected: str | None) -> None:
    """The checker is Argo CD's VM, not any Lua 5.1: a script using a library Argo CD does not
    open (string, math) fails there, and an unknown status reads Unknown, as in Argo CD."""
    script = tmp_path / "probe.lua"
    script.write_text(body)
    if expected is None:
        with pytest.raises(AssertionError, match="failed under Argo CD"):
            argocd_health_many([user(None)], script=str(script))
    else:
        assert argocd_health_many([user(None)], script=str(script))[0][0] == expected


def test_configmap_patch_holds_the_scripts_verbatim() -> None:
    document = yaml.safe_load((ARGOCD_DIR / "argocd-cm-patch.yaml").read_text())
    assert document["kind"] == "ConfigMap"
    assert document["metadata"] == {"name": "argocd-cm", "namespace": "argocd"}
    data = document["data"]
    prefix = "resource.customizations.health.litellm.platform.dev_"
    assert set(data) == {prefix + kind for kind in SCRIPTS}
    for kind, path in SCRIPTS.items():
        assert data[prefix + kind] == path.read_text(), f"argocd-cm-patch.yaml: stale {kind}"
