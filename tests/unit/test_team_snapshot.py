"""The shared /team/list snapshot (litellm.directory.TeamSnapshot): what a write makes stale,
and a refresh in flight never bringing back what was written meanwhile."""

from __future__ import annotations

import asyncio
from typing import Any, cast

import pytest

from litellm_operator.litellm import TeamRecord, TeamSnapshot


def record(team_id: str, budget: str = "1.0") -> TeamRecord:
    return TeamRecord.model_validate({"team_id": team_id, "metadata": {"b": budget}})


class Lister:
    """list_teams answering what LiteLLM held when the call started, after ``gate`` opens."""

    def __init__(self) -> None:
        self.held = {"t1": record("t1"), "t2": record("t2")}
        self.calls = 0
        self.gate: asyncio.Event | None = None

    async def list_teams(self) -> dict[str, TeamRecord]:
        self.calls += 1
        answer = dict(self.held)
        if self.gate is not None:
            await self.gate.wait()
        return answer


def snapshot(lister: Lister, max_age: float = 60) -> TeamSnapshot:
    return TeamSnapshot(cast(Any, lister), max_age=max_age)


async def test_one_list_is_shared_until_it_is_too_old() -> None:
    lister = Lister()
    teams = snapshot(lister)
    await teams.held()
    await teams.held()
    assert lister.calls == 1
    stale = snapshot(lister, max_age=0)
    await stale.held()
    await stale.held()
    assert lister.calls == 3


@pytest.mark.parametrize(
    ("write", "present", "members_fresh"),
    [
        pytest.param("forget", False, True, id="team-written-dropped"),
        pytest.param("members_written", True, False, id="members-written-settings-kept"),
        pytest.param(None, True, True, id="nothing-written"),
    ],
)
async def test_what_a_write_makes_stale(
    write: str | None, present: bool, members_fresh: bool
) -> None:
    teams = snapshot(Lister())
    await teams.held()
    if write is not None:
        getattr(teams, write)("t1")
    assert ("t1" in await teams.held()) == present
    assert teams.members_fresh("t1") == members_fresh
    assert "t2" in await teams.held()
    assert teams.members_fresh("t2")


async def test_a_fresh_read_is_shared_again() -> None:
    teams = snapshot(Lister())
    await teams.held()
    teams.members_written("t1")
    teams.remember(record("t1", "2.0"))
    assert teams.members_fresh("t1")
    assert (await teams.held())["t1"].metadata == {"b": "2.0"}


@pytest.mark.parametrize(
    ("write", "present", "members_fresh"),
    [
        pytest.param("forget", False, True, id="team-written-during-refresh"),
        pytest.param("members_written", True, False, id="members-written-during-refresh"),
    ],
)
async def test_a_refresh_in_flight_does_not_bring_back_what_was_written_meanwhile(
    write: str, present: bool, members_fresh: bool
) -> None:
    lister = Lister()
    lister.gate = asyncio.Event()
    teams = snapshot(lister)
    refresh = asyncio.create_task(teams.held())
    await asyncio.sleep(0)
    getattr(teams, write)("t1")
    teams.remember(record("t1", "3.0"))  # not kept: the refresh in flight would override it
    lister.gate.set()
    held = await refresh
    assert ("t1" in held) == present
    assert teams.members_fresh("t1") == members_fresh
