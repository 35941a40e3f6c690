"""A policy's rollout across its users, published as the policy's status, debounced.

The counts are read from the users' indices (:class:`Members`, given at construction) and the
policy from kopf's policy index (given with each call, as kopf hands it to the handlers).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import kopf

from litellm_operator.kube import Kube
from litellm_operator.reasons import Reason
from litellm_operator.runtime.handling import first, now_iso
from litellm_operator.runtime.indices import single
from litellm_operator.status import (
    POLICY_OWNED_KEYS,
    policy_rollout,
    policy_status,
    ready_condition,
    rollout_finished,
    status_patch,
)

log = logging.getLogger(__name__)

ROLLOUT_DEBOUNCE_SECONDS = 0.25
ROLLOUT_DEBOUNCE_SECONDS_PER_USER = 0.0005
"""A recomputation reads every user of the policy: with 10,000 users it waits 5 s, not 0.25."""
ROLLOUT_RETRY_SECONDS = 5.0

PolicyIndex = Mapping[str, Any]
"""kopf's index of policy bodies by name (``policy_bodies``)."""


@dataclass(frozen=True)
class Members:
    """The users' indices a rollout reads: (namespace, name) by policy name, and each user's
    indexed state by (namespace, name). Live views: they change as the watch stream goes."""

    by_policy: Mapping[Any, Any]
    bodies: Mapping[Any, Any]


class Rollouts:
    """Keeps each policy's status (its rollout across its users) current, debounced.

    :meth:`touch` schedules one recomputation per policy :data:`ROLLOUT_DEBOUNCE_SECONDS`
    later (touches meanwhile join it); it reads the indices, which are live, and patches
    the policy's status only when it differs from what was last written.
    """

    def __init__(
        self,
        kube: Kube,
        members: Members,
        delay: float = ROLLOUT_DEBOUNCE_SECONDS,
        litellm_version: Callable[[], str | None] = lambda: None,
    ) -> None:
        self.kube = kube
        self.members = members
        self.delay = delay
        self.litellm_version = litellm_version
        """The LiteLLM version last read, which the status reports."""
        self._pending: dict[str, asyncio.Task[None]] = {}
        self._refs: dict[Any, str] = {}
        self._written: dict[tuple[str, str], dict[str, Any]] = {}

    def user_seen(self, key: Any, policy: str | None, policies: PolicyIndex) -> None:
        """A user changed (``policy`` is ``None`` once it is gone): touch its old and new policy."""
        old = self._refs.pop(key, None) if policy is None else self._refs.get(key)
        if policy is not None:
            self._refs[key] = policy
            self.touch(policy, policies)
        if old is not None and old != policy:
            self.touch(old, policies)

    def touch(self, name: str, policies: PolicyIndex) -> None:
        if name not in self._pending:
            self._pending[name] = asyncio.create_task(self._publish_later(name, policies))

    def delay_for(self, name: str) -> float:
        users = len(self.members.by_policy.get(name, ()))
        return max(self.delay, users * ROLLOUT_DEBOUNCE_SECONDS_PER_USER)

    async def _publish_later(self, name: str, policies: PolicyIndex) -> None:
        try:
            await asyncio.sleep(self.delay_for(name))
        finally:
            self._pending.pop(name, None)
        try:
            await self.publish(name, policies)
        except Exception as exc:  # a background task: log, and try again a little later
            log.warning("status of policy %s not updated (retrying): %s", name, exc)
            loop = asyncio.get_running_loop()
            loop.call_later(ROLLOUT_RETRY_SECONDS, self.touch, name, policies)

    async def publish(self, name: str, policies: PolicyIndex) -> None:
        """Recompute policy ``name``'s status from the indices; patch it if it changed."""
        users_by_policy, user_bodies = self.members.by_policy, self.members.bodies
        policy = first(policies.get(name))
        if policy is None:
            return
        meta = policy.get("metadata") or {}
        generation = meta.get("generation")
        user_of = single(user_bodies)
        users = [user_of(key) for key in list(users_by_policy.get(name, []))]
        rollout = policy_rollout(name, generation, [u.state for u in users if u is not None])
        identity = (name, str(meta.get("uid", "")))
        previous = self._written.get(identity) or dict(policy.get("status") or {})
        desired = policy_status(previous, generation, rollout, now_iso(), self.litellm_version())
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
