"""Readiness, authentication failures and secret hygiene against a real LiteLLM."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable

import pytest

from devenv.litellm import LITELLM_VERSION, LiteLLMEndpoint
from litellm_operator.litellm import AuthError, LiteLLMClient, NewUserRequest, Unavailable

pytestmark = pytest.mark.integration


async def test_readiness(litellm_client: LiteLLMClient) -> None:
    ready = await litellm_client.readiness()
    assert ready["status"] == "healthy"
    assert ready["db"] == "connected"


async def test_wrong_master_key_is_auth_error_without_the_key(litellm_env: LiteLLMEndpoint) -> None:
    wrong = "sk-wrong-" + "9" * 24
    async with LiteLLMClient(litellm_env.url, wrong) as client:
        with pytest.raises(AuthError) as info:
            await client.get_user("anyone")
    assert info.value.status_code == 401
    assert not info.value.retryable
    assert wrong not in f"{info.value} {info.value!r} {client!r}"


async def test_unreachable_proxy_is_unavailable() -> None:
    async with LiteLLMClient("http://127.0.0.1:9", "sk-x", max_retries=1, backoff_base=0.01) as c:
        with pytest.raises(Unavailable) as info:
            await c.readiness()
    assert info.value.retryable


async def test_master_and_generated_keys_never_reach_logs_or_output(
    litellm_env: LiteLLMEndpoint,
    make_id: Callable[[str], str],
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    caplog.set_level(logging.DEBUG)
    calls: list[tuple[str, str, float]] = []
    async with LiteLLMClient(
        litellm_env.url, litellm_env.master_key, observer=lambda *a: calls.append(a)
    ) as client:
        user_id = make_id("user")
        await client.create_user(NewUserRequest.of(user_id=user_id))
        key = await client.generate_key(user_id=user_id, key_alias=make_id("alias"))
        await client.key_info(key.key)
        await client.block_key(key.key)
        await client.delete_keys([key.key])
        await client.get_user(make_id("missing"))
        print(repr(client), repr(key), key)
    secrets = [litellm_env.master_key.get_secret_value(), key.key.get_secret_value()]
    captured = capsys.readouterr()
    text = "\n".join([caplog.text, captured.out, captured.err, *map(str, caplog.records)])
    for secret in secrets:
        assert secret not in text
    assert ("/user/info", "not_found") in {(e, o) for e, o, _ in calls}
    assert all(seconds >= 0 for _, _, seconds in calls)


async def test_the_proxy_reports_its_version(litellm_client: LiteLLMClient) -> None:
    """What the operator checks at start-up (preflight.litellm_problem) is there to read."""
    version = await litellm_client.version()
    assert version is not None
    if not os.environ.get("LITELLM_URL"):  # the project's own LiteLLM, at the version asked for
        assert version == LITELLM_VERSION
