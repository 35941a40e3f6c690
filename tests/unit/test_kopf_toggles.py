"""CountingToggleSet: kopf's ToggleSet semantics, at O(1) per toggle and waking only on flips."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from kopf._cogs.aiokits import aiotoggles

from litellm_operator.runtime import kopf_toggles
from litellm_operator.runtime.kopf_toggles import CountingToggleSet

Fold = Callable[[Iterable[bool]], bool]
Step = tuple[str, int, bool]

steps = st.lists(
    st.tuples(st.sampled_from(["make", "drop", "turn"]), st.integers(0, 7), st.booleans()),
    max_size=40,
)


async def replay(toggles: aiotoggles.ToggleSet, script: list[Step]) -> list[bool]:
    """Apply ``script`` (make a toggle, drop the i-th, turn the i-th) and record is_on()."""
    made: list[aiotoggles.Toggle] = []
    seen = [toggles.is_on()]
    for op, index, state in script:
        if op == "make":
            made.append(await toggles.make_toggle(state, name=str(len(made))))
        elif made and op == "drop":
            await toggles.drop_toggle(made[index % len(made)])
        elif made and op == "turn":
            await made[index % len(made)].turn_to(state)
        seen.append(toggles.is_on())
        assert len(toggles) == len(list(toggles))
    return seen


@pytest.mark.parametrize("fn", [all, any], ids=["all", "any"])
@settings(max_examples=200, deadline=None)
@given(script=steps)
def test_agrees_with_kopf_on_every_sequence(fn: Fold, script: list[Step]) -> None:
    async def both() -> tuple[list[bool], list[bool]]:
        return (
            await replay(kopf_toggles._ORIGINAL_TOGGLE_SET(fn), script),
            await replay(CountingToggleSet(fn), script),
        )

    kopf_states, counting_states = asyncio.run(both())
    assert counting_states == kopf_states


def test_another_fold_is_left_to_kopf() -> None:
    def majority(states: Iterable[bool]) -> bool:
        values = list(states)
        return sum(values) * 2 > len(values)

    async def run() -> list[bool]:
        return await replay(
            CountingToggleSet(majority), [("make", 0, True), ("make", 0, False), ("make", 0, True)]
        )

    assert asyncio.run(run()) == [False, True, False, True]


class CountingWakeUps:
    """Counts how often waiters re-evaluate the set's state (each wake-up does once)."""

    def __init__(self, toggles: aiotoggles.ToggleSet) -> None:
        self.calls = 0
        original = toggles.is_on

        def is_on() -> bool:
            self.calls += 1
            return original()

        toggles.is_on = is_on  # type: ignore[method-assign]


async def index_like_kopf(toggles: aiotoggles.ToggleSet, objects: int) -> int:
    """kopf's initial listing: a toggle per object, a worker per object that drops its toggle
    and then waits for the whole set. Returns how many times waiters re-checked the state."""
    blocker = await toggles.make_toggle(name="orchestration blocker")
    wake_ups = CountingWakeUps(toggles)

    async def worker(toggle: aiotoggles.Toggle) -> None:
        await toggles.drop_toggle(toggle)
        await toggles.wait_for(True)

    workers = []
    for i in range(objects):
        toggle = await toggles.make_toggle(name=f"object {i}")
        workers.append(asyncio.create_task(worker(toggle)))
        await asyncio.sleep(0)
    await asyncio.sleep(0)
    await toggles.drop_toggle(blocker)
    await asyncio.wait_for(asyncio.gather(*workers), timeout=30)
    return wake_ups.calls


@pytest.mark.parametrize("objects", [10, 300, 1000], ids=lambda n: f"{n}-objects")
async def test_waiters_wake_only_when_the_set_flips(objects: int) -> None:
    calls = await index_like_kopf(CountingToggleSet(all), objects)
    assert calls <= 8 * objects  # a handful per object: linear, not quadratic


async def test_kopf_own_set_wakes_every_waiter_on_every_toggle() -> None:
    """The quadratic behaviour this module exists to remove (kept small: it is quadratic)."""
    calls = await index_like_kopf(kopf_toggles._ORIGINAL_TOGGLE_SET(all), 300)
    assert calls > 50 * 300


def test_install_makes_kopf_build_counting_sets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(aiotoggles, "ToggleSet", kopf_toggles._ORIGINAL_TOGGLE_SET)
    assert kopf_toggles.install()
    assert aiotoggles.ToggleSet is CountingToggleSet
    assert kopf_toggles.install()  # twice is harmless


def test_install_refuses_a_kopf_whose_toggles_changed(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    class Unexpected:
        def __init__(self, fn: Fold) -> None:
            self.fn = fn

    monkeypatch.setattr(aiotoggles, "ToggleSet", Unexpected)
    monkeypatch.setattr(kopf_toggles, "_ORIGINAL_TOGGLE_SET", Unexpected)
    assert not kopf_toggles.install()
    assert aiotoggles.ToggleSet is Unexpected  # type: ignore[comparison-overlap]
    assert "ToggleSet has changed" in caplog.text
