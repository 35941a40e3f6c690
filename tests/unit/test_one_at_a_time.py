"""One reconcile per object at a time (runtime.handling.OneAtATime), and the team handlers'
use of it: kopf runs a LiteLLMTeam's resync timer in a task of its own, beside its change
handler; the two must not reconcile the team's keys at once (a key rotated twice, the first
new key revoked moments after it was delivered)."""

from __future__ import annotations

import asyncio
from typing import Any, cast

import kopf
import pytest

from litellm_operator.runtime.handling import OneAtATime
from litellm_operator.runtime.metrics import Metrics
from litellm_operator.status import TeamFailed
from litellm_operator.teams.handlers import TeamHandlers
from litellm_operator.teams.reconciler import TeamResult


async def overlap(keys: list[tuple[str, str]]) -> tuple[int, int]:
    """Runs one holder per key at once; the most that held a lock together, and the locks
    left afterwards."""
    locks = OneAtATime()
    inside, most = 0, 0

    async def hold(key: tuple[str, str]) -> None:
        nonlocal inside, most
        async with locks.holding(key):
            inside += 1
            most = max(most, inside)
            await asyncio.sleep(0.01)
            inside -= 1

    await asyncio.gather(*(hold(k) for k in keys))
    return most, len(locks)


@pytest.mark.parametrize(
    ("keys", "at_once"),
    [
        pytest.param([("ns", "a")] * 3, 1, id="one-object-one-at-a-time"),
        pytest.param([("ns", "a"), ("ns", "b"), ("other", "a")], 3, id="objects-side-by-side"),
        pytest.param([("ns", "a"), ("ns", "a"), ("ns", "b")], 2, id="mixed"),
    ],
)
async def test_an_object_is_held_by_one_at_a_time(
    keys: list[tuple[str, str]], at_once: int
) -> None:
    most, left = await overlap(keys)
    assert most == at_once
    assert left == 0, "a lock outlived its holders"


async def test_a_waiter_cancelled_leaves_no_lock_behind() -> None:
    locks = OneAtATime()
    key = ("ns", "a")
    entered = asyncio.Event()
    release = asyncio.Event()

    async def hold() -> None:
        async with locks.holding(key):
            entered.set()
            await release.wait()

    async def wait() -> None:
        async with locks.holding(key):
            raise AssertionError("entered while held")

    holder = asyncio.create_task(hold())
    await entered.wait()
    waiter = asyncio.create_task(wait())
    await asyncio.sleep(0)
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    release.set()
    await holder
    assert len(locks) == 0


class SlowReconciler:
    """Counts how many reconciles of a team run at once."""

    def __init__(self) -> None:
        self.inside = 0
        self.most = 0
        self.calls = 0

    async def reconcile(self, *_: Any, **__: Any) -> TeamResult:
        self.calls += 1
        self.inside += 1
        self.most = max(self.most, self.inside)
        await asyncio.sleep(0.02)
        self.inside -= 1
        return TeamResult(TeamFailed("InvalidSpec", "a permanent failure", transient=False))


def team_kwargs(name: str) -> dict[str, Any]:
    body = kopf.Body(
        cast(
            kopf.RawBody,
            {"metadata": {"namespace": "ns", "name": name, "generation": 1}, "spec": {}},
        )
    )
    return {
        "body": body,
        "patch": kopf.Patch(),
        "retry": 0,
        "policy_bodies": {},
        "teams_by_namespace": {},
    }


async def test_a_team_s_resync_waits_for_its_change_handler() -> None:
    async def nothing(*_: Any) -> None: ...

    reconciler = SlowReconciler()
    teams = TeamHandlers(
        cast(Any, reconciler), Metrics(), 60, nothing, nothing, nothing, gone=nothing
    )
    await asyncio.gather(
        teams.changed(**team_kwargs("crew")),
        teams.resync(**team_kwargs("crew")),
        teams.resync(**team_kwargs("crew")),
        teams.changed(**team_kwargs("other")),
    )
    assert reconciler.calls == 4
    assert reconciler.most == 2, "only different teams reconcile side by side"
