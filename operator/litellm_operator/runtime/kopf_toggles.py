"""Makes kopf's readiness toggles cost O(1) per object, so that a restart with many users starts.

kopf holds every handler until all index handlers have seen every object. Its watcher makes
one :class:`kopf._cogs.aiokits.aiotoggles.Toggle` per listed object in one ``ToggleSet(all)``;
each object's worker drops its toggle once indexed, then waits for the whole set to be on. In
kopf 1.45 each ``make_toggle`` and ``drop_toggle`` wakes every waiter, and every waiter
re-evaluates ``all()`` over every toggle, so the initial list of N objects costs O(N²)
wake-ups and up to O(N³) toggle reads (the README's Performance section has the restart it
stopped; py-spy: ``ToggleSet.make_toggle`` → ``Condition.notify_all``).

:class:`CountingToggleSet` keeps the same interface and semantics for the two folds kopf
uses, ``all`` and ``any``: it counts its toggles that are on, answers ``is_on()`` from the
count, and wakes its waiters only when the set's state flips. :func:`install` puts it in
place of kopf's class before kopf builds its sets; it refuses (and kopf keeps its own class)
when kopf's internals no longer look as this module expects.

This is a change to a library's internals, written here because kopf has no setting for it;
it belongs upstream, and :func:`install` is the only place that would need to go.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable

from kopf._cogs.aiokits import aiotoggles

log = logging.getLogger(__name__)

Fold = Callable[[Iterable[bool]], bool]

_ORIGINAL_TOGGLE_SET = aiotoggles.ToggleSet


class CountedToggle(aiotoggles.Toggle):
    """A toggle that tells its set when it turns, so that the set can keep count."""

    def __init__(
        self,
        state: bool,
        *,
        name: str | None,
        condition: asyncio.Condition,
        owner: CountingToggleSet,
    ) -> None:
        super().__init__(state, name=name, condition=condition)
        self._owner = owner

    async def turn_to(self, __state: bool) -> None:
        async with self._condition:
            if self._state != bool(__state):
                self._state = bool(__state)
                self._owner._count(self, +1 if self._state else -1)
            self._condition.notify_all()


class CountingToggleSet(_ORIGINAL_TOGGLE_SET):
    """kopf's ``ToggleSet`` for ``all`` and ``any``: O(1) state, wake-ups only on a flip.

    Any other fold is handled exactly as kopf does it.
    """

    def __init__(self, fn: Fold) -> None:
        super().__init__(fn)
        self._counting = fn is all or fn is any
        self._on = 0

    def is_on(self) -> bool:
        if not self._counting:
            return super().is_on()
        if self._fn is all:
            return self._on == len(self._toggles)
        return self._on > 0

    async def make_toggle(
        self, __val: bool = False, *, name: str | None = None
    ) -> aiotoggles.Toggle:
        if not self._counting:
            return await super().make_toggle(__val, name=name)
        toggle = CountedToggle(__val, name=name, condition=self._condition, owner=self)
        async with self._condition:
            was_on = self.is_on()
            self._toggles.add(toggle)
            self._on += toggle.is_on()
            self._notify_if_flipped(was_on)
        return toggle

    async def drop_toggle(self, toggle: aiotoggles.Toggle) -> None:
        await self.drop_toggles([toggle])

    async def drop_toggles(self, toggles: Iterable[aiotoggles.Toggle]) -> None:
        if not self._counting:
            await super().drop_toggles(toggles)
            return
        async with self._condition:
            was_on = self.is_on()
            for toggle in toggles:
                if toggle in self._toggles:
                    self._toggles.discard(toggle)
                    self._on -= toggle.is_on()
            self._notify_if_flipped(was_on)

    def _count(self, toggle: aiotoggles.Toggle, change: int) -> None:
        """Called by a member toggle, under the shared condition, when it turns."""
        if toggle in self._toggles:
            self._on += change

    def _notify_if_flipped(self, was_on: bool) -> None:
        if self.is_on() != was_on:
            self._condition.notify_all()


def install() -> bool:
    """Make kopf build :class:`CountingToggleSet`; ``False`` (and a warning) if it cannot."""
    if aiotoggles.ToggleSet is CountingToggleSet:
        return True
    expected = ("make_toggle", "drop_toggle", "drop_toggles", "is_on", "wait_for")
    probe = _ORIGINAL_TOGGLE_SET(all)
    if not all(hasattr(probe, attr) for attr in (*expected, "_toggles", "_condition", "_fn")):
        log.warning("kopf's ToggleSet has changed: its readiness toggles stay O(N) per object")
        return False
    aiotoggles.ToggleSet = CountingToggleSet  # type: ignore[misc]
    return True
