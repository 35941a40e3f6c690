"""Users against a real LiteLLM: /user/new, /user/info, /user/update, /user/delete, /user/list."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime, time, timedelta
from typing import Any

import httpx
import pytest

from devenv.litellm import LiteLLMEndpoint
from litellm_operator.litellm import (
    BadRequest,
    EmailInUse,
    LiteLLMClient,
    LiteLLMUserRecord,
    NewUserRequest,
    NotFound,
    UpdateUserRequest,
    UserExists,
    UserWrites,
)

pytestmark = pytest.mark.integration


async def test_create_then_get_returns_the_managed_fields(
    litellm_client: LiteLLMClient, make_id: Callable[[str], str]
) -> None:
    uid = make_id("user")
    req = NewUserRequest.of(
        user_id=uid,
        user_email=f"{uid}@example.test",
        user_alias="Alice",
        user_role="internal_user",
        max_budget=5.0,
        budget_duration="30d",
        models=["gpt-4o"],
        tpm_limit=100,
        rpm_limit=10,
        metadata={"owner": "op"},
    )
    created = await litellm_client.create_user(req)
    assert created.user_id == uid
    got = await litellm_client.get_user(uid)
    assert got is not None
    assert (got.user_email, got.user_alias, got.user_role) == (
        req.to_wire()["user_email"],
        "Alice",
        "internal_user",
    )
    assert (got.max_budget, got.budget_duration, got.models) == (5.0, "30d", ["gpt-4o"])
    assert (got.tpm_limit, got.rpm_limit, got.metadata, got.teams) == (100, 10, {"owner": "op"}, [])
    assert got.budget_reset_at is not None
    assert await litellm_client.list_user_keys(uid) == []  # auto_create_key is off


async def test_get_unknown_user_is_none(litellm_client: LiteLLMClient, unique_id: str) -> None:
    assert await litellm_client.get_user(unique_id) is None


async def test_create_existing_id_raises_user_exists(
    litellm_client: LiteLLMClient, unique_id: str
) -> None:
    await litellm_client.create_user(NewUserRequest.of(user_id=unique_id))
    with pytest.raises(UserExists) as info:
        await litellm_client.create_user(NewUserRequest.of(user_id=unique_id))
    assert info.value.status_code == 409


async def test_409_for_a_taken_email_is_email_in_use_not_user_exists(
    litellm_client: LiteLLMClient, make_id: Callable[[str], str]
) -> None:
    first, second = make_id("user"), make_id("user")
    email = f"{first}@example.test"
    await litellm_client.create_user(NewUserRequest.of(user_id=first, user_email=email))
    with pytest.raises(EmailInUse) as info:
        await litellm_client.create_user(NewUserRequest.of(user_id=second, user_email=email))
    assert info.value.status_code == 409
    assert await litellm_client.get_user(second) is None


async def test_invalid_field_is_bad_request_with_litellm_message(
    litellm_client: LiteLLMClient, unique_id: str
) -> None:
    with pytest.raises(BadRequest) as info:
        await litellm_client.create_user(
            NewUserRequest.of(user_id=unique_id, budget_duration="bogus")
        )
    assert info.value.status_code == 400
    assert "Invalid budget_duration 'bogus'" in info.value.message
    assert not info.value.retryable


async def test_update_on_unknown_user_creates_it_so_never_probe_with_it(
    litellm_client: LiteLLMClient, unique_id: str
) -> None:
    assert await litellm_client.get_user(unique_id) is None
    await litellm_client.update_user(unique_id, {"max_budget": 1.0})
    created = await litellm_client.get_user(unique_id)
    assert created is not None
    assert created.max_budget == 1.0


async def test_update_leaves_omitted_fields_and_null_clears_the_four_clearable_fields(
    litellm_client: LiteLLMClient, unique_id: str
) -> None:
    await litellm_client.create_user(
        NewUserRequest.of(
            user_id=unique_id,
            user_alias="keep",
            max_budget=5.0,
            budget_duration="1d",
            tpm_limit=7,
            rpm_limit=8,
            models=["gpt-4o"],
        )
    )
    await litellm_client.update_user(unique_id, {"max_budget": 6.0})
    partial = await litellm_client.get_user(unique_id)
    assert partial is not None
    assert (partial.max_budget, partial.tpm_limit, partial.user_alias) == (6.0, 7, "keep")

    clear = dict.fromkeys(["max_budget", "budget_duration", "tpm_limit", "rpm_limit"])
    await litellm_client.update_user(unique_id, clear)
    cleared = await litellm_client.get_user(unique_id)
    assert cleared is not None
    assert (cleared.max_budget, cleared.budget_duration) == (None, None)
    assert (cleared.tpm_limit, cleared.rpm_limit, cleared.budget_reset_at) == (None, None, None)
    assert (cleared.models, cleared.user_alias) == (["gpt-4o"], "keep")


async def test_null_or_empty_is_ignored_for_other_fields_so_the_model_rejects_it(
    litellm_env: LiteLLMEndpoint, litellm_client: LiteLLMClient, unique_id: str
) -> None:
    await litellm_client.create_user(
        NewUserRequest.of(user_id=unique_id, user_alias="a", models=["gpt-4o"], metadata={"k": 1})
    )
    async with _raw(litellm_env) as raw:
        body: dict[str, Any] = {
            "user_id": unique_id,
            "user_alias": None,
            "models": [],
            "metadata": {},
        }
        (await raw.post("/user/update", json=body)).raise_for_status()
    after = await litellm_client.get_user(unique_id)
    assert after is not None
    assert (after.user_alias, after.models, after.metadata) == ("a", ["gpt-4o"], {"k": 1})
    empties: list[tuple[str, Any]] = [("user_alias", None), ("models", []), ("metadata", {})]
    for field, empty in empties:
        with pytest.raises(ValueError, match=field):
            UpdateUserRequest.of(**{field: empty})


async def test_metadata_is_replaced_as_a_whole(
    litellm_client: LiteLLMClient, unique_id: str
) -> None:
    await litellm_client.create_user(
        NewUserRequest.of(user_id=unique_id, metadata={"a": 1, "b": 2})
    )
    await litellm_client.update_user(unique_id, {"metadata": {"c": 3}})
    user = await litellm_client.get_user(unique_id)
    assert user is not None
    assert user.metadata == {"c": 3}


async def test_sending_budget_duration_recomputes_budget_reset_at_from_now(
    litellm_client: LiteLLMClient, unique_id: str
) -> None:
    """Each send recomputes the reset from *now* (calendar aligned), so resending an unchanged
    duration after the period started moves the reset later: send it only when it changed."""
    await litellm_client.create_user(
        NewUserRequest.of(user_id=unique_id, max_budget=1.0, budget_duration="30d")
    )
    monthly = await _reset_at(litellm_client, unique_id)
    await litellm_client.update_user(unique_id, {"budget_duration": "1d"})
    daily = await _reset_at(litellm_client, unique_id)
    tomorrow = (datetime.now(UTC) + timedelta(days=1)).date()
    assert (daily.date(), daily.time()) == (tomorrow, time(0, 0))
    assert monthly.day == 1
    assert monthly >= daily
    await litellm_client.update_user(unique_id, {"budget_duration": "30d"})
    assert await _reset_at(litellm_client, unique_id) == monthly  # recomputed again
    await litellm_client.update_user(unique_id, {"max_budget": 2.0})
    assert await _reset_at(litellm_client, unique_id) == monthly  # untouched when omitted


async def _reset_at(client: LiteLLMClient, user_id: str) -> datetime:
    user = await client.get_user(user_id)
    assert user is not None
    assert user.budget_reset_at is not None
    return user.budget_reset_at


async def test_delete_users_and_404_for_the_whole_request_if_one_is_missing(
    litellm_client: LiteLLMClient, make_id: Callable[[str], str]
) -> None:
    present, missing = make_id("user"), make_id("user")
    await litellm_client.create_user(NewUserRequest.of(user_id=present))
    with pytest.raises(NotFound):
        await litellm_client.delete_users([present, missing])
    assert await litellm_client.get_user(present) is not None  # nothing was deleted
    await litellm_client.delete_users([present])
    assert await litellm_client.get_user(present) is None


async def test_list_users_pages_beyond_100(
    litellm_client: LiteLLMClient, make_id: Callable[[str], str]
) -> None:
    prefix = make_id("page")
    ids = {f"{prefix}-{i:03d}" for i in range(105)}
    await asyncio.gather(*(litellm_client.create_user(NewUserRequest.of(user_id=u)) for u in ids))
    seen = [u.user_id async for u in litellm_client.list_users()]
    assert ids <= set(seen)
    assert len(seen) == len(set(seen)) > 100
    small_pages = {u.user_id async for u in litellm_client.list_users(page_size=40)}
    assert ids <= small_pages
    await litellm_client.delete_users(sorted(ids))


async def test_get_users_reads_exactly_the_ids_asked_for_and_matches_user_info(
    litellm_client: LiteLLMClient, make_id: Callable[[str], str]
) -> None:
    """The batched reads rely on ``/user/list?user_ids=`` matching whole ids (not prefixes or
    substrings) and returning the same user as ``/user/info`` (markers, teams, budget reset)."""
    stem = make_id("batch")
    ids = [f"{stem}-{i}" for i in range(3)]
    for user_id in ids:
        req = NewUserRequest.of(
            user_id=user_id, max_budget=3.0, budget_duration="30d", metadata={"owner": "op"}
        )
        await litellm_client.create_user(req)
    await litellm_client.create_user(NewUserRequest.of(user_id=f"{stem}-0x"))  # shares a prefix
    asked = [ids[0], ids[2], f"{stem}-missing", stem]
    found = await litellm_client.get_users(asked)
    assert sorted(found) == [ids[0], ids[2]]
    info = await litellm_client.get_user(ids[0])
    assert info is not None
    listed = found[ids[0]]
    for field in ("max_budget", "budget_duration", "budget_reset_at", "metadata", "teams"):
        assert getattr(listed, field) == getattr(info, field), field
    await litellm_client.delete_users([*ids, f"{stem}-0x"])


async def test_bulk_update_applies_each_entry_as_update_user_does(
    litellm_client: LiteLLMClient, make_id: Callable[[str], str]
) -> None:
    """UserWrites relies on ``/user/bulk_update`` running ``/user/update``'s own code per entry:
    omitted fields kept, ``null`` clears, metadata replaced, missing users created, and each
    entry answered with its row, in order."""
    stem = make_id("bulk")
    ids = [f"{stem}-{i}" for i in range(3)]
    for user_id in ids[:2]:
        await litellm_client.create_user(
            NewUserRequest.of(
                user_id=user_id, user_alias="keep", max_budget=5.0, metadata={"a": "1"}
            )
        )
    rows = await litellm_client.update_users(
        [
            (ids[0], UpdateUserRequest.of(max_budget=6.0, metadata={"b": "2"})),
            (ids[1], UpdateUserRequest.of(max_budget=None, budget_duration="30d")),
            (ids[2], UpdateUserRequest.of(max_budget=1.0)),
        ]
    )
    assert [row.user_id if row else None for row in rows] == ids
    first, second, third = [await litellm_client.get_user(i) for i in ids]
    assert first is not None
    assert second is not None
    assert third is not None
    assert (first.max_budget, first.metadata, first.user_alias) == (6.0, {"b": "2"}, "keep")
    assert (second.max_budget, second.budget_duration) == (None, "30d")
    assert second.budget_reset_at is not None
    assert third.max_budget == 1.0  # created, as /user/update would
    for row, info in zip(rows, (first, second, third), strict=True):
        assert row is not None
        for field in ("max_budget", "budget_duration", "budget_reset_at", "metadata"):
            assert getattr(row, field) == getattr(info, field), field
    await litellm_client.delete_users(ids)


async def test_user_writes_answer_each_caller_as_update_user_would(
    litellm_env: LiteLLMEndpoint, make_id: Callable[[str], str]
) -> None:
    """Updates gathered into one ``/user/bulk_update``: the good ones land, the one LiteLLM
    rejects raises the typed error ``/user/update`` raises for it, and nothing else is sent."""
    calls: list[str] = []
    async with LiteLLMClient(
        litellm_env.url, litellm_env.master_key, observer=lambda path, *_: calls.append(path)
    ) as client:
        stem = make_id("writes")
        ids = [f"{stem}-{i}" for i in range(4)]
        for user_id in ids:
            await client.create_user(NewUserRequest.of(user_id=user_id, max_budget=1.0))
        calls.clear()
        async with UserWrites(client) as writes:
            answers = await asyncio.gather(
                *(writes.update(u, {"max_budget": 2.0 + i}) for i, u in enumerate(ids[:3])),
                writes.update(ids[3], {"budget_duration": "bogus"}),
                return_exceptions=True,
            )
        assert calls == ["/user/bulk_update", "/user/update"]
        assert [a.max_budget for a in answers[:3] if isinstance(a, LiteLLMUserRecord)] == [
            2.0,
            3.0,
            4.0,
        ]
        rejected = answers[3]
        assert isinstance(rejected, BadRequest)
        assert (rejected.status_code, rejected.endpoint) == (400, "/user/update")
        assert "Invalid budget_duration 'bogus'" in rejected.message
        for i, user_id in enumerate(ids[:3]):
            held = await client.get_user(user_id)
            assert held is not None
            assert held.max_budget == 2.0 + i
        await client.delete_users(ids)


def _raw(endpoint: LiteLLMEndpoint) -> httpx.AsyncClient:
    """A bare HTTP client, to show LiteLLM behaviour the typed client refuses to send."""
    key = endpoint.master_key.get_secret_value()
    return httpx.AsyncClient(base_url=endpoint.url, headers={"Authorization": f"Bearer {key}"})
