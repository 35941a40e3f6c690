"""Keys against a real LiteLLM: /key/generate, /key/info, /key/update, /key/block, /key/unblock,
/key/delete, and a user's keys."""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable

import httpx
import pytest
from pydantic import SecretStr

from devenv.litellm import LiteLLMEndpoint
from litellm_operator.fields import INFERENCE_ROUTES
from litellm_operator.litellm import (
    BadRequest,
    GenerateKeyRequest,
    KeyAliasInUse,
    LiteLLMClient,
    NewTeamRequest,
    NewUserRequest,
    NotFound,
    key_token,
)
from tests.fixtures.key_probes import (
    REFUSED,
    for_inference_only,
    inference_statuses,
    management_statuses,
)

pytestmark = pytest.mark.integration


async def test_key_lifecycle(litellm_client: LiteLLMClient, make_id: Callable[[str], str]) -> None:
    user_id, alias = make_id("user"), make_id("alias")
    await litellm_client.create_user(NewUserRequest.of(user_id=user_id))
    generated = await litellm_client.generate_key(
        user_id=user_id, key_alias=alias, models=["gpt-4o"], max_budget=2.0, metadata={"o": 1}
    )
    assert isinstance(generated.key, SecretStr)
    secret = generated.key.get_secret_value()
    assert secret.startswith("sk-")
    assert secret not in repr(generated)
    assert generated.token == key_token(secret)

    by_value = await litellm_client.key_info(generated.key)
    by_hash = await litellm_client.key_info(generated.token or "")
    assert by_value == by_hash
    assert by_value is not None
    assert (by_value.key_alias, by_value.user_id, by_value.models) == (alias, user_id, ["gpt-4o"])
    assert (by_value.max_budget, by_value.metadata, by_value.blocked) == (2.0, {"o": 1}, False)
    assert [k.token for k in await litellm_client.list_user_keys(user_id)] == [generated.token]
    found = await litellm_client.find_key_by_alias(alias)
    assert found is not None
    assert found.token == generated.token

    updated = await litellm_client.update_key(
        generated.key, {"max_budget": 3.0, "metadata": {"n": 2}}
    )
    assert (updated.max_budget, updated.metadata) == (3.0, {"n": 2})

    assert (await litellm_client.block_key(generated.key)).blocked is True
    assert (await litellm_client.block_key(generated.key)).blocked is True  # idempotent
    info = await litellm_client.key_info(generated.key)
    assert info is not None
    assert info.blocked is True
    assert (await litellm_client.unblock_key(generated.key)).blocked is False

    assert await litellm_client.delete_keys([generated.key]) == [generated.token]
    assert await litellm_client.key_info(generated.key) is None
    archived = await litellm_client.key_info(generated.key, include_deleted=True)
    assert archived is not None
    assert archived.deleted  # LiteLLM answers 200 for a deleted key, from its archive
    assert await litellm_client.find_key_by_alias(alias) is None
    with pytest.raises(NotFound):
        await litellm_client.delete_keys([generated.key])  # twice: 404


async def test_duplicate_alias_is_key_alias_in_use(
    litellm_client: LiteLLMClient, make_id: Callable[[str], str]
) -> None:
    alias = make_id("alias")
    await litellm_client.generate_key(key_alias=alias)
    with pytest.raises(KeyAliasInUse) as info:
        await litellm_client.generate_key(key_alias=alias)
    assert info.value.status_code == 400
    assert alias in info.value.message


async def test_unknown_key_answers(litellm_client: LiteLLMClient) -> None:
    unknown = "sk-" + "0" * 22
    assert await litellm_client.key_info(unknown) is None
    assert await litellm_client.find_key_by_alias("no-such-alias-" + "0" * 8) is None
    for call in (litellm_client.block_key, litellm_client.unblock_key):
        with pytest.raises(NotFound):
            await call(unknown)
    with pytest.raises(NotFound):
        await litellm_client.update_key(unknown, {"max_budget": 1.0})
    with pytest.raises(NotFound):
        await litellm_client.delete_keys([unknown])


async def test_delete_by_alias_and_user_delete_removes_keys(
    litellm_client: LiteLLMClient, make_id: Callable[[str], str]
) -> None:
    user_id, a1, a2 = make_id("user"), make_id("alias"), make_id("alias")
    await litellm_client.create_user(NewUserRequest.of(user_id=user_id))
    first = await litellm_client.generate_key(user_id=user_id, key_alias=a1)
    second = await litellm_client.generate_key(user_id=user_id, key_alias=a2)
    assert await litellm_client.delete_keys(key_aliases=[a1]) == [a1]
    assert await litellm_client.key_info(first.key) is None
    await litellm_client.delete_users([user_id])
    assert await litellm_client.key_info(second.key) is None
    with pytest.raises(NotFound):
        await litellm_client.list_user_keys(user_id)


async def self_info(litellm_env: LiteLLMEndpoint, value: str) -> int:
    """``GET /key/info`` with the key itself as the Bearer: 200 while it is usable."""
    async with httpx.AsyncClient(base_url=litellm_env.url, timeout=10) as http:
        response = await http.get("/key/info", headers={"Authorization": f"Bearer {value}"})
        return response.status_code


async def test_caller_chosen_key_is_stored_as_its_sha256(
    litellm_client: LiteLLMClient, litellm_env: LiteLLMEndpoint, make_id: Callable[[str], str]
) -> None:
    """The facts the operator's crash-safe issuing rests on: LiteLLM accepts a chosen ``key``,
    stores it under the SHA-256 of its value, and registering it again makes no second key."""
    user_id, alias = make_id("user"), make_id("alias")
    await litellm_client.create_user(NewUserRequest.of(user_id=user_id))
    value = SecretStr("sk-" + secrets.token_urlsafe(32))
    expected = hashlib.sha256(value.get_secret_value().encode()).hexdigest()
    assert await litellm_client.key_info(expected) is None
    request = GenerateKeyRequest.of(
        user_id=user_id, key_alias=alias, models=["gpt-4o"], max_parallel_requests=3
    )

    assert await litellm_client.register_key(value, request) == expected
    info = await litellm_client.key_info(expected)
    assert info is not None
    assert (info.token, info.key_alias, info.max_parallel_requests) == (expected, alias, 3)
    assert await self_info(litellm_env, value.get_secret_value()) == 200

    assert await litellm_client.register_key(value, request) == expected  # a retry
    assert [k.token for k in await litellm_client.list_user_keys(user_id)] == [expected]

    await litellm_client.block_key(expected)
    assert await self_info(litellm_env, value.get_secret_value()) == 401
    await litellm_client.unblock_key(expected)
    assert await self_info(litellm_env, value.get_secret_value()) == 200
    await litellm_client.delete_keys([expected])
    assert await self_info(litellm_env, value.get_secret_value()) == 401
    await litellm_client.delete_users([user_id])


async def test_an_llm_api_routes_key_is_for_inference_only(
    litellm_client: LiteLLMClient, litellm_env: LiteLLMEndpoint, make_id: Callable[[str], str]
) -> None:
    """``allowed_routes: [llm_api_routes]`` (as every operator key has it), on a proxy without an
    Enterprise license: 401/403 on every management route, through auth on inference. The same
    key without it (LiteLLM's default) mints keys."""
    user_id = make_id("user")
    await litellm_client.create_user(NewUserRequest.of(user_id=user_id, models=["gpt-4o-mini"]))
    request = GenerateKeyRequest.of(user_id=user_id, key_alias=make_id("alias"))
    value = SecretStr("sk-" + secrets.token_urlsafe(32))
    await litellm_client.register_key(value, request)
    key = value.get_secret_value()

    unrestricted = management_statuses(litellm_env.url, key)
    assert unrestricted["POST /key/generate"] == 200, "LiteLLM's default: a key mints keys"
    print(f"\nmanagement routes, LiteLLM's default key: {unrestricted}")

    await litellm_client.update_key(value, {"allowed_routes": list(INFERENCE_ROUTES)})
    info = await litellm_client.key_info(value)
    assert info is not None
    assert info.allowed_routes == ["llm_api_routes"]
    assert info.max_budget != 1_000_000

    statuses = management_statuses(litellm_env.url, key)
    print(f"management routes, key for inference only: {statuses}")
    assert all(code in REFUSED for code in statuses.values()), statuses
    inference = inference_statuses(litellm_env.url, key, "gpt-4o-mini")
    print(f"inference routes: {inference}")
    assert inference["GET /v1/models"] == 200
    assert inference["POST /v1/chat/completions"] >= 500, "through auth, failed upstream"
    assert for_inference_only(litellm_env.url, key, "gpt-4o-mini")
    assert inference_statuses(litellm_env.url, key, "gpt-4o")["POST /v1/chat/completions"] in (
        REFUSED
    ), "the key's models still apply"

    fresh = SecretStr("sk-" + secrets.token_urlsafe(32))
    await litellm_client.register_key(
        fresh,
        GenerateKeyRequest.of(
            user_id=user_id, key_alias=make_id("alias"), allowed_routes=list(INFERENCE_ROUTES)
        ),
    )
    assert for_inference_only(litellm_env.url, fresh.get_secret_value(), "gpt-4o-mini")
    await litellm_client.delete_users([user_id])


async def test_a_key_s_limits_are_cleared_by_null_and_its_models_by_empty(
    litellm_client: LiteLLMClient, make_id: Callable[[str], str]
) -> None:
    """What fields.KEY_FIELDS declares of a key (unlike a user's max_parallel_requests): every
    limit is cleared by ``null`` on /key/update; ``models`` by ``[]``, and ``null`` is refused."""
    user_id = make_id("user")
    await litellm_client.create_user(NewUserRequest.of(user_id=user_id, models=["gpt-4o-mini"]))
    limits = {"tpm_limit": 100, "rpm_limit": 10, "max_parallel_requests": 3}
    settings = {"models": ["gpt-4o-mini"], "max_budget": 0.1, "budget_duration": "7d", **limits}
    request = GenerateKeyRequest.of(user_id=user_id, key_alias=make_id("alias"), **settings)
    key = (await litellm_client.generate_key(request)).key
    info = await litellm_client.key_info(key)
    assert info is not None
    assert {name: getattr(info, name) for name in settings} == settings

    cleared = dict.fromkeys(("max_budget", "budget_duration", *limits))
    await litellm_client.update_key(key, cleared)
    with pytest.raises(BadRequest):
        await litellm_client.update_key(key, {"models": None})
    await litellm_client.update_key(key, {"models": []})
    info = await litellm_client.key_info(key)
    assert info is not None
    assert {name: getattr(info, name) for name in settings} == {**cleared, "models": []}
    await litellm_client.delete_keys([key])
    await litellm_client.delete_users([user_id])


async def test_a_team_key_is_the_team_s_alone_and_listed_by_team(
    litellm_client: LiteLLMClient, litellm_env: LiteLLMEndpoint, make_id: Callable[[str], str]
) -> None:
    """The facts team keys rest on: the admin's ``/key/generate`` with a ``team_id`` and no
    ``user_id`` makes a key of the team alone (no user); a key that names no models gets the
    team's; ``/key/list?team_id=`` lists the team's keys and no one else's, page by page."""
    team_id, other = make_id("team"), make_id("team")
    await litellm_client.create_team(NewTeamRequest.of(team_id=team_id, models=["gpt-4o-mini"]))
    await litellm_client.create_team(NewTeamRequest.of(team_id=other))
    tokens = []
    for _ in range(5):
        value = SecretStr("sk-" + secrets.token_urlsafe(32))
        request = GenerateKeyRequest.of(
            team_id=team_id, key_alias=make_id("alias"), allowed_routes=list(INFERENCE_ROUTES)
        )
        tokens.append(await litellm_client.register_key(value, request))
    elsewhere = SecretStr("sk-" + secrets.token_urlsafe(32))
    await litellm_client.register_key(
        elsewhere, GenerateKeyRequest.of(team_id=other, key_alias=make_id("alias"))
    )

    listed = await litellm_client.list_team_keys(team_id, page_size=2)
    assert sorted(k.token or "" for k in listed) == sorted(tokens), "every page, only the team's"
    assert {(k.team_id, k.user_id) for k in listed} == {(team_id, None)}
    key = value.get_secret_value()
    inference = inference_statuses(litellm_env.url, key, "gpt-4o-mini")
    print(f"\nteam key, no user, on the team's model: {inference}")
    assert for_inference_only(litellm_env.url, key, "gpt-4o-mini")
    outside = inference_statuses(litellm_env.url, key, "gpt-4o")["POST /v1/chat/completions"]
    print(f"team key on a model outside the team's: {outside}")
    assert outside in REFUSED, "the team's models bound a key that names none"

    await litellm_client.delete_team(team_id)
    left = [t for t in tokens if await litellm_client.key_info(t) is not None]
    print(f"team keys left after /team/delete: {len(left)} of {len(tokens)}")
    if left:
        await litellm_client.delete_keys(left)
    assert await litellm_client.list_team_keys(team_id) == []
    await litellm_client.delete_keys([elsewhere])
    await litellm_client.delete_team(other)
