"""The snapshots of every LiteLLM user (one paged ``/user/list``, shared and kept packed) and of
every LiteLLM team (one ``/team/list``, shared).

:class:`Directory` is what a resume and a resync read instead of one ``/user/info`` per user;
:class:`PackedUsers` keeps the snapshot's records compressed until one is read;
:class:`TeamSnapshot` is what the teams' resync, and the users' reconciles and resync, read of
teams (settings, members, member budgets) instead of one ``/team/info`` per team.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import zlib
from collections.abc import Iterator, Mapping

from litellm_operator.litellm.client import LiteLLMClient
from litellm_operator.litellm.models import LiteLLMUserRecord, TeamRecord

log = logging.getLogger(__name__)

PREFETCH_WAIT_SECONDS = 5.0
"""kopf's start waits this long at most for the start-up /user/list snapshot (Directory)."""


class PackedUsers(Mapping[str, LiteLLMUserRecord]):
    """LiteLLM users by id, each kept as compressed JSON and decoded when read.

    A snapshot holds every LiteLLM user, the operator's and everyone else's, and each is read
    once or twice in its life (by a resume, by a resync): packed, it takes a fifth of the models'
    memory, for a decode per read (the README's Performance section, "Memory").
    """

    def __init__(self) -> None:
        self._packed: dict[str, bytes] = {}

    def add(self, record: LiteLLMUserRecord) -> None:
        self._packed[record.user_id] = zlib.compress(record.model_dump_json().encode())

    def __getitem__(self, user_id: str) -> LiteLLMUserRecord:
        return LiteLLMUserRecord.model_validate_json(zlib.decompress(self._packed[user_id]))

    def __iter__(self) -> Iterator[str]:
        return iter(self._packed)

    def __len__(self) -> int:
        return len(self._packed)


class Directory:
    """A snapshot of every LiteLLM user from ``/user/list``, refreshed at most once per ``max_age``.

    Concurrent callers share one refresh. A user missing from the snapshot is unknown, not
    absent: callers then ask ``/user/info`` (the snapshot may predate the user). The snapshot
    is packed (:class:`PackedUsers`) and let go once too old to be used.
    """

    def __init__(self, client: LiteLLMClient, max_age: float) -> None:
        self.client = client
        self.max_age = max_age
        self._users: Mapping[str, LiteLLMUserRecord] = {}
        self._taken = float("-inf")
        self._lock = asyncio.Lock()
        self._prefetching: asyncio.Task[None] | None = None

    async def snapshot(self) -> Mapping[str, LiteLLMUserRecord]:
        async with self._lock:
            if time.monotonic() - self._taken >= self.max_age:
                users = PackedUsers()
                async for user in self.client.list_users():
                    users.add(user)
                self._users = users
                self._taken = time.monotonic()
                asyncio.get_running_loop().call_later(self.max_age, self._expire, self._taken)
            return self._users

    async def held(self) -> Mapping[str, LiteLLMUserRecord]:
        """The snapshot held now, once a listing under way has ended; never a new listing
        (empty when none is held).

        What a resume reads: the start-up snapshot serves the resumes while it is fresh. A
        restart that outlasts it (many users handed to kopf a few at a time, with a short
        resync interval) reads the rest in batches (``UserReads``) instead of stopping every
        resume for a second listing of every LiteLLM user (the README's Performance section
        measures both).
        """
        async with self._lock:
            return self._users

    def _expire(self, taken: float) -> None:
        if self._taken == taken:
            self._users = {}

    async def prefetch(self, wait: float = PREFETCH_WAIT_SECONDS) -> None:
        """Take the snapshot now, at start-up, before kopf lists the users it will resume.

        Otherwise the first resumed user takes it, and every other user's resume waits for it
        inside kopf's handler machinery, and what those waiting invocations allocated stayed
        resident (see :mod:`litellm_operator.runtime.kopf_watch` on why a burst's memory stays;
        the README's Performance section, "Memory", has the figures). With the snapshot ready,
        each resume runs through without waiting.

        kopf starts nothing (not even its liveness endpoint) before its start-up handlers end,
        so this waits at most ``wait`` seconds; a longer listing goes on in the background, and
        the resumes wait for it as they did before. A failure is left to the resumes, which read
        LiteLLM themselves and report it.
        """
        if self._prefetching is None:
            self._prefetching = asyncio.create_task(self._prefetch())
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(self._prefetching), wait)

    async def _prefetch(self) -> None:
        try:
            await self.snapshot()
        except Exception as exc:  # never holds up the operator's start
            log.warning("no /user/list snapshot at start-up (users are read one by one): %s", exc)

    async def close(self) -> None:
        """Stop a start-up listing still under way."""
        if self._prefetching is not None:
            self._prefetching.cancel()
            await asyncio.gather(self._prefetching, return_exceptions=True)


class TeamSnapshot:
    """One ``/team/list`` answer, shared for ``max_age`` s.

    What the operator writes makes part of it stale: a team's own settings (:meth:`forget`: the
    team is dropped, callers read it with ``/team/info``), or only its memberships
    (:meth:`members_written`: its settings, the ``memberBudget`` marker among them, still hold;
    :meth:`members_fresh` says no). A refresh in flight while a team is written could bring its
    old state back, so such a team is left out of, or marked stale in, what that refresh stores.
    A team read fresh (``/team/info``) is put back with :meth:`remember`.
    """

    def __init__(self, client: LiteLLMClient, max_age: float) -> None:
        self._client = client
        self._max_age = max_age
        self._teams: dict[str, TeamRecord] | None = None
        self._taken = 0.0
        self._lock = asyncio.Lock()
        self._written_meanwhile: set[str] | None = None
        self._members_meanwhile: set[str] | None = None
        self._members_stale: set[str] = set()

    async def held(self) -> Mapping[str, TeamRecord]:
        async with self._lock:
            if self._teams is None or time.monotonic() - self._taken > self._max_age:
                self._written_meanwhile, self._members_meanwhile = set(), set()
                try:
                    teams = await self._client.list_teams()
                    for team_id in self._written_meanwhile:
                        teams.pop(team_id, None)
                    stale = set(self._members_meanwhile)
                finally:
                    self._written_meanwhile = self._members_meanwhile = None
                self._teams, self._members_stale = teams, stale
                self._taken = time.monotonic()
            return self._teams

    def forget(self, team_id: str) -> None:
        """The operator wrote the team: the snapshot no longer says what LiteLLM holds."""
        if self._teams is not None:
            self._teams.pop(team_id, None)
        if self._written_meanwhile is not None:
            self._written_meanwhile.add(team_id)

    def members_written(self, team_id: str) -> None:
        """The operator added, changed or removed a member of the team: its settings still
        hold, its memberships no longer do."""
        self._members_stale.add(team_id)
        if self._members_meanwhile is not None:
            self._members_meanwhile.add(team_id)

    def members_fresh(self, team_id: str) -> bool:
        return team_id not in self._members_stale

    def remember(self, record: TeamRecord) -> None:
        """A team just read with ``/team/info``: shared until the next write or refresh."""
        if self._teams is not None and self._written_meanwhile is None:
            self._teams[record.team_id] = record
            self._members_stale.discard(record.team_id)
