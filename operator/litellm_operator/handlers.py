"""The kopf wiring: indices, handlers and the periodic resync, registered on a given registry.

Handlers are thin: they read kopf's kwargs and indices, call :class:`Reconciler`, turn its
result into a status patch (only when something changed), events and metrics, and map
transient failures to :class:`kopf.TemporaryError` (kopf retries with back-off). Permanent
failures end the handler normally: the status says why, and nothing retries in a hot loop.

Triggers, and what each costs:

* a LiteLLMUser is created or changed → one ``/user/info`` plus the writes that are needed;
* the operator starts → users are checked against one paged ``/user/list`` snapshot;
* a ProvisioningPolicy is created, edited or deleted → every user that references it and was
  not reconciled against that generation turns Ready=Unknown/Reconciling=True at once (one
  status patch); the watch event of that patch reconciles the user, and the reconcile's
  status patch is the second and last write;
* any LiteLLMUser event → the status of its policy (users, updatedUsers, readyUsers, Ready) is
  recomputed from the indices, at most once per :data:`ROLLOUT_DEBOUNCE_SECONDS` per policy
  (0.5 ms per user of the policy when that is longer), and patched only when it changed
  (:class:`Rollouts`);
* every resync interval, each policy's timer compares its users with a ``/user/list``
  snapshot (100 users per call) and nudges only the users that drifted. In steady state it
  makes no LiteLLM write and no Kubernetes write.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import functools
import logging
import threading
import time
import zlib
from collections.abc import Awaitable, Callable, Hashable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import kopf
from pydantic import ValidationError

from litellm_operator.config import OperatorConfig
from litellm_operator.indices import IndexFunction, ObjectIndices, pack, unpack
from litellm_operator.key_reconciler import SECRET_SELECTOR, SecretsUnavailable, secret_drifted
from litellm_operator.keys import ROTATE_ANNOTATION, USER_LABEL
from litellm_operator.kopf_watch import release
from litellm_operator.kube import KeySecret, Kube
from litellm_operator.litellm import LiteLLMClient, LiteLLMError, LiteLLMUserRecord, UserReads
from litellm_operator.metrics import Metrics
from litellm_operator.models import (
    GROUP,
    POLICY_PLURAL,
    USER_PLURAL,
    VERSION,
    ProvisioningPolicy,
    UserSpec,
)
from litellm_operator.reasons import Event, Reason
from litellm_operator.reconciler import (
    Claim,
    ClaimsOf,
    Reconciler,
    RecordProgress,
    Result,
)
from litellm_operator.status import (
    POLICY_OWNED_KEYS,
    TIMESTAMP,
    Failed,
    UserState,
    awaits_policy_reconcile,
    behind_policy,
    build_status,
    creating_status,
    pending_conditions,
    policy_changed_status,
    policy_rollout,
    policy_status,
    ready_condition,
    retry_due,
    rollout_finished,
    status_patch,
)

log = logging.getLogger(__name__)

FINALIZER = f"{GROUP}/finalizer"
MAX_RETRY_DELAY = 15.0
"""Transient failures are retried after 1, 2, 4, 8 then every 15 s: once LiteLLM is back, every
resource converges within about 15 s (the README's "Failure behaviour")."""


UNEXPECTED_ERROR_BACKOFF = 2.0


def retry_delay(retry: int, retry_after: float | None = None) -> float:
    """The one retry formula: LiteLLM's Retry-After when it sent one, else capped exponential."""
    if retry_after is not None:
        return retry_after
    return float(min(2.0**retry, MAX_RETRY_DELAY))


NOT_DRIFT = frozenset({"not-ready", "status"})
"""Resync findings that are not changes made in LiteLLM behind the operator's back."""
YIELD_EVERY = 50
ROLLOUT_DEBOUNCE_SECONDS = 0.25
ROLLOUT_DEBOUNCE_SECONDS_PER_USER = 0.0005
"""A recomputation reads every user of the policy: with 10,000 users it waits 5 s, not 0.25."""
ROLLOUT_RETRY_SECONDS = 5.0
PREFETCH_WAIT_SECONDS = 5.0
"""kopf's start waits this long at most for the start-up /user/list snapshot (Directory)."""
PolicyRef = tuple[str, int | None]


def now_iso() -> str:
    return datetime.now(UTC).strftime(TIMESTAMP)


class PackedUsers(Mapping[str, LiteLLMUserRecord]):
    """LiteLLM users by id, each kept as compressed JSON and decoded when read.

    A snapshot holds every LiteLLM user, the operator's and everyone else's, and each is read
    once or twice in its life (by a resume, by a resync): as models, 1.7 KB each; packed,
    0.35 KB, for under 0.1 ms more per user read.
    """

    def __init__(self) -> None:
        self._packed: dict[str, bytes] = {}

    def add(self, record: LiteLLMUserRecord) -> None:
        self._packed[record.user_id] = zlib.compress(record.model_dump_json().encode())

    def __getitem__(self, user_id: str) -> LiteLLMUserRecord:
        return LiteLLMUserRecord.model_validate_json(zlib.decompress(self._packed[user_id]))

    def __iter__(self) -> Iterator[str]:
        return iter(self._packed)

    def __len__(self) -> int:
        return len(self._packed)


class Directory:
    """A snapshot of every LiteLLM user from ``/user/list``, refreshed at most once per ``max_age``.

    Concurrent callers share one refresh. A user missing from the snapshot is unknown, not
    absent: callers then ask ``/user/info`` (the snapshot may predate the user). The snapshot
    is packed (:class:`PackedUsers`) and let go once too old to be used.
    """

    def __init__(self, client: LiteLLMClient, max_age: float) -> None:
        self.client = client
        self.max_age = max_age
        self._users: Mapping[str, LiteLLMUserRecord] = {}
        self._taken = float("-inf")
        self._lock = asyncio.Lock()
        self._prefetching: asyncio.Task[None] | None = None

    async def snapshot(self) -> Mapping[str, LiteLLMUserRecord]:
        async with self._lock:
            if time.monotonic() - self._taken >= self.max_age:
                users = PackedUsers()
                async for user in self.client.list_users():
                    users.add(user)
                self._users = users
                self._taken = time.monotonic()
                asyncio.get_running_loop().call_later(self.max_age, self._expire, self._taken)
            return self._users

    async def held(self) -> Mapping[str, LiteLLMUserRecord]:
        """The snapshot held now, once a listing under way has ended; never a new listing
        (empty when none is held).

        What a resume reads: the start-up snapshot serves the resumes while it is fresh. A
        restart that outlasts it (10,000 users handed to kopf 200 at a time, with a short
        resync interval) reads the rest in batches of 50 (``UserReads``) instead of stopping
        every resume for a second listing of every LiteLLM user: measured at 10,000 users,
        two listings made the restart 96 s and 244 ``/user/list`` calls.
        """
        async with self._lock:
            return self._users

    def _expire(self, taken: float) -> None:
        if self._taken == taken:
            self._users = {}

    async def prefetch(self, wait: float = PREFETCH_WAIT_SECONDS) -> None:
        """Take the snapshot now, at start-up, before kopf lists the users it will resume.

        Otherwise the first resumed user takes it, and every other user's resume waits for it
        inside kopf's handler machinery: at 1,000 users, 1,000 invocations (about 9 KB each)
        waited 3.4 s for the listing together, and what they allocated stayed resident (see
        :mod:`litellm_operator.kopf_watch` on why a burst's memory stays): 9 KiB per user at
        rest. With the snapshot ready, each resume runs through without waiting.

        kopf starts nothing (not even its liveness endpoint) before its start-up handlers end,
        so this waits at most ``wait`` seconds; a longer listing goes on in the background, and
        the resumes wait for it as they did before. A failure is left to the resumes, which read
        LiteLLM themselves and report it.
        """
        if self._prefetching is None:
            self._prefetching = asyncio.create_task(self._prefetch())
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(self._prefetching), wait)

    async def _prefetch(self) -> None:
        try:
            await self.snapshot()
        except Exception as exc:  # never holds up the operator's start
            log.warning("no /user/list snapshot at start-up (users are read one by one): %s", exc)

    async def close(self) -> None:
        """Stop a start-up listing still under way."""
        if self._prefetching is not None:
            self._prefetching.cancel()
            await asyncio.gather(self._prefetching, return_exceptions=True)


class Rollouts:
    """Keeps each policy's status (its rollout across its users) current, debounced.

    :meth:`touch` schedules one recomputation per policy :data:`ROLLOUT_DEBOUNCE_SECONDS`
    later (touches meanwhile join it); it reads the indices, which are live, and patches
    the policy's status only when it differs from what was last written.
    """

    def __init__(self, kube: Kube, delay: float = ROLLOUT_DEBOUNCE_SECONDS) -> None:
        self.kube = kube
        self.delay = delay
        self._pending: dict[str, asyncio.Task[None]] = {}
        self._refs: dict[Any, str] = {}
        self._written: dict[tuple[str, str], dict[str, Any]] = {}
        self._indices: tuple[Any, Any, Any] | None = None

    def bind(self, kwargs: Mapping[str, Any]) -> None:
        """Remember the (live) indices, which every handler receives (kopf's and the operator's)."""
        if self._indices is None:
            indices = (kwargs["policy_bodies"], kwargs["users_by_policy"], kwargs["user_bodies"])
            self._indices = indices

    def user_seen(self, key: Any, policy: str | None) -> None:
        """A user changed (``policy`` is ``None`` once it is gone): touch its old and new policy."""
        old = self._refs.pop(key, None) if policy is None else self._refs.get(key)
        if policy is not None:
            self._refs[key] = policy
            self.touch(policy)
        if old is not None and old != policy:
            self.touch(old)

    def knows(self, key: Any) -> bool:
        """Whether a user (namespace, name) is one of this operator's (from the live index)."""
        return self._indices is not None and key in self._indices[2]

    def touch(self, name: str) -> None:
        if name not in self._pending:
            self._pending[name] = asyncio.create_task(self._publish_later(name))

    def delay_for(self, name: str) -> float:
        users = len(self._indices[1].get(name, ())) if self._indices is not None else 0
        return max(self.delay, users * ROLLOUT_DEBOUNCE_SECONDS_PER_USER)

    async def _publish_later(self, name: str) -> None:
        try:
            await asyncio.sleep(self.delay_for(name))
        finally:
            self._pending.pop(name, None)
        try:
            await self.publish(name)
        except Exception as exc:  # a background task: log, and try again a little later
            log.warning("status of policy %s not updated (retrying): %s", name, exc)
            asyncio.get_running_loop().call_later(ROLLOUT_RETRY_SECONDS, self.touch, name)

    async def publish(self, name: str) -> None:
        """Recompute policy ``name``'s status from the indices; patch it if it changed."""
        if self._indices is None:
            return
        policy_bodies, users_by_policy, user_bodies = self._indices
        policy = first(policy_bodies.get(name))
        if policy is None:
            return
        meta = policy.get("metadata") or {}
        generation = meta.get("generation")
        users = [first(user_bodies.get(key)) for key in list(users_by_policy.get(name, []))]
        rollout = policy_rollout(name, generation, [u.state for u in users if u is not None])
        identity = (name, str(meta.get("uid", "")))
        previous = self._written.get(identity) or dict(policy.get("status") or {})
        desired = policy_status(previous, generation, rollout, now_iso())
        changes = status_patch(previous, desired, POLICY_OWNED_KEYS)
        if changes and await self.kube.patch_policy_status(name, changes):
            self._written[identity] = desired
            if rollout_finished(previous, desired):
                message = str((ready_condition(desired) or {}).get("message", ""))
                with contextlib.suppress(LookupError):  # outside kopf's tasks (tests): no poster
                    kopf.event(policy, type="Normal", reason=Reason.ROLLED_OUT, message=message)

    def forget(self, name: str) -> None:
        task = self._pending.pop(name, None)
        if task is not None:
            task.cancel()
        for identity in [i for i in self._written if i[0] == name]:
            del self._written[identity]

    async def close(self) -> None:
        tasks = list(self._pending.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


class PolicyModels:
    """Each policy validated once per resourceVersion, not once per user reconciled against it.

    A policy that does not validate is handed on as its body: the reconcile reports why.
    """

    def __init__(self) -> None:
        self._models: dict[str, tuple[str, ProvisioningPolicy | None]] = {}

    def of(self, body: Mapping[str, Any] | None) -> ProvisioningPolicy | Mapping[str, Any] | None:
        if body is None:
            return None
        meta = body.get("metadata") or {}
        key, version = str(meta.get("uid") or meta.get("name")), str(meta.get("resourceVersion"))
        cached = self._models.get(key)
        if cached is None or cached[0] != version:
            try:
                cached = (version, ProvisioningPolicy.model_validate(body))
            except ValidationError:
                cached = (version, None)
            self._models[key] = cached
        return cached[1] or body


@dataclass
class Runtime:
    """What the handlers share, built at start-up from the validated configuration."""

    config: OperatorConfig
    client: LiteLLMClient
    reconciler: Reconciler
    kube: Kube
    metrics: Metrics
    directory: Directory
    reads: UserReads | None = None
    """The batched reads the reconciler uses, so a policy edit can prefetch its users."""
    policies: PolicyModels = field(default_factory=PolicyModels)
    users: ObjectIndices = field(default_factory=lambda: user_indices())
    """The LiteLLMUser indices, fed by the watch stream (see :data:`USER_INDICES`)."""


def policy_ref_of(spec: Mapping[str, Any]) -> str:
    """The policy a LiteLLMUser names: spec.policyRef, ``default`` when omitted (the schema's)."""
    return str(spec.get("policyRef") or DEFAULT_POLICY_REF)


DEFAULT_POLICY_REF: str = UserSpec.model_fields["policy_ref"].default


# --- indices: what every handler reads instead of listing -------------------------------------
# The policies' index is kopf's: a coroutine, though it waits for nothing, since kopf runs a
# plain function in a worker thread (that hop, on every watch event and for every index, was a
# seventh of the operator's CPU). The LiteLLMUsers' are the operator's own, plain functions of a
# body that kopf_watch calls as the watch stream passes (see litellm_operator.indices).


async def index_policy_bodies(*, name: str, body: kopf.Body, **_: Any) -> dict[str, Any]:
    return {name: plain(body)}


def users_by_policy(body: Mapping[str, Any]) -> dict[Hashable, Any]:
    return {policy_ref_of(body.get("spec") or {}): key_of(body)}


def user_bodies(body: Mapping[str, Any]) -> dict[Hashable, Any]:
    return {key_of(body): IndexedUser.of(body)}


def user_id_claims(body: Mapping[str, Any]) -> dict[Hashable, Any] | None:
    user_id = (body.get("status") or {}).get("userId")
    if not user_id:
        return None
    meta = body.get("metadata") or {}
    namespace, name = key_of(body)
    return {user_id: Claim(str(meta.get("creationTimestamp", "")), namespace, name, meta["uid"])}


USER_INDICES: Mapping[str, IndexFunction] = {
    "users_by_policy": users_by_policy,
    "user_bodies": user_bodies,
    "user_id_claims": user_id_claims,
}
"""The operator's indices of LiteLLMUsers (:mod:`litellm_operator.indices`), fed from the watch
stream by :mod:`litellm_operator.kopf_watch`; every handler receives them as kwargs by these
names, as it would receive kopf's own."""


def user_indices() -> ObjectIndices:
    return ObjectIndices(USER_INDICES)


def key_of(body: Mapping[str, Any]) -> tuple[str, str]:
    meta = body.get("metadata") or {}
    return (str(meta.get("namespace") or ""), str(meta.get("name") or ""))


# --- LiteLLMUser handlers ----------------------------------------------------------------------


class UserHandlers:
    """Create, update, resume, delete and watch events of LiteLLMUsers."""

    def __init__(self, runtime: Runtime, rollouts: Rollouts) -> None:
        self.runtime = runtime
        self.rollouts = rollouts
        self._due: dict[tuple[str, str], asyncio.Task[None]] = {}

    def requeue(self, namespace: str, name: str, delay: float) -> None:
        """Reconcile the user again in ``delay`` seconds (a key's rotation or grace period is
        due), through a nudge. One pending requeue per user; a restart resumes every user."""
        key = (namespace, name)
        pending = self._due.pop(key, None)
        if pending is not None:
            pending.cancel()

        async def later() -> None:
            await asyncio.sleep(delay)
            self._due.pop(key, None)
            await self.runtime.kube.nudge(namespace, name, f"keys due at {now_iso()}")

        self._due[key] = asyncio.create_task(later())

    async def close(self) -> None:
        tasks = list(self._due.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

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
        self.rollouts.bind(kw)
        policy = None if type == "DELETED" else policy_ref_of(spec)
        self.rollouts.user_seen((namespace, name), policy)
        rotation = rotation_requested(kw["body"]) if type != "DELETED" else None
        if rotation is not None:
            await self.runtime.kube.nudge(namespace or "", name, f"rotate keys: {rotation}")
        if type not in (None, "DELETED") and awaits_policy_reconcile(kw["body"]):
            await self.follow_policy(namespace or "", name, kw)

    async def follow_policy(self, namespace: str, name: str, kw: Mapping[str, Any]) -> None:
        """Reconcile a user its policy left behind, in the event that says so (see
        :class:`PolicyHandlers`), its status patched with the event's: no nudge, and no
        second write. kopf runs one object's handlers one at a time, so this never overlaps
        the user's own reconcile. A failure is retried through a nudge, by kopf's handler."""
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
        except Exception as exc:  # kopf ignores an event handler's errors: retry it ourselves
            log.warning("user %s/%s not reconciled after a policy change: %s", namespace, name, exc)
            delay = UNEXPECTED_ERROR_BACKOFF
        if delay is not None:
            self.requeue(namespace, name, delay)

    async def deleted(self, *, body: kopf.Body, retry: int, **kw: Any) -> None:
        policy_bodies: kopf.Index[str, Any] = kw["policy_bodies"]
        policy = first(policy_bodies.get(policy_ref_of(body.get("spec", {}))))
        try:
            events = await self.runtime.reconciler.finalize(plain(body), policy)
        except Exception as exc:
            kopf.warn(body, reason=Reason.DELETE_FAILED, message=str(exc))
            raise kopf.TemporaryError(
                f"deletion not finished: {exc}", delay=retry_delay(retry)
            ) from exc
        for event in events:
            post(body, event)

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
            plain(body),
            runtime.policies.of(policy),
            claims_from(user_id_claims),
            record_progress=self.progress_recorder(body),
            observed_hint=hint,
        )
        runtime.metrics.reconcile_seconds.observe(time.monotonic() - started)
        publish(body, patch, result, runtime.metrics, used, announce=announce)
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


# --- ProvisioningPolicy handlers ---------------------------------------------------------------


class PolicyHandlers:
    """Create, update, delete and the periodic resync of ProvisioningPolicies."""

    def __init__(self, runtime: Runtime, rollouts: Rollouts) -> None:
        self.runtime = runtime
        self.rollouts = rollouts

    async def changed(self, *, name: str, body: kopf.Body, reason: str, **kw: Any) -> None:
        self.rollouts.bind(kw)
        await self.propagate(name, body.get("metadata", {}).get("generation"), kw)
        self.rollouts.touch(name)

    async def event(self, *, type: str | None, name: str, **kw: Any) -> None:
        """A policy is gone (kopf runs no delete handler without a finalizer): tell its users."""
        if type != "DELETED":
            return
        self.rollouts.forget(name)
        await self.propagate(name, None, kw)

    async def propagate(self, name: str, generation: int | None, kw: Mapping[str, Any]) -> None:
        """Turn the policy's users that are behind it non-Ready at once (one status write each):
        the event of that write reconciles each one (:meth:`UserHandlers.follow_policy`)."""
        users_by_policy: kopf.Index[str, Any] = kw["users_by_policy"]
        user_bodies: kopf.Index[Any, Any] = kw["user_bodies"]
        targets = list(users_by_policy.get(name, []))
        kube = self.runtime.kube
        now = now_iso()
        flips: list[tuple[str, str, dict[str, Any], str | None]] = []
        for namespace, user_name in targets:
            indexed = first(user_bodies.get((namespace, user_name)))
            status = (indexed.body().get("status") or {}) if indexed is not None else {}
            changes = policy_changed_status(status, name, generation, now)
            if changes is not None:
                flips.append((namespace, user_name, changes, status.get("userId")))
        if self.runtime.reads is not None:  # their reads, in full batches, before their turn
            self.runtime.reads.prefetch(user_id for *_, user_id in flips if user_id)

        await asyncio.gather(
            *(kube.patch_user_status(ns, n, changes) for ns, n, changes, _ in flips)
        )
        log.info("policy %s: %d of %d user(s) to reconcile", name, len(flips), len(targets))

    async def resync(self, *, name: str, body: kopf.Body, **kw: Any) -> None:
        """One resync run, given up as soon as the operator stops.

        It only reads and nudges, so stopping half-way loses nothing; kopf does not cancel a
        timer on exit but waits 5 s for it, which would delay the Lease's release (handover).
        """

        stopped: kopf.DaemonStopped = kw["stopped"]  # kopf passes it to timers

        async def operator_stopping() -> None:
            await stopped.wait()

        work = asyncio.ensure_future(self.check_users(name, body, kw))
        stop = asyncio.ensure_future(operator_stopping())
        try:
            await asyncio.wait({work, stop}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (work, stop):
                task.cancel()
            await asyncio.gather(work, stop, return_exceptions=True)
        if not work.cancelled():
            work.result()  # re-raise what the run raised

    async def check_users(self, name: str, body: kopf.Body, kw: Mapping[str, Any]) -> None:
        """Compare the policy's users with one ``/user/list`` snapshot; nudge the drifted."""
        runtime = self.runtime
        users_by_policy: kopf.Index[str, Any] = kw["users_by_policy"]
        user_bodies: kopf.Index[Any, Any] = kw["user_bodies"]
        targets = list(users_by_policy.get(name, []))
        self.rollouts.bind(kw)
        await self.rollouts.publish(name)
        try:
            snapshot = await runtime.directory.snapshot()
        except LiteLLMError as exc:
            log.warning("resync of policy %s skipped: LiteLLM unavailable: %s", name, exc)
            return
        # The policy as it is now, not before the snapshot: under load listing every LiteLLM
        # user takes minutes, and a policy edited meanwhile made every user its rollout had
        # already reached look drifted (3,604 of 10,000 nudged for nothing). ``body`` is
        # kopf's live body.
        generation = body.get("metadata", {}).get("generation")
        validated = runtime.policies.of(plain(body))
        # An invalid policy: each user's reconcile reports it (InvalidSpec).
        policy = validated if isinstance(validated, ProvisioningPolicy) else None
        now = datetime.now(UTC)
        interval = runtime.config.resync_seconds
        suspects: list[tuple[str, str, dict[str, Any], tuple[str, ...]]] = []
        for count, (ns, user_name) in enumerate(targets):
            if count % YIELD_EVERY == 0:
                await asyncio.sleep(0)  # a long pure loop: let other work, and a stop, in
            indexed = first(user_bodies.get((ns, user_name)))
            if indexed is None:
                continue
            user = indexed.body()
            if behind_policy(user, generation):
                continue  # mid-rollout, not drifted: the policy's propagation reconciles it
            user_id = user.get("status", {}).get("userId")
            record = snapshot.get(user_id) if user_id else None
            differences = await self.differences(ns, user_name, user, policy, record)
            if differences == ("not-ready",) and not retry_due(user, now, interval):
                continue
            if differences:
                suspects.append((ns, user_name, user, differences))
        confirmed = await self.confirmed(suspects, policy)
        if body.get("metadata", {}).get("generation") != generation:
            log.info("resync of policy %s: the policy changed meanwhile; next run", name)
            return
        drifted = 0
        for ns, user_name, differences in confirmed:
            drifted += 1
            for found in differences:
                if found not in NOT_DRIFT:
                    runtime.metrics.drift_corrections.labels(field=found).inc()
            why = f"resync at {now_iso()}: {', '.join(differences)}"
            await runtime.kube.nudge(ns, user_name, why)
        count_ready(user_bodies, runtime.metrics)
        if drifted:
            log.info("resync of policy %s: %d user(s) drifted", name, drifted)

    async def differences(
        self,
        namespace: str,
        name: str,
        user: Mapping[str, Any],
        policy: ProvisioningPolicy | None,
        record: LiteLLMUserRecord | None,
    ) -> tuple[str, ...]:
        try:
            return await self.runtime.reconciler.check(user, policy, record)
        except (LiteLLMError, SecretsUnavailable) as exc:  # keys could not be read
            log.warning("resync of %s/%s skipped: %s", namespace, name, exc)
            return ()

    async def confirmed(
        self,
        suspects: Sequence[tuple[str, str, dict[str, Any], tuple[str, ...]]],
        policy: ProvisioningPolicy | None,
    ) -> list[tuple[str, str, tuple[str, ...]]]:
        """The suspects that still differ when read now: a snapshot can predate a user's
        creation or its last reconcile, and then only looks like drift (reads are batched)."""

        async def confirm(
            ns: str, name: str, user: dict[str, Any], differences: tuple[str, ...]
        ) -> tuple[str, str, tuple[str, ...]]:
            user_id = user.get("status", {}).get("userId")
            if differences == ("not-ready",) or not user_id:
                return ns, name, differences
            try:
                record = await self.runtime.reconciler.read_user(user_id)
            except LiteLLMError:
                return ns, name, differences  # the reconcile it gets reports the outage
            return ns, name, await self.differences(ns, name, user, policy, record)

        checked = await asyncio.gather(*(confirm(*suspect) for suspect in suspects))
        return [(ns, name, differences) for ns, name, differences in checked if differences]


class SecretWatch:
    """Watches the operator's key Secrets (label selector, server-side) in a daemon thread and
    nudges the user of a Secret that was deleted or whose key was changed by someone else.
    Users outside the operator's namespaces (not in its index) are left alone."""

    def __init__(self, runtime: Runtime, rollouts: Rollouts) -> None:
        self.runtime = runtime
        self.rollouts = rollouts
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    async def start(self, **_: Any) -> None:
        loop = asyncio.get_running_loop()

        def deliver(kind: str, secret: KeySecret) -> None:
            if secret_drifted(kind, secret):
                user = secret.labels.get(USER_LABEL, "")
                asyncio.run_coroutine_threadsafe(self.nudge(secret.namespace, user, kind), loop)

        self._thread = threading.Thread(
            target=self.runtime.kube.watch_secrets,
            args=(SECRET_SELECTOR, deliver, self._stop),
            name="key-secrets-watch",
            daemon=True,
        )
        self._thread.start()

    async def nudge(self, namespace: str, user: str, kind: str) -> None:
        if not self.rollouts.knows((namespace, user)):
            return
        try:
            await self.runtime.kube.nudge(namespace, user, f"key Secret {kind} at {now_iso()}")
        except Exception as exc:  # the next resync or restart reconciles it anyway
            log.warning("user %s/%s not nudged after a Secret change: %s", namespace, user, exc)

    def stop(self) -> None:
        self._stop.set()


def register(registry: kopf.OperatorRegistry, runtime: Runtime) -> None:
    """Wire every index, handler and timer of the operator to ``registry``."""
    users = (GROUP, VERSION, USER_PLURAL)
    policies = (GROUP, VERSION, POLICY_PLURAL)
    kopf.index(*policies, registry=registry, id="policy_bodies")(index_policy_bodies)
    # Not an index anyone reads: with it, kopf's readiness (no handler runs before every
    # watched kind is listed) waits for the LiteLLMUser listings too, which is when
    # runtime.users holds them (kopf_watch indexes a listing before it lets kopf see it).
    kopf.index(*users, registry=registry, id="users_listed")(listed_here)
    indexed = with_user_indices(runtime.users)

    # An unexpected error (the API server gone mid-handler, say) is retried this soon rather
    # than after kopf's default minute, so an outage costs seconds once it ends.
    backoff = UNEXPECTED_ERROR_BACKOFF
    rollouts = Rollouts(runtime.kube)
    user = UserHandlers(runtime, rollouts)
    changed, resumed = indexed(user.changed, True), indexed(user.resumed, True)
    kopf.on.create(*users, registry=registry, id="reconcile", backoff=backoff)(changed)
    kopf.on.update(*users, registry=registry, id="reconcile", backoff=backoff)(changed)
    kopf.on.resume(*users, registry=registry, id="resume", backoff=backoff)(resumed)
    kopf.on.delete(*users, registry=registry, id="finalize", backoff=backoff)(
        indexed(user.deleted, True)
    )
    kopf.on.event(*users, registry=registry, id="rollout")(indexed(user.event))

    policy = PolicyHandlers(runtime, rollouts)
    propagate = indexed(policy.changed)
    kopf.on.create(*policies, registry=registry, id="propagate", backoff=backoff)(propagate)
    kopf.on.update(*policies, registry=registry, id="propagate", backoff=backoff)(propagate)
    kopf.on.event(*policies, registry=registry, id="deleted")(indexed(policy.event))
    kopf.timer(
        *policies,
        registry=registry,
        id="resync",
        interval=runtime.config.resync_seconds,
        initial_delay=runtime.config.resync_seconds,
    )(indexed(policy.resync))

    secrets = SecretWatch(runtime, rollouts)
    kopf.on.startup(registry=registry, id="watch-key-secrets")(secrets.start)

    async def prefetch_directory(**_: Any) -> None:
        await runtime.directory.prefetch()

    kopf.on.startup(registry=registry, id="prefetch-litellm-users")(prefetch_directory)

    async def stop_rollouts(**_: Any) -> None:
        secrets.stop()
        await rollouts.close()
        await user.close()
        await runtime.directory.close()

    kopf.on.cleanup(registry=registry, id="rollouts")(stop_rollouts)


async def listed_here(**_: Any) -> None:
    return None


Handler = Callable[..., Awaitable[Any]]


def with_user_indices(users: ObjectIndices) -> Callable[..., Handler]:
    """Wraps a handler so it receives the LiteLLMUser indices among its kwargs, as kopf gives
    its own; with ``settles``, the object leaves the listing's replay gate once the handler
    ends (:mod:`litellm_operator.kopf_watch`), whatever kopf does with it afterwards (sleep
    out a retry delay, say)."""

    def wrap(handler: Handler, settles: bool = False) -> Handler:
        @functools.wraps(handler)
        async def call(**kwargs: Any) -> Any:
            try:
                return await handler(**kwargs, **users.views)
            finally:
                if settles:
                    release(str(kwargs.get("uid") or ""))

        return call

    return wrap


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


@dataclass(frozen=True)
class Retry:
    """A transient failure of a reconcile: retry after ``delay`` seconds."""

    delay: float
    message: str


def retry_later(retry: Retry | None) -> None:
    """Hand a transient failure to kopf, which retries the handler after its delay."""
    if retry is not None:
        raise kopf.TemporaryError(retry.message, delay=retry.delay)


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


def post(body: kopf.Body, event: Event) -> None:
    kopf.event(body, type=event.type, reason=event.reason, message=event.message)


def count_ready(user_bodies: kopf.Index[Any, Any], metrics: Metrics) -> None:
    counts = {"True": 0, "False": 0, "Unknown": 0}
    for key in list(user_bodies):
        state = readiness(user_bodies, key)
        counts[state if state in counts else "Unknown"] += 1
    for state, count in counts.items():
        metrics.users.labels(ready=state).set(count)


def readiness(user_bodies: kopf.Index[Any, Any], key: Any) -> str:
    """The status of a user's Ready condition, from the resync index ("Unknown" if none)."""
    indexed = first(user_bodies.get(key))
    return str((indexed.state.ready if indexed is not None else None) or "Unknown")


def claims_from(index: kopf.Index[str, Claim]) -> ClaimsOf:
    return lambda user_id: list(index.get(user_id, []))


def first(store: Any) -> Any:
    """The single value an index keeps for a key (names are unique), or ``None``."""
    if store is None:
        return None
    return next(iter(store), None)


COMPACT_LEVEL = 6
"""zlib's default (on a Ready user's 1.6 KB of JSON: 601 bytes, 32 µs; level 1: 620, 25 µs)."""

KEPT_METADATA = ("name", "namespace", "uid", "generation", "creationTimestamp")


def slim(body: Mapping[str, Any]) -> dict[str, Any]:
    """What the resync needs of a user: no managedFields, no kopf bookkeeping, and of the
    annotations only the key rotation's (the resync compares keys against it)."""
    meta = body.get("metadata") or {}
    kept = {k: meta[k] for k in KEPT_METADATA if k in meta}
    rotation = (meta.get("annotations") or {}).get(ROTATE_ANNOTATION)
    if rotation is not None:
        kept["annotations"] = {ROTATE_ANNOTATION: rotation}
    status = {k: v for k, v in (body.get("status") or {}).items() if k != "kopf"}
    return {
        "apiVersion": body.get("apiVersion"),
        "kind": body.get("kind"),
        "metadata": kept,
        "spec": dict(body.get("spec") or {}),
        "status": status,
    }


@dataclass(frozen=True, slots=True)
class IndexedUser:
    """A LiteLLMUser as the operator's index keeps it: the few fields the rollout counts read
    on every user event, and the rest of :func:`slim` as compressed compact JSON, for the resync
    and the policy propagation, which read it once per run. A Ready user's JSON is 1.6 KB, 0.6 KB
    compressed; compressing costs about 30 µs per watch event, reading it back 5 µs per user
    and run."""

    state: UserState
    compact: bytes

    @classmethod
    def of(cls, body: Mapping[str, Any]) -> IndexedUser:
        return cls(UserState.of(body), pack(slim(body), COMPACT_LEVEL))

    def body(self) -> dict[str, Any]:
        return unpack(self.compact)


def plain(body: Mapping[str, Any]) -> dict[str, Any]:
    """A detached copy of a kopf body, safe to keep in an index."""
    return copy.deepcopy(dict(body))
