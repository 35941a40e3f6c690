"""The kopf wiring: indices, handlers and the periodic resync, registered on a given registry.

Handlers are thin: they read kopf's kwargs and indices, call :class:`Reconciler`, turn its
result into a status patch (only when something changed), events and metrics, and map
transient failures to :class:`kopf.TemporaryError` (kopf retries with back-off). Permanent
failures end the handler normally: the status says why, and nothing retries in a hot loop.

Triggers, and what each costs:

* a LiteLLMUser is created or changed → one ``/user/info`` plus the writes that are needed;
* the operator starts → users are checked against one paged ``/user/list`` snapshot;
* a ProvisioningPolicy is created, edited or deleted → every user that references it is nudged
  (annotation) and reconciled through the same update handler;
* every resync interval, each policy's timer compares its users with a ``/user/list``
  snapshot (100 users per call) and nudges only the users that drifted. In steady state it
  makes no LiteLLM write and no Kubernetes write.
"""

from __future__ import annotations

import asyncio
import copy
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import kopf
from pydantic import ValidationError

from litellm_operator.config import OperatorConfig
from litellm_operator.kube import Kube
from litellm_operator.litellm import LiteLLMClient, LiteLLMError, LiteLLMUserRecord
from litellm_operator.metrics import Metrics
from litellm_operator.models import (
    GROUP,
    POLICY_PLURAL,
    USER_PLURAL,
    VERSION,
    ProvisioningPolicy,
)
from litellm_operator.reconciler import Claim, ClaimsOf, Event, Reconciler, Result
from litellm_operator.status import (
    POLICY_OWNED_KEYS,
    Failed,
    build_status,
    creating_status,
    policy_status,
    ready_condition,
    status_patch,
)

log = logging.getLogger(__name__)

FINALIZER = f"{GROUP}/finalizer"
MAX_RETRY_DELAY = 300.0
NOT_DRIFT = frozenset({"not-ready", "status"})
"""Resync findings that are not changes made in LiteLLM behind the operator's back."""


def now_iso() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class Directory:
    """A snapshot of every LiteLLM user from ``/user/list``, refreshed at most once per ``max_age``.

    Concurrent callers share one refresh. A user missing from the snapshot is unknown, not
    absent: callers then ask ``/user/info`` (the snapshot may predate the user).
    """

    def __init__(self, client: LiteLLMClient, max_age: float) -> None:
        self.client = client
        self.max_age = max_age
        self._users: dict[str, LiteLLMUserRecord] = {}
        self._taken = float("-inf")
        self._lock = asyncio.Lock()

    async def snapshot(self) -> Mapping[str, LiteLLMUserRecord]:
        async with self._lock:
            if time.monotonic() - self._taken >= self.max_age:
                self._users = {u.user_id: u async for u in self.client.list_users()}
                self._taken = time.monotonic()
            return self._users


@dataclass
class Runtime:
    """What the handlers share, built at start-up from the validated configuration."""

    config: OperatorConfig
    client: LiteLLMClient
    reconciler: Reconciler
    kube: Kube
    metrics: Metrics
    directory: Directory


def register(registry: kopf.OperatorRegistry, runtime: Runtime) -> None:
    """Register every index, handler and timer of the operator on ``registry``."""
    users = (GROUP, VERSION, USER_PLURAL)
    policies = (GROUP, VERSION, POLICY_PLURAL)

    @kopf.index(*policies, registry=registry, id="policy_bodies")
    def policy_bodies(*, name: str, body: kopf.Body, **_: Any) -> dict[str, Any]:
        return {name: plain(body)}

    @kopf.index(*users, registry=registry, id="users_by_policy")
    def users_by_policy(
        *, namespace: str | None, name: str, spec: kopf.Spec, **_: Any
    ) -> dict[str, Any]:
        return {spec.get("policyRef") or "default": (namespace, name)}

    @kopf.index(*users, registry=registry, id="user_bodies")
    def user_bodies(
        *, namespace: str | None, name: str, body: kopf.Body, **_: Any
    ) -> dict[Any, Any]:
        return {(namespace, name): slim(body)}

    @kopf.index(*users, registry=registry, id="user_id_claims")
    def user_id_claims(
        *,
        namespace: str | None,
        name: str,
        uid: str,
        meta: kopf.Meta,
        status: kopf.Status,
        **_: Any,
    ) -> dict[str, Claim] | None:
        user_id = status.get("userId")
        if not user_id:
            return None
        created = str(meta.get("creationTimestamp", ""))
        return {user_id: Claim(created, namespace or "", name, uid)}

    async def reconcile(
        body: kopf.Body,
        patch: kopf.Patch,
        retry: int,
        policy_bodies: kopf.Index[str, Any],
        user_id_claims: kopf.Index[str, Claim],
        hint: LiteLLMUserRecord | None = None,
    ) -> None:
        policy_ref = body.get("spec", {}).get("policyRef") or "default"
        policy = first(policy_bodies.get(policy_ref))
        started = time.monotonic()

        async def record_user_id(user_id: str) -> None:
            # The same write tells Flux/Argo CD the user is in progress (Reconciling=True).
            meta = body.metadata
            progress = creating_status(body.get("status") or {}, meta.get("generation"), now_iso())
            await runtime.kube.record_user_id(
                meta.namespace or "", meta.name or "", user_id, progress
            )

        result = await runtime.reconciler.reconcile(
            plain(body),
            policy,
            claims_from(user_id_claims),
            record_user_id=record_user_id,
            observed_hint=hint,
        )
        runtime.metrics.reconcile_seconds.observe(time.monotonic() - started)
        publish(body, patch, result, runtime.metrics)
        outcome = result.outcome
        if isinstance(outcome, Failed) and outcome.transient:
            delay = result.retry_after or min(5.0 * 2**retry, MAX_RETRY_DELAY)
            raise kopf.TemporaryError(outcome.message, delay=delay)

    @kopf.on.create(*users, registry=registry, id="reconcile")
    @kopf.on.update(*users, registry=registry, id="reconcile")
    async def user_changed(*, body: kopf.Body, patch: kopf.Patch, retry: int, **kw: Any) -> None:
        await reconcile(body, patch, retry, kw["policy_bodies"], kw["user_id_claims"])

    @kopf.on.resume(*users, registry=registry, id="resume")
    async def user_resumed(*, body: kopf.Body, patch: kopf.Patch, retry: int, **kw: Any) -> None:
        user_id = body.get("status", {}).get("userId")
        hint = None
        if user_id:
            try:
                hint = (await runtime.directory.snapshot()).get(user_id)
            except LiteLLMError:
                hint = None  # the reconcile reads /user/info itself and reports the outage
        await reconcile(body, patch, retry, kw["policy_bodies"], kw["user_id_claims"], hint=hint)

    @kopf.on.delete(*users, registry=registry, id="finalize")
    async def user_deleted(*, body: kopf.Body, retry: int, **kw: Any) -> None:
        policy_bodies: kopf.Index[str, Any] = kw["policy_bodies"]
        policy = first(policy_bodies.get(body.get("spec", {}).get("policyRef") or "default"))
        try:
            events = await runtime.reconciler.finalize(plain(body), policy)
        except Exception as exc:
            delay = min(5.0 * 2**retry, MAX_RETRY_DELAY)
            kopf.warn(body, reason="DeleteFailed", message=str(exc))
            raise kopf.TemporaryError(f"deletion not finished: {exc}", delay=delay) from exc
        for event in events:
            post(body, event)

    @kopf.on.create(*policies, registry=registry, id="propagate")
    @kopf.on.update(*policies, registry=registry, id="propagate")
    @kopf.on.delete(*policies, registry=registry, id="propagate", optional=True)
    async def policy_changed(
        *, name: str, body: kopf.Body, reason: str, patch: kopf.Patch, **kw: Any
    ) -> None:
        users_by_policy: kopf.Index[str, Any] = kw["users_by_policy"]
        targets = list(users_by_policy.get(name, []))
        if reason != "delete":
            publish_policy(body, patch, targets, kw["user_bodies"])
        generation = body.get("metadata", {}).get("generation")
        why = f"policy {name} {reason} (generation {generation}) at {now_iso()}"
        await asyncio.gather(*(runtime.kube.nudge(ns, n, why) for ns, n in targets))
        log.info("policy %s %s: %d user(s) to reconcile", name, reason, len(targets))

    @kopf.timer(
        *policies,
        registry=registry,
        id="resync",
        interval=runtime.config.resync_seconds,
        initial_delay=runtime.config.resync_seconds,
    )
    async def resync(*, name: str, body: kopf.Body, patch: kopf.Patch, **kw: Any) -> None:
        users_by_policy: kopf.Index[str, Any] = kw["users_by_policy"]
        user_bodies: kopf.Index[Any, Any] = kw["user_bodies"]
        targets = list(users_by_policy.get(name, []))
        publish_policy(body, patch, targets, user_bodies)
        try:
            policy: ProvisioningPolicy | None = ProvisioningPolicy.model_validate(plain(body))
        except ValidationError:
            policy = None  # each user's reconcile reports it (InvalidSpec)
        try:
            snapshot = await runtime.directory.snapshot()
        except LiteLLMError as exc:
            log.warning("resync of policy %s skipped: LiteLLM unavailable: %s", name, exc)
            return
        drifted = 0
        for ns, user_name in targets:
            user = first(user_bodies.get((ns, user_name)))
            if user is None:
                continue
            user_id = user.get("status", {}).get("userId")
            record = snapshot.get(user_id) if user_id else None
            try:
                differences = await runtime.reconciler.check(user, policy, record)
            except LiteLLMError as exc:  # keys of a suspended user could not be read
                log.warning("resync of %s/%s skipped: %s", ns, user_name, exc)
                continue
            if not differences:
                continue
            drifted += 1
            for field in differences:
                if field not in NOT_DRIFT:
                    runtime.metrics.drift_corrections.labels(field=field).inc()
            why = f"resync at {now_iso()}: {', '.join(differences)}"
            await runtime.kube.nudge(ns, user_name, why)
        count_ready(user_bodies, runtime.metrics)
        if drifted:
            log.info("resync of policy %s: %d user(s) drifted", name, drifted)


def publish(body: kopf.Body, patch: kopf.Patch, result: Result, metrics: Metrics) -> None:
    """Status patch (only what changed), events and metrics for one reconcile."""
    previous = dict(body.get("status") or {})
    generation = body.get("metadata", {}).get("generation")
    status = build_status(previous, generation, result.outcome, now_iso())
    changes = status_patch(previous, status)
    if changes:
        for key, value in changes.items():
            patch.status[key] = value
    before = ready_condition(previous) or {}
    after = ready_condition(status) or {}
    condition_changed = any(before.get(k) != after.get(k) for k in ("status", "reason", "message"))
    for event in result.events:
        if event.type == "Normal" or condition_changed:
            post(body, event)
    outcome = result.outcome
    reason = str(after.get("reason", ""))
    if isinstance(outcome, Failed) or after.get("status") != "True":
        kind = "failed"
    else:
        kind = "changed" if outcome.wrote else "in_sync"
    metrics.reconciles.labels(result=kind, reason=reason).inc()


def publish_policy(
    body: kopf.Body, patch: kopf.Patch, users: Any, user_bodies: kopf.Index[Any, Any]
) -> None:
    """The policy's status: its users and how many are Ready (patched only when it changed)."""
    targets = list(users)
    ready = sum(readiness(user_bodies, key) == "True" for key in targets)
    previous = dict(body.get("status") or {})
    generation = body.get("metadata", {}).get("generation")
    desired = policy_status(previous, generation, len(targets), ready, now_iso())
    for key, value in (status_patch(previous, desired, POLICY_OWNED_KEYS) or {}).items():
        patch.status[key] = value


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
    user = first(user_bodies.get(key)) or {}
    return str((ready_condition(user.get("status") or {}) or {}).get("status", "Unknown"))


def claims_from(index: kopf.Index[str, Claim]) -> ClaimsOf:
    return lambda user_id: list(index.get(user_id, []))


def first(store: Any) -> Any:
    """The single value an index keeps for a key (names are unique), or ``None``."""
    if store is None:
        return None
    return next(iter(store), None)


KEPT_METADATA = ("name", "namespace", "uid", "generation", "creationTimestamp")


def slim(body: Mapping[str, Any]) -> dict[str, Any]:
    """What the resync needs of a user, without annotations and managedFields (memory)."""
    meta = body.get("metadata") or {}
    return {
        "apiVersion": body.get("apiVersion"),
        "kind": body.get("kind"),
        "metadata": {k: meta[k] for k in KEPT_METADATA if k in meta},
        "spec": copy.deepcopy(dict(body.get("spec") or {})),
        "status": copy.deepcopy(dict(body.get("status") or {})),
    }


def plain(body: Mapping[str, Any]) -> dict[str, Any]:
    """A detached copy of a kopf body, safe to keep in an index."""
    return copy.deepcopy(dict(body))
