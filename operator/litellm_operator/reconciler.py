"""One LiteLLMUser reconcile: observe LiteLLM → plan (pure) → act, and the status that results.

Nothing here knows kopf: the handlers give it the resource, its policy and the other
resources claiming the same user id, and get back the new status, the events to post and
whether a failure is worth retrying. The LiteLLM client is the only I/O.

The applier records per-item failures and carries on (a missing team does not stop the budget
from being applied), so the status always says what was done, including memberships added
before a later call failed.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from pydantic import ValidationError

from litellm_operator.litellm import (
    AuthError,
    EmailInUse,
    LiteLLMClient,
    LiteLLMError,
    LiteLLMUserRecord,
    NewUserRequest,
    NotFound,
    RateLimited,
    ServerError,
    Unavailable,
    UserExists,
)
from litellm_operator.models import LiteLLMUser, ProvisioningPolicy
from litellm_operator.plan import (
    Action,
    AddToTeam,
    BlockKey,
    CreateUser,
    DeleteUser,
    DeletionPolicy,
    Desired,
    ObservedKey,
    ObservedUser,
    Owner,
    Plan,
    Refuse,
    RemoveFromTeam,
    UnblockKey,
    UpdateUser,
    plan_deletion,
    plan_user,
)
from litellm_operator.policy import PolicyViolation, Resolution, resolve
from litellm_operator.status import (
    REASON_CONFLICT,
    REASON_INVALID_SPEC,
    REASON_POLICY_NOT_FOUND,
    REASON_REJECTED,
    REASON_UNAVAILABLE,
    Applied,
    Failed,
    Outcome,
    Synced,
    applied_fields,
    pruned,
    ready_condition,
)

log = logging.getLogger(__name__)

APPLIED_KEYS = ("userId", "effective", "sources", "matchedRole", "policy")

REASON_UNAUTHORIZED = "Unauthorized"
REASON_UNEXPECTED = "UnexpectedResponse"
MSG_POLICY_NOT_FOUND = "ProvisioningPolicy {name!r} does not exist; no change was made in LiteLLM"
MSG_CLAIMED = (
    "user id {user_id!r} is already claimed by LiteLLMUser {owner}, created earlier; "
    "give this resource another spec.userId"
)
MSG_EMAIL_IN_USE = "LiteLLM refused the user: e-mail {email!r} belongs to another LiteLLM user"


@dataclass(frozen=True, order=True)
class Claim:
    """A LiteLLMUser that recorded a user id in its status; the oldest claim wins."""

    created: str
    namespace: str
    name: str
    uid: str


@dataclass(frozen=True)
class Event:
    type: Literal["Normal", "Warning"]
    reason: str
    message: str


@dataclass
class Result:
    outcome: Outcome
    events: list[Event] = field(default_factory=list)
    retry_after: float | None = None
    """Set for transient failures: when to try again (LiteLLM's Retry-After when it sent one)."""


RecordUserId = Callable[[str], Awaitable[None]]
ClaimsOf = Callable[[str], Sequence[Claim]]
"""The resources that recorded a given user id in their status (from a kopf index)."""


@dataclass
class _Progress:
    """What the applier has done so far; survives a failure half-way."""

    wrote: bool = False
    created: bool = False
    managed_teams: set[str] = field(default_factory=set)
    blocked_keys: set[str] = field(default_factory=set)
    missing_teams: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)


class Reconciler:
    def __init__(self, client: LiteLLMClient) -> None:
        self.client = client

    async def reconcile(
        self,
        body: Mapping[str, Any],
        policy_body: Mapping[str, Any] | None,
        claims: ClaimsOf = lambda _user_id: (),
        *,
        record_user_id: RecordUserId | None = None,
        observed_hint: LiteLLMUserRecord | None = None,
    ) -> Result:
        """Make LiteLLM hold the user's effective settings; never raises a LiteLLM error."""
        try:
            user = LiteLLMUser.model_validate(body)
        except ValidationError as exc:
            return invalid(exc)
        if policy_body is None:
            message = MSG_POLICY_NOT_FOUND.format(name=user.spec.policy_ref)
            return failure(REASON_POLICY_NOT_FOUND, message, transient=False)
        try:
            policy = ProvisioningPolicy.model_validate(policy_body)
            resolution = resolve(policy, user)
        except ValidationError as exc:
            return invalid(exc, what="policy")
        except PolicyViolation as exc:
            reason = exc.problems[0].reason if exc.problems else REASON_INVALID_SPEC
            return failure(reason, str(exc), transient=False)
        pinned = user.status.user_id if user.status and user.status.user_id else None
        user_id = pinned or resolution.user_id
        applied = applied_from(resolution, user_id)
        rival = older_claim(claims(user_id), user)
        if rival is not None:
            message = MSG_CLAIMED.format(user_id=user_id, owner=f"{rival.namespace}/{rival.name}")
            return failure(REASON_CONFLICT, message, transient=False, applied=applied)
        desired = desired_for(user, policy, resolution, user_id)
        adopted_before = bool(user.status and user.status.adopted)
        try:
            return await self._converge(
                desired,
                applied,
                record_user_id,
                observed_hint,
                pinned=bool(pinned),
                adopted_before=adopted_before,
            )
        except LiteLLMError as exc:
            return from_error(exc, applied)

    async def _converge(
        self,
        desired: Desired,
        applied: Applied,
        record_user_id: RecordUserId | None,
        hint: LiteLLMUserRecord | None,
        *,
        pinned: bool,
        adopted_before: bool,
    ) -> Result:
        record = hint if hint is not None else await self.client.get_user(desired.user_id)
        observed = await self.observe_record(desired, record)
        plan = plan_user(desired, observed)
        refusal = plan.refusal
        if refusal is not None:
            return failure(refusal.reason, refusal.message, transient=False, applied=applied)
        if observed is None and record_user_id is not None and not pinned:
            await record_user_id(desired.user_id)
        progress = _Progress(
            managed_teams=set(desired.managed_teams), blocked_keys=set(desired.blocked_keys)
        )
        try:
            plan = await self._apply(desired, plan, progress)
        except EmailInUse:
            message = MSG_EMAIL_IN_USE.format(email=desired.email)
            return failure(REASON_REJECTED, message, transient=False, applied=applied)
        except LiteLLMError as exc:
            result = from_error(exc, applied)
            result.outcome = with_progress(result.outcome, progress)
            return result
        except ValidationError as exc:
            message = f"LiteLLM answered in a shape the operator does not understand: {exc}"
            result = failure(REASON_UNEXPECTED, message, transient=True, applied=applied)
            result.outcome = with_progress(result.outcome, progress)
            return result
        refusal = plan.refusal
        if refusal is not None:
            return failure(refusal.reason, refusal.message, transient=False, applied=applied)
        final = await self.client.get_user(desired.user_id) if progress.wrote else record
        outcome = Synced(
            applied=applied,
            wrote=progress.wrote,
            spend=final.spend if final else None,
            max_budget=final.max_budget if final else None,
            budget_reset_at=iso(final.budget_reset_at) if final else None,
            managed_teams=tuple(progress.managed_teams),
            blocked_keys=tuple(progress.blocked_keys),
            adopted=plan.adopting or adopted_before,
            suspended=desired.suspend,
            missing_teams=tuple(progress.missing_teams),
        )
        return Result(
            outcome,
            events=events_for(plan, progress, desired),
        )

    async def observe(self, desired: Desired) -> ObservedUser | None:
        return await self.observe_record(desired, await self.client.get_user(desired.user_id))

    async def observe_record(
        self, desired: Desired, record: LiteLLMUserRecord | None
    ) -> ObservedUser | None:
        """The user as LiteLLM holds it; keys are read only when a suspension is involved."""
        if record is None:
            return None
        keys: tuple[ObservedKey, ...] | None = None
        if desired.suspend or desired.blocked_keys:
            keys = tuple(
                ObservedKey(k.token, k.blocked)
                for k in await self.client.list_user_keys(desired.user_id)
                if k.token
            )
        return observed_from(record, keys)

    async def _apply(self, desired: Desired, plan: Plan, progress: _Progress) -> Plan:
        """Apply the plan; a 409 on create is re-observed and re-planned once."""
        try:
            await self._apply_actions(desired, plan.actions, progress)
        except UserExists:
            observed = await self.observe(desired)
            plan = plan_user(desired, observed)
            if plan.refusal is None:
                await self._apply_actions(desired, plan.actions, progress)
        return plan

    async def _apply_actions(
        self, desired: Desired, actions: Sequence[Action], progress: _Progress
    ) -> None:
        for action in actions:
            await self._apply_one(desired, action, progress)

    async def _apply_one(self, desired: Desired, action: Action, progress: _Progress) -> None:
        client, user_id = self.client, desired.user_id
        match action:
            case CreateUser(fields=fields):
                await client.create_user(NewUserRequest(**fields))
                progress.created = progress.wrote = True
            case UpdateUser(fields=fields):
                await client.update_user(user_id, fields)
                progress.wrote = True
                progress.changed.extend(action.changed)
            case AddToTeam(team_id=team):
                try:
                    if await client.add_team_member(team, user_id):
                        progress.managed_teams.add(team)
                        progress.wrote = True
                        progress.changed.append(f"team:{team}")
                except NotFound:
                    progress.missing_teams.append(team)
            case RemoveFromTeam(team_id=team):
                try:
                    await client.remove_team_member(team, user_id)
                    progress.wrote = True
                    progress.changed.append(f"team:{team}")
                except NotFound:
                    pass  # the team itself is gone, and the membership with it
                progress.managed_teams.discard(team)
            case BlockKey(token=token):
                await client.block_key(token)
                progress.blocked_keys.add(token)
                progress.wrote = True
            case UnblockKey(token=token):
                await client.unblock_key(token)
                progress.blocked_keys.discard(token)
                progress.wrote = True
            case DeleteUser() | Refuse():
                raise AssertionError(f"{action!r} is not applied by reconcile")

    async def check(
        self,
        body: Mapping[str, Any],
        policy: ProvisioningPolicy | None,
        claims: ClaimsOf,
        record: LiteLLMUserRecord | None,
    ) -> tuple[str, ...]:
        """What differs for a user, judged from a ``/user/list`` record; no writes.

        Empty means in sync. Otherwise the user needs a reconcile: the LiteLLM fields that
        drifted (``max_budget``, ``teams``, ...), or ``status`` when only the status is stale,
        ``not-ready`` for users that are not Ready (so stalled users are retried once per
        resync, as are the users of a policy that is not valid: ``policy`` is ``None``),
        ``missing`` when the snapshot does not have the user.
        """
        status = body.get("status") or {}
        ready = ready_condition(status) or {}
        generation = (body.get("metadata") or {}).get("generation")
        if ready.get("status") != "True" or status.get("observedGeneration") != generation:
            return ("not-ready",)
        if record is None:
            return ("missing",)
        if policy is None:
            return ("not-ready",)
        try:
            user = LiteLLMUser.model_validate(body)
            resolution = resolve(policy, user)
        except (ValidationError, PolicyViolation):
            return ("not-ready",)
        if older_claim(claims(record.user_id), user) is not None:
            return ("not-ready",)
        desired = desired_for(user, policy, resolution, record.user_id)
        plan = plan_user(desired, await self.observe_record(desired, record))
        drift = drifted_fields(plan)
        if drift:
            return drift
        expected = pruned(applied_fields(applied_from(resolution, record.user_id)))
        stale = any(status.get(k) != expected.get(k) for k in APPLIED_KEYS)
        stale = stale or status.get("spend") != record.spend
        stale = stale or status.get("maxBudget") != record.max_budget
        stale = stale or status.get("budgetResetAt") != iso(record.budget_reset_at)
        return ("status",) if stale else ()

    async def finalize(self, body: Mapping[str, Any]) -> list[Event]:
        """Deletion: delete or release the LiteLLM user; safe to run twice. Raises on outage."""
        meta = body.get("metadata") or {}
        spec = body.get("spec") or {}
        status = body.get("status") or {}
        user_id = status.get("userId")
        if not user_id:
            return []
        owner = Owner(meta.get("namespace", ""), meta.get("name", ""), meta.get("uid", ""))
        policy: DeletionPolicy = (
            "Retain"
            if spec.get("deletionPolicy") == "Retain" or status.get("adopted")
            else "Delete"
        )
        if spec.get("deletionPolicy") == "Delete":
            policy = "Delete"
        record = await self.client.get_user(user_id)
        observed = observed_from(record, None) if record is not None else None
        events: list[Event] = []
        for action in plan_deletion(owner, observed, policy):
            if isinstance(action, DeleteUser):
                with contextlib.suppress(NotFound):  # deleted meanwhile: the goal is reached
                    await self.client.delete_users([action.user_id])
                events.append(Event("Normal", "Deleted", f"deleted LiteLLM user {user_id!r}"))
            elif isinstance(action, UpdateUser):
                await self.client.update_user(user_id, action.fields)
                message = f"released LiteLLM user {user_id!r}: markers removed, user retained"
                events.append(Event("Normal", "Released", message))
        return events


def drifted_fields(plan: Plan) -> tuple[str, ...]:
    fields: list[str] = []
    for action in plan.actions:
        match action:
            case UpdateUser():
                fields.extend(action.changed)
            case AddToTeam() | RemoveFromTeam():
                fields.append("teams")
            case BlockKey() | UnblockKey():
                fields.append("keys")
            case Refuse(reason=reason):
                fields.append(reason)
            case _:
                fields.append(type(action).__name__)
    return tuple(dict.fromkeys(fields))


def iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat().replace("+00:00", "Z")


def applied_from(resolution: Resolution, user_id: str) -> Applied:
    return Applied(
        user_id=user_id,
        effective=resolution.effective.model_dump(by_alias=True),
        sources=dict(resolution.sources),
        matched_role=resolution.matched_role,
        policy_name=resolution.policy_name,
        policy_generation=resolution.policy_generation,
    )


def desired_for(
    user: LiteLLMUser, policy: ProvisioningPolicy, resolution: Resolution, user_id: str
) -> Desired:
    status = user.status
    meta = user.metadata
    return Desired(
        user_id=user_id,
        owner=Owner(meta.namespace or "", meta.name, meta.uid or ""),
        settings=resolution.effective,
        policy_name=resolution.policy_name,
        policy_generation=resolution.policy_generation,
        email=user.spec.email,
        alias=user.spec.alias,
        suspend=user.spec.suspend,
        adoption_allowed=user.spec.adopt or policy.spec.adopt_existing_users,
        managed_teams=frozenset(status.managed_teams or []) if status else frozenset(),
        blocked_keys=frozenset(status.blocked_keys or []) if status else frozenset(),
    )


def observed_from(record: LiteLLMUserRecord, keys: tuple[ObservedKey, ...] | None) -> ObservedUser:
    return ObservedUser(
        user_id=record.user_id,
        email=record.user_email,
        alias=record.user_alias,
        role=record.user_role,
        max_budget=record.max_budget,
        budget_duration=record.budget_duration,
        models=tuple(record.models),
        tpm_limit=record.tpm_limit,
        rpm_limit=record.rpm_limit,
        metadata=dict(record.metadata),
        teams=tuple(record.teams),
        keys=keys,
    )


def older_claim(claims: Sequence[Claim], user: LiteLLMUser) -> Claim | None:
    """The earliest other resource among ``claims``, if it was created before this one."""
    meta = user.metadata
    created = str(meta.model_extra.get("creationTimestamp", "")) if meta.model_extra else ""
    mine = Claim(created, meta.namespace or "", meta.name, meta.uid or "")
    others = sorted(c for c in claims if c.uid != mine.uid)
    return others[0] if others and others[0] < mine else None


def with_progress(outcome: Outcome, progress: _Progress) -> Outcome:
    if isinstance(outcome, Failed):
        return Failed(
            outcome.reason,
            outcome.message,
            outcome.transient,
            applied=outcome.applied,
            managed_teams=tuple(progress.managed_teams),
            blocked_keys=tuple(progress.blocked_keys),
        )
    return outcome


def events_for(plan: Plan, progress: _Progress, desired: Desired) -> list[Event]:
    events: list[Event] = []
    if progress.created:
        events.append(Event("Normal", "Created", f"created LiteLLM user {desired.user_id!r}"))
    elif plan.adopting:
        events.append(Event("Normal", "Adopted", f"adopted LiteLLM user {desired.user_id!r}"))
    elif progress.changed:
        fields = ", ".join(sorted(set(progress.changed)))
        events.append(Event("Normal", "Updated", f"updated LiteLLM user: {fields}"))
    if progress.missing_teams:
        teams = ", ".join(progress.missing_teams)
        events.append(Event("Warning", "TeamNotFound", f"team(s) {teams} do not exist in LiteLLM"))
    return events


def failure(
    reason: str, message: str, *, transient: bool, applied: Applied | None = None
) -> Result:
    kind: Literal["Warning"] = "Warning"
    return Result(
        Failed(
            reason,
            message,
            transient,
            applied=applied,
            user_id=applied.user_id if applied else None,
        ),
        events=[Event(kind, reason, message)],
    )


def invalid(exc: ValidationError, what: str = "spec") -> Result:
    problems = "; ".join(
        f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors()[:5]
    )
    return failure(REASON_INVALID_SPEC, f"invalid {what}: {problems}", transient=False)


def from_error(exc: LiteLLMError, applied: Applied | None) -> Result:
    """Map a LiteLLM error: outages are retried, rejections wait for a change."""
    if isinstance(exc, Unavailable | RateLimited | ServerError):
        result = failure(REASON_UNAVAILABLE, str(exc), transient=True, applied=applied)
        result.retry_after = exc.retry_after if isinstance(exc, RateLimited) else None
        return result
    if isinstance(exc, AuthError):
        message = f"LiteLLM refused the operator's master key: {exc}"
        return failure(REASON_UNAUTHORIZED, message, transient=True, applied=applied)
    return failure(
        REASON_REJECTED, f"LiteLLM rejected the request: {exc}", transient=False, applied=applied
    )
