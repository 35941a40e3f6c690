"""LiteLLMUser handlers: create, update, resume, delete and watch events, wired to kopf.

Each handler reads kopf's kwargs and the indices, calls :class:`Reconciler`, and turns its
result into a status patch (only when something changed), events and metrics:

* a LiteLLMUser is created or changed → one ``/user/info`` plus the writes that are needed;
* the operator starts → users are checked against one paged ``/user/list`` snapshot;
* a user's policy changed → the event of the status write that says so reconciles the user
  (:meth:`UserHandlers.follow_policy`), its status patched with the event's;
* any LiteLLMUser event → its policy's rollout status is recomputed
  (:class:`~litellm_operator.policies.rollouts.Rollouts`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from typing import Any, cast

import kopf

from litellm_operator.keys.due import Requeues
from litellm_operator.keys.plan import ROTATE_ANNOTATION
from litellm_operator.litellm import LiteLLMUserRecord
from litellm_operator.models import GROUP, USER_PLURAL, VERSION
from litellm_operator.policies.rollouts import Rollouts
from litellm_operator.reasons import Reason
from litellm_operator.runtime.handling import (
    UNEXPECTED_ERROR_BACKOFF,
    Handover,
    Retry,
    first,
    listed_here,
    now_iso,
    post,
    retry_delay,
    retry_later,
    with_indices,
)
from litellm_operator.runtime.kopf_watch import Shortcuts, WriteStatus
from litellm_operator.runtime.metrics import Metrics
from litellm_operator.status import (
    Failed,
    awaits_policy_reconcile,
    build_status,
    creating_status,
    pending_conditions,
    ready_condition,
    status_patch,
)
from litellm_operator.users.context import Runtime
from litellm_operator.users.indices import Claim, policy_ref_of
from litellm_operator.users.reconciler import ClaimsOf, RecordProgress, Result

log = logging.getLogger(__name__)

PolicyRef = tuple[str, int | None]


UNINDEXED = {f"{GROUP}/kopf-index": "users-listed"}
"""A label no LiteLLMUser needs: the ``users_listed`` index runs only on users that carry it."""


class UserHandlers:
    """Create, update, resume, delete and watch events of LiteLLMUsers."""

    def __init__(self, runtime: Runtime, rollouts: Rollouts) -> None:
        self.runtime = runtime
        self.rollouts = rollouts
        self.due = Requeues(runtime.kube.nudge)

    def requeue(self, namespace: str, name: str, delay: float) -> None:
        """Reconcile the user again in ``delay`` seconds (a key's rotation or grace period is
        due, or an event handler's retry), through a nudge."""
        self.due.requeue(namespace, name, delay)

    async def close(self) -> None:
        await self.due.close()

    async def changed(self, *, body: kopf.Body, patch: kopf.Patch, retry: int, **kw: Any) -> None:
        delay = await self.reconcile(body, patch, retry, kw["policy_bodies"], kw["user_id_claims"])
        retry_later(delay)

    async def resumed(self, *, body: kopf.Body, patch: kopf.Patch, retry: int, **kw: Any) -> None:
        """At start-up: a ``/user/list`` snapshot spares each user its own ``/user/info``."""
        user_id = body.get("status", {}).get("userId")
        hint = (await self.runtime.directory.held()).get(user_id) if user_id else None
        delay = await self.reconcile(
            body, patch, retry, kw["policy_bodies"], kw["user_id_claims"], hint=hint
        )
        retry_later(delay)

    async def event(
        self, *, type: str | None, namespace: str | None, name: str, spec: kopf.Spec, **kw: Any
    ) -> None:
        """Every change of a user moves its policy's rollout counts; a new rotate annotation
        (under kopf's own prefix, so no update handler sees it) is passed on as a nudge."""
        policy = None if type == "DELETED" else policy_ref_of(spec)
        self.rollouts.user_seen((namespace, name), policy, kw["policy_bodies"])
        rotation = rotation_requested(kw["body"]) if type != "DELETED" else None
        if rotation is not None:
            await self.runtime.kube.nudge(namespace or "", name, f"rotate keys: {rotation}")
        if type not in (None, "DELETED") and awaits_policy_reconcile(kw["body"]):
            await self.follow_policy(namespace or "", name, kw)

    def quiet(self, body: Mapping[str, Any]) -> bool:
        """Whether :meth:`event` has nothing to do for this body but :meth:`observe` it: no
        rotation asked for, no policy's change to follow."""
        return rotation_requested(body) is None and not awaits_policy_reconcile(body)

    def observe(self, body: Mapping[str, Any], indices: Mapping[str, Any]) -> None:
        """:meth:`event` for a quiet event kopf is not given (kopf_watch.Shortcuts)."""
        meta = body.get("metadata") or {}
        key = (meta.get("namespace"), meta.get("name"))
        policy = policy_ref_of(body.get("spec") or {})
        self.rollouts.user_seen(key, policy, indices["policy_bodies"])

    def follows(self, body: Mapping[str, Any]) -> bool:
        """Whether :meth:`event`'s only work for this body is :meth:`follow_policy`."""
        return rotation_requested(body) is None and awaits_policy_reconcile(body)

    async def follow(
        self, body: Mapping[str, Any], indices: Mapping[str, Any], write: WriteStatus
    ) -> None:
        """:meth:`event` for a body that :meth:`follows`, without kopf's cycle: the status is
        written through ``write`` (kopf_watch.Shortcuts)."""
        self.observe(body, indices)
        meta = body.get("metadata") or {}
        kw = {
            **indices,
            **self.runtime.users.views,
            "body": kopf.Body(cast(kopf.RawBody, body)),
            "patch": kopf.Patch(),
        }
        await self.follow_policy(meta.get("namespace") or "", meta.get("name") or "", kw, write)

    async def create(
        self, body: Mapping[str, Any], indices: Mapping[str, Any], patch: kopf.Patch
    ) -> None:
        """:meth:`changed` for a new user, without kopf's cycle (kopf_watch.Shortcuts)."""
        kw = {**indices, **self.runtime.users.views}
        await self.changed(body=kopf.Body(cast(kopf.RawBody, body)), patch=patch, retry=0, **kw)

    def shortcuts(self) -> Shortcuts:
        """The users' events that need less than kopf's whole cycle (kopf_watch.Shortcuts);
        kopf adds its finalizer to every user (the ``finalize`` handler needs it)."""
        return Shortcuts(
            self.quiet, self.observe, self.follows, self.follow, finalized=True, create=self.create
        )

    async def follow_policy(
        self, namespace: str, name: str, kw: Mapping[str, Any], write: WriteStatus | None = None
    ) -> None:
        """Reconcile a user its policy left behind, in the event that says so (see
        :class:`PolicyHandlers`), its status patched with the event's (by kopf, or by
        ``write``): no nudge, and no second write. kopf runs one object's handlers and events
        one at a time, so this never overlaps the user's own reconcile. A failure is retried
        through a nudge, by kopf's handler."""
        delay: float | None = None
        try:
            retry = await self.reconcile(
                kw["body"],
                kw["patch"],
                0,
                kw["policy_bodies"],
                kw["user_id_claims"],
                announce=False,
            )
            delay = retry.delay if retry else None
            if write is not None:
                await write(dict(kw["patch"]).get("status") or {})
        except Exception as exc:  # kopf ignores an event handler's errors: retry it ourselves
            log.warning("user %s/%s not reconciled after a policy change: %s", namespace, name, exc)
            delay = UNEXPECTED_ERROR_BACKOFF
        if delay is not None:
            self.requeue(namespace, name, delay)

    async def deleted(self, *, body: kopf.Body, retry: int, **kw: Any) -> None:
        policy_bodies: kopf.Index[str, Any] = kw["policy_bodies"]
        policy = first(policy_bodies.get(policy_ref_of(body.get("spec", {}))))
        try:
            events = await self.runtime.reconciler.finalize(dict(body), policy)
        except Exception as exc:
            kopf.warn(body, reason=Reason.DELETE_FAILED, message=str(exc))
            raise kopf.TemporaryError(
                f"deletion not finished: {exc}", delay=retry_delay(retry)
            ) from exc
        for event in events:
            post(body, event)
        teams = ((body.get("status") or {}).get("effective") or {}).get("teams") or []
        deleted = any(event.reason == Reason.DELETED for event in events)
        if deleted and teams and self.runtime.memberships_changed is not None:
            # LiteLLM deleted the user's memberships with it: its teams recount.
            await self.runtime.memberships_changed(list(teams))

    async def reconcile(
        self,
        body: kopf.Body,
        patch: kopf.Patch,
        retry: int,
        policy_bodies: kopf.Index[str, Any],
        user_id_claims: kopf.Index[str, Claim],
        hint: LiteLLMUserRecord | None = None,
        *,
        announce: bool = True,
    ) -> Retry | None:
        """Reconcile and publish the outcome in ``patch``; when to retry a transient failure
        (``None`` when nothing needs retrying)."""
        runtime = self.runtime
        policy_ref = policy_ref_of(body.get("spec", {}))
        policy = first(policy_bodies.get(policy_ref))
        used = policy_of(policy_ref, policy)
        started = time.monotonic()
        result = await runtime.reconciler.reconcile(
            dict(body),  # read during the call, not kept: no copy of the nested fields
            runtime.policies.of(policy),
            claims_from(user_id_claims),
            record_progress=self.progress_recorder(body),
            observed_hint=hint,
        )
        runtime.metrics.reconcile_seconds.observe(time.monotonic() - started)
        publish(body, patch, result, runtime.metrics, used, announce=announce)
        if result.teams_joined_or_left and runtime.memberships_changed is not None:
            await runtime.memberships_changed(result.teams_joined_or_left)
        if result.requeue_after is not None:
            meta = body.metadata
            self.requeue(meta.namespace or "", meta.name or "", result.requeue_after)
        latest = policy_of(policy_ref, first(policy_bodies.get(policy_ref)))
        if latest != used:
            # The policy changed while LiteLLM was being written: what was written is already
            # stale, so the user must not read Ready. The status says so, and the event that
            # brings it reconciles the user against the new policy (follow_policy).
            superseded(body, patch, latest)
            return None
        outcome = result.outcome
        if isinstance(outcome, Failed) and outcome.transient:
            return Retry(retry_delay(retry, result.retry_after), outcome.message)
        return None

    def progress_recorder(self, body: kopf.Body) -> RecordProgress:
        """The status write the reconciler makes before LiteLLM is written (see RecordProgress)."""

        async def record(user_id: str, teams: Sequence[str], creating: bool) -> None:
            # When creating, the same write tells Flux/Argo CD the user is in progress.
            meta = body.metadata
            previous = body.get("status") or {}
            progress = (
                creating_status(previous, meta.get("generation"), now_iso()) if creating else {}
            )
            progress = {**progress, "managedTeams": list(teams)}
            await self.runtime.kube.record_user_id(
                meta.namespace or "", meta.name or "", user_id, progress
            )

        return record

    def register(self, registry: kopf.OperatorRegistry, handover: Handover) -> None:
        """Wire the users' handlers to ``registry``; ``handover`` lets a listed user out of the
        replay gate once its handler ends, and answers for a create shortcut's run
        (:mod:`litellm_operator.runtime.kopf_watch`)."""
        users = (GROUP, VERSION, USER_PLURAL)
        # Not an index anyone reads: with it, kopf's readiness (no handler runs before every
        # watched kind is listed) waits for the LiteLLMUser listings too, which is when
        # runtime.users holds them (kopf_watch indexes a listing before it lets kopf see it).
        # Its label matches no user, so kopf does not run it on each user event (a cost the
        # README's Performance section measures); the readiness only needs it registered.
        kopf.index(*users, registry=registry, id="users_listed", labels=UNINDEXED)(listed_here)
        indexed = with_indices(self.runtime.users, handover)
        backoff = UNEXPECTED_ERROR_BACKOFF
        changed, resumed = indexed(self.changed, True), indexed(self.resumed, True)
        kopf.on.create(*users, registry=registry, id="reconcile", backoff=backoff)(changed)
        kopf.on.update(*users, registry=registry, id="reconcile", backoff=backoff)(changed)
        kopf.on.resume(*users, registry=registry, id="resume", backoff=backoff)(resumed)
        kopf.on.delete(*users, registry=registry, id="finalize", backoff=backoff)(
            indexed(self.deleted, True)
        )
        kopf.on.event(*users, registry=registry, id="rollout")(indexed(self.event))

        async def prefetch_directory(**_: Any) -> None:
            await self.runtime.directory.prefetch()

        kopf.on.startup(registry=registry, id="prefetch-litellm-users")(prefetch_directory)

        async def stop(**_: Any) -> None:
            await self.close()
            await self.runtime.directory.close()

        kopf.on.cleanup(registry=registry, id="users")(stop)


def publish(
    body: kopf.Body,
    patch: kopf.Patch,
    result: Result,
    metrics: Metrics,
    policy: PolicyRef | None,
    *,
    announce: bool = True,
) -> None:
    """Status patch (only what changed), events and metrics for one reconcile.

    ``announce=False`` (a policy rollout) posts only warnings: a rollout over thousands of
    users would otherwise add an event per user, a third of its Kubernetes writes, where the
    policy says it once (RolledOut) and each user's status says what it holds."""
    previous = dict(body.get("status") or {})
    generation = body.get("metadata", {}).get("generation")
    status = build_status(previous, generation, result.outcome, now_iso(), policy)
    changes = status_patch(previous, status)
    if changes:
        for key, value in changes.items():
            patch.status[key] = value
    before = ready_condition(previous) or {}
    after = ready_condition(status) or {}
    condition_changed = any(before.get(k) != after.get(k) for k in ("status", "reason", "message"))
    for event in result.events:
        if event.type == "Normal" and not announce:
            continue
        if event.type == "Normal" or condition_changed:
            post(body, event)
    outcome = result.outcome
    reason = str(after.get("reason", ""))
    if isinstance(outcome, Failed) or after.get("status") != "True":
        kind = "failed"
    else:
        kind = "changed" if outcome.wrote else "in_sync"
    metrics.reconciles.labels(result=kind, reason=reason).inc()


def rotation_requested(body: Mapping[str, Any]) -> str | None:
    """The rotate annotation's value when some key was not issued under it yet."""
    value = ((body.get("metadata") or {}).get("annotations") or {}).get(ROTATE_ANNOTATION)
    keys = (body.get("status") or {}).get("keys") or []
    if value is None or all(k.get("rotation") == value for k in keys):
        return None
    return str(value)


def policy_of(name: str, policy: Mapping[str, Any] | None) -> PolicyRef | None:
    """(name, generation) of a policy body from the index, ``None`` if there is none."""
    if policy is None:
        return None
    return (name, (policy.get("metadata") or {}).get("generation"))


def superseded(body: kopf.Body, patch: kopf.Patch, latest: PolicyRef | None) -> None:
    """Overwrite the conditions being patched: Ready=Unknown until reconciled against ``latest``."""
    previous = {
        **dict(body.get("status") or {}),
        "observedGeneration": body.get("metadata", {}).get("generation"),
    }
    policy = policy_ref_of(body.get("spec", {}))
    state = f"changed to generation {latest[1]}" if latest else "was deleted"
    message = f"policy {policy} {state} during the reconcile; reconciling"
    conditions = pending_conditions(previous, Reason.POLICY_CHANGED, message, now_iso())
    patch.status["conditions"] = conditions


def claims_from(index: kopf.Index[str, Claim]) -> ClaimsOf:
    return lambda user_id: list(index.get(user_id, []))
