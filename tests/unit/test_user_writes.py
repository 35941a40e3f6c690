"""Coalesced user updates (UserWrites): many ``/user/update`` become one ``/user/bulk_update``.

HTTP is mocked with respx (error paths, ordering, fallbacks); that ``/user/bulk_update``
applies and answers each entry as ``/user/update`` does is proven against the real proxy in
tests/integration/test_litellm_users.py.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import respx

from litellm_operator.litellm import (
    MAX_BULK_UPDATE,
    BadRequest,
    LiteLLMClient,
    LiteLLMUserRecord,
    ServerError,
    UpdateUserRequest,
    UserWrites,
)

BASE = "http://litellm.test"


def row(entry: dict[str, Any]) -> dict[str, Any]:
    return {"user_id": entry["user_id"], "max_budget": entry.get("max_budget")}


class FakeLiteLLM:
    """``/user/bulk_update`` and ``/user/update``, recording each call's user ids in order.

    ``reject`` ids fail inside a bulk call (a bare message) and get a 400 alone; ``delay``
    slows each bulk call down."""

    def __init__(self, delay: float = 0.0, reject: frozenset[str] = frozenset()) -> None:
        self.bulk: list[list[str]] = []
        self.spans: list[tuple[float, float]] = []
        """When each bulk call arrived and answered (loop time)."""
        self.single: list[str] = []
        self.delay = delay
        self.reject = reject

    async def bulk_update(self, request: httpx.Request) -> httpx.Response:
        users = json.loads(request.content)["users"]
        self.bulk.append([u["user_id"] for u in users])
        arrived = asyncio.get_running_loop().time()
        if self.delay:
            await asyncio.sleep(self.delay)
        self.spans.append((arrived, asyncio.get_running_loop().time()))
        results = [
            {"user_id": u["user_id"], "success": False, "error": "nope"}
            if u["user_id"] in self.reject
            else {"user_id": u["user_id"], "success": True, "updated_user": {"data": row(u)}}
            for u in users
        ]
        return httpx.Response(200, json={"results": results})

    def update(self, request: httpx.Request) -> httpx.Response:
        entry = json.loads(request.content)
        self.single.append(entry["user_id"])
        if entry["user_id"] in self.reject:
            return httpx.Response(400, json={"error": {"message": f"bad {entry['user_id']}"}})
        return httpx.Response(200, json={"user_id": entry["user_id"], "data": row(entry)})

    def mount(self) -> None:
        respx.post(f"{BASE}/user/bulk_update").mock(side_effect=self.bulk_update)
        respx.post(f"{BASE}/user/update").mock(side_effect=self.update)


@pytest.fixture
async def client() -> AsyncIterator[LiteLLMClient]:
    async with LiteLLMClient(BASE, "sk-test", backoff_base=0.001, max_retries=0) as opened:
        yield opened


async def update_all(writes: UserWrites, ids: list[str]) -> list[Any]:
    return await asyncio.gather(
        *(writes.update(u, {"max_budget": float(i)}) for i, u in enumerate(ids)),
        return_exceptions=True,
    )


def budgets(answers: list[Any]) -> list[float | None]:
    return [a.max_budget if isinstance(a, LiteLLMUserRecord) else None for a in answers]


@respx.mock
async def test_concurrent_updates_share_one_call_and_each_gets_its_row(
    client: LiteLLMClient,
) -> None:
    fake = FakeLiteLLM()
    fake.mount()
    ids = [f"u{i}" for i in range(30)]
    answers = await update_all(UserWrites(client), ids)
    assert fake.bulk == [ids]
    assert fake.single == []
    assert [a.user_id for a in answers] == ids
    assert budgets(answers) == [float(i) for i in range(30)]


@respx.mock
@pytest.mark.parametrize(
    ("count", "sizes"),
    [(1, [1]), (50, [50]), (120, [50, 50, 20])],
    ids=["alone", "one-full-batch", "split"],
)
async def test_batches_never_exceed_their_size(
    client: LiteLLMClient, count: int, sizes: list[int]
) -> None:
    fake = FakeLiteLLM()
    fake.mount()
    answers = await update_all(UserWrites(client, max_batch=50), [f"u{i}" for i in range(count)])
    assert sorted((len(b) for b in fake.bulk), reverse=True) == sizes
    assert budgets(answers) == [float(i) for i in range(count)]


@respx.mock
async def test_an_entry_litellm_rejects_is_sent_alone_for_its_typed_error(
    client: LiteLLMClient,
) -> None:
    fake = FakeLiteLLM(reject=frozenset({"u1"}))
    fake.mount()
    answers = await update_all(UserWrites(client), ["u0", "u1", "u2"])
    assert fake.bulk == [["u0", "u1", "u2"]]
    assert fake.single == ["u1"]
    assert budgets(answers) == [0.0, None, 2.0]
    assert isinstance(answers[1], BadRequest)
    assert answers[1].endpoint == "/user/update"


@respx.mock
async def test_a_batch_refused_as_a_whole_is_sent_entry_by_entry(client: LiteLLMClient) -> None:
    fake = FakeLiteLLM()
    respx.post(f"{BASE}/user/bulk_update").mock(return_value=httpx.Response(422, json={}))
    respx.post(f"{BASE}/user/update").mock(side_effect=fake.update)
    writes = UserWrites(client)
    answers = await update_all(writes, ["u0", "u1"])
    assert sorted(fake.single) == ["u0", "u1"]
    assert budgets(answers) == [0.0, 1.0]
    assert writes.bulk  # a refusal is about that batch, not the endpoint


@respx.mock
async def test_a_litellm_without_the_endpoint_is_updated_one_by_one_from_then_on(
    client: LiteLLMClient,
) -> None:
    fake = FakeLiteLLM()
    bulk = respx.post(f"{BASE}/user/bulk_update").mock(
        return_value=httpx.Response(404, json={"detail": "Not Found"})
    )
    respx.post(f"{BASE}/user/update").mock(side_effect=fake.update)
    writes = UserWrites(client)
    assert budgets(await update_all(writes, ["u0", "u1"])) == [0.0, 1.0]
    assert not writes.bulk
    assert budgets(await update_all(writes, ["u2", "u3"])) == [0.0, 1.0]
    assert bulk.call_count == 1
    assert sorted(fake.single) == ["u0", "u1", "u2", "u3"]


@respx.mock
async def test_a_batch_that_fails_for_a_retryable_reason_fails_each_update_with_it(
    client: LiteLLMClient,
) -> None:
    respx.post(f"{BASE}/user/bulk_update").mock(return_value=httpx.Response(503, json={}))
    single = respx.post(f"{BASE}/user/update")
    answers = await update_all(UserWrites(client), ["u0", "u1"])
    assert all(isinstance(a, ServerError) for a in answers)
    assert single.call_count == 0  # the reconciles retry, as they would their own update


@respx.mock
async def test_two_updates_of_one_user_never_travel_together(client: LiteLLMClient) -> None:
    fake = FakeLiteLLM(delay=0.05)
    fake.mount()
    writes = UserWrites(client)
    first = asyncio.create_task(writes.update("u0", {"max_budget": 1.0}))
    await asyncio.sleep(0.02)  # the first batch is in flight
    second = await asyncio.gather(
        writes.update("u0", {"max_budget": 2.0}), writes.update("u1", {"max_budget": 3.0})
    )
    assert (await first).max_budget == 1.0
    assert budgets(list(second)) == [2.0, 3.0]
    assert fake.bulk[0] == ["u0"]
    assert sorted(fake.bulk[1:]) in ([["u0"], ["u1"]], [["u0", "u1"]], [["u1"], ["u0"]])
    assert all(batch.count("u0") <= 1 for batch in fake.bulk)
    second_u0 = next(i for i, batch in enumerate(fake.bulk) if i and "u0" in batch)
    assert fake.spans[second_u0][0] >= fake.spans[0][1]


@respx.mock
async def test_a_cancelled_caller_still_holds_back_the_next_update_of_its_user(
    client: LiteLLMClient,
) -> None:
    fake = FakeLiteLLM(delay=0.05)
    fake.mount()
    writes = UserWrites(client)
    gone = asyncio.create_task(writes.update("u0", {"max_budget": 1.0}))
    await asyncio.sleep(0.02)
    gone.cancel()
    answer = await writes.update("u0", {"max_budget": 2.0})
    assert answer.max_budget == 2.0
    assert fake.bulk == [["u0"], ["u0"]]
    (_, first_answered), (second_arrived, _) = fake.spans
    assert second_arrived >= first_answered  # sent after the first landed, not beside it


@respx.mock
async def test_close_cancels_what_is_waiting(client: LiteLLMClient) -> None:
    FakeLiteLLM().mount()
    writes = UserWrites(client, window=10)
    waiting = asyncio.create_task(writes.update("u0", {"max_budget": 1.0}))
    await asyncio.sleep(0)
    await writes.close()
    with pytest.raises(asyncio.CancelledError):
        await waiting


@respx.mock
async def test_update_users_refuses_what_one_call_cannot_carry(client: LiteLLMClient) -> None:
    request = UpdateUserRequest.of(max_budget=1.0)
    with pytest.raises(ValueError, match="distinct"):
        await client.update_users([("u0", request), ("u0", request)])
    with pytest.raises(ValueError, match="distinct"):
        await client.update_users([(f"u{i}", request) for i in range(MAX_BULK_UPDATE + 1)])


@respx.mock
@pytest.mark.parametrize(
    "results",
    [
        [],
        [{"success": True, "updated_user": {"data": {"user_id": "other"}}}],
        [{"success": True, "updated_user": "not a row"}],
        [{"success": True, "updated_user": {"data": {"user_id": "u0", "max_budget": "x"}}}],
        ["not an entry"],
    ],
    ids=["missing", "another-user", "not-a-row", "invalid-row", "not-an-entry"],
)
async def test_an_answer_that_does_not_show_the_update_is_sent_again_alone(
    client: LiteLLMClient, results: list[Any]
) -> None:
    fake = FakeLiteLLM()
    respx.post(f"{BASE}/user/bulk_update").mock(
        return_value=httpx.Response(200, json={"results": results})
    )
    respx.post(f"{BASE}/user/update").mock(side_effect=fake.update)
    assert (await UserWrites(client).update("u0", {"max_budget": 5.0})).max_budget == 5.0
    assert fake.single == ["u0"]
