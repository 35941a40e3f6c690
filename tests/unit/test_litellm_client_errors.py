"""LiteLLM client: error mapping, retries, Retry-After, redaction (HTTP mocked with respx)."""

from __future__ import annotations

import logging

import httpx
import pytest
import respx

from litellm_operator.litellm import (
    AuthError,
    BadRequest,
    Conflict,
    KeyValueLost,
    LiteLLMClient,
    LiteLLMError,
    NewTeamRequest,
    NewUserRequest,
    NotFound,
    RateLimited,
    ServerError,
    Unavailable,
    UserExists,
    redact,
)
from litellm_operator.litellm.transport import parse_retry_after

BASE = "http://litellm.test"
MASTER = "sk-master-0123456789abcdef"
USER_INFO = {"user_id": "u1", "user_info": {"user_id": "u1", "teams": None}, "keys": []}


def _client(**kwargs: float) -> LiteLLMClient:
    return LiteLLMClient(BASE, MASTER, backoff_base=0.001, **kwargs)  # type: ignore[arg-type]


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> httpx.Response:
    body = {"error": {"message": message, "type": "x", "code": str(status)}}
    return httpx.Response(status, json=body, headers=headers)


@pytest.mark.parametrize(
    ("status", "error", "retryable"),
    [
        (400, BadRequest, False),
        (422, BadRequest, False),
        (401, AuthError, False),
        (403, AuthError, False),
        (404, NotFound, False),
        (409, Conflict, False),
        (429, RateLimited, True),
        (500, ServerError, True),
        (503, ServerError, True),
    ],
)
@respx.mock
async def test_status_maps_to_typed_error(
    status: int, error: type[LiteLLMError], retryable: bool
) -> None:
    respx.post(f"{BASE}/key/delete").mock(return_value=_error(status, "boom"))
    async with _client(max_retries=0) as client:
        with pytest.raises(error) as info:
            await client.delete_keys(["abc"])
    assert type(info.value) is error
    assert info.value.retryable is retryable
    assert info.value.status_code == status
    assert "boom" in info.value.message


@respx.mock
async def test_detail_shapes_give_litellm_message() -> None:
    respx.post(f"{BASE}/team/delete").mock(
        return_value=httpx.Response(404, json={"detail": {"error": "Team not found, t1"}})
    )
    respx.post(f"{BASE}/team/new").mock(
        return_value=httpx.Response(422, json={"detail": [{"loc": ["body", "x"], "msg": "bad"}]})
    )
    async with _client() as client:
        with pytest.raises(NotFound, match="Team not found, t1"):
            await client.delete_team("t1")
        with pytest.raises(BadRequest, match=r"body\.x: bad"):
            await client.new_team("t1")


@respx.mock
async def test_reads_retry_on_5xx_then_succeed() -> None:
    route = respx.get(f"{BASE}/user/info").mock(
        side_effect=[
            _error(502, "gw"),
            httpx.ReadTimeout("slow"),
            httpx.Response(200, json=USER_INFO),
        ]
    )
    async with _client() as client:
        user = await client.get_user("u1")
    assert user is not None
    assert user.teams == []
    assert route.call_count == 3


@respx.mock
async def test_reads_give_up_after_max_retries() -> None:
    route = respx.get(f"{BASE}/user/info").mock(return_value=_error(500, "down"))
    async with _client(max_retries=2) as client:
        with pytest.raises(ServerError):
            await client.get_user("u1")
    assert route.call_count == 3


@respx.mock
async def test_client_errors_are_not_retried() -> None:
    route = respx.get(f"{BASE}/team/info").mock(return_value=_error(401, "no"))
    async with _client() as client:
        with pytest.raises(AuthError):
            await client.get_team("t")
    assert route.call_count == 1


@respx.mock
async def test_retry_after_is_honoured(monkeypatch: pytest.MonkeyPatch) -> None:
    sleeps: list[float] = []

    async def fake_sleep(delay: float) -> None:
        sleeps.append(delay)

    monkeypatch.setattr("litellm_operator.litellm.connection.asyncio.sleep", fake_sleep)
    respx.post(f"{BASE}/user/new").mock(
        side_effect=[
            _error(429, "slow down", {"Retry-After": "2"}),
            httpx.Response(200, json={"user_id": "u1"}),
        ]
    )
    async with _client() as client:
        await client.create_user(NewUserRequest.of(user_id="u1"))
    assert sleeps == [2.0]


@respx.mock
async def test_retry_after_beyond_the_cap_goes_to_the_caller() -> None:
    respx.get(f"{BASE}/user/info").mock(return_value=_error(429, "x", {"Retry-After": "120"}))
    async with _client(max_retry_delay=30) as client:
        with pytest.raises(RateLimited) as info:
            await client.get_user("u1")
    assert info.value.retry_after == 120.0


def test_retry_after_http_date() -> None:
    headers = httpx.Headers({"Retry-After": "Wed, 21 Oct 2015 07:28:10 GMT"})
    assert parse_retry_after(headers, now=1445412480.0) == 10.0
    assert parse_retry_after(httpx.Headers({"Retry-After": "soon"})) is None


@respx.mock
async def test_user_new_is_never_blindly_retried_it_looks_first() -> None:
    create = respx.post(f"{BASE}/user/new").mock(side_effect=httpx.ReadTimeout("lost"))
    respx.get(f"{BASE}/user/info").mock(return_value=httpx.Response(200, json=USER_INFO))
    async with _client() as client:
        user = await client.create_user(NewUserRequest.of(user_id="u1"))
    assert user.user_id == "u1"
    assert create.call_count == 1


@respx.mock
async def test_user_new_retries_after_a_lost_response_only_if_the_user_is_absent() -> None:
    create = respx.post(f"{BASE}/user/new").mock(
        side_effect=[_error(500, "db"), httpx.Response(200, json={"user_id": "u1"})]
    )
    info = respx.get(f"{BASE}/user/info").mock(return_value=_error(404, "User u1 not found"))
    async with _client() as client:
        await client.create_user(NewUserRequest.of(user_id="u1"))
    assert (create.call_count, info.call_count) == (2, 1)


@respx.mock
async def test_user_new_409_for_existing_id() -> None:
    respx.post(f"{BASE}/user/new").mock(return_value=_error(409, "exists"))
    respx.get(f"{BASE}/user/info").mock(return_value=httpx.Response(200, json=USER_INFO))
    async with _client() as client:
        with pytest.raises(UserExists):
            await client.create_user(NewUserRequest.of(user_id="u1"))


@respx.mock
async def test_user_new_connect_error_is_retried_as_the_request_never_left() -> None:
    create = respx.post(f"{BASE}/user/new").mock(
        side_effect=[httpx.ConnectError("refused"), httpx.Response(200, json={"user_id": "u1"})]
    )
    async with _client() as client:
        await client.create_user(NewUserRequest.of(user_id="u1"))
    assert create.call_count == 2


@respx.mock
async def test_generate_key_lost_response_with_alias_raises_key_value_lost() -> None:
    gen = respx.post(f"{BASE}/key/generate").mock(side_effect=httpx.ReadTimeout("lost"))
    respx.get(f"{BASE}/key/list").mock(
        return_value=httpx.Response(200, json={"keys": [{"token": "h1", "key_alias": "a"}]})
    )
    async with _client() as client:
        with pytest.raises(KeyValueLost) as info:
            await client.generate_key(key_alias="a")
    assert (info.value.token, gen.call_count) == ("h1", 1)


@respx.mock
async def test_generate_key_lost_response_without_alias_is_not_retried() -> None:
    gen = respx.post(f"{BASE}/key/generate").mock(side_effect=httpx.ReadTimeout("lost"))
    async with _client() as client:
        with pytest.raises(Unavailable):
            await client.generate_key(user_id="u1")
    assert gen.call_count == 1


@respx.mock
async def test_non_idempotent_delete_is_not_retried_on_5xx() -> None:
    route = respx.post(f"{BASE}/user/delete").mock(return_value=_error(500, "x"))
    async with _client() as client:
        with pytest.raises(ServerError):
            await client.delete_users(["u1"])
    assert route.call_count == 1


@respx.mock
async def test_secrets_are_redacted_from_errors_reprs_and_logs(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    leaked = "sk-generated-ABCdef123_456"
    echo = f"bad key {leaked}; header Bearer {MASTER}; raw {MASTER}"
    respx.get(f"{BASE}/user/info").mock(return_value=_error(500, echo))
    async with _client(max_retries=1) as client:
        with pytest.raises(ServerError) as info:
            await client.get_user("u1")
    text = " ".join([str(info.value), repr(info.value), repr(client), caplog.text])
    assert leaked not in text
    assert MASTER not in text
    assert "[REDACTED]" in str(info.value)


def test_redact() -> None:
    assert redact("Authorization: Bearer abc.def") == "Authorization: Bearer [REDACTED]"
    assert redact("key sk-abc_DEF-123 ok") == "key sk-[REDACTED] ok"
    assert redact("pw hunter2", "hunter2") == "pw [REDACTED]"


@respx.mock
async def test_observer_counts_each_attempt() -> None:
    calls: list[tuple[str, str]] = []
    respx.get(f"{BASE}/user/info").mock(
        side_effect=[_error(503, "x"), httpx.Response(200, json=USER_INFO)]
    )
    async with LiteLLMClient(
        BASE, MASTER, backoff_base=0.001, observer=lambda e, o, _s: calls.append((e, o))
    ) as client:
        await client.get_user("u1")
    assert calls == [("/user/info", "server_error"), ("/user/info", "ok")]


def test_update_request_rejects_ignored_clears() -> None:
    from litellm_operator.litellm import UpdateUserRequest

    assert UpdateUserRequest.of(max_budget=None).to_wire() == {"max_budget": None}
    assert UpdateUserRequest.of(models=["a"]).to_wire() == {"models": ["a"]}
    with pytest.raises(ValueError, match="models"):
        UpdateUserRequest.of(models=[])


@respx.mock
async def test_a_2xx_body_that_is_not_json_is_unavailable_not_a_rejection() -> None:
    respx.get(f"{BASE}/user/info").mock(
        return_value=httpx.Response(200, text="<html>bad gateway</html>")
    )
    async with _client(max_retries=0) as client:
        with pytest.raises(Unavailable) as caught:
            await client.get_user("u1")
    assert caught.value.status_code == 200
    assert "not JSON" in str(caught.value)


TEAM_INFO = {
    "team_id": "t1",
    "team_info": {"team_id": "t1", "members_with_roles": [{"user_id": "u1", "role": "user"}]},
    "team_memberships": [],
}


@respx.mock
async def test_member_add_whose_answer_was_lost_is_recognised_by_reading_the_team() -> None:
    add = respx.post(f"{BASE}/team/member_add").mock(return_value=_error(500, "proxy"))
    info = respx.get(f"{BASE}/team/info").mock(return_value=httpx.Response(200, json=TEAM_INFO))
    async with _client() as client:
        assert await client.add_team_member("t1", "u1") is True
    assert (add.call_count, info.call_count) == (1, 1)


@respx.mock
async def test_member_add_that_did_not_happen_still_fails() -> None:
    respx.post(f"{BASE}/team/member_add").mock(return_value=_error(500, "proxy"))
    empty = {**TEAM_INFO, "team_info": {"team_id": "t1", "members_with_roles": []}}
    respx.get(f"{BASE}/team/info").mock(return_value=httpx.Response(200, json=empty))
    async with _client() as client:
        with pytest.raises(ServerError):
            await client.add_team_member("t1", "u1")


CREATED_TEAM = {"team_id": "t1", "team_info": {"team_id": "t1", "team_alias": "Crew"}}


@pytest.mark.parametrize(
    ("info", "outcome"),
    [
        pytest.param(httpx.Response(200, json=CREATED_TEAM), "returned", id="team-exists-returned"),
        pytest.param(_error(404, "Team not found"), "raised", id="team-absent-raised"),
    ],
)
@respx.mock
async def test_a_lost_team_new_answer_is_looked_up_never_resent(
    info: httpx.Response, outcome: str
) -> None:
    """No duplicate: /team/new is sent once; after a 502 the id is looked up."""
    new = respx.post(f"{BASE}/team/new").mock(return_value=_error(502, "gateway"))
    respx.get(f"{BASE}/team/info").mock(return_value=info)
    async with _client() as client:
        if outcome == "returned":
            team = await client.create_team(NewTeamRequest.of(team_id="t1"))
            assert team.team_alias == "Crew"
        else:
            with pytest.raises(ServerError):
                await client.create_team(NewTeamRequest.of(team_id="t1"))
    assert new.call_count == 1


@respx.mock
async def test_team_list_reads_every_team_in_one_call() -> None:
    rows = [{"team_id": "a", "max_budget": 1.0}, {"team_id": "b", "models": None}]
    route = respx.get(f"{BASE}/team/list").mock(return_value=httpx.Response(200, json=rows))
    async with _client() as client:
        teams = await client.list_teams()
    assert route.call_count == 1
    assert sorted(teams) == ["a", "b"]
    assert teams["a"].max_budget == 1.0
    assert teams["b"].models == []
