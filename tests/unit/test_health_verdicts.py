"""Every state a LiteLLMUser or ProvisioningPolicy can be in, as the operator writes it, judged by
Flux's kstatus (both libraries) and by Argo CD's Lua set-up: the tools' own code, not a model of it.

The statuses come from the operator's pure status code (and the CRD's schema default for a new
object); the end-to-end tests (tests/e2e/test_gitops_health.py) check the same verdicts on real
objects, with real ``kubectl wait`` and Flux's ``WaitForSet``.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest

from litellm_operator.crdgen import user_crd
from litellm_operator.reasons import Reason
from litellm_operator.status import (
    PENDING_STATUS,
    Applied,
    Failed,
    Synced,
    UserState,
    build_status,
    creating_status,
    policy_changed_status,
    policy_rollout,
    policy_status,
)
from tests.fixtures.gitops import argocd_health_many, kstatus_many

NOW = "2026-01-01T00:00:00Z"
APPLIED = Applied(
    user_id="alice",
    effective={"maxBudget": 10.0, "models": [], "teams": [], "userRole": "internal_user"},
    sources={"maxBudget": "default"},
    matched_role=None,
    policy_name="default",
    policy_generation=3,
)


def user(status: dict[str, Any] | None, generation: int = 2, **meta: Any) -> dict[str, Any]:
    obj: dict[str, Any] = {
        "apiVersion": "litellm.platform.dev/v1alpha1",
        "kind": "LiteLLMUser",
        "metadata": {"name": "alice", "namespace": "team-a", "generation": generation, **meta},
        "spec": {"policyRef": "default"},
    }
    if status is not None:
        obj["status"] = status
    return obj


def outcome(result: Any, generation: int = 2) -> dict[str, Any]:
    return build_status({}, generation, result, NOW, ("default", 3))


SYNCED = outcome(Synced(APPLIED, wrote=True, max_budget=10.0))
POLICY_EDITED = {**SYNCED, **(policy_changed_status(SYNCED, "default", 4, NOW) or {})}
POLICY_DELETED = {**SYNCED, **(policy_changed_status(SYNCED, "default", None, NOW) or {})}

USER_STATES: list[Any] = [
    # id, object, kstatus, Argo CD
    (
        "new (the CRD's status default)",
        user(copy.deepcopy(dict(PENDING_STATUS)), 1),
        "InProgress",
        "Progressing",
    ),
    ("new, no status (a CRD without the default)", user(None, 1), "Current", "Progressing"),
    ("creating", user(creating_status({}, 1, NOW), 1), "InProgress", "Progressing"),
    ("ready", user(SYNCED), "Current", "Healthy"),
    ("spec edited", user(SYNCED, generation=3), "InProgress", "Progressing"),
    ("policy edited", user(POLICY_EDITED), "InProgress", "Progressing"),
    ("policy deleted, not reconciled yet", user(POLICY_DELETED), "InProgress", "Progressing"),
    (
        "policy deleted",
        user(outcome(Failed(Reason.POLICY_NOT_FOUND, "gone", transient=False))),
        "Failed",
        "Degraded",
    ),
    (
        "LiteLLM down",
        user(outcome(Failed(Reason.UNAVAILABLE, "connection refused", transient=True))),
        "InProgress",
        "Progressing",
    ),
    (
        "override forbidden",
        user(outcome(Failed("OverrideForbidden", "maxBudget may not be overridden", False))),
        "Failed",
        "Degraded",
    ),
    (
        "foreign LiteLLM user",
        user(outcome(Failed(Reason.ALREADY_EXISTS, "not ours", False, applied=APPLIED))),
        "Failed",
        "Degraded",
    ),
    (
        "user id claimed by another resource",
        user(outcome(Failed(Reason.CONFLICT, "claimed", False, applied=APPLIED))),
        "Failed",
        "Degraded",
    ),
    (
        "suspended",
        user(outcome(Synced(APPLIED, wrote=True, suspended=True))),
        "Current",
        "Suspended",
    ),
    (
        "team missing",
        user(outcome(Synced(APPLIED, wrote=True, missing_teams=["t1"]))),
        "InProgress",
        "Progressing",
    ),
    ("deleting", user(SYNCED, deletionTimestamp=NOW), "Terminating", "Progressing"),
]


@pytest.mark.parametrize(
    ("obj", "flux", "argocd"), [s[1:] for s in USER_STATES], ids=[s[0] for s in USER_STATES]
)
def test_user_state(obj: dict[str, Any], flux: str, argocd: str) -> None:
    assert kstatus_many([obj])[0].status == flux
    assert argocd_health_many([obj])[0][0] == argocd
    if obj.get("status") is not None:  # with no status at all only kstatus says Current
        # kubectl wait --for=condition=Ready: Ready=True, observed for the current generation
        generation = obj["metadata"]["generation"]
        conditions = obj["status"].get("conditions", [])
        ready = [
            c["status"] == "True" and c.get("observedGeneration", generation) >= generation
            for c in conditions
            if c["type"] == "Ready"
        ]
        assert (ready == [True]) == (flux in ("Current", "Terminating")), "Ready disagrees"


def test_the_crd_defaults_status_to_the_pending_status() -> None:
    schema = user_crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    assert schema["properties"]["status"]["default"] == PENDING_STATUS


def policy(status: dict[str, Any] | None, generation: int = 3) -> dict[str, Any]:
    obj: dict[str, Any] = {
        "apiVersion": "litellm.platform.dev/v1alpha1",
        "kind": "ProvisioningPolicy",
        "metadata": {"name": "default", "generation": generation},
        "spec": {},
    }
    if status is not None:
        obj["status"] = status
    return obj


STALLED = outcome(Failed("OverrideForbidden", "no", transient=False))


def rolled(*users: dict[str, Any], generation: int = 3) -> dict[str, Any]:
    return policy_status(
        {}, generation, policy_rollout("default", generation, [UserState.of(u) for u in users]), NOW
    )


POLICY_STATES: list[Any] = [
    (
        "new (the CRD's status default)",
        policy(copy.deepcopy(dict(PENDING_STATUS))),
        "InProgress",
        "Progressing",
    ),
    ("no users", policy(rolled()), "Current", "Healthy"),
    (
        "every user reconciled and Ready",
        policy(rolled(user(SYNCED), user(SYNCED))),
        "Current",
        "Healthy",
    ),
    (
        "a user not reconciled yet",
        policy(rolled(user(SYNCED), user(POLICY_EDITED))),
        "InProgress",
        "Progressing",
    ),
    (
        "a user behind its spec",
        policy(rolled(user(SYNCED), user(SYNCED, 3))),
        "InProgress",
        "Progressing",
    ),
    ("a user stalled", policy(rolled(user(SYNCED), user(STALLED))), "Failed", "Degraded"),
    (
        "edited, not observed yet",
        policy(rolled(user(SYNCED)), generation=4),
        "InProgress",
        "Progressing",
    ),
]


@pytest.mark.parametrize(
    ("obj", "flux", "argocd"), [s[1:] for s in POLICY_STATES], ids=[s[0] for s in POLICY_STATES]
)
def test_policy_state(obj: dict[str, Any], flux: str, argocd: str) -> None:
    assert kstatus_many([obj])[0].status == flux
    assert argocd_health_many([obj])[0][0] == argocd
