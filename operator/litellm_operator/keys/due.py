"""Owners whose keys are due again (a rotation, the end of a grace period): one pending nudge per
object, so kopf reconciles it then. A restart resumes every object anyway."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from litellm_operator.runtime.handling import now_iso

Nudge = Callable[[str, str, str], Awaitable[None]]


class Requeues:
    """Pending "reconcile again in N seconds" of the objects of one kind."""

    def __init__(self, nudge: Nudge) -> None:
        self._nudge = nudge
        self._due: dict[tuple[str, str], asyncio.Task[None]] = {}

    def requeue(self, namespace: str, name: str, delay: float) -> None:
        """Reconcile the object again in ``delay`` seconds, through a nudge; replaces the pending
        one."""
        key = (namespace, name)
        pending = self._due.pop(key, None)
        if pending is not None:
            pending.cancel()

        async def later() -> None:
            await asyncio.sleep(delay)
            self._due.pop(key, None)
            await self._nudge(namespace, name, f"keys due at {now_iso()}")

        self._due[key] = asyncio.create_task(later())

    async def close(self) -> None:
        tasks = list(self._due.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
