"""runtime.handling: what every kind's handlers share."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from litellm_operator.runtime.handling import each


@pytest.mark.parametrize(
    ("calls", "at_once", "peak"),
    [
        pytest.param(20, 3, 3, id="bounded"),
        pytest.param(2, 8, 2, id="fewer-than-the-bound"),
        pytest.param(0, 4, 0, id="none"),
    ],
)
async def test_each_awaits_every_call_at_most_at_once(calls: int, at_once: int, peak: int) -> None:
    running: list[int] = []
    done: list[int] = []
    made: list[int] = []

    async def call(i: int) -> None:
        running.append(i)
        running_peak.append(len(running))
        await asyncio.sleep(0.001)
        running.remove(i)
        done.append(i)

    def calls_made() -> Any:
        for i in range(calls):
            made.append(i)
            yield call(i)

    running_peak: list[int] = [0]
    await each(calls_made(), at_once)
    assert sorted(done) == list(range(calls))
    assert max(running_peak) == peak
    assert len(made) == calls
