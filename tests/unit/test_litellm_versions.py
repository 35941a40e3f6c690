"""The client and the release the proxy runs (litellm/versions.py): writes refused below the
oldest supported, a removed rate limit written in the release's dialect, the version read again
after an outage and on demand.

HTTP is mocked with respx for the releases ``make test`` does not run; that 1.104.0 keeps a
limit ``null`` should clear, and that the fallback clears it, is proven on the real proxies by
``make test-litellm`` (tests/integration/test_litellm_users.py).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest
import respx

from litellm_operator.litellm import (
    LiteLLMClient,
    Unavailable,
    UnsupportedVersion,
    UpdateUserRequest,
    build,
)
from litellm_operator.litellm.models import LiteLLMUserRecord
from litellm_operator.litellm.versions import (
    CAPABILITIES,
    MINIMUM,
    NO_LIMIT,
    markdown_table,
    parse,
    unsupported,
)

BASE = "http://litellm.test"


def proxy(mock: respx.MockRouter, versions: list[str]) -> list[dict[str, Any]]:
    """A proxy reporting ``versions`` in turn (the last one from then on); the update bodies it
    received."""
    answers = iter(versions)
    last = versions[-1]

    def details(_: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"litellm_version": next(answers, last)})

    sent: list[dict[str, Any]] = []

    def update(request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        sent.append(body)
        return httpx.Response(200, json={"data": {"user_id": body["user_id"]}})

    def bulk_update(request: httpx.Request) -> httpx.Response:
        users = json.loads(request.content)["users"]
        sent.extend(users)
        return httpx.Response(200, json={"results": [{"user_id": u["user_id"]} for u in users]})

    mock.get("/health/readiness/details").mock(side_effect=details)
    mock.post("/user/update").mock(side_effect=update)
    mock.post("/user/bulk_update").mock(side_effect=bulk_update)
    return sent


def client(**kwargs: Any) -> LiteLLMClient:
    return LiteLLMClient(BASE, "sk-master", max_retries=0, watch_version=True, **kwargs)


@pytest.mark.parametrize(
    ("version", "allowed", "refused"),
    [
        pytest.param(str(MINIMUM), False, False, id="the-oldest-supported"),
        pytest.param("1.110.2", False, False, id="newer"),
        pytest.param("1.85.1", False, True, id="older"),
        pytest.param("1.85.1", True, False, id="older-allowed"),
        pytest.param("main-stable", False, True, id="unreadable"),
    ],
)
async def test_writes_below_the_oldest_supported_are_refused_before_sending(
    version: str, allowed: bool, refused: bool
) -> None:
    with respx.mock(base_url=BASE, assert_all_called=False) as mock:
        sent = proxy(mock, [version])
        async with client(allow_untested=allowed) as c:
            if refused:
                with pytest.raises(UnsupportedVersion) as caught:
                    await c.update_user("u", {"max_budget": 1.0})
                assert version in str(caught.value)
                assert "nothing is written to it" in str(caught.value)
            else:
                await c.update_user("u", {"max_budget": 1.0})
    assert len(sent) == (0 if refused else 1)


@pytest.mark.parametrize(
    ("version", "written"),
    [
        pytest.param("1.104.0", NO_LIMIT, id="null-ignored-there"),
        pytest.param("1.108.7", None, id="null-clears"),
    ],
)
async def test_a_removed_rate_limit_is_written_as_the_release_can_take_it(
    version: str, written: int | None
) -> None:
    with respx.mock(base_url=BASE, assert_all_called=False) as mock:
        sent = proxy(mock, [version])
        async with client() as c:
            await c.update_user(
                "u", build(UpdateUserRequest, {"tpm_limit": None, "rpm_limit": None})
            )
            await c.update_users([("v", build(UpdateUserRequest, {"rpm_limit": None}))])
    assert sent == [
        {"user_id": "u", "tpm_limit": written, "rpm_limit": written},
        {"user_id": "v", "rpm_limit": written},
    ]


def test_no_limit_reads_as_no_limit_on_every_release() -> None:
    record = LiteLLMUserRecord(user_id="u", tpm_limit=NO_LIMIT, rpm_limit=7)
    assert (record.tpm_limit, record.rpm_limit) == (None, 7)


async def test_the_version_is_read_again_after_an_outage_and_on_demand() -> None:
    heard: list[str | None] = []
    with respx.mock(base_url=BASE, assert_all_called=False) as mock:
        sent = proxy(mock, ["1.108.7", "1.85.1", "1.104.0"])
        mock.post("/user/delete").mock(side_effect=httpx.ConnectError("refused"))
        async with client(on_version=heard.append) as c:
            await c.update_user("u", {"max_budget": 1.0})
            with pytest.raises(Unavailable, match="refused"):
                await c.delete_users(["u"])  # an outage: read again before the next write
            with pytest.raises(UnsupportedVersion, match=r"1\.85\.1"):
                await c.update_user("u", {"max_budget": 2.0})
            assert await c.proxy_version(refresh=True) == "1.104.0"
            await c.update_user("u", {"max_budget": 3.0})
    assert heard == ["1.108.7", "1.85.1", "1.104.0"]
    assert [body["max_budget"] for body in sent] == [1.0, 3.0]


async def test_without_watch_version_nothing_is_read() -> None:
    with respx.mock(base_url=BASE, assert_all_called=False) as mock:
        sent = proxy(mock, ["1.74.9"])
        async with LiteLLMClient(BASE, "sk-master") as c:
            await c.update_user("u", {"max_budget": 1.0})
        assert not mock.routes[0].called
    assert len(sent) == 1


@pytest.mark.parametrize(
    ("reported", "supported"),
    [
        pytest.param("1.104.0", True, id="the-oldest-passing-the-matrix"),
        pytest.param("1.110.2", True, id="newer"),
        pytest.param(None, True, id="none-reported-not-second-guessed"),
        pytest.param("1.85.1", False, id="a-chart-default-below-it"),
        pytest.param("1.74.9", False, id="older"),
        pytest.param("1.104.0.dev3", False, id="a-development-build-before-it"),
        pytest.param("main-stable", False, id="unreadable"),
    ],
)
def test_unsupported(reported: str | None, supported: bool) -> None:
    problem = unsupported(reported)
    assert (problem is None) is supported
    if problem:
        assert "\n" not in problem
        assert str(reported) in problem


@pytest.mark.parametrize(
    ("reported", "parsed"),
    [
        pytest.param("1.104.0", "1.104.0", id="release"),
        pytest.param(None, None, id="none-reported"),
        pytest.param("main-stable", None, id="unreadable"),
    ],
)
def test_parse(reported: str | None, parsed: str | None) -> None:
    version = parse(reported)
    assert (str(version) if version else None) == parsed


def test_every_capability_is_newer_than_the_minimum_and_in_the_table() -> None:
    table = markdown_table()
    for capability in CAPABILITIES:
        assert capability.since > MINIMUM
        assert not capability.on(MINIMUM)
        assert capability.on(capability.since)
        assert capability.on(None)  # a proxy that reports no version is not second-guessed
        assert f"| {capability.since} | {capability.what} |" in table


def test_readme_capability_table_is_generated_from_the_declarations() -> None:
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    begin, end = "<!-- litellm-capabilities:begin -->\n", "<!-- litellm-capabilities:end -->"
    section = readme.split(begin, 1)[1].split(end, 1)[0]
    assert section == markdown_table(), "regenerate the README table: make crds"
