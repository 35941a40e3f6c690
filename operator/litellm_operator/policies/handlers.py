"""ProvisioningPolicy handlers: create, update, delete and the periodic resync.

A policy's handlers keep its rollout status current (:class:`Rollouts`) and hand what the
change means for its users to :class:`Followers` (the users' kind implements it): a change
turns the users behind the policy non-Ready at once, so each one's reconcile follows; the
resync compares the users with LiteLLM and nudges the drifted.
"""

from __future__ import annotations

import asyncio
from typing import Any, Protocol

import kopf

from litellm_operator.models import GROUP, POLICY_PLURAL, VERSION
from litellm_operator.policies.rollouts import PolicyIndex, Rollouts
from litellm_operator.runtime.handling import UNEXPECTED_ERROR_BACKOFF, plain


class Followers(Protocol):
    """What a policy's change and resync do to the users that reference it."""

    async def propagate(self, name: str, generation: int | None) -> None:
        """Turn the users behind policy ``name`` (``generation`` ``None``: deleted) non-Ready."""

    async def check(self, name: str, body: kopf.Body) -> None:
        """Compare the policy's users with LiteLLM; nudge the drifted."""

    async def read_litellm_version(self) -> None:
        """Read LiteLLM's version again (each resync), for the writes and the status."""


class PolicyHandlers:
    """Create, update, delete and the periodic resync of ProvisioningPolicies."""

    def __init__(self, rollouts: Rollouts, followers: Followers) -> None:
        self.rollouts = rollouts
        self.followers = followers

    async def changed(self, *, name: str, body: kopf.Body, **kw: Any) -> None:
        await self.followers.propagate(name, body.get("metadata", {}).get("generation"))
        self.rollouts.touch(name, policies_of(kw))

    async def event(self, *, type: str | None, name: str, **_: Any) -> None:
        """A policy is gone (kopf runs no delete handler without a finalizer): tell its users."""
        if type != "DELETED":
            return
        self.rollouts.forget(name)
        await self.followers.propagate(name, None)

    async def resync(self, *, name: str, body: kopf.Body, **kw: Any) -> None:
        """One resync run, given up as soon as the operator stops.

        It only reads and nudges, so stopping half-way loses nothing; kopf does not cancel a
        timer on exit but waits 5 s for it, which would delay the Lease's release (handover).
        """

        stopped: kopf.DaemonStopped = kw["stopped"]  # kopf passes it to timers

        async def operator_stopping() -> None:
            await stopped.wait()

        work = asyncio.ensure_future(self.check(name, body, policies_of(kw)))
        stop = asyncio.ensure_future(operator_stopping())
        try:
            await asyncio.wait({work, stop}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (work, stop):
                task.cancel()
            await asyncio.gather(work, stop, return_exceptions=True)
        if not work.cancelled():
            work.result()  # re-raise what the run raised

    async def check(self, name: str, body: kopf.Body, policies: PolicyIndex) -> None:
        await self.followers.read_litellm_version()
        await self.rollouts.publish(name, policies)
        await self.followers.check(name, body)

    def register(self, registry: kopf.OperatorRegistry, resync_seconds: float) -> None:
        policies = (GROUP, VERSION, POLICY_PLURAL)
        backoff = UNEXPECTED_ERROR_BACKOFF
        kopf.index(*policies, registry=registry, id="policy_bodies")(index_policy_bodies)
        kopf.on.create(*policies, registry=registry, id="propagate", backoff=backoff)(self.changed)
        kopf.on.update(*policies, registry=registry, id="propagate", backoff=backoff)(self.changed)
        kopf.on.event(*policies, registry=registry, id="deleted")(self.event)
        kopf.timer(
            *policies,
            registry=registry,
            id="resync",
            interval=resync_seconds,
            initial_delay=resync_seconds,
        )(self.resync)

        async def stop_rollouts(**_: Any) -> None:
            await self.rollouts.close()

        kopf.on.cleanup(registry=registry, id="rollouts")(stop_rollouts)


async def index_policy_bodies(*, name: str, body: kopf.Body, **_: Any) -> dict[str, Any]:
    """kopf's index of policy bodies by name. A coroutine, though it waits for nothing: kopf runs
    a plain function in a worker thread (that hop, on every watch event and for every index, was
    a seventh of the operator's CPU)."""
    return {name: plain(body)}


def policies_of(kw: Any) -> PolicyIndex:
    """kopf's index of policy bodies, from a handler's kwargs."""
    policies: PolicyIndex = kw["policy_bodies"]
    return policies
