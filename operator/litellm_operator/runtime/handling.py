"""What every kind's handlers share to talk to kopf: the retry formula and its hand-over to
kopf, events, and the wrapper that gives a handler the operator's own indices.

A kind's handlers translate kopf's arguments and call their reconciler; transient failures
become :class:`kopf.TemporaryError` (kopf retries with back-off), permanent ones end the
handler normally (the status says why, and nothing retries in a hot loop).
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import functools
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

import kopf

from litellm_operator.reasons import Event
from litellm_operator.runtime.indices import ObjectIndices
from litellm_operator.status import TIMESTAMP

MAX_RETRY_DELAY = 15.0
"""Transient failures are retried after 1, 2, 4, 8 then every 15 s: once LiteLLM is back, every
resource converges within about 15 s (the README's "Failure behaviour")."""

UNEXPECTED_ERROR_BACKOFF = 2.0
"""An unexpected error (the API server gone mid-handler, say) is retried this soon rather than
after kopf's default minute, so an outage costs seconds once it ends."""


def retry_delay(retry: int, retry_after: float | None = None) -> float:
    """The one retry formula: LiteLLM's Retry-After when it sent one, else capped exponential."""
    if retry_after is not None:
        return retry_after
    return float(min(2.0**retry, MAX_RETRY_DELAY))


@dataclass(frozen=True)
class Retry:
    """A transient failure of a reconcile: retry after ``delay`` seconds."""

    delay: float
    message: str


def retry_later(retry: Retry | None) -> None:
    """Hand a transient failure to kopf, which retries the handler after its delay."""
    if retry is not None:
        raise kopf.TemporaryError(retry.message, delay=retry.delay)


def now_iso() -> str:
    return datetime.now(UTC).strftime(TIMESTAMP)


def post(body: kopf.Body, event: Event) -> None:
    kopf.event(body, type=event.type, reason=event.reason, message=event.message)


def first(store: Any) -> Any:
    """The single value an index keeps for a key (names are unique), or ``None``."""
    if store is None:
        return None
    return next(iter(store), None)


def plain(body: Mapping[str, Any]) -> dict[str, Any]:
    """A detached copy of a kopf body, safe to keep in an index."""
    return copy.deepcopy(dict(body))


async def each(calls: Iterable[Awaitable[Any]], at_once: int) -> None:
    """Await ``calls`` (made as they are taken), at most ``at_once`` at a time: thousands of
    requests at once only queue for the client's threads, each holding its coroutine."""
    pending = iter(calls)

    async def work() -> None:
        for call in pending:
            await call

    await asyncio.gather(*(work() for _ in range(at_once)))


class OneAtATime:
    """One reconcile per object at a time. kopf runs an object's change handlers one after the
    other, but a timer runs in a task of its own: without this, a team's resync could plan its
    keys on what it observed while the change handler was rotating them, and rotate again."""

    def __init__(self) -> None:
        self._locks: dict[tuple[str, str], asyncio.Lock] = {}
        self._users: dict[tuple[str, str], int] = {}

    @contextlib.asynccontextmanager
    async def holding(self, key: tuple[str, str]) -> AsyncIterator[None]:
        lock = self._locks.setdefault(key, asyncio.Lock())
        self._users[key] = self._users.get(key, 0) + 1
        try:
            async with lock:
                yield
        finally:
            self._users[key] -= 1
            if not self._users[key]:  # nobody holds or waits: forget the object
                del self._users[key], self._locks[key]

    def __len__(self) -> int:
        return len(self._locks)


async def listed_here(**_: Any) -> None:
    return None


Handler = Callable[..., Awaitable[Any]]


class Handover(Protocol):
    """What the watch stream (:mod:`litellm_operator.runtime.kopf_watch`) is told by, and
    tells, a kind's handlers."""

    def release(self, uid: str) -> None:
        """A handler of object ``uid`` ended: let the next listed or new object in."""

    def answer(self, kwargs: Mapping[str, Any]) -> bool:
        """If a create shortcut ran the handler for this event already, put what it did in
        kopf's patch (raising what it raised); whether it had."""


def with_indices(indices: ObjectIndices, handover: Handover) -> Callable[..., Handler]:
    """Wraps a handler so it receives the operator's ``indices`` among its kwargs, as kopf gives
    its own; with ``settles``, the object leaves the gates of the listing's replay and of new
    objects (``handover.release``) once the handler ends, whatever kopf does with it
    afterwards (sleep out a retry delay, say), and the handler is not run again for an event
    a create shortcut ran it for (``handover.answer``)."""

    def wrap(handler: Handler, settles: bool = False) -> Handler:
        @functools.wraps(handler)
        async def call(**kwargs: Any) -> Any:
            try:
                if settles and handover.answer(kwargs):
                    return None
                return await handler(**kwargs, **indices.views)
            finally:
                if settles:
                    handover.release(str(kwargs.get("uid") or ""))

        return call

    return wrap
