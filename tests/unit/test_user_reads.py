"""Batched user reads (UserReads): one ``/user/list?user_ids=`` call answers many readers.

HTTP is mocked with respx; that LiteLLM's filter matches ids exactly is proven against the real
proxy in tests/integration/test_litellm_users.py.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
import pytest
import respx

from litellm_operator.litellm import LiteLLMClient, ServerError, UserReads, batching

BASE = "http://litellm.test"
EXISTING = {f"u{i}" for i in range(0, 200, 2)}  # even ids exist


class FakeList:
    """``/user/list`` over EXISTING, recording the ids of each call; optionally slow."""

    def __init__(self, delay: float = 0.0, extra: str | None = None) -> None:
        self.calls: list[list[str]] = []
        self.delay = delay
        self.extra = extra

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        ids = request.url.params["user_ids"].split(",")
        self.calls.append(ids)
        if self.delay:
            await asyncio.sleep(self.delay)
        users = [{"user_id": i, "max_budget": 1.0} for i in ids if i in EXISTING]
        if self.extra is not None:  # a user LiteLLM returns without having been asked for
            users.append({"user_id": self.extra, "max_budget": 9.0})
        return httpx.Response(200, json={"users": users, "total_pages": 1})


@pytest.fixture
async def client() -> AsyncIterator[LiteLLMClient]:
    async with LiteLLMClient(BASE, "sk-test", backoff_base=0.001, max_retries=0) as opened:
        yield opened


async def read_all(reads: UserReads, ids: list[str]) -> dict[str, float | None]:
    records = await asyncio.gather(*(reads.get(i) for i in ids))
    return {i: (r.max_budget if r else None) for i, r in zip(ids, records, strict=True)}


@respx.mock
async def test_concurrent_reads_share_one_call(client: LiteLLMClient) -> None:
    fake = FakeList()
    respx.get(f"{BASE}/user/list").mock(side_effect=fake)
    ids = [f"u{i}" for i in range(30)]
    found = await read_all(UserReads(client), ids)
    assert len(fake.calls) == 1
    assert sorted(fake.calls[0]) == sorted(ids)
    assert found == {i: (1.0 if i in EXISTING else None) for i in ids}


@respx.mock
async def test_a_lone_read_is_answered_alone(client: LiteLLMClient) -> None:
    fake = FakeList()
    respx.get(f"{BASE}/user/list").mock(side_effect=fake)
    reads = UserReads(client)
    assert (await reads.get("u2")) is not None
    assert await reads.get("u3") is None
    assert fake.calls == [["u2"], ["u3"]]


@pytest.mark.parametrize(
    ("count", "max_batch", "most"),
    [
        pytest.param(120, 50, 50, id="full-batches-leave-at-once"),
        pytest.param(7, 3, 3, id="small-batches"),
    ],
)
@respx.mock
async def test_batches_never_exceed_their_size(
    client: LiteLLMClient, count: int, max_batch: int, most: int
) -> None:
    fake = FakeList()
    respx.get(f"{BASE}/user/list").mock(side_effect=fake)
    ids = [f"u{i}" for i in range(count)]
    found = await read_all(UserReads(client, max_batch=max_batch), ids)
    assert max(len(c) for c in fake.calls) <= most
    assert sorted(i for c in fake.calls for i in c) == sorted(ids)
    assert found == {i: (1.0 if i in EXISTING else None) for i in ids}


@respx.mock
async def test_long_ids_split_the_query(client: LiteLLMClient) -> None:
    fake = FakeList()
    respx.get(f"{BASE}/user/list").mock(side_effect=fake)
    ids = [f"{'x' * 240}-{i}" for i in range(10)]
    await read_all(UserReads(client, max_query_chars=1000), ids)
    assert len(fake.calls) >= 3
    assert all(sum(len(i) + 1 for i in c) <= 1000 for c in fake.calls)


@respx.mock
async def test_the_same_id_read_twice_is_asked_once(client: LiteLLMClient) -> None:
    fake = FakeList()
    respx.get(f"{BASE}/user/list").mock(side_effect=fake)
    reads = UserReads(client)
    both = await asyncio.gather(reads.get("u4"), reads.get("u4"))
    assert [r.user_id if r else None for r in both] == ["u4", "u4"]
    assert fake.calls == [["u4"]]


@respx.mock
async def test_an_id_with_a_comma_is_read_with_user_info(client: LiteLLMClient) -> None:
    info = respx.get(f"{BASE}/user/info").mock(
        return_value=httpx.Response(200, json={"user_info": {"user_id": "a,b"}})
    )
    listed = respx.get(f"{BASE}/user/list").mock(side_effect=FakeList())
    record = await UserReads(client).get("a,b")
    assert record is not None
    assert record.user_id == "a,b"
    assert info.call_count == 1
    assert listed.call_count == 0


@respx.mock
async def test_a_user_not_asked_for_is_not_handed_out(client: LiteLLMClient) -> None:
    respx.get(f"{BASE}/user/list").mock(side_effect=FakeList(extra="u1x"))
    assert await UserReads(client).get("u1") is None


@respx.mock
async def test_a_failed_batch_fails_each_of_its_reads(client: LiteLLMClient) -> None:
    respx.get(f"{BASE}/user/list").mock(return_value=httpx.Response(500, json={}))
    reads = UserReads(client)
    results = await asyncio.gather(*(reads.get(f"u{i}") for i in range(5)), return_exceptions=True)
    assert all(isinstance(r, ServerError) for r in results)


@respx.mock
async def test_reads_wait_for_a_flight_to_land_and_then_go_together(
    client: LiteLLMClient,
) -> None:
    fake = FakeList(delay=0.05)
    respx.get(f"{BASE}/user/list").mock(side_effect=fake)
    reads = UserReads(client, max_flights=1)
    first = asyncio.ensure_future(reads.get("u0"))
    await asyncio.sleep(0.02)  # the first batch is in flight
    later = [asyncio.ensure_future(reads.get(f"u{i}")) for i in range(1, 9)]
    await asyncio.gather(first, *later)
    assert fake.calls == [["u0"], [f"u{i}" for i in range(1, 9)]]


@respx.mock
async def test_close_cancels_what_is_waiting(client: LiteLLMClient) -> None:
    respx.get(f"{BASE}/user/list").mock(side_effect=FakeList(delay=1.0))
    reads = UserReads(client, window=10.0)
    waiting = asyncio.ensure_future(reads.get("u0"))
    await asyncio.sleep(0)
    await reads.close()
    with pytest.raises(asyncio.CancelledError):
        await waiting


@pytest.mark.parametrize(
    "ids",
    [
        pytest.param([f"u{i}" for i in range(101)], id="more-than-a-page"),
        pytest.param(["a,b"], id="a-comma"),
    ],
)
async def test_get_users_refuses_what_one_filter_cannot_carry(
    client: LiteLLMClient, ids: list[str]
) -> None:
    with pytest.raises(ValueError, match="at most 100 ids"):
        await client.get_users(ids)


@respx.mock
async def test_prefetched_reads_go_in_full_batches_and_are_handed_out_once(
    client: LiteLLMClient,
) -> None:
    fake = FakeList()
    respx.get(f"{BASE}/user/list").mock(side_effect=fake)
    reads = UserReads(client)
    ids = [f"u{i}" for i in range(120)]
    reads.prefetch(ids)
    found = await read_all(reads, ids)
    assert [len(c) for c in fake.calls] == [50, 50, 20]
    assert found == {i: (1.0 if i in EXISTING else None) for i in ids}
    await reads.get("u0")  # taken already: read again
    assert fake.calls[-1] == ["u0"]


@respx.mock
async def test_a_failed_prefetch_is_read_again(client: LiteLLMClient) -> None:
    fake = FakeList()
    answers = iter([httpx.Response(500, json={})])

    async def first_fails(request: httpx.Request) -> httpx.Response:
        return next(answers, None) or await fake(request)

    route = respx.get(f"{BASE}/user/list").mock(side_effect=first_fails)
    reads = UserReads(client)
    reads.prefetch(["u2"])
    record = await reads.get("u2")
    assert record is not None
    assert route.call_count == 2


@respx.mock
async def test_an_expired_prefetch_is_not_handed_out(
    client: LiteLLMClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = FakeList()
    respx.get(f"{BASE}/user/list").mock(side_effect=fake)
    monkeypatch.setattr(batching, "PREFETCH_TTL_SECONDS", 0.0)
    reads = UserReads(client)
    reads.prefetch(["u2"])
    await asyncio.sleep(0.01)
    await reads.get("u2")
    assert len(fake.calls) == 2


def many(n: int) -> list[str]:
    return [f"u{i}" for i in range(n)]


@respx.mock
async def test_prefetch_reads_ahead_of_the_reconciles_not_all_at_once(
    client: LiteLLMClient,
) -> None:
    fake = FakeList()
    respx.get(f"{BASE}/user/list").mock(side_effect=fake)
    reads = UserReads(client, read_ahead=100)
    ids = many(1000)
    reads.prefetch(ids)
    await asyncio.sleep(0.01)
    assert len(fake.calls) == 2, "100 answers ahead: two batches of 50, no more"
    found = {}
    for user_id in ids:  # the reconciles take their answers in the order of the flips
        record = await reads.get(user_id)
        found[user_id] = record.max_budget if record else None
    assert found == {i: (1.0 if i in EXISTING else None) for i in ids}
    assert [len(c) for c in fake.calls] == [50] * 20, "every read came from the prefetch"


@respx.mock
async def test_a_rollout_longer_than_the_ttl_is_still_served_by_the_prefetch(
    client: LiteLLMClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = FakeList()
    respx.get(f"{BASE}/user/list").mock(side_effect=fake)
    # A TTL well above how long an answer waits ahead (20 answers, about 0.1 s unloaded), so a
    # loaded machine does not expire them; the rollout (400 reads, at least 2 s) outlasts it.
    monkeypatch.setattr(batching, "PREFETCH_TTL_SECONDS", 1.0)
    reads = UserReads(client, max_batch=10, read_ahead=20)
    ids = many(400)
    reads.prefetch(ids)
    started = asyncio.get_running_loop().time()
    for user_id in ids:
        await reads.get(user_id)
        await asyncio.sleep(0.005)
    assert asyncio.get_running_loop().time() - started > 1.0, "the rollout outlasted the TTL"
    assert len(fake.calls) == 40, "no answer expired unread: no read of its own"


@respx.mock
async def test_an_id_read_before_its_turn_is_not_read_again_ahead(client: LiteLLMClient) -> None:
    fake = FakeList()
    respx.get(f"{BASE}/user/list").mock(side_effect=fake)
    reads = UserReads(client, read_ahead=50)
    ids = many(100)
    reads.prefetch(ids)
    await reads.get("u98")  # out of order: its own (batched) read
    for user_id in ids:
        if user_id != "u98":
            await reads.get(user_id)
    read = [i for call in fake.calls for i in call]
    assert sorted(read) == sorted(ids), "each id read exactly once"
    await reads.close()
