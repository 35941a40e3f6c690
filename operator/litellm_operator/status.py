"""Status of LiteLLMUsers, LiteLLMTeams and ProvisioningPolicies, as Flux, Argo CD and
``kubectl wait`` read it.

Pure: the clock is an argument. Conditions follow kstatus, which Flux and Argo CD read:

* ``Ready=True`` — LiteLLM matches the effective settings (Current);
* ``Ready=False`` + ``Reconciling=True`` — a transient failure the operator retries (InProgress);
* ``Ready=False`` + ``Stalled=True`` — it cannot progress until someone changes something (Failed);
* ``Ready=Unknown`` + ``Reconciling=True`` — not judged yet: :data:`PENDING_STATUS`, which the
  CRD schema defaults ``status`` to, so a new object reads InProgress from its first read
  (kstatus calls an object without conditions Current), and :func:`policy_changed_status`,
  written to a user the moment its policy changes, until it is reconciled against the new policy.

Health never claims more than was checked: a user is Ready only for the generation of itself and
of its policy that the operator reconciled (``status.observedGeneration``, ``status.policy``); a
policy is Ready only when every user that references it is (:func:`policy_rollout`).

:func:`status_patch` returns only what changed (or ``None``), so a resync that finds nothing to
do writes nothing to Kubernetes. ``lastTransitionTime`` moves only when a condition's status
flips, and ``lastSyncedAt`` only when the operator wrote to LiteLLM.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel

from litellm_operator.models import TeamStatus, UserStatus
from litellm_operator.reasons import Reason

TIMESTAMP = "%Y-%m-%dT%H:%M:%SZ"
"""How conditions' lastTransitionTime is written (handlers.now_iso)."""
READY = "Ready"
RECONCILING = "Reconciling"
STALLED = "Stalled"


PENDING_MESSAGE = "waiting for the operator to reconcile this generation"
PENDING_STATUS: Mapping[str, Any] = {
    "observedGeneration": 0,
    "conditions": [
        {
            "type": READY,
            "status": "Unknown",
            "reason": Reason.PENDING.value,
            "message": PENDING_MESSAGE,
        },
        {
            "type": RECONCILING,
            "status": "True",
            "reason": Reason.PENDING.value,
            "message": PENDING_MESSAGE,
        },
    ],
}
"""The status a new object reads with until the operator writes one (the CRDs' schema default).

``metadata.generation`` starts at 1, so ``observedGeneration: 0`` is InProgress for kstatus (and
Progressing for the Argo CD scripts); ``Reconciling=True`` says the same to any kstatus reader,
``Ready=Unknown`` keeps ``kubectl wait --for=condition=Ready`` waiting."""

OWNED_KEYS = (
    "userId",
    "effective",
    "sources",
    "matchedRole",
    "policy",
    "observedGeneration",
    "lastSyncedAt",
    "spend",
    "maxBudget",
    "budgetResetAt",
    "managedTeams",
    "teamBudgets",
    "blockedKeys",
    "keys",
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
    max_budget: float | None = None
    """The budget LiteLLM holds for the user (read back after a write), for the BUDGET column."""
    budget_reset_at: str | None = None
    managed_teams: Sequence[str] = ()
    blocked_keys: Sequence[str] = ()
    adopted: bool = False
    suspended: bool = False
    missing_teams: Sequence[str] = ()
    notes: Sequence[str] = field(default_factory=tuple)
    keys: Sequence[Mapping[str, Any]] | None = None
    """``status.keys`` when the user has (or had) keys; ``None`` keeps the previous value."""
    team_budgets: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    """``status.teamBudgets``: per team, the member budget applied and where it comes from."""


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
    previous: Mapping[str, Any],
    generation: int | None,
    outcome: Outcome,
    now: str,
    policy: tuple[str, int | None] | None = None,
) -> dict[str, Any]:
    """The full set of owned status fields after ``outcome``; unowned fields are not included.

    ``policy`` is the (name, generation) of the policy the reconcile read, if it found one:
    ``status.policy`` then says what the outcome was judged against even when the policy could
    not be applied (an invalid policy, a forbidden override), so a policy's rollout knows that
    user was evaluated against its current generation.
    """
    status = {k: previous[k] for k in OWNED_KEYS if k in previous}
    status["observedGeneration"] = generation
    applied = outcome.applied
    if applied is not None:
        status.update(applied_fields(applied))
    else:
        if isinstance(outcome, Failed) and outcome.user_id and "userId" not in status:
            status["userId"] = outcome.user_id
        if policy is not None:
            status["policy"] = {"name": policy[0], "generation": policy[1]}
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
    return through(UserStatus, status)


def through(model: type[BaseModel], status: Mapping[str, Any]) -> dict[str, Any]:
    """``status`` validated by its model (a misspelt or mistyped key fails here, not in the API
    server) and serialised as the API server stores it: camelCase, no nulls."""
    typed = model.model_validate(pruned(status))
    result: dict[str, Any] = typed.model_dump(by_alias=True, exclude_none=True, mode="json")
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
        "maxBudget": outcome.max_budget,
        "budgetResetAt": outcome.budget_reset_at,
        "managedTeams": sorted(outcome.managed_teams),
        "teamBudgets": dict(outcome.team_budgets) or None,
        "blockedKeys": sorted(outcome.blocked_keys),
        "adopted": outcome.adopted,
        "keys": list(outcome.keys) if outcome.keys is not None else previous.get("keys"),
    }


def conditions_for(outcome: Outcome, generation: int | None) -> list[dict[str, Any]]:
    if isinstance(outcome, Synced):
        if outcome.missing_teams:
            teams = ", ".join(sorted(outcome.missing_teams))
            message = (
                f"team(s) {teams} do not exist in LiteLLM yet; every other setting is applied, "
                "and the user joins once they do"
            )
            # Pending, not Stalled: a team declared as a LiteLLMTeam is on its way, and its
            # creation reconciles the users waiting for it (awaits_team); the resync retries.
            return kstatus(False, Reason.TEAM_NOT_FOUND, message, generation)
        if outcome.suspended:
            message = "user is suspended: every key is blocked"
            return kstatus(True, Reason.SUSPENDED, message, generation)
        message = "LiteLLM user matches the effective settings"
        if outcome.notes:
            message += " (" + "; ".join(outcome.notes) + ")"
        return kstatus(True, Reason.SYNCED, message, generation)
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
        for c in kstatus(False, Reason.CREATING, message, generation, stalled=False)
    ]
    merged = merge_conditions(previous.get("conditions") or [], conditions, now)
    result: dict[str, Any] = pruned({"observedGeneration": generation, "conditions": merged})
    return result


def policy_changed_status(
    previous: Mapping[str, Any], policy: str, policy_generation: int | None, now: str
) -> dict[str, Any] | None:
    """The conditions of a user whose policy changed, until it is reconciled against it.

    ``None`` when the user was already reconciled against ``policy_generation`` (nothing to say)
    or already says Ready=Unknown for this reason (nothing to write). Otherwise the user turns
    Ready=Unknown, Reconciling=True (InProgress, Progressing, not Ready) at once, instead of
    staying Ready on the old policy until its reconcile finishes or fails.
    """
    if previous.get("policy") == pruned({"name": policy, "generation": policy_generation}):
        return None
    if policy_generation is None:
        message = f"policy {policy} was deleted; reconciling"
        reason = Reason.POLICY_DELETED
    else:
        message = f"policy {policy} changed to generation {policy_generation}; reconciling"
        reason = Reason.POLICY_CHANGED
    before = ready_condition(previous) or {}
    if before.get("status") == "Unknown" and before.get("message") == message:
        return None
    return {"conditions": pending_conditions(previous, reason, message, now)}


def retry_due(body: Mapping[str, Any], now: datetime, interval: float) -> bool:
    """Whether the resync should retry a user that is not Ready: it is stalled (nothing else
    retries it), or it has not been Ready for longer than one resync interval (whatever was to
    reconcile it did not). A user that turned non-Ready more recently is in progress (a policy
    rollout or kopf's own retries reach it), and so is one whose current generation was never
    handled (kopf's create or update handler has it, and resumes it after a restart): a nudge
    would only reconcile it twice."""
    status = body.get("status") or {}
    conditions = {c.get("type"): c for c in status.get("conditions") or []}
    if (conditions.get(STALLED) or {}).get("status") == "True":
        return True
    if status.get("observedGeneration") != (body.get("metadata") or {}).get("generation"):
        return False
    since = (conditions.get(READY) or {}).get("lastTransitionTime")
    try:
        changed = datetime.strptime(str(since), TIMESTAMP).replace(tzinfo=UTC)
    except ValueError:
        return True
    return (now - changed).total_seconds() >= interval


POLICY_PENDING = frozenset(
    {Reason.POLICY_CHANGED, Reason.POLICY_DELETED, Reason.TEAM_BUDGET_CHANGED}
)
"""Ready=Unknown reasons the operator wrote to say a user is behind what governs it (its policy,
a team's memberBudget): the event of that write reconciles the user."""


def team_budget_changed_status(
    body: Mapping[str, Any], team_id: str, now: str
) -> dict[str, Any] | None:
    """The conditions of a member of ``team_id`` whose ``memberBudget`` changed, until the user
    is reconciled against it (the event of this write does that): not Ready on a stale budget.

    ``None`` for a user not in the team, whose own maxBudgetInTeam wins over the team's, being
    deleted, whose current generation was never handled (its own reconcile is coming), or that
    already says so (nothing to write)."""
    meta = body.get("metadata") or {}
    status = body.get("status") or {}
    effective = status.get("effective") or {}
    if team_id not in (effective.get("teams") or []) or meta.get("deletionTimestamp"):
        return None
    if effective.get("maxBudgetInTeam") is not None:
        return None
    if status.get("observedGeneration") != meta.get("generation"):
        return None
    message = f"team {team_id} changed its memberBudget; reconciling"
    before = ready_condition(status) or {}
    if before.get("status") == "Unknown" and before.get("message") == message:
        return None
    return {"conditions": pending_conditions(status, Reason.TEAM_BUDGET_CHANGED, message, now)}


def awaits_team(body: Mapping[str, Any], team_id: str) -> bool:
    """Whether a LiteLLMUser waits for ``team_id`` to exist (Ready reason TeamNotFound, the team
    among its effective teams): its creation should reconcile the user at once."""
    status = body.get("status") or {}
    ready = ready_condition(status) or {}
    teams = (status.get("effective") or {}).get("teams") or []
    return ready.get("reason") == Reason.TEAM_NOT_FOUND and team_id in teams


def member_of(body: Mapping[str, Any], team_id: str) -> bool:
    """Whether a LiteLLMUser that is not being deleted has ``team_id`` among its effective
    teams: the team's deletion should reconcile it at once (to report the team gone)."""
    if (body.get("metadata") or {}).get("deletionTimestamp"):
        return False
    return team_id in (((body.get("status") or {}).get("effective") or {}).get("teams") or [])


def awaits_policy_reconcile(body: Mapping[str, Any]) -> bool:
    """Whether a user was marked as behind its policy (:func:`policy_changed_status`, or a
    reconcile the policy overtook) and nothing else will reconcile it: its spec is handled
    (a spec change is kopf's update handler's) and it is not being deleted."""
    meta = body.get("metadata") or {}
    status = body.get("status") or {}
    if meta.get("deletionTimestamp") or status.get("observedGeneration") != meta.get("generation"):
        return False
    ready = ready_condition(status) or {}
    return ready.get("status") == "Unknown" and ready.get("reason") in POLICY_PENDING


def behind_policy(body: Mapping[str, Any], policy_generation: int | None) -> bool:
    """Whether a user was last reconciled against an older generation of its policy: the
    policy's rollout reaches it (its Ready=Unknown flip, then its reconcile), so what LiteLLM
    holds for it is not drift yet."""
    applied = ((body.get("status") or {}).get("policy") or {}).get("generation")
    return applied is not None and policy_generation is not None and applied < policy_generation


def pending_conditions(
    previous: Mapping[str, Any], reason: str, message: str, now: str
) -> list[dict[str, Any]]:
    """Ready=Unknown, Reconciling=True, Stalled=False for ``previous.observedGeneration``."""
    generation = previous.get("observedGeneration")
    conditions = [
        {**c, "status": "Unknown" if c["type"] == READY else c["status"]}
        for c in kstatus(False, reason, message, generation, stalled=False)
    ]
    merged: list[dict[str, Any]] = pruned(
        merge_conditions(previous.get("conditions") or [], conditions, now)
    )
    return merged


@dataclass(frozen=True)
class Rollout:
    """Where a policy's current generation stands across the users that reference it."""

    users: int
    updated: int
    """Users reconciled against the policy's current generation and their own."""
    ready: int
    """Users whose Ready condition is True (whatever they were reconciled against)."""
    updated_ready: int
    stalled: tuple[str, ...]
    """Updated users that are Stalled (namespace/name), sorted."""
    waiting: tuple[str, ...]
    """Users not (yet) updated, or updated and still reconciling (namespace/name), sorted."""


@dataclass(frozen=True, slots=True)
class UserState:
    """What a policy's rollout needs of one of its users (kept per user in the operator's index,
    and read on every user event: a few fields, not the body)."""

    key: str
    """namespace/name"""
    ready: str | None
    """The Ready condition's status."""
    stalled: bool
    fresh: bool
    """Reconciled for its own current generation."""
    policy: tuple[str | None, int | None] | None
    """The policy (name, generation) it was last reconciled against."""

    @classmethod
    def of(cls, body: Mapping[str, Any]) -> UserState:
        meta = body.get("metadata") or {}
        status = body.get("status") or {}
        conditions = {c.get("type"): c.get("status") for c in status.get("conditions") or []}
        policy = status.get("policy")
        return cls(
            key=f"{meta.get('namespace', '')}/{meta.get('name', '')}",
            ready=conditions.get(READY),
            stalled=conditions.get(STALLED) == "True",
            fresh=status.get("observedGeneration") == meta.get("generation"),
            policy=(policy.get("name"), policy.get("generation")) if policy else None,
        )


def policy_rollout(
    policy: str, policy_generation: int | None, users: Sequence[UserState]
) -> Rollout:
    """Tally ``users`` (the LiteLLMUsers referencing ``policy``) against its generation."""
    updated = ready = updated_ready = 0
    stalled: list[str] = []
    waiting: list[str] = []
    current = (policy, policy_generation)
    for user in users:
        is_ready = user.ready == "True"
        ready += is_ready
        if not (user.fresh and user.policy == current):
            waiting.append(user.key)
            continue
        updated += 1
        if is_ready:
            updated_ready += 1
        elif user.stalled:
            stalled.append(user.key)
        else:
            waiting.append(user.key)
    return Rollout(
        len(users), updated, ready, updated_ready, tuple(sorted(stalled)), tuple(sorted(waiting))
    )


POLICY_OWNED_KEYS = (
    "observedGeneration",
    "users",
    "updatedUsers",
    "readyUsers",
    "litellmVersion",
    "conditions",
)
NAMES_SHOWN = 3


def policy_status(
    previous: Mapping[str, Any],
    generation: int | None,
    rollout: Rollout,
    now: str,
    litellm_version: str | None = None,
) -> dict[str, Any]:
    """A policy's status, like a Deployment's rollout: Ready only when every user is; with the
    LiteLLM version the operator last read.

    * every user reconciled against this generation (and its own) and Ready → Ready=True;
    * some user not reconciled against it yet, or still reconciling → Reconciling=True;
    * otherwise (every user left is Stalled: it needs a change) → Stalled=True.
    """
    counts = (
        f"{rollout.users} LiteLLMUser(s) use this policy; {rollout.updated} reconciled against "
        f"generation {generation}, {rollout.ready} Ready"
    )
    if rollout.updated_ready == rollout.users:
        conditions = kstatus(True, Reason.ROLLED_OUT, counts, generation)
    elif rollout.waiting:
        message = f"{counts}; waiting for {names(rollout.waiting)}"
        conditions = kstatus(False, Reason.ROLLING_OUT, message, generation)
    else:
        message = f"{counts}; stalled: {names(rollout.stalled)}"
        conditions = kstatus(False, Reason.USERS_STALLED, message, generation, stalled=True)
    result: dict[str, Any] = pruned(
        {
            "observedGeneration": generation,
            "users": rollout.users,
            "updatedUsers": rollout.updated,
            "readyUsers": rollout.ready,
            "litellmVersion": litellm_version,
            "conditions": merge_conditions(previous.get("conditions") or [], conditions, now),
        }
    )
    return result


def rollout_finished(previous: Mapping[str, Any], desired: Mapping[str, Any]) -> bool:
    """Whether ``desired`` completes a rollout ``previous`` had not: the moment to say so once
    on the policy (its users' own events say nothing of a policy-driven update)."""

    def done(status: Mapping[str, Any]) -> bool:
        ready = ready_condition(status) or {}
        return ready.get("status") == "True" and ready.get("reason") == Reason.ROLLED_OUT

    moved = previous.get("observedGeneration") != desired.get("observedGeneration")
    return bool(desired.get("users")) and done(desired) and (moved or not done(previous))


def names(keys: Sequence[str]) -> str:
    shown = ", ".join(keys[:NAMES_SHOWN])
    return shown if len(keys) <= NAMES_SHOWN else f"{shown} and {len(keys) - NAMES_SHOWN} more"


def status_patch(
    previous: Mapping[str, Any], desired: Mapping[str, Any], owned: Sequence[str] = OWNED_KEYS
) -> dict[str, Any] | None:
    """The merge patch from ``previous`` to ``desired`` over ``owned`` keys; ``None`` if equal."""
    patch = {k: v for k, v in desired.items() if previous.get(k) != v}
    patch.update({k: None for k in owned if k in previous and k not in desired})
    return patch or None


def ready_condition(status: Mapping[str, Any]) -> Mapping[str, Any] | None:
    return next((c for c in status.get("conditions") or [] if c.get("type") == READY), None)


# --- teams -------------------------------------------------------------------------------------

TEAM_OWNED_KEYS = (
    "teamId",
    "effective",
    "policy",
    "observedGeneration",
    "lastSyncedAt",
    "spend",
    "maxBudget",
    "members",
    "adopted",
    "keys",
    "conditions",
)


@dataclass(frozen=True)
class TeamApplied:
    """What the team is meant to have, as its policy bounds it."""

    team_id: str
    effective: Mapping[str, Any]
    policy_name: str
    policy_generation: int | None


@dataclass(frozen=True)
class TeamSynced:
    """LiteLLM now holds the team's settings (``wrote`` says whether it had to change)."""

    applied: TeamApplied
    wrote: bool
    members: int
    spend: float | None = None
    max_budget: float | None = None
    adopted: bool = False
    keys: Sequence[Mapping[str, Any]] | None = None
    """``status.keys`` when the team has (or had) keys; ``None`` keeps the previous value."""


@dataclass(frozen=True)
class TeamFailed:
    """The team's reconcile did not complete; ``transient`` failures are retried."""

    reason: str
    message: str
    transient: bool
    applied: TeamApplied | None = None


TeamOutcome = TeamSynced | TeamFailed


def build_team_status(
    previous: Mapping[str, Any],
    generation: int | None,
    outcome: TeamOutcome,
    now: str,
    policy: tuple[str, int | None] | None = None,
) -> dict[str, Any]:
    """The team's owned status fields after ``outcome``, with the users' truth rules: Ready only
    for this generation of the team and of its policy (``status.policy``)."""
    status = {k: previous[k] for k in TEAM_OWNED_KEYS if k in previous}
    status["observedGeneration"] = generation
    applied = outcome.applied
    if applied is not None:
        status["teamId"] = applied.team_id
        status["effective"] = dict(applied.effective)
        status["policy"] = {"name": applied.policy_name, "generation": applied.policy_generation}
    elif policy is not None:
        status["policy"] = {"name": policy[0], "generation": policy[1]}
    if isinstance(outcome, TeamSynced):
        wrote = outcome.wrote or "lastSyncedAt" not in previous
        status["lastSyncedAt"] = now if wrote else previous["lastSyncedAt"]
        status["spend"] = outcome.spend
        status["maxBudget"] = outcome.max_budget
        status["members"] = outcome.members
        status["adopted"] = outcome.adopted
        if outcome.keys is not None:
            status["keys"] = list(outcome.keys)
        conditions = kstatus(True, Reason.SYNCED, "LiteLLM team matches its spec", generation)
    else:
        stalled = not outcome.transient
        conditions = kstatus(False, outcome.reason, outcome.message, generation, stalled=stalled)
    status["conditions"] = merge_conditions(previous.get("conditions") or [], conditions, now)
    return through(TeamStatus, status)
