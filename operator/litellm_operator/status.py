"""Status of a LiteLLMUser: the outcome of one reconcile → the ``status`` the resource shows.

Pure: the clock is an argument. Conditions follow kstatus, which Flux and Argo CD read:

* ``Ready=True`` — LiteLLM matches the effective settings (Current);
* ``Ready=False`` + ``Reconciling=True`` — a transient failure the operator retries (InProgress);
* ``Ready=False`` + ``Stalled=True`` — it cannot progress until someone changes something (Failed).

:func:`status_patch` returns only what changed (or ``None``), so a resync that finds nothing to
do writes nothing to Kubernetes. ``lastTransitionTime`` moves only when a condition's status
flips, and ``lastSyncedAt`` only when the operator wrote to LiteLLM.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from litellm_operator.reasons import Reason

READY = "Ready"
RECONCILING = "Reconciling"
STALLED = "Stalled"

REASON_SYNCED = Reason.SYNCED
REASON_ACCEPTED = Reason.ACCEPTED
REASON_CREATING = Reason.CREATING
REASON_SUSPENDED = Reason.SUSPENDED
REASON_TEAM_NOT_FOUND = Reason.TEAM_NOT_FOUND
REASON_UNAVAILABLE = Reason.UNAVAILABLE
REASON_REJECTED = Reason.REJECTED
REASON_INVALID_SPEC = Reason.INVALID_SPEC
REASON_POLICY_NOT_FOUND = Reason.POLICY_NOT_FOUND
REASON_CONFLICT = Reason.CONFLICT

OWNED_KEYS = (
    "userId",
    "effective",
    "sources",
    "matchedRole",
    "policy",
    "observedGeneration",
    "lastSyncedAt",
    "spend",
    "budgetResetAt",
    "managedTeams",
    "blockedKeys",
    "adopted",
    "conditions",
)


@dataclass(frozen=True)
class Applied:
    """What the user is meant to have, as the policy resolved it."""

    user_id: str
    effective: Mapping[str, Any]
    sources: Mapping[str, str]
    matched_role: str | None
    policy_name: str
    policy_generation: int | None


@dataclass(frozen=True)
class Synced:
    """LiteLLM now holds the effective settings (``wrote`` says whether it had to change)."""

    applied: Applied
    wrote: bool
    spend: float | None = None
    budget_reset_at: str | None = None
    managed_teams: Sequence[str] = ()
    blocked_keys: Sequence[str] = ()
    adopted: bool = False
    suspended: bool = False
    missing_teams: Sequence[str] = ()
    notes: Sequence[str] = field(default_factory=tuple)


@dataclass(frozen=True)
class Failed:
    """The reconcile did not complete; ``transient`` failures are retried by the operator."""

    reason: str
    message: str
    transient: bool
    applied: Applied | None = None
    user_id: str | None = None
    managed_teams: Sequence[str] | None = None
    """Memberships as they stand after a partial apply; ``None`` keeps the previous record."""
    blocked_keys: Sequence[str] | None = None


Outcome = Synced | Failed


def build_status(
    previous: Mapping[str, Any], generation: int | None, outcome: Outcome, now: str
) -> dict[str, Any]:
    """The full set of owned status fields after ``outcome``; unowned fields are not included."""
    status = {k: previous[k] for k in OWNED_KEYS if k in previous}
    status["observedGeneration"] = generation
    applied = outcome.applied
    if applied is not None:
        status.update(applied_fields(applied))
    elif isinstance(outcome, Failed) and outcome.user_id and "userId" not in status:
        status["userId"] = outcome.user_id
    if isinstance(outcome, Synced):
        status.update(synced_fields(outcome, previous, now))
    else:
        if outcome.managed_teams is not None:
            status["managedTeams"] = sorted(outcome.managed_teams)
        if outcome.blocked_keys is not None:
            status["blockedKeys"] = sorted(outcome.blocked_keys)
    status["conditions"] = merge_conditions(
        previous.get("conditions") or [], conditions_for(outcome, generation), now
    )
    result: dict[str, Any] = pruned(status)
    return result


def pruned(value: Any) -> Any:
    """Drop ``None`` everywhere: a merge patch deletes null keys, so status never holds them."""
    if isinstance(value, Mapping):
        return {k: pruned(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [pruned(v) for v in value]
    return value


def applied_fields(applied: Applied) -> dict[str, Any]:
    return {
        "userId": applied.user_id,
        "effective": dict(applied.effective),
        "sources": dict(applied.sources),
        "matchedRole": applied.matched_role,
        "policy": {"name": applied.policy_name, "generation": applied.policy_generation},
    }


def synced_fields(outcome: Synced, previous: Mapping[str, Any], now: str) -> dict[str, Any]:
    last_synced = (
        now if outcome.wrote or "lastSyncedAt" not in previous else previous["lastSyncedAt"]
    )
    return {
        "lastSyncedAt": last_synced,
        "spend": outcome.spend,
        "budgetResetAt": outcome.budget_reset_at,
        "managedTeams": sorted(outcome.managed_teams),
        "blockedKeys": sorted(outcome.blocked_keys),
        "adopted": outcome.adopted,
    }


def conditions_for(outcome: Outcome, generation: int | None) -> list[dict[str, Any]]:
    if isinstance(outcome, Synced):
        if outcome.missing_teams:
            teams = ", ".join(sorted(outcome.missing_teams))
            message = f"team(s) {teams} do not exist in LiteLLM; every other setting is applied"
            return kstatus(False, REASON_TEAM_NOT_FOUND, message, generation, stalled=True)
        if outcome.suspended:
            message = "user is suspended: every key is blocked"
            return kstatus(True, REASON_SUSPENDED, message, generation)
        message = "LiteLLM user matches the effective settings"
        if outcome.notes:
            message += " (" + "; ".join(outcome.notes) + ")"
        return kstatus(True, REASON_SYNCED, message, generation)
    return kstatus(
        False, outcome.reason, outcome.message, generation, stalled=not outcome.transient
    )


def kstatus(
    ready: bool, reason: str, message: str, generation: int | None, *, stalled: bool = False
) -> list[dict[str, Any]]:
    reconciling = not ready and not stalled

    def condition(kind: str, value: bool) -> dict[str, Any]:
        return {
            "type": kind,
            "status": "True" if value else "False",
            "reason": reason,
            "message": message,
            "observedGeneration": generation,
        }

    return [
        condition(READY, ready),
        condition(RECONCILING, reconciling),
        condition(STALLED, stalled),
    ]


def merge_conditions(
    previous: Sequence[Mapping[str, Any]], current: Sequence[Mapping[str, Any]], now: str
) -> list[dict[str, Any]]:
    """Keep ``lastTransitionTime`` of a condition whose status did not flip."""
    before = {c.get("type"): c for c in previous}
    merged = []
    for cond in current:
        old = before.get(cond["type"])
        unchanged = old is not None and old.get("status") == cond["status"]
        since = old.get("lastTransitionTime") if unchanged and old is not None else None
        merged.append({**cond, "lastTransitionTime": since or now})
    return merged


def creating_status(
    previous: Mapping[str, Any], generation: int | None, now: str
) -> dict[str, Any]:
    """Status while the LiteLLM user is being created: Ready=Unknown, Reconciling=True.

    Written with the user id before ``/user/new``, so kstatus readers see InProgress rather
    than a resource without conditions (which they would call Current).
    """
    message = "creating the LiteLLM user"
    conditions = [
        {**c, "status": "Unknown" if c["type"] == READY else c["status"]}
        for c in kstatus(False, REASON_CREATING, message, generation, stalled=False)
    ]
    merged = merge_conditions(previous.get("conditions") or [], conditions, now)
    result: dict[str, Any] = pruned({"observedGeneration": generation, "conditions": merged})
    return result


POLICY_OWNED_KEYS = ("observedGeneration", "users", "readyUsers", "conditions")


def policy_status(
    previous: Mapping[str, Any], generation: int | None, users: int, ready: int, now: str
) -> dict[str, Any]:
    """A policy's status: accepted (it passed the schema) and how many of its users are Ready."""
    message = f"{users} LiteLLMUser(s) use this policy; {ready} Ready"
    conditions = kstatus(True, REASON_ACCEPTED, message, generation)
    result: dict[str, Any] = pruned(
        {
            "observedGeneration": generation,
            "users": users,
            "readyUsers": ready,
            "conditions": merge_conditions(previous.get("conditions") or [], conditions, now),
        }
    )
    return result


def status_patch(
    previous: Mapping[str, Any], desired: Mapping[str, Any], owned: Sequence[str] = OWNED_KEYS
) -> dict[str, Any] | None:
    """The merge patch from ``previous`` to ``desired`` over ``owned`` keys; ``None`` if equal."""
    patch = {k: v for k, v in desired.items() if previous.get(k) != v}
    patch.update({k: None for k in owned if k in previous and k not in desired})
    return patch or None


def ready_condition(status: Mapping[str, Any]) -> Mapping[str, Any] | None:
    return next((c for c in status.get("conditions") or [] if c.get("type") == READY), None)
