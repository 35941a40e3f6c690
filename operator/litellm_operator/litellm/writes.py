"""Coalesced user updates: concurrent ``/user/update`` calls become one ``/user/bulk_update``.

A policy edit updates every user of the policy, and a rollout reconciles dozens of them at
once. LiteLLM spends about half of each ``/user/update`` on the request around the update
(authentication, routing, its logging hooks), so the same bodies in bulk calls take about
half its time and CPU (measured in the README's Performance section). LiteLLM runs the very
code of ``/user/update`` for each entry of a bulk call (``_update_single_user_helper``).

:class:`UserWrites` gathers updates like :class:`~litellm_operator.litellm.UserReads` gathers
reads: a batch leaves :data:`WINDOW_SECONDS` after its first update, when it is full, or, while
:data:`MAX_FLIGHTS` batches are already in flight, as soon as one of them lands. Each caller
gets what ``/user/update`` alone would have given it:

* its own row as updated (``/user/bulk_update`` answers each entry as ``/user/update`` does);
* for an entry LiteLLM reports failed (a bare message), the typed error of that update sent
  again alone with ``/user/update``; the same for every entry of a batch LiteLLM refuses as a
  whole with a 4xx;
* for a batch that failed for a retryable reason (after the client's own retries), that error:
  each reconcile retries as it would its own update (updates set absolute values, so one that
  landed unseen is harmless to repeat).

A LiteLLM without the endpoint (404) is remembered, and updates go one by one from then on.
Two updates of one user never travel together or overlap: the second waits for the first.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Self

from litellm_operator.litellm.batching import Flights
from litellm_operator.litellm.client import LiteLLMClient
from litellm_operator.litellm.errors import LiteLLMError, NotFound
from litellm_operator.litellm.models import LiteLLMUserRecord, UpdateUserRequest, build

log = logging.getLogger(__name__)

WINDOW_SECONDS = 0.01
MAX_BATCH = 50
MAX_FLIGHTS = 4


@dataclass(frozen=True)
class _Write:
    user_id: str
    request: UpdateUserRequest
    future: asyncio.Future[LiteLLMUserRecord]


class UserWrites:
    """``await writes.update(user_id, fields)``: :meth:`LiteLLMClient.update_user`, batched."""

    def __init__(
        self,
        client: LiteLLMClient,
        *,
        window: float = WINDOW_SECONDS,
        max_batch: int = MAX_BATCH,
        max_flights: int = MAX_FLIGHTS,
    ) -> None:
        self.client = client
        self.max_batch = max_batch
        self.bulk = True
        """False once LiteLLM answered 404 for ``/user/bulk_update`` (a release without it)."""
        self._waiting: list[_Write] = []
        self._unsettled: dict[str, asyncio.Future[LiteLLMUserRecord]] = {}
        self._flights = Flights(self._flush, lambda: bool(self._waiting), window, max_flights)

    async def update(
        self, user_id: str, fields: UpdateUserRequest | Mapping[str, Any]
    ) -> LiteLLMUserRecord:
        """Same contract as :meth:`LiteLLMClient.update_user` (missing users are created)."""
        request = (
            fields if isinstance(fields, UpdateUserRequest) else build(UpdateUserRequest, fields)
        )
        while (earlier := self._unsettled.get(user_id)) is not None:
            await asyncio.wait([earlier])
        if not self.bulk or self._flights.closed:
            return await self.client.update_user(user_id, request)
        future: asyncio.Future[LiteLLMUserRecord] = asyncio.get_running_loop().create_future()
        self._unsettled[user_id] = future
        future.add_done_callback(lambda done: self._settled(user_id, done))
        self._waiting.append(_Write(user_id, request, future))
        self._flights.added(full=len(self._waiting) >= self.max_batch)
        # Shielded: a caller cancelled after its update left cannot unsend it, and the next
        # update of that user must still wait for this one to land.
        return await asyncio.shield(future)

    def _settled(self, user_id: str, future: asyncio.Future[LiteLLMUserRecord]) -> None:
        if self._unsettled.get(user_id) is future:
            del self._unsettled[user_id]
        if not future.cancelled():
            future.exception()  # retrieved: a caller that went away must not log it as lost

    def _flush(self) -> None:
        batch, self._waiting = self._waiting, []
        if batch:
            self._flights.launch(self._send(batch))

    async def _send(self, batch: list[_Write]) -> None:
        rows: list[LiteLLMUserRecord | None]
        try:
            rows = await self.client.update_users([(w.user_id, w.request) for w in batch])
        except NotFound:
            log.info("LiteLLM has no /user/bulk_update: updating users one by one")
            self.bulk = False
            rows = [None] * len(batch)
        except LiteLLMError as exc:
            if exc.retryable:
                _fail(batch, exc)
                return
            rows = [None] * len(batch)  # refused as a whole: each alone gets its own answer
        except Exception as exc:
            _fail(batch, exc)
            return
        except BaseException:  # cancelled: so are the updates waiting for this batch
            for write in batch:
                write.future.cancel()
            raise
        try:
            await asyncio.gather(*(self._answer(w, r) for w, r in zip(batch, rows, strict=True)))
        except BaseException:
            for write in batch:
                write.future.cancel()
            raise

    async def _answer(self, write: _Write, row: LiteLLMUserRecord | None) -> None:
        if row is None:
            try:
                row = await self.client.update_user(write.user_id, write.request)
            except Exception as exc:
                _fail([write], exc)
                return
        if not write.future.done():
            write.future.set_result(row)

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
        """Cancel updates not sent yet and batches in flight (their callers get
        ``CancelledError``); later updates go one by one."""
        self._flights.close()
        waiting, self._waiting = self._waiting, []
        for write in waiting:
            write.future.cancel()
        await self._flights.land()


def _fail(batch: list[_Write], exc: Exception) -> None:
    for write in batch:
        if not write.future.done():
            write.future.set_exception(exc)
