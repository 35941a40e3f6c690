"""Directory: one shared /user/list snapshot, refreshed after max_age and let go after it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any, cast

import pytest

from litellm_operator.litellm import Directory, LiteLLMClient, LiteLLMError
from litellm_operator.litellm.models import LiteLLMUserRecord


class ListingClient:
    """Stands in for LiteLLMClient.list_users: counts the listings."""

    def __init__(self) -> None:
        self.listings = 0

    async def list_users(self) -> AsyncIterator[LiteLLMUserRecord]:
        self.listings += 1
        await asyncio.sleep(0.01)
        for i in range(3):
            yield LiteLLMUserRecord(user_id=f"u{i}")


def directory(max_age: float) -> tuple[Directory, ListingClient]:
    client = ListingClient()
    return Directory(cast(LiteLLMClient, client), max_age), client


async def test_concurrent_callers_share_one_listing() -> None:
    users, client = directory(max_age=10)
    snapshots: list[Any] = await asyncio.gather(*(users.snapshot() for _ in range(5)))
    assert client.listings == 1
    assert all(set(s) == {"u0", "u1", "u2"} for s in snapshots)


async def test_an_old_snapshot_is_listed_again() -> None:
    users, client = directory(max_age=0.05)
    await users.snapshot()
    await asyncio.sleep(0.1)
    assert set(await users.snapshot()) == {"u0", "u1", "u2"}
    assert client.listings == 2


async def test_the_snapshot_is_let_go_once_too_old() -> None:
    users, _ = directory(max_age=0.05)
    await users.snapshot()
    assert users._users
    await asyncio.sleep(0.1)
    assert users._users == {}, "an expired snapshot is not kept in memory"


async def test_the_prefetched_snapshot_serves_the_resumes() -> None:
    users, client = directory(max_age=10)
    await users.prefetch()
    assert client.listings == 1
    held = await asyncio.gather(*(users.held() for _ in range(5)))
    assert all(set(h) == {"u0", "u1", "u2"} for h in held)
    assert client.listings == 1, "the resumes reuse the start-up snapshot"


async def test_a_resume_never_lists_again_once_the_snapshot_is_let_go() -> None:
    users, client = directory(max_age=0.05)
    await users.prefetch()
    await asyncio.sleep(0.1)
    assert await users.held() == {}
    assert client.listings == 1, "the rest of a long restart reads its users in batches"


async def test_a_resume_waits_for_the_listing_under_way() -> None:
    client = SlowClient()
    users = Directory(cast(LiteLLMClient, client), max_age=10)
    await users.prefetch(wait=0)
    assert set(await asyncio.wait_for(users.held(), 1)) == {"u0"}
    assert client.listings == 1


class FailingClient:
    async def list_users(self) -> AsyncIterator[LiteLLMUserRecord]:
        raise LiteLLMError("LiteLLM is down")
        yield  # an async generator


async def test_a_failed_prefetch_does_not_stop_the_start(caplog: pytest.LogCaptureFixture) -> None:
    users = Directory(cast(LiteLLMClient, FailingClient()), max_age=10)
    await users.prefetch()
    assert "no /user/list snapshot at start-up" in caplog.text
    assert users._users == {}


class SlowClient(ListingClient):
    async def list_users(self) -> AsyncIterator[LiteLLMUserRecord]:
        self.listings += 1
        await asyncio.sleep(0.2)
        yield LiteLLMUserRecord(user_id="u0")


async def test_a_slow_prefetch_does_not_hold_the_start_and_goes_on_in_the_background() -> None:
    client = SlowClient()
    users = Directory(cast(LiteLLMClient, client), max_age=10)
    await asyncio.wait_for(users.prefetch(wait=0.01), timeout=0.1)
    assert set(await users.snapshot()) == {"u0"}, "the resumes wait for the same listing"
    assert client.listings == 1
    await users.close()


async def test_close_stops_a_listing_under_way() -> None:
    client = SlowClient()
    users = Directory(cast(LiteLLMClient, client), max_age=10)
    await users.prefetch(wait=0)
    await users.close()
    assert users._users == {}
    await users.close()  # twice is harmless
