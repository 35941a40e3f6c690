"""What a policy's change and its periodic resync do to its users.

:meth:`PolicyFollowers.propagate` turns the users behind a policy non-Ready at once (one status
write each); the event of that write reconciles each one
(:meth:`~litellm_operator.users.handlers.UserHandlers.follow_policy`).
:meth:`PolicyFollowers.check` compares the policy's users with one ``/user/list`` snapshot
(100 users per call) and nudges only the users that drifted: in steady state it makes no
LiteLLM write and no Kubernetes write.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import kopf

from litellm_operator.keys.reconciler import SecretsUnavailable
from litellm_operator.litellm import LiteLLMError, LiteLLMUserRecord
from litellm_operator.models import ProvisioningPolicy
from litellm_operator.policies.rollouts import Members
from litellm_operator.runtime.handling import each, now_iso
from litellm_operator.runtime.indices import single
from litellm_operator.runtime.metrics import Metrics
from litellm_operator.status import behind_policy, policy_changed_status, retry_due
from litellm_operator.users.context import Runtime

log = logging.getLogger(__name__)

NOT_DRIFT = frozenset({"not-ready", "status"})
"""Resync findings that are not changes made in LiteLLM behind the operator's back."""
YIELD_EVERY = 50
FLIPS_AT_ONCE = 8
"""A rollout's status writes in flight at once (more only wait for the Kubernetes client)."""


class PolicyFollowers:
    """The users' side of a policy's propagation and resync."""

    def __init__(self, runtime: Runtime, members: Members) -> None:
        self.runtime = runtime
        self.users_by_policy = members.by_policy
        self.user_bodies = members.bodies

    async def propagate(self, name: str, generation: int | None) -> None:
        """Turn the policy's users that are behind it non-Ready at once (one status write each):
        the event of that write reconciles each one (:meth:`UserHandlers.follow_policy`)."""
        user_of = single(self.user_bodies)
        targets = list(self.users_by_policy.get(name, []))
        kube = self.runtime.kube
        now = now_iso()
        flips: list[tuple[str, str, dict[str, Any], str | None]] = []
        for namespace, user_name in targets:
            indexed = user_of((namespace, user_name))
            status = (indexed.body().get("status") or {}) if indexed is not None else {}
            changes = policy_changed_status(status, name, generation, now)
            if changes is not None:
                flips.append((namespace, user_name, changes, status.get("userId")))
        if self.runtime.reads is not None:  # their reads, in full batches, before their turn
            self.runtime.reads.prefetch(user_id for *_, user_id in flips if user_id)

        await each(
            (kube.patch_user_status(ns, n, changes) for ns, n, changes, _ in flips), FLIPS_AT_ONCE
        )
        log.info("policy %s: %d of %d user(s) to reconcile", name, len(flips), len(targets))

    async def read_litellm_version(self) -> None:
        """Read LiteLLM's version again (upgraded or rolled back since?): the client refuses
        writes to an unsupported release, and the policies' status reports it."""
        try:
            await self.runtime.client.proxy_version(refresh=True)
        except LiteLLMError as exc:
            log.warning("LiteLLM's version could not be read: %s", exc)

    async def check(self, name: str, body: kopf.Body) -> None:
        """Compare the policy's users with one ``/user/list`` snapshot; nudge the drifted."""
        runtime = self.runtime
        user_of = single(self.user_bodies)
        targets = list(self.users_by_policy.get(name, []))
        try:
            snapshot = await runtime.directory.snapshot()
        except LiteLLMError as exc:
            log.warning("resync of policy %s skipped: LiteLLM unavailable: %s", name, exc)
            return
        # The policy as it is now, not before the snapshot: under load listing every LiteLLM
        # user takes minutes, and a policy edited meanwhile made every user its rollout had
        # already reached look drifted (thousands nudged for nothing: the README's
        # Performance section, 10,000 users). ``body`` is kopf's live body.
        generation = body.get("metadata", {}).get("generation")
        validated = runtime.policies.of(dict(body))
        # An invalid policy: each user's reconcile reports it (InvalidSpec).
        policy = validated if isinstance(validated, ProvisioningPolicy) else None
        now = datetime.now(UTC)
        interval = runtime.config.resync_seconds
        suspects: list[tuple[str, str, dict[str, Any], tuple[str, ...]]] = []
        for count, (ns, user_name) in enumerate(targets):
            if count % YIELD_EVERY == 0:
                await asyncio.sleep(0)  # a long pure loop: let other work, and a stop, in
            indexed = user_of((ns, user_name))
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
        count_ready(self.user_bodies, runtime.metrics)
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


def count_ready(user_bodies: Mapping[Any, Any], metrics: Metrics) -> None:
    counts = {"True": 0, "False": 0, "Unknown": 0}
    user_of = single(user_bodies)
    for key in list(user_bodies):
        indexed = user_of(key)
        state = str((indexed.state.ready if indexed is not None else None) or "Unknown")
        counts[state if state in counts else "Unknown"] += 1
    for state, count in counts.items():
        metrics.users.labels(ready=state).set(count)
