"""The LiteLLMTeam reconciler: observe (LiteLLM) → plan (:mod:`teams.plan`) → act.

:meth:`TeamReconciler.reconcile` resolves the team under its policy
(:func:`~litellm_operator.policies.teams.resolve_team`; a refusal writes nothing), reads the
team (the resync's shared ``/team/list`` snapshot, :class:`TeamSnapshot`, else ``/team/info``),
plans, applies, and returns the outcome for the status and the events to post. It never raises
a LiteLLM error: outages are transient outcomes (retried), rejections stall until something
changes. :meth:`TeamReconciler.finalize` applies the deletion plan.

Steady state costs no per-team call: the resync reconciles every team from one ``/team/list``
answer shared for half a resync interval, and a team found in sync is not written. A team the
operator wrote is dropped from the snapshot, so the next read of it is fresh (one whose members
were written since is read fresh too: its member count would be stale).

The team's ``memberBudget`` is no team column: it is written as a marker in the team's metadata,
which its members' reconciles read; a reconcile that changed it says so
(:attr:`TeamResult.member_budget_changed`) and the members follow.

Keys (``spec.keys``) are the users' keys with the team as their owner
(:data:`~litellm_operator.keys.owner.TEAM_OWNER`: ``team_id`` set, no user, Secrets labelled
and owned by the LiteLLMTeam), bounded by the policy's ``keys`` section and the team's own
settings, delivered by the shared :class:`~litellm_operator.keys.reconciler.KeyReconciler` once
the team is in sync; a team with keys costs a Secret list and a ``/key/list`` per reconcile.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from pydantic import ValidationError

from litellm_operator.keys.owner import TEAM_OWNER, KeyOwner
from litellm_operator.keys.plan import ROTATE_ANNOTATION, DesiredKey, KeyRefusal, team_keys_of
from litellm_operator.keys.reconciler import (
    AliasTaken,
    KeyReconciler,
    SecretsUnavailable,
    SecretTaken,
    next_check_in,
)
from litellm_operator.litellm import (
    AuthError,
    LiteLLMClient,
    LiteLLMError,
    MalformedRequest,
    NotFound,
    RateLimited,
    ServerError,
    TeamExists,
    TeamSnapshot,
    Unavailable,
)
from litellm_operator.models import LiteLLMTeam, ProvisioningPolicy
from litellm_operator.policies.resolve import PolicyViolation
from litellm_operator.policies.teams import TeamResolution, resolve_team
from litellm_operator.reasons import Event, Reason
from litellm_operator.status import TeamApplied, TeamFailed, TeamOutcome, TeamSynced
from litellm_operator.teams.plan import (
    MEMBER_DEFAULT,
    CreateTeam,
    DeleteTeam,
    DeletionPolicy,
    DesiredTeam,
    ObservedTeam,
    TeamAction,
    TeamPlan,
    UpdateTeam,
    deletion_team_ids,
    is_adopted,
    keeps_keys,
    looks_for_keys,
    observed_team,
    plan_team,
    plan_team_deletion,
)
from litellm_operator.users.plan import Owner, Refuse


@dataclass
class TeamResult:
    outcome: TeamOutcome
    events: list[Event] = field(default_factory=list)
    retry_after: float | None = None
    created: str | None = None
    """The id of the team this reconcile created in LiteLLM (its waiting members follow)."""
    member_budget_changed: str | None = None
    """The id of the team whose ``memberBudget`` this reconcile wrote (its members follow)."""
    requeue_after: float | None = None
    """Seconds until a key's rotation or grace period is due."""


@dataclass(frozen=True)
class PreparedTeam:
    """The team resolved under its policy, before anything is read or written."""

    team: LiteLLMTeam
    desired: DesiredTeam
    applied: TeamApplied
    keys: tuple[DesiredKey, ...] = ()


class TeamReconciler:
    def __init__(
        self, client: LiteLLMClient, snapshot: TeamSnapshot, keys: KeyReconciler | None = None
    ) -> None:
        self.client = client
        self.snapshot = snapshot
        self.keys = keys
        """Delivers ``spec.keys``; without it (tests of teams alone) keys are resolved only."""

    async def reconcile(
        self,
        body: Mapping[str, Any],
        policy: ProvisioningPolicy | Mapping[str, Any] | None,
        policies: Sequence[ProvisioningPolicy | Mapping[str, Any]] = (),
        siblings: Sequence[Mapping[str, Any]] = (),
        *,
        from_snapshot: bool = False,
    ) -> TeamResult:
        """Make LiteLLM hold the team's settings; ``from_snapshot``: read it from the shared
        ``/team/list`` answer (the resync), else with ``/team/info``."""
        prepared = prepare(body, policy, policies, siblings)
        if isinstance(prepared, TeamResult):
            return prepared
        desired, applied = prepared.desired, prepared.applied
        try:
            observed = await self.observe(desired.team_id, from_snapshot)
            plan = plan_team(desired, observed)
            if plan.refusal is not None:
                return refused(plan.refusal, applied)
            wrote = await self.apply(desired.team_id, plan.actions)
            if wrote:
                observed = await self.observe(desired.team_id, False)
        except LiteLLMError as exc:
            return from_error(exc, applied)
        except MalformedRequest as exc:
            return malformed(exc, applied)
        if observed is None:  # deleted behind the operator's back right after the write
            message = f"LiteLLM team {desired.team_id!r} vanished after it was written"
            return failure(Reason.UNEXPECTED_RESPONSE, message, transient=True, applied=applied)
        created = any(isinstance(a, CreateTeam) for a in plan.actions)
        budget = any(
            isinstance(a, UpdateTeam) and MEMBER_DEFAULT.wire in a.changed for a in plan.actions
        )
        result = TeamResult(
            synced(applied, observed, wrote, plan),
            events_for(plan, desired),
            created=desired.team_id if created else None,
            member_budget_changed=desired.team_id if budget else None,
        )
        return await self.converge_keys(prepared, result)

    async def converge_keys(self, prepared: PreparedTeam, result: TeamResult) -> TeamResult:
        """Once the team is in sync: its keys and their Secrets (only for a team with keys, or
        that had some: a team without keys costs no Secret list)."""
        team, applied = prepared.team, prepared.applied
        outcome = result.outcome
        had_keys = bool(team.status and team.status.keys)
        if self.keys is None or not isinstance(outcome, TeamSynced):
            return result
        if not prepared.keys and not had_keys:
            return result
        try:
            keys = await self.keys.converge(
                key_owner(team, applied.team_id),
                prepared.keys,
                suspended=False,
                blocked_by_suspension=frozenset(),
                rotation=team.metadata.annotations.get(ROTATE_ANNOTATION),
            )
        except LiteLLMError as exc:
            return from_error(exc, applied)
        except SecretsUnavailable as exc:
            return failure(Reason.UNAVAILABLE, str(exc), transient=True, applied=applied)
        except (SecretTaken, AliasTaken) as exc:
            return failure(Reason.CONFLICT, str(exc), transient=False, applied=applied)
        except MalformedRequest as exc:
            return malformed(exc, applied)
        if not keys.settled:
            message = "keys did not settle: their Secrets or LiteLLM keys kept changing; retrying"
            return failure(Reason.PENDING, message, transient=True, applied=applied)
        result.outcome = replace(outcome, keys=keys.statuses, wrote=outcome.wrote or keys.wrote)
        result.events.extend(keys.events)
        result.requeue_after = next_check_in(keys.next_check)
        return result

    async def observe(self, team_id: str, from_snapshot: bool) -> ObservedTeam | None:
        """The team from the snapshot (the resync), unless the operator wrote the team or its
        members since (its member count would be stale): then, as otherwise, ``/team/info``."""
        if from_snapshot:
            record = (await self.snapshot.held()).get(team_id)
            if record is not None and self.snapshot.members_fresh(team_id):
                return observed_team(record)
        record = await self.client.get_team(team_id)
        if record is None:
            return None
        if from_snapshot:
            self.snapshot.remember(record)
        return observed_team(record)

    async def apply(self, team_id: str, actions: Sequence[TeamAction]) -> bool:
        """Apply the plan's writes; whether anything was written."""
        for action in actions:
            self.snapshot.forget(team_id)
            if isinstance(action, CreateTeam):
                await self.client.create_team(action.request)
            elif isinstance(action, UpdateTeam):
                await self.client.update_team(team_id, action.request)
            elif isinstance(action, DeleteTeam):
                with contextlib.suppress(NotFound):  # already gone: what Delete wants
                    await self.client.delete_team(action.team_id)
        return bool(actions)

    async def finalize(
        self,
        body: Mapping[str, Any],
        policy: ProvisioningPolicy | Mapping[str, Any] | None = None,
        policies: Sequence[ProvisioningPolicy | Mapping[str, Any]] = (),
    ) -> list[Event]:
        """The deletion plan, applied; raises when LiteLLM could not be written (kopf retries).

        ``deletionPolicy: Delete`` holds only while the team is still granted to its namespace
        (:func:`still_granted`): a team its policy no longer grants there, or that a policy now
        names for other namespaces' users, is released, never deleted by its tenant. Without a
        recorded ``status.teamId`` (the operator stopped before writing it) the ids the team may
        have been created under are looked up: only a team whose markers name this resource is
        deleted or released, with its keys; a foreign team of that id is left alone."""
        team = LiteLLMTeam.model_validate(body)
        meta = team.metadata
        recorded = team.status.team_id if team.status is not None else None
        requested = team.spec.deletion_policy
        if not still_granted(body, policy, policies):
            requested = "Retain"
        events: list[Event] = []
        namespace = meta.namespace or ""
        for team_id in deletion_team_ids(recorded, team.spec.team_id, namespace, meta.name):
            events += await self.finalize_team(team, team_id, requested, recorded=bool(recorded))
        return events

    async def finalize_team(
        self,
        team: LiteLLMTeam,
        team_id: str,
        requested: DeletionPolicy | None,
        *,
        recorded: bool,
    ) -> list[Event]:
        """One LiteLLM team id of the deletion (:func:`deletion_team_ids`): its keys revoked (or
        kept), then the team deleted or released, when its markers name this resource."""
        meta, status = team.metadata, team.status
        owner = Owner(meta.namespace or "", meta.name, meta.uid or "")
        record = await self.client.get_team(team_id)
        observed = observed_team(record) if record is not None else None
        actions = plan_team_deletion(owner, observed, requested)
        events: list[Event] = []
        declared = bool(team.spec.keys or (status and status.keys))
        if self.keys is not None and looks_for_keys(
            owner, observed, recorded=recorded, declared=declared
        ):
            retain = keeps_keys(requested, observed)
            events.extend(await self.keys.remove_all(key_owner(team, team_id), retain=retain))
        await self.apply(team_id, actions)
        if any(isinstance(a, DeleteTeam) for a in actions):
            message = f"LiteLLM team {team_id} deleted, with its memberships"
            return [*events, Event("Normal", Reason.DELETED, message)]
        if actions:
            return [*events, Event("Normal", Reason.RELEASED, f"LiteLLM team {team_id} retained")]
        return events


def key_owner(team: LiteLLMTeam, team_id: str) -> KeyOwner:
    meta = team.metadata
    return KeyOwner(TEAM_OWNER, meta.namespace or "", meta.name, meta.uid or "", team_id)


def prepare(
    body: Mapping[str, Any],
    policy: ProvisioningPolicy | Mapping[str, Any] | None,
    policies: Sequence[ProvisioningPolicy | Mapping[str, Any]],
    siblings: Sequence[Mapping[str, Any]],
) -> PreparedTeam | TeamResult:
    """The desired team, or the result that says why there is none (nothing is written)."""
    try:
        team = LiteLLMTeam.model_validate(body)
    except ValidationError as exc:
        message = f"invalid spec: {exc.error_count()} error(s)"
        return failure(Reason.INVALID_SPEC, message, transient=False)
    if policy is None:
        message = f"ProvisioningPolicy {team.spec.policy_ref!r} not found"
        return failure(Reason.POLICY_NOT_FOUND, message, transient=False)
    if not isinstance(policy, ProvisioningPolicy):
        message = f"ProvisioningPolicy {team.spec.policy_ref!r} is invalid"
        return failure(Reason.INVALID_SPEC, message, transient=False)
    others = [p for p in policies if isinstance(p, ProvisioningPolicy)]
    pinned = team.status.team_id if team.status is not None else None
    try:
        resolution = resolve_team(
            policy,
            team,
            policies=others,
            siblings=[LiteLLMTeam.model_validate(s) for s in siblings],
            pinned_team_id=pinned,
        )
    except PolicyViolation as exc:
        problem = exc.problems[0]
        return failure(problem.reason, str(exc), transient=False)
    owner = Owner(team.metadata.namespace or "", team.metadata.name, team.metadata.uid or "")
    applied = applied_from(resolution)
    keys = team_keys_of(team, policy, resolution.effective)
    if isinstance(keys, KeyRefusal):  # nothing is written to LiteLLM
        return failure(keys.reason, keys.message, transient=False, applied=applied)
    return PreparedTeam(team, desired_from(resolution, owner), applied, keys)


GRANT_REASONS = frozenset(
    {
        Reason.POLICY_NOT_FOUND,
        Reason.POLICY_MISMATCH,
        Reason.NAMESPACE_NOT_ALLOWED,
        Reason.TEAM_NOT_ALLOWED,
        Reason.TEAM_ID_NOT_ALLOWED,
        Reason.INVALID_SPEC,
    }
)
"""Refusals that say the team is not (or no longer) the namespace's to delete."""


def still_granted(
    body: Mapping[str, Any],
    policy: ProvisioningPolicy | Mapping[str, Any] | None,
    policies: Sequence[ProvisioningPolicy | Mapping[str, Any]],
) -> bool:
    """Whether the team's policy still grants it to its namespace (its settings aside: a team
    over a lowered ceiling is still its namespace's)."""
    prepared = prepare(body, policy, policies, ())
    if not isinstance(prepared, TeamResult):
        return True
    outcome = prepared.outcome
    return isinstance(outcome, TeamFailed) and outcome.reason not in GRANT_REASONS


def desired_from(resolution: TeamResolution, owner: Owner) -> DesiredTeam:
    return DesiredTeam(
        team_id=resolution.team_id,
        owner=owner,
        settings=resolution.effective,
        policy_name=resolution.policy_name,
        policy_generation=resolution.policy_generation,
        adoption_allowed=resolution.adopt,
    )


def applied_from(resolution: TeamResolution) -> TeamApplied:
    return TeamApplied(
        team_id=resolution.team_id,
        effective=resolution.effective.model_dump(by_alias=True, mode="json"),
        policy_name=resolution.policy_name,
        policy_generation=resolution.policy_generation,
    )


def synced(applied: TeamApplied, observed: ObservedTeam, wrote: bool, plan: TeamPlan) -> TeamSynced:
    return TeamSynced(
        applied=applied,
        wrote=wrote,
        members=observed.members,
        spend=observed.spend,
        max_budget=observed.settings.get("max_budget"),
        adopted=is_adopted(observed) or plan.adopting,
    )


def events_for(plan: TeamPlan, desired: DesiredTeam) -> list[Event]:
    events: list[Event] = []
    for action in plan.actions:
        if isinstance(action, CreateTeam):
            events.append(Event("Normal", Reason.CREATED, f"LiteLLM team {desired.team_id}"))
        elif isinstance(action, UpdateTeam) and plan.adopting:
            events.append(Event("Normal", Reason.ADOPTED, f"LiteLLM team {desired.team_id}"))
        elif isinstance(action, UpdateTeam):
            changed = ", ".join(action.changed)
            events.append(Event("Normal", Reason.UPDATED, f"LiteLLM team: {changed}"))
    return events


def refused(refusal: Refuse, applied: TeamApplied) -> TeamResult:
    return failure(refusal.reason, refusal.message, transient=False, applied=applied)


def failure(
    reason: str, message: str, *, transient: bool, applied: TeamApplied | None = None
) -> TeamResult:
    kind: Literal["Warning"] = "Warning"
    return TeamResult(
        TeamFailed(reason, message, transient, applied), events=[Event(kind, reason, message)]
    )


def malformed(exc: MalformedRequest, applied: TeamApplied) -> TeamResult:
    """A request the operator cannot build: its bug, stalled until fixed, never retried."""
    message = f"the operator built a request LiteLLM cannot take (a bug): {exc}"
    return failure(Reason.MALFORMED_REQUEST, message, transient=False, applied=applied)


def from_error(exc: LiteLLMError, applied: TeamApplied) -> TeamResult:
    """Outages are retried, rejections wait for a change (as for users)."""
    if isinstance(exc, Unavailable | RateLimited | ServerError):
        result = failure(Reason.UNAVAILABLE, str(exc), transient=True, applied=applied)
        result.retry_after = exc.retry_after if isinstance(exc, RateLimited) else None
        return result
    if isinstance(exc, AuthError):
        message = f"LiteLLM refused the operator's master key: {exc}"
        return failure(Reason.UNAUTHORIZED, message, transient=True, applied=applied)
    if isinstance(exc, TeamExists):  # appeared between the read and the create: read it again
        message = f"LiteLLM team {applied.team_id!r} appeared while it was being created"
        return failure(Reason.CONFLICT, message, transient=True, applied=applied)
    message = f"LiteLLM rejected the request: {exc}"
    return failure(Reason.REJECTED, message, transient=False, applied=applied)
