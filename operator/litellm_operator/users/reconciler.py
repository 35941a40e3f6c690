"""One LiteLLMUser reconcile: observe LiteLLM → plan (pure) → act, and the status that results.

Nothing here knows kopf: the handlers give it the resource, its policy and the other
resources claiming the same user id, and get back the new status, the events to post and
whether a failure is worth retrying. The LiteLLM client is the only I/O.

Member budgets: each team's ``memberBudget`` is read from the shared ``/team/list`` snapshot
(:class:`~litellm_operator.litellm.TeamSnapshot`, ``/team/info`` for a team written since), by
the reconcile and by the resync's :meth:`Reconciler.check` alike, and combined with the user's
own ``maxBudgetInTeam`` by :func:`~litellm_operator.users.plan.member_budgets`; the reconcile
reads the memberships themselves fresh (``/team/info``), the check from the snapshot.

The applier records per-item failures and carries on (a missing team does not stop the budget
from being applied), so the status always says what was done, including memberships added
before a later call failed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import weakref
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, Literal, cast

from pydantic import ValidationError

from litellm_operator.keys.owner import USER_OWNER, KeyOwner
from litellm_operator.keys.plan import ROTATE_ANNOTATION, DesiredKey, KeyRefusal, keys_of
from litellm_operator.keys.reconciler import (
    AliasTaken,
    KeyReconciler,
    SecretsUnavailable,
    SecretTaken,
    next_check_in,
)
from litellm_operator.litellm import (
    AuthError,
    EmailInUse,
    LiteLLMClient,
    LiteLLMError,
    LiteLLMUserRecord,
    MalformedRequest,
    NotFound,
    RateLimited,
    ServerError,
    TeamRecord,
    TeamRole,
    TeamSnapshot,
    Unavailable,
    UnsupportedVersion,
    UpdateUserRequest,
    UserExists,
    may_have_been_processed,
)
from litellm_operator.models import LiteLLMUser, ProvisioningPolicy
from litellm_operator.policies.resolve import (
    PolicyViolation,
    Resolution,
    email_for,
    in_namespaces,
    resolve,
)
from litellm_operator.policies.teams import MemberBudget
from litellm_operator.reasons import Event, Reason
from litellm_operator.status import (
    Applied,
    Failed,
    Outcome,
    Synced,
    applied_fields,
    pruned,
    ready_condition,
)
from litellm_operator.users.indices import Claim
from litellm_operator.users.plan import (
    MSG_EMAIL_IN_USE,
    MSG_SSO_USER_ID_IN_USE,
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
    TeamMembership,
    UnblockKey,
    UpdateTeamMembership,
    UpdateUser,
    deletes_adopted,
    desired_email,
    is_adopted,
    member_budget_of,
    member_budgets,
    named_for,
    observed_settings,
    ownership_of,
    plan_deletion,
    plan_user,
    same_email,
)

log = logging.getLogger(__name__)

APPLIED_KEYS = ("userId", "effective", "sources", "matchedRole", "policy")

MSG_POLICY_NOT_FOUND = "ProvisioningPolicy {name!r} does not exist; no change was made in LiteLLM"
MSG_LOST_RACE = (
    "LiteLLM user {user_id!r} was created by another writer at the same moment and is not "
    "this resource's; give this resource another name or spec.userId"
)
MSG_CLAIMED = (
    "user id {user_id!r} is already claimed by {owner}, created earlier; "
    "give this resource another name or spec.userId"
)


@dataclass
class Result:
    outcome: Outcome
    events: list[Event] = field(default_factory=list)
    retry_after: float | None = None
    """Set for transient failures: when to try again (LiteLLM's Retry-After when it sent one)."""
    requeue_after: float | None = None
    """Set when a key is due (rotation, end of a grace period): reconcile again then."""
    teams_joined_or_left: tuple[str, ...] = ()
    """The teams this reconcile added the user to or removed it from (their counts changed)."""


RecordProgress = Callable[[str, Sequence[str], bool], Awaitable[None]]
"""Writes ``status.userId`` and ``status.managedTeams`` *before* LiteLLM is written, with the
creating conditions when the third argument says the user is being created: progress that a
crash or a lost answer cannot lose (the memberships about to be added count as the operator's)."""
ReadUser = Callable[[str], Awaitable[LiteLLMUserRecord | None]]
"""Reads one user as LiteLLM holds it (``None`` when absent): ``/user/info``, or the batched
:class:`~litellm_operator.litellm.UserReads` the operator runs with."""
WriteUser = Callable[[str, UpdateUserRequest | Mapping[str, Any]], Awaitable[LiteLLMUserRecord]]
"""Updates one user (``/user/update``'s contract: the row as updated), or the coalesced
:class:`~litellm_operator.litellm.UserWrites` the operator runs with."""
ClaimsOf = Callable[[str], Sequence[Claim]]
"""The resources that recorded a given user id in their status (from the operator's index of
LiteLLMUsers)."""


@dataclass
class _Progress:
    """What the applier has done so far; survives a failure half-way."""

    wrote: bool = False
    created: bool = False
    managed_teams: set[str] = field(default_factory=set)
    blocked_keys: set[str] = field(default_factory=set)
    missing_teams: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    updated: LiteLLMUserRecord | None = None
    """The user row as ``/user/update`` answered it (budget reset and spend included)."""


DEFAULT_MAX_IN_PROGRESS = 32


class Reconciler:
    def __init__(
        self,
        client: LiteLLMClient,
        keys: KeyReconciler | None = None,
        read_user: ReadUser | None = None,
        max_in_progress: int = DEFAULT_MAX_IN_PROGRESS,
        update_user: WriteUser | None = None,
        teams: TeamSnapshot | None = None,
    ) -> None:
        self.client = client
        self.teams = teams
        """The shared ``/team/list`` snapshot the teams' ``memberBudget`` is read from; without
        it (tests of users alone) teams give their members no budget."""
        self.read_user = read_user or client.get_user
        self.update_user = update_user or client.update_user
        self._slots = asyncio.Semaphore(max_in_progress)
        """Reconciles in progress at once: enough to keep LiteLLM busy and the batched reads
        full, few enough that a thousand users arriving together do not each hold a
        reconcile's worth of memory (models, responses, progress) while they wait."""
        self.keys = keys
        """Delivers ``spec.keys`` into Secrets; without it (tests of users alone) keys are
        resolved and checked against the policy but not issued."""
        self._id_locks: weakref.WeakValueDictionary[str, asyncio.Lock] = (
            weakref.WeakValueDictionary()
        )

    async def reconcile(
        self,
        body: Mapping[str, Any],
        policy_body: ProvisioningPolicy | Mapping[str, Any] | None,
        claims: ClaimsOf = lambda _user_id: (),
        *,
        record_progress: RecordProgress | None = None,
        observed_hint: LiteLLMUserRecord | None = None,
    ) -> Result:
        """Make LiteLLM hold the user's effective settings; never raises a LiteLLM error."""
        async with self._slots:
            return await self._reconcile(body, policy_body, claims, record_progress, observed_hint)

    async def _reconcile(
        self,
        body: Mapping[str, Any],
        policy_body: ProvisioningPolicy | Mapping[str, Any] | None,
        claims: ClaimsOf,
        record_progress: RecordProgress | None,
        observed_hint: LiteLLMUserRecord | None,
    ) -> Result:
        pinned = ((body.get("status") or {}).get("userId")) or None
        prepared = prepare(body, policy_body, pinned)
        if isinstance(prepared, Result):
            return prepared
        user, resolution, applied, desired = (
            prepared.user,
            prepared.resolution,
            prepared.applied,
            prepared.desired,
        )
        adopted_before = bool(user.status and user.status.adopted)
        rival = older_claim(claims(desired.user_id), user)
        try:
            record = observed_hint or await self.read_user(desired.user_id)
            lock = self.id_lock(desired.user_id)
            contended = lock.locked()
            async with lock:
                if contended:  # another reconcile of this id went first: read it again
                    record = await self.read_user(desired.user_id)
                result = await self._converge(
                    desired,
                    applied,
                    record_progress,
                    record,
                    rival=None if rival is None else claimant(rival, user),
                    pinned=pinned is not None,
                    adopted_before=adopted_before,
                )
                result = await self._converge_keys(prepared, result)
        except LiteLLMError as exc:
            return from_error(exc, applied)
        except SecretsUnavailable as exc:
            return failure(Reason.UNAVAILABLE, str(exc), transient=True, applied=applied)
        except (SecretTaken, AliasTaken) as exc:
            return failure(Reason.CONFLICT, str(exc), transient=False, applied=applied)
        except MalformedRequest as exc:
            return malformed(exc, applied)
        return with_resolution_notes(result, resolution)

    async def _converge_keys(self, prepared: Prepared, result: Result) -> Result:
        """Once the user is in sync: its keys and their Secrets (only for users with keys, or
        that had some: a user without keys costs no Secret list)."""
        outcome = result.outcome
        user = prepared.user
        had_keys = bool(user.status and user.status.keys)
        if self.keys is None or not isinstance(outcome, Synced):
            return result
        if not prepared.keys and not had_keys:
            return result
        meta = user.metadata
        owner = KeyOwner(
            USER_OWNER, meta.namespace or "", meta.name, meta.uid or "", prepared.desired.user_id
        )
        keys = await self.keys.converge(
            owner,
            prepared.keys,
            suspended=prepared.desired.suspend,
            blocked_by_suspension=frozenset(outcome.blocked_keys),
            rotation=meta.annotations.get(ROTATE_ANNOTATION),
        )
        if not keys.settled:
            message = "keys did not settle: their Secrets or LiteLLM keys kept changing; retrying"
            return failure(Reason.PENDING, message, transient=True, applied=prepared.applied)
        result.outcome = replace(outcome, keys=keys.statuses, wrote=outcome.wrote or keys.wrote)
        result.events.extend(keys.events)
        result.requeue_after = next_check_in(keys.next_check)
        return result

    def id_lock(self, user_id: str) -> asyncio.Lock:
        """The critical section of one LiteLLM user id: who creates it is decided inside. The
        lock lives as long as a reconcile of that id holds it (the map does not grow forever)."""
        lock = self._id_locks.get(user_id)
        if lock is None:
            lock = self._id_locks[user_id] = asyncio.Lock()
        return lock

    async def _converge(
        self,
        desired: Desired,
        applied: Applied,
        record_progress: RecordProgress | None,
        record: LiteLLMUserRecord | None,
        *,
        rival: str | None,
        pinned: bool,
        adopted_before: bool,
    ) -> Result:
        """Observe, plan, act. Ownership in LiteLLM decides first: a user whose markers name
        this resource stays its own whatever other resources claim; only an absent user goes
        to the oldest claimant (``rival``, when another resource claimed the id earlier)."""
        team_budgets = await self.team_budgets(desired)
        observed = await self.observe_record(desired, record, team_budgets)
        if rival is not None and ownership_of(observed, desired.owner) != "ours":
            message = MSG_CLAIMED.format(user_id=desired.user_id, owner=rival)
            return failure(Reason.CONFLICT, message, transient=False, applied=applied)
        try:
            plan = plan_user(desired, observed, team_budgets)
        except MalformedRequest as exc:
            return malformed(exc, applied)
        refusal = plan.refusal
        if refusal is not None:
            return failure(refusal.reason, refusal.message, transient=False, applied=applied)
        creating = observed is None and not pinned
        if observed is None and desired.sso_user_id is not None:
            holders = await self.client.users_with_sso_user_id(desired.sso_user_id)
            if holders:
                message = MSG_SSO_USER_ID_IN_USE.format(sso_user_id=desired.sso_user_id)
                return failure(Reason.SSO_USER_ID_IN_USE, message, transient=False, applied=applied)
        joining = {a.team_id for a in plan.actions if isinstance(a, AddToTeam)}
        if record_progress is not None and (creating or joining):
            intended = sorted(desired.managed_teams | joining)
            await record_progress(desired.user_id, intended, creating)
        progress = _Progress(
            managed_teams=set(desired.managed_teams), blocked_keys=set(desired.blocked_keys)
        )
        try:
            plan = await self._apply(desired, plan, progress)
        except EmailInUse:
            message = MSG_EMAIL_IN_USE.format(email=desired_email(desired))
            return failure(Reason.EMAIL_IN_USE, message, transient=False, applied=applied)
        except LiteLLMError as exc:
            result = from_error(exc, applied)
            result.outcome = with_progress(result.outcome, progress)
            return result
        except MalformedRequest as exc:
            result = malformed(exc, applied)
            result.outcome = with_progress(result.outcome, progress)
            return result
        except ValidationError as exc:
            message = f"LiteLLM answered in a shape the operator does not understand: {exc}"
            result = failure(Reason.UNEXPECTED_RESPONSE, message, transient=True, applied=applied)
            result.outcome = with_progress(result.outcome, progress)
            return result
        refusal = plan.refusal
        if refusal is not None:
            return failure(refusal.reason, refusal.message, transient=False, applied=applied)
        final = await self.final_record(desired.user_id, record, progress)
        if progress.created and final is not None and not owned_by(final, desired.owner):
            # LiteLLM's /user/new is last-write-wins: another writer created the id meanwhile.
            message = MSG_LOST_RACE.format(user_id=desired.user_id)
            return failure(Reason.CONFLICT, message, transient=False, applied=applied)
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
            team_budgets=applied_budgets(member_budgets(desired, team_budgets)),
        )
        return Result(
            outcome,
            events=events_for(plan, progress, desired),
            teams_joined_or_left=joined_or_left(progress.changed),
        )

    async def observe(self, desired: Desired) -> ObservedUser | None:
        record = await self.read_user(desired.user_id)
        return await self.observe_record(desired, record, await self.team_budgets(desired))

    async def team_records(self, desired: Desired) -> dict[str, TeamRecord]:
        """The user's teams as LiteLLM holds them, from the shared ``/team/list`` snapshot; a
        team missing there (new, or written since) read with ``/team/info`` and shared again;
        absent teams left out."""
        snapshot = self.teams
        if snapshot is None or not desired.settings.teams:
            return {}
        held = await snapshot.held()
        records: dict[str, TeamRecord] = {}
        for team_id in sorted(set(desired.settings.teams)):
            team = held.get(team_id)
            if team is None:
                team = await self.client.get_team(team_id)
                if team is not None:
                    snapshot.remember(team)
            if team is not None:
                records[team_id] = team
        return records

    async def team_budgets(self, desired: Desired) -> dict[str, float | None]:
        """The ``memberBudget`` of each of the user's teams (:func:`member_budget_of`)."""
        records = await self.team_records(desired)
        return {team_id: member_budget_of(team.metadata) for team_id, team in records.items()}

    def members_fresh(self, team_id: str) -> bool:
        return self.teams is None or self.teams.members_fresh(team_id)

    def members_written(self, team_id: str) -> None:
        if self.teams is not None:
            self.teams.members_written(team_id)

    async def final_record(
        self, user_id: str, observed: LiteLLMUserRecord | None, progress: _Progress
    ) -> LiteLLMUserRecord | None:
        """The user row after the writes, for the status (spend, budget, reset): read again after
        a create (``/user/new`` answers without the budget reset, and the markers must be ours),
        else ``/user/update``'s answer, else what was observed (team calls leave the row alone).
        """
        if progress.created:
            return await self.read_user(user_id)
        return progress.updated or observed

    async def observe_record(
        self,
        desired: Desired,
        record: LiteLLMUserRecord | None,
        team_budgets: Mapping[str, float | None] | None = None,
        *,
        memberships: bool = True,
    ) -> ObservedUser | None:
        """The user as LiteLLM holds it.

        Keys are read only when a suspension is involved; the owner of the desired e-mail only
        when the operator owns the e-mail and it must change (LiteLLM's ``/user/update`` does
        not check it is free; an e-mail the identity provider owns is never written back).
        """
        if record is None:
            return None
        keys: tuple[ObservedKey, ...] | None = None
        if desired.suspend or desired.blocked_keys:
            keys = tuple(
                ObservedKey(k.token, k.blocked)
                for k in await self.client.list_user_keys(desired.user_id)
                if k.token
            )
        email = desired_email(desired)
        email_in_use = False
        operator_owns_email = "email" not in desired.provider_owned
        if operator_owns_email and email is not None and not same_email(email, record.user_email):
            holders = await self.client.users_with_email(email)
            email_in_use = any(holder != desired.user_id for holder in holders)
        budgets = dict(team_budgets or {})
        held = await self.observe_memberships(desired, record, budgets) if memberships else None
        return observed_from(
            record, keys, email_in_use=email_in_use, memberships=held, team_budgets=budgets
        )

    async def observe_memberships(
        self, desired: Desired, record: LiteLLMUserRecord, team_budgets: Mapping[str, float | None]
    ) -> dict[str, TeamMembership] | None:
        """Role and budget of the user in each desired team it is in (one ``/team/info`` each,
        fresh: what the snapshot says may predate the last write)."""
        memberships: dict[str, TeamMembership] = {}
        if not desired.reads_memberships(team_budgets):
            return None
        for team_id in sorted(set(desired.settings.teams) & set(record.teams)):
            team = await self.client.get_team(team_id)
            if team is not None:
                memberships[team_id] = membership_in(team, desired.user_id)
        return memberships

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
            case CreateUser(request=request):
                await client.create_user(request)
                progress.created = progress.wrote = True
            case UpdateUser(request=request):
                progress.updated = await self.update_user(user_id, request)
                progress.wrote = True
                progress.changed.extend(action.changed)
            case AddToTeam(team_id=team, max_budget_in_team=budget):
                claimed = team in progress.managed_teams
                # Claimed before the call, as the recorded progress claims it: a failure whose
                # answer was lost may hide a membership LiteLLM made, which stays the operator's.
                progress.managed_teams.add(team)
                try:
                    added = await client.add_team_member(team, user_id, max_budget_in_team=budget)
                except NotFound:
                    progress.missing_teams.append(team)
                    added = False
                except LiteLLMError as err:
                    if not claimed and not may_have_been_processed(err):
                        progress.managed_teams.discard(team)
                    raise
                if added:
                    self.members_written(team)
                    progress.wrote = True
                    progress.changed.append(f"team:{team}")
                elif not claimed:
                    progress.managed_teams.discard(team)
            case UpdateTeamMembership(team_id=team, max_budget_in_team=budget, role=role):
                self.members_written(team)
                await client.update_team_member(
                    team, user_id, role=cast(TeamRole, role), max_budget_in_team=budget
                )
                progress.wrote = True
                progress.changed.append(f"maxBudgetInTeam:{team}")
            case RemoveFromTeam(team_id=team):
                self.members_written(team)
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
        policy: ProvisioningPolicy | Mapping[str, Any] | None,
        record: LiteLLMUserRecord | None,
    ) -> tuple[str, ...]:
        """What differs for a user, judged from a ``/user/list`` record; no writes.

        Empty means in sync. Otherwise the user needs a reconcile: the LiteLLM fields that
        drifted (``max_budget``, ``teams``, ...), or ``status`` when only the status is stale,
        ``not-ready`` for users that are not Ready (so stalled users are retried once per
        resync, as are the users of a policy that is not valid: ``policy`` is ``None``),
        ``missing`` when the snapshot does not have the user. Claims of other resources are
        not consulted: once the user exists, its markers in LiteLLM say whose it is.
        """
        status = body.get("status") or {}
        ready = ready_condition(status) or {}
        generation = (body.get("metadata") or {}).get("generation")
        if ready.get("status") != "True" or status.get("observedGeneration") != generation:
            return ("not-ready",)
        if record is None:
            return ("missing",)
        prepared = prepare(body, policy, record.user_id)
        if isinstance(prepared, Result):
            return ("not-ready",)
        desired = prepared.desired
        teams = await self.team_records(desired)
        team_budgets = {team_id: member_budget_of(t.metadata) for team_id, t in teams.items()}
        observed = await self.observe_record(desired, record, team_budgets, memberships=False)
        if observed is not None and desired.reads_memberships(team_budgets):
            # A team whose members the operator wrote since the snapshot is not compared: its
            # list predates those writes, and the next snapshot has them (no read per user).
            held = {
                team_id: membership_in(teams[team_id], desired.user_id)
                for team_id in sorted(set(desired.settings.teams) & set(record.teams))
                if team_id in teams and self.members_fresh(team_id)
            }
            observed = replace(observed, memberships=held)
        drift = drifted_fields(plan_user(desired, observed, team_budgets))
        if drift:
            return drift
        if self.keys is not None and (prepared.keys or status.get("keys")):
            user = prepared.user
            meta = user.metadata
            owner = KeyOwner(
                USER_OWNER, meta.namespace or "", meta.name, meta.uid or "", desired.user_id
            )
            if await self.keys.drifted(
                owner,
                prepared.keys,
                suspended=desired.suspend,
                blocked_by_suspension=desired.blocked_keys,
                rotation=meta.annotations.get(ROTATE_ANNOTATION),
            ):
                return ("keys",)
        expected = pruned(applied_fields(prepared.applied))
        stale = any(status.get(k) != expected.get(k) for k in APPLIED_KEYS)
        stale = stale or status.get("spend") != record.spend
        stale = stale or status.get("maxBudget") != record.max_budget
        stale = stale or status.get("budgetResetAt") != iso(record.budget_reset_at)
        budgets = applied_budgets(member_budgets(desired, team_budgets))
        stale = stale or status.get("teamBudgets") != (pruned(budgets) or None)
        return ("status",) if stale else ()

    async def finalize(
        self, body: Mapping[str, Any], policy_body: Mapping[str, Any] | None = None
    ) -> list[Event]:
        """Deletion: delete or release the LiteLLM user; safe to run twice. Raises on outage.

        The resource's deletionPolicy is followed only under a policy that exists and allows
        the resource's namespace; otherwise the user is retained. An adopted user is deleted
        only when the policy that adopted it recorded deleteAdoptedUsers in LiteLLM and the
        resource says ``deletionPolicy: Delete`` (see :func:`plan_deletion`).
        """
        meta = body.get("metadata") or {}
        spec = body.get("spec") or {}
        status = body.get("status") or {}
        user_id = status.get("userId")
        if not user_id:
            return []
        owner = Owner(meta.get("namespace", ""), meta.get("name", ""), meta.get("uid", ""))
        policy: DeletionPolicy = "Retain" if spec.get("deletionPolicy") == "Retain" else "Delete"
        if not governs(policy_body, owner.namespace):
            policy = "Retain"
        record = await self.read_user(user_id)
        observed = observed_from(record, None) if record is not None else None
        actions = plan_deletion(owner, observed, policy)
        events: list[Event] = []
        if self.keys is not None and (spec.get("keys") or status.get("keys")):
            owner_keys = KeyOwner(USER_OWNER, owner.namespace, owner.name, owner.uid, user_id)
            kept = observed is not None and is_adopted(observed) and not deletes_adopted(observed)
            retain = policy == "Retain" or kept
            events.extend(await self.keys.remove_all(owner_keys, retain=retain))
        for action in actions:
            if isinstance(action, DeleteUser):
                with contextlib.suppress(NotFound):  # deleted meanwhile: the goal is reached
                    await self.client.delete_users([action.user_id])
                events.append(Event("Normal", Reason.DELETED, f"deleted LiteLLM user {user_id!r}"))
            elif isinstance(action, UpdateUser):
                await self.update_user(user_id, action.request)
                message = f"released LiteLLM user {user_id!r}: markers removed, user retained"
                events.append(Event("Normal", Reason.RELEASED, message))
        return events


def governs(policy_body: Mapping[str, Any] | None, namespace: str) -> bool:
    """Whether the policy (the raw body: it need not be valid now) allows the namespace."""
    patterns = ((policy_body or {}).get("spec") or {}).get("allowedNamespaces") or []
    return in_namespaces(namespace, [str(p) for p in patterns])


@dataclass(frozen=True)
class Prepared:
    """What reconcile and the resync's check share: the user resolved under its policy."""

    user: LiteLLMUser
    resolution: Resolution
    applied: Applied
    desired: Desired
    keys: tuple[DesiredKey, ...] = ()


def prepare(
    body: Mapping[str, Any],
    policy_body: ProvisioningPolicy | Mapping[str, Any] | None,
    pinned: str | None,
) -> Prepared | Result:
    """Validate and resolve the user under its policy, or the failure that stops here.

    Pure: no LiteLLM call. ``pinned`` is the user id already recorded for the user.
    """
    try:
        user = LiteLLMUser.model_validate(body)
    except ValidationError as exc:
        return invalid(exc)
    if policy_body is None:
        message = MSG_POLICY_NOT_FOUND.format(name=user.spec.policy_ref)
        return failure(Reason.POLICY_NOT_FOUND, message, transient=False)
    try:
        policy = (
            policy_body
            if isinstance(policy_body, ProvisioningPolicy)
            else ProvisioningPolicy.model_validate(policy_body)
        )
        resolution = resolve(policy, user, pinned)
    except ValidationError as exc:
        return invalid(exc, what="policy")
    except PolicyViolation as exc:
        reason = exc.problems[0].reason if exc.problems else Reason.INVALID_SPEC
        return failure(reason, str(exc), transient=False)
    user_id = resolution.user_id
    applied = applied_from(resolution, user_id)
    keys = keys_of(user, policy, resolution.effective)
    if isinstance(keys, KeyRefusal):  # nothing is written to LiteLLM
        return failure(keys.reason, keys.message, transient=False, applied=applied)
    desired = desired_for(user, policy, resolution, user_id)
    return Prepared(user, resolution, applied, desired, keys)


def drifted_fields(plan: Plan) -> tuple[str, ...]:
    fields: list[str] = []
    for action in plan.actions:
        match action:
            case UpdateUser():
                fields.extend(action.changed)
            case AddToTeam() | RemoveFromTeam():
                fields.append("teams")
            case UpdateTeamMembership():
                fields.append("maxBudgetInTeam")
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
        email=email_for(user, user_id),
        alias=user.spec.alias,
        sso_user_id=user.spec.sso_user_id,
        provider_owned=provider_owned(policy),
        suspend=user.spec.suspend,
        adoption_allowed=user.spec.adopt and policy.spec.adopt_existing_users,
        delete_adopted=policy.spec.delete_adopted_users,
        managed_teams=frozenset(status.managed_teams or []) if status else frozenset(),
        blocked_keys=frozenset(status.blocked_keys or []) if status else frozenset(),
        had_team_budget=bool(
            status and status.effective and status.effective.max_budget_in_team is not None
        ),
        budget_source=resolution.sources.get("maxBudgetInTeam", "builtin"),
        budgeted_teams=frozenset((status.team_budgets or {}) if status else ()),
    )


def provider_owned(policy: ProvisioningPolicy) -> frozenset[str]:
    """The fields (userRole, email, alias) the policy's spec.sso gives the identity provider."""
    owners = policy.spec.sso.model_dump(by_alias=True)
    return frozenset(name for name, owner in owners.items() if owner == "Provider")


def observed_from(
    record: LiteLLMUserRecord,
    keys: tuple[ObservedKey, ...] | None,
    *,
    email_in_use: bool = False,
    memberships: Mapping[str, TeamMembership] | None = None,
    team_budgets: Mapping[str, float | None] | None = None,
) -> ObservedUser:
    return ObservedUser(
        user_id=record.user_id,
        settings=observed_settings(record.model_dump(), record.metadata, record.teams),
        metadata=dict(record.metadata),
        email=record.user_email,
        alias=record.user_alias,
        sso_user_id=record.sso_user_id,
        memberships=memberships,
        team_budgets=dict(team_budgets or {}),
        keys=keys,
        email_in_use=email_in_use,
    )


def joined_or_left(changed: Sequence[str]) -> tuple[str, ...]:
    """The teams whose membership changed, from the applier's ``team:<id>`` entries."""
    return tuple(sorted({c.removeprefix("team:") for c in changed if c.startswith("team:")}))


def membership_in(team: TeamRecord, user_id: str) -> TeamMembership:
    """The user's role and budget in ``team`` (a ``/team/info`` or ``/team/list`` record)."""
    return TeamMembership(team.member_role(user_id), team.member_budget(user_id))


def applied_budgets(budgets: Mapping[str, MemberBudget]) -> dict[str, dict[str, Any]]:
    """``status.teamBudgets``: the budget the user has in each team that gives it one, and
    where it comes from (a removed budget is not listed)."""
    return {
        team: {"maxBudgetInTeam": budget.max_budget_in_team, "source": budget.source}
        for team, budget in budgets.items()
        if budget.max_budget_in_team is not None
    }


def owned_by(record: LiteLLMUserRecord | None, owner: Owner) -> bool:
    if record is None:
        return False
    return ownership_of(observed_from(record, None), owner) == "ours"


def claimant(rival: Claim, user: LiteLLMUser) -> str:
    """The rival resource, as the user may see it (see :func:`named_for`)."""
    return named_for(rival.namespace, rival.name, user.metadata.namespace or "")


def with_resolution_notes(result: Result, resolution: Resolution) -> Result:
    """The resolution's notes in the Ready message; ignored groups as a Warning event too."""
    outcome = result.outcome
    if isinstance(outcome, Synced) and resolution.notes:
        result.outcome = replace(outcome, notes=tuple(resolution.notes))
    if resolution.ignored_groups:
        groups = ", ".join(resolution.ignored_groups)
        message = (
            f"group(s) {groups} ignored: policy {resolution.policy_name!r} does not grant "
            "their role(s) to this namespace"
        )
        result.events.append(Event("Warning", Reason.GROUPS_IGNORED, message))
    return result


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
        events.append(Event("Normal", Reason.CREATED, f"created LiteLLM user {desired.user_id!r}"))
    elif plan.adopting:
        events.append(Event("Normal", Reason.ADOPTED, f"adopted LiteLLM user {desired.user_id!r}"))
    elif progress.changed:
        fields = ", ".join(sorted(set(progress.changed)))
        events.append(Event("Normal", Reason.UPDATED, f"updated LiteLLM user: {fields}"))
    if progress.missing_teams:
        teams = ", ".join(progress.missing_teams)
        events.append(
            Event("Warning", Reason.TEAM_NOT_FOUND, f"team(s) {teams} do not exist in LiteLLM")
        )
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
    return failure(Reason.INVALID_SPEC, f"invalid {what}: {problems}", transient=False)


def malformed(exc: MalformedRequest, applied: Applied | None) -> Result:
    """A request the operator cannot build: its bug, stalled until fixed, never retried."""
    message = f"the operator built a request LiteLLM cannot take (a bug; please report it): {exc}"
    return failure(Reason.MALFORMED_REQUEST, message, transient=False, applied=applied)


def from_error(exc: LiteLLMError, applied: Applied | None) -> Result:
    """Map a LiteLLM error: outages are retried, rejections wait for a change."""
    if isinstance(exc, Unavailable | RateLimited | ServerError):
        result = failure(Reason.UNAVAILABLE, str(exc), transient=True, applied=applied)
        result.retry_after = exc.retry_after if isinstance(exc, RateLimited) else None
        return result
    if isinstance(exc, AuthError):
        message = f"LiteLLM refused the operator's master key: {exc}"
        return failure(Reason.UNAUTHORIZED, message, transient=True, applied=applied)
    if isinstance(exc, UnsupportedVersion):  # retried at each resync, which reads the version
        return failure(
            Reason.LITELLM_VERSION_UNSUPPORTED, str(exc), transient=False, applied=applied
        )
    return failure(
        Reason.REJECTED, f"LiteLLM rejected the request: {exc}", transient=False, applied=applied
    )
