"""LiteLLMTeam handlers: create, update, resume, the resync timer and delete, wired to kopf.

Each handler reads kopf's kwargs and indices (the policies' ``policy_bodies``, the teams' own
``teams_by_namespace`` for ``teams.maxPerNamespace``), calls :class:`TeamReconciler`, and turns
its result into a status patch (only what changed), events and metrics:

* a LiteLLMTeam is created or changed → one ``/team/info`` and the writes that are needed;
* the operator starts, and every resync interval → the team judged from the shared
  ``/team/list`` snapshot: no call of its own, and no write when nothing differs;
* a policy is created, changed or deleted → each of its teams not yet reconciled against that
  generation is nudged (once per generation), so its status is judged against the new policy
  within seconds, not at the next resync.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

import kopf

from litellm_operator.keys.due import Requeues
from litellm_operator.models import GROUP, POLICY_PLURAL, TEAM_PLURAL, VERSION
from litellm_operator.policies.validated import PolicyModels
from litellm_operator.reasons import Reason
from litellm_operator.runtime.handling import (
    UNEXPECTED_ERROR_BACKOFF,
    Handover,
    OneAtATime,
    Retry,
    first,
    now_iso,
    post,
    retry_delay,
    retry_later,
)
from litellm_operator.runtime.metrics import Metrics
from litellm_operator.status import (
    TEAM_OWNED_KEYS,
    TeamFailed,
    build_team_status,
    ready_condition,
    status_patch,
)
from litellm_operator.teams.plan import behind
from litellm_operator.teams.reconciler import TeamReconciler, TeamResult
from litellm_operator.users.indices import policy_ref_of

log = logging.getLogger(__name__)

TEAMS = (GROUP, VERSION, TEAM_PLURAL)
RECOUNT_AFTER_SECONDS = 1.0
"""How long a team's recount waits for more joins (a thousand users joining one team at once
cost a few recounts, not a thousand)."""
RECOUNT_AT_MOST_AFTER = 10.0
"""The longest a recount waits while joins keep coming."""
POLICIES = (GROUP, VERSION, POLICY_PLURAL)
Nudge = Callable[[str, str, str], Awaitable[None]]


def team_key(body: Mapping[str, Any]) -> tuple[str, str]:
    meta = body.get("metadata") or {}
    return (str(meta.get("namespace")), str(meta.get("name")))


async def index_by_namespace(*, namespace: str | None, body: kopf.Body, **_: Any) -> dict[str, Any]:
    """Namespace → the LiteLLMTeams there, with what ``teams.maxPerNamespace`` orders by."""
    meta = body.get("metadata") or {}
    kept = {k: meta[k] for k in ("name", "namespace", "uid", "creationTimestamp") if k in meta}
    policy = (body.get("status") or {}).get("policy")
    slim = {"metadata": kept, "spec": dict(body.get("spec") or {}), "policy": policy}
    return {namespace or "": slim}


class TeamHandlers:
    """The LiteLLMTeam handlers over one reconciler."""

    def __init__(
        self,
        reconciler: TeamReconciler,
        metrics: Metrics,
        resync_seconds: float,
        created: Callable[[str], Awaitable[None]],
        nudge: Nudge,
        member_budget_changed: Callable[[str], Awaitable[None]],
        *,
        gone: Callable[[str], Awaitable[None]],
    ):
        self.reconciler = reconciler
        self.metrics = metrics
        self.resync_seconds = resync_seconds
        self.created = created
        self.gone = gone
        """Reconciles the members of a team this operator deleted or released."""
        """Told each team id the operator created: the users waiting for it are reconciled."""
        self.nudge = nudge
        self.member_budget_changed = member_budget_changed
        """Told each team id whose memberBudget the operator wrote: its members follow."""
        self.nudged: dict[tuple[str, str], int | None] = {}
        """The policy generation each team was last nudged for (once per generation)."""
        self.policies = PolicyModels()
        self.owners: dict[str, tuple[str, str]] = {}
        """LiteLLM team id → the LiteLLMTeam (namespace, name) that reconciled it last."""
        self.recounts: dict[str, float] = {}
        """Teams whose recount is scheduled (:meth:`members_changed`), with when it is due."""
        self.tasks: set[asyncio.Task[None]] = set()
        self.due = Requeues(nudge)
        self.known: set[tuple[str, str]] = set()
        """The teams this operator reconciles (the key Secrets' watch nudges only these)."""
        self.one_at_a_time = OneAtATime()

    def knows(self, team: tuple[str, str]) -> bool:
        return team in self.known

    async def stop(self, **_: Any) -> None:
        await self.due.close()
        for task in list(self.tasks):
            task.cancel()

    async def members_changed(self, team_ids: Sequence[str]) -> None:
        """Users joined or left these teams: each LiteLLMTeam among them reconciles (one
        ``/team/info``) once the joins of the moment are done, so its ``status.members`` is
        current without a per-team read in steady state. A recount waits until no member has
        joined or left for :data:`RECOUNT_AFTER_SECONDS`, at most :data:`RECOUNT_AT_MOST_AFTER`
        seconds after the first of them: a steady stream of joins costs one recount per
        :data:`RECOUNT_AT_MOST_AFTER` seconds, not one per join."""
        now = time.monotonic()
        for team_id in team_ids:
            if team_id not in self.owners:
                continue
            scheduled = team_id in self.recounts
            self.recounts[team_id] = now + RECOUNT_AFTER_SECONDS
            if scheduled:
                continue
            task = asyncio.create_task(self.recount(team_id, now + RECOUNT_AT_MOST_AFTER))
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)

    async def recount(self, team_id: str, latest: float) -> None:
        delay = min(self.recounts.get(team_id, 0.0), latest) - time.monotonic()
        if delay > 0:  # joins meanwhile pushed it back: wait for them (at most until latest)
            await asyncio.sleep(delay)
            await self.recount(team_id, latest)
            return
        self.recounts.pop(team_id, None)
        owner = self.owners.get(team_id)
        if owner is None:
            return
        log.info("LiteLLMTeam %s/%s: members joined or left; recounting", *owner)
        try:
            await self.nudge(*owner, f"members of {team_id} changed")
        except Exception as exc:  # the next resync recounts it
            log.warning("LiteLLMTeam %s/%s not recounted: %s", *owner, exc)

    async def changed(self, *, body: kopf.Body, patch: kopf.Patch, retry: int, **kw: Any) -> None:
        retry_later(await self.reconcile(body, patch, retry, kw, from_snapshot=False))

    async def resync(self, **kw: Any) -> None:
        """kopf's timer: its kwargs as for the other handlers (body, patch, retry, indices)."""
        body, patch, retry = kw["body"], kw["patch"], kw["retry"]
        retry_later(await self.reconcile(body, patch, retry, kw, from_snapshot=True))

    async def policy_event(
        self, *, type: str | None, name: str, body: kopf.Body, **kw: Any
    ) -> None:
        """A policy appeared, changed or went away: its teams behind it are reconciled now."""
        generation = None if type == "DELETED" else body.get("metadata", {}).get("generation")
        by_namespace: kopf.Index[str, Any] = kw["teams_by_namespace"]
        for store in by_namespace.values():
            for team in store:
                key = team_key(team)
                if not behind(team, name, generation) or self.nudged.get(key, -1) == generation:
                    continue
                self.nudged[key] = generation
                await self.nudge(*key, f"policy {name} generation {generation}")

    async def deleted(self, *, body: kopf.Body, retry: int, **kw: Any) -> None:
        team_id = (body.get("status") or {}).get("teamId")
        if team_id is not None:
            self.owners.pop(team_id, None)
        self.known.discard(team_key(body))
        policy_bodies: kopf.Index[str, Any] = kw["policy_bodies"]
        policy = first(policy_bodies.get(policy_ref_of(body.get("spec") or {})))
        every = [self.policies.of(first(store)) for store in policy_bodies.values()]
        try:
            async with self.one_at_a_time.holding(team_key(body)):
                events = await self.reconciler.finalize(
                    dict(body), self.policies.of(policy), [p for p in every if p is not None]
                )
        except Exception as exc:
            kopf.warn(body, reason=Reason.DELETE_FAILED, message=str(exc))
            raise kopf.TemporaryError(
                f"deletion not finished: {exc}", delay=retry_delay(retry)
            ) from exc
        for event in events:
            post(body, event)
        if team_id is not None:
            await self.gone(team_id)

    async def reconcile(
        self,
        body: kopf.Body,
        patch: kopf.Patch,
        retry: int,
        kw: Mapping[str, Any],
        *,
        from_snapshot: bool,
    ) -> Retry | None:
        """One reconcile of the team, never beside another of it (the resync timer runs in a
        task of its own). A timer's ``body`` is kopf's live view: read once the lock is held,
        it is the newest the operator has seen, so a resync that waited never applies a spec
        the change handler has already moved past."""
        key = team_key(body)
        async with self.one_at_a_time.holding(key):
            policy_bodies: kopf.Index[str, Any] = kw["policy_bodies"]
            by_namespace: kopf.Index[str, Any] = kw["teams_by_namespace"]
            ref = policy_ref_of(body.get("spec") or {})
            policy_body = first(policy_bodies.get(ref))
            every_policy = [self.policies.of(first(store)) for store in policy_bodies.values()]
            siblings = list(by_namespace.get(body.get("metadata", {}).get("namespace") or "", []))
            started = time.monotonic()
            result = await self.reconciler.reconcile(
                dict(body),
                self.policies.of(policy_body),
                [p for p in every_policy if p is not None],
                siblings,
                from_snapshot=from_snapshot,
            )
            self.metrics.reconcile_seconds.observe(time.monotonic() - started)
            generation = None
            if policy_body is not None:
                generation = (policy_body.get("metadata") or {}).get("generation")
            self.publish(body, patch, result, (ref, generation) if policy_body else None)
            self.record_owner(body, result)
            self.known.add(key)
            if result.requeue_after is not None:
                self.due.requeue(*key, result.requeue_after)
            if result.created is not None:
                await self.created(result.created)
            if result.member_budget_changed is not None:
                await self.member_budget_changed(result.member_budget_changed)
            outcome = result.outcome
            if isinstance(outcome, TeamFailed) and outcome.transient:
                return Retry(retry_delay(retry, result.retry_after), outcome.message)
            return None

    def record_owner(self, body: kopf.Body, result: TeamResult) -> None:
        outcome = result.outcome
        team_id = outcome.applied.team_id if outcome.applied is not None else None
        if team_id is not None and not isinstance(outcome, TeamFailed):
            self.owners[team_id] = team_key(body)

    def publish(
        self,
        body: kopf.Body,
        patch: kopf.Patch,
        result: TeamResult,
        policy: tuple[str, int | None] | None,
    ) -> None:
        """Status patch (only what changed), events (warnings when the condition changes) and
        the reconcile counter."""
        previous = dict(body.get("status") or {})
        generation = body.get("metadata", {}).get("generation")
        status = build_team_status(previous, generation, result.outcome, now_iso(), policy)
        changes = status_patch(previous, status, TEAM_OWNED_KEYS)
        for key, value in (changes or {}).items():
            patch.status[key] = value
        before, after = ready_condition(previous) or {}, ready_condition(status) or {}
        flipped = any(before.get(k) != after.get(k) for k in ("status", "reason", "message"))
        for event in result.events:
            if event.type == "Normal" or flipped:
                post(body, event)
        outcome = result.outcome
        if isinstance(outcome, TeamFailed):
            kind = "failed"
        else:
            kind = "changed" if outcome.wrote else "in_sync"
        self.metrics.team_reconciles.labels(result=kind, reason=str(after.get("reason"))).inc()

    def register(self, registry: kopf.OperatorRegistry, _: Handover) -> None:
        backoff = UNEXPECTED_ERROR_BACKOFF
        kopf.index(*TEAMS, registry=registry, id="teams_by_namespace")(index_by_namespace)
        kopf.on.create(*TEAMS, registry=registry, id="reconcile", backoff=backoff)(self.changed)
        kopf.on.update(*TEAMS, registry=registry, id="reconcile", backoff=backoff)(self.changed)
        kopf.on.resume(*TEAMS, registry=registry, id="resume", backoff=backoff)(self.resync)
        kopf.on.delete(*TEAMS, registry=registry, id="finalize", backoff=backoff)(self.deleted)
        kopf.on.event(*POLICIES, registry=registry, id="teams-follow-policy")(self.policy_event)
        kopf.on.cleanup(registry=registry, id="team-keys-due")(self.stop)
        kopf.timer(
            *TEAMS,
            registry=registry,
            id="team-resync",
            interval=self.resync_seconds,
            initial_delay=self.resync_seconds,
            idle=None,
        )(self.resync)
