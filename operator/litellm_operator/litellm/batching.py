"""Coalesced user reads: concurrent single-user reads become one ``/user/list?user_ids=`` call.

A reconcile reads its user once before planning and, after a create, once more. Under load
(a thousand users applied at once, a policy edit over all of them) those reads arrive
together; each ``/user/info`` costs LiteLLM about as much as the write it precedes, while one
``/user/list`` filtered by up to 50 ids costs about as much as two. :class:`UserReads` gathers
reads into one call and hands each caller its own answer: a batch leaves
:data:`WINDOW_SECONDS` after its first read, when it is full, or, while
:data:`MAX_FLIGHTS` batches are already in flight, as soon as one of them lands. So a lone
read waits the window and no more, and under load batches grow by themselves.

When the ids are known ahead (a policy edit knows every user it is about to reconcile, in the
order it flips them), :meth:`UserReads.prefetch` reads them ahead in full batches, at most
:data:`READ_AHEAD` answers not yet taken at a time: each reconcile takes its user's answer
instead of reading it (if it comes within :data:`PREFETCH_TTL_SECONDS`), and each answer taken
lets the next ids be read. Reading everything at once served only the start of a long rollout:
most answers expired before their reconcile (the README's Performance section, 10,000 users).

Ids a filter cannot carry (a comma) are read with ``/user/info``. A failed batch fails every
read in it with the same typed error, so each reconcile handles it as it would its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Callable, Coroutine, Iterable
from itertools import takewhile
from types import TracebackType
from typing import Any, Self

from litellm_operator.litellm.client import LiteLLMClient
from litellm_operator.litellm.errors import LiteLLMError
from litellm_operator.litellm.models import LiteLLMUserRecord

log = logging.getLogger(__name__)

WINDOW_SECONDS = 0.01
MAX_BATCH = 50
MAX_FLIGHTS = 2
PREFETCH_TTL_SECONDS = 30.0
"""A prefetched answer not taken by then is dropped: a reconcile that late reads afresh."""
READ_AHEAD = 4 * MAX_BATCH
"""Prefetched answers waiting for their reconcile, at most (a few seconds of a rollout)."""
MAX_QUERY_CHARS = 4000
"""Keeps the query string well under the proxy's request-line limits, whatever the ids."""


class Flights:
    """When a coalescer's next batch leaves, and its batches in the air (shared by
    :class:`UserReads` and :class:`~litellm_operator.litellm.UserWrites`).

    A batch leaves ``window`` seconds after its first entry, when it is full, or, while
    ``max_flights`` batches are in the air, as soon as one of them lands. ``flush`` hands what
    is waiting to :meth:`launch`; ``waiting`` says whether anything is.
    """

    def __init__(
        self,
        flush: Callable[[], None],
        waiting: Callable[[], bool],
        window: float,
        max_flights: int,
    ) -> None:
        self._hand_over = flush
        self._waiting = waiting
        self.window = window
        self.max_flights = max_flights
        self.closed = False
        self._timer: asyncio.TimerHandle | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    def added(self, full: bool) -> None:
        """An entry joined the waiting batch (``full``: it may not grow any more)."""
        if full:
            self.flush()
        elif self._timer is None and len(self._tasks) < self.max_flights:
            self._timer = asyncio.get_running_loop().call_later(self.window, self.flush)

    def flush(self) -> None:
        """The waiting batch leaves now."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._hand_over()

    def launch(self, send: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(send)
        self._tasks.add(task)
        task.add_done_callback(self._landed)

    def _landed(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if self._waiting() and self._timer is None and not self.closed:
            self.flush()

    def close(self) -> None:
        """No batch leaves from now on; call :meth:`land` to end those in the air."""
        self.closed = True
        if self._timer is not None:
            self._timer.cancel()

    async def land(self) -> None:
        """Cancel the batches in the air, and wait for them to end."""
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError):
                await task


class UserReads:
    """``await reads.get(user_id)``: the user as LiteLLM holds it, or ``None``; batched."""

    def __init__(
        self,
        client: LiteLLMClient,
        *,
        window: float = WINDOW_SECONDS,
        max_batch: int = MAX_BATCH,
        max_query_chars: int = MAX_QUERY_CHARS,
        max_flights: int = MAX_FLIGHTS,
        read_ahead: int = READ_AHEAD,
    ) -> None:
        self.client = client
        self.max_batch = max_batch
        self.max_query_chars = max_query_chars
        self.read_ahead = read_ahead
        self._ahead: deque[str] = deque()
        self._queued: set[str] = set()
        self._expiry: asyncio.TimerHandle | None = None
        self._waiting: dict[str, list[asyncio.Future[LiteLLMUserRecord | None]]] = {}
        self._chars = 0
        self._flights = Flights(self._flush, lambda: bool(self._waiting), window, max_flights)
        self._parked: dict[str, tuple[float, asyncio.Future[LiteLLMUserRecord | None]]] = {}

    def prefetch(self, user_ids: Iterable[str]) -> None:
        """Read ``user_ids`` ahead, in this order and in full batches; :meth:`get` hands each
        answer out once."""
        for user_id in user_ids:
            if "," not in user_id and user_id not in self._queued and user_id not in self._parked:
                self._queued.add(user_id)
                self._ahead.append(user_id)
        self._pump()

    def _pump(self) -> None:
        """Launch the next batches of queued ids while fewer than ``read_ahead`` answers wait."""
        if self._flights.closed:
            return
        loop = asyncio.get_running_loop()
        self._drop_expired(loop.time())
        while self._ahead and len(self._parked) < self.read_ahead:
            batch: dict[str, list[asyncio.Future[LiteLLMUserRecord | None]]] = {}
            chars = 0
            while self._ahead and len(batch) < self.max_batch:
                user_id = self._ahead[0]
                if chars + len(user_id) + 1 > self.max_query_chars:
                    break
                self._ahead.popleft()
                if user_id not in self._queued:  # read meanwhile by its own reconcile
                    continue
                self._queued.discard(user_id)
                future: asyncio.Future[LiteLLMUserRecord | None] = loop.create_future()
                future.add_done_callback(_retrieve)
                self._parked[user_id] = (loop.time() + PREFETCH_TTL_SECONDS, future)
                batch[user_id] = [future]
                chars += len(user_id) + 1
            if batch:
                self._launch(batch)
        if self._parked and self._expiry is None:  # answers nobody takes make room in time
            self._expiry = loop.call_later(PREFETCH_TTL_SECONDS + 1, self._expired)

    def _expired(self) -> None:
        self._expiry = None
        self._pump()

    def _drop_expired(self, now: float) -> None:
        # Parked in the order they expire (one TTL for all): stop at the first still valid, as
        # this runs on every answer taken during a rollout.
        expired = takewhile(lambda item: item[1][0] < now, self._parked.items())
        for user_id in [u for u, _ in expired]:
            del self._parked[user_id]

    async def get(self, user_id: str) -> LiteLLMUserRecord | None:
        if "," in user_id:
            return await self.client.get_user(user_id)
        self._queued.discard(user_id)
        parked = self._parked.pop(user_id, None)
        if parked is not None:
            self._pump()
        if parked is not None and parked[0] >= asyncio.get_running_loop().time():
            try:
                return await asyncio.shield(parked[1])
            except LiteLLMError as exc:  # the prefetch failed: read it like any other
                log.debug("prefetched read of %s failed (%s); reading again", user_id, exc)
        future: asyncio.Future[LiteLLMUserRecord | None] = (
            asyncio.get_running_loop().create_future()
        )
        if user_id not in self._waiting:
            if self._chars + len(user_id) + 1 > self.max_query_chars:
                self._flights.flush()
            self._chars += len(user_id) + 1
        self._waiting.setdefault(user_id, []).append(future)
        self._flights.added(full=len(self._waiting) >= self.max_batch)
        return await future

    def _flush(self) -> None:
        batch, self._waiting, self._chars = self._waiting, {}, 0
        if batch:
            self._launch(batch)

    def _launch(self, batch: dict[str, list[asyncio.Future[LiteLLMUserRecord | None]]]) -> None:
        self._flights.launch(self._read(batch))

    async def _read(self, batch: dict[str, list[asyncio.Future[LiteLLMUserRecord | None]]]) -> None:
        try:
            found = await self.client.get_users(batch)
        except Exception as exc:
            for futures in batch.values():
                for future in futures:
                    if not future.done():
                        future.set_exception(exc)
            return
        except BaseException:  # cancelled: so are the reads waiting for this batch
            for futures in batch.values():
                for future in futures:
                    future.cancel()
            raise
        for user_id, futures in batch.items():
            for future in futures:
                if not future.done():
                    future.set_result(found.get(user_id))

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self) -> None:
        """Cancel reads in flight (their callers get ``CancelledError``)."""
        self._flights.close()
        waiting, self._waiting = self._waiting, {}
        for _, future in self._parked.values():
            future.cancel()
        self._parked.clear()
        self._ahead.clear()
        self._queued.clear()
        if self._expiry is not None:
            self._expiry.cancel()
        for futures in waiting.values():
            for future in futures:
                future.cancel()
        await self._flights.land()


def _retrieve(future: asyncio.Future[LiteLLMUserRecord | None]) -> None:
    """A prefetched answer nobody took must not log "exception was never retrieved"."""
    if not future.cancelled():
        future.exception()
