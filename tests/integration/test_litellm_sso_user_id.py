"""LiteLLM's ``sso_user_id`` on the real proxy: only ``/user/new`` writes it.

Why spec.ssoUserId is set on create only, and an existing user whose ``sso_user_id`` differs is
refused (``SsoUserIdMismatch``) rather than updated: ``/user/update`` answers 200 and ignores it.
"""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest

from devenv.litellm import LiteLLMEndpoint
from litellm_operator.litellm import LiteLLMClient, NewUserRequest

pytestmark = pytest.mark.integration


async def test_user_new_sets_sso_user_id_and_info_and_list_return_it(
    litellm_client: LiteLLMClient, make_id: Callable[[str], str]
) -> None:
    uid, sub = make_id("sso"), make_id("sub")
    await litellm_client.create_user(NewUserRequest.of(user_id=uid, sso_user_id=sub))
    got = await litellm_client.get_user(uid)
    assert got is not None
    assert got.sso_user_id == sub
    listed = [u async for u in litellm_client.list_users() if u.user_id == uid]
    assert [u.sso_user_id for u in listed] == [sub]
    assert await litellm_client.users_with_sso_user_id(sub) == [uid]
    assert await litellm_client.users_with_sso_user_id(sub[:-1]) == []  # exact, not a prefix


async def test_user_new_with_a_taken_sso_user_id_answers_500_and_creates_nothing(
    litellm_env: LiteLLMEndpoint, litellm_client: LiteLLMClient, make_id: Callable[[str], str]
) -> None:
    sub = make_id("sub")
    await litellm_client.create_user(NewUserRequest.of(user_id=make_id("sso"), sso_user_id=sub))
    second = make_id("sso")
    headers = {"Authorization": f"Bearer {litellm_env.master_key.get_secret_value()}"}
    async with httpx.AsyncClient(base_url=litellm_env.url, headers=headers) as http:
        body = {"user_id": second, "sso_user_id": sub, "auto_create_key": False}
        answer = await http.post("/user/new", json=body)
    assert answer.status_code == 500
    assert await litellm_client.get_user(second) is None


async def test_user_update_ignores_sso_user_id(
    litellm_env: LiteLLMEndpoint, litellm_client: LiteLLMClient, make_id: Callable[[str], str]
) -> None:
    uid, sub = make_id("sso"), make_id("sub")
    await litellm_client.create_user(NewUserRequest.of(user_id=uid, sso_user_id=sub))
    headers = {"Authorization": f"Bearer {litellm_env.master_key.get_secret_value()}"}
    async with httpx.AsyncClient(base_url=litellm_env.url, headers=headers) as http:
        body = {"user_id": uid, "sso_user_id": make_id("other"), "max_budget": 3.0}
        answer = await http.post("/user/update", json=body)
        assert answer.status_code == 200
    got = await litellm_client.get_user(uid)
    assert got is not None
    assert (got.sso_user_id, got.max_budget) == (sub, 3.0)
