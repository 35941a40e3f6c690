"""A LiteLLMTeam's recount after joins (teams.handlers.TeamHandlers.members_changed): one
nudge once the joins of the moment are done, at most RECOUNT_AT_MOST_AFTER after the first."""

from __future__ import annotations

import asyncio
from typing import Any, cast

import pytest

from litellm_operator.teams import handlers
from litellm_operator.teams.handlers import TeamHandlers


async def recounts(
    monkeypatch: pytest.MonkeyPatch, joins: list[float], teams: list[str]
) -> list[str]:
    """Joins of ``teams`` at the given times (s); the nudges that result."""
    monkeypatch.setattr(handlers, "RECOUNT_AFTER_SECONDS", 0.2)
    monkeypatch.setattr(handlers, "RECOUNT_AT_MOST_AFTER", 0.8)
    nudged: list[str] = []

    async def nudge(namespace: str, name: str, why: str) -> None:
        nudged.append(f"{namespace}/{name}: {why}")

    async def nothing(_: str) -> None: ...

    team_handlers = TeamHandlers(
        cast(Any, None), cast(Any, None), 60, nothing, nudge, nothing, gone=nothing
    )
    team_handlers.owners["ns.crew"] = ("ns", "crew")
    start = asyncio.get_running_loop().time()
    for at in joins:
        await asyncio.sleep(max(0.0, start + at - asyncio.get_running_loop().time()))
        await team_handlers.members_changed(teams)
    await asyncio.sleep(1.2)
    return nudged


@pytest.mark.parametrize(
    ("joins", "teams", "expected"),
    [
        pytest.param([0.0, 0.02, 0.04], ["ns.crew"], 1, id="a-burst-one-recount"),
        pytest.param([0.0, 0.5], ["ns.crew"], 2, id="apart-two-recounts"),
        pytest.param([i * 0.1 for i in range(12)], ["ns.crew"], 2, id="a-stream-capped"),
        pytest.param([0.0], ["elsewhere"], 0, id="not-a-litellmteam"),
    ],
)
async def test_recounts(
    monkeypatch: pytest.MonkeyPatch, joins: list[float], teams: list[str], expected: int
) -> None:
    nudged = await recounts(monkeypatch, joins, teams)
    assert len(nudged) == expected
    assert all(n == "ns/crew: members of ns.crew changed" for n in nudged)
