"""The aiohttp transport under the LiteLLM client, against a real HTTP server on loopback:
what reaches the server and comes back, and which failures the client may retry (only those
before a connection was obtained) and which it must treat as possibly processed."""

from __future__ import annotations

import asyncio
import gzip
import json
import socket
import ssl
import subprocess
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiohttp import web

from litellm_operator.litellm import LiteLLMClient, Unavailable, may_have_been_processed
from litellm_operator.litellm.aio import AiohttpTransport
from litellm_operator.litellm.transport import UnsentUnavailable

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass
class Server:
    url: str
    seen: list[tuple[str, str, dict[str, str], bytes]] = field(default_factory=list)


@pytest.fixture
async def serve() -> AsyncIterator[Callable[[Handler], Awaitable[Server]]]:
    runners: list[web.AppRunner] = []

    async def start(handler: Handler) -> Server:
        server = Server(url="")

        async def recording(request: web.Request) -> web.StreamResponse:
            body = await request.read()
            server.seen.append((request.method, request.path_qs, dict(request.headers), body))
            return await handler(request)

        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", recording)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        runners.append(runner)
        port = runner.addresses[0][1]
        server.url = f"http://127.0.0.1:{port}"
        return server

    yield start
    for runner in runners:
        await runner.cleanup()


def client_for(url: str, **kwargs: Any) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=url, transport=AiohttpTransport(max_connections=2), **kwargs)


async def test_a_call_reaches_the_server_and_its_answer_comes_back(
    serve: Callable[[Handler], Awaitable[Server]],
) -> None:
    async def answer(request: web.Request) -> web.Response:
        return web.json_response({"ok": True}, status=201, headers={"X-Thing": "a"})

    server = await serve(answer)
    async with client_for(server.url, headers={"Authorization": "Bearer sk-x"}) as client:
        response = await client.post("/user/new", params={"a": "1"}, json={"user_id": "u"})
    assert (response.status_code, response.json()) == (201, {"ok": True})
    assert response.headers["x-thing"] == "a"
    assert response.http_version == "HTTP/1.1"
    method, path, headers, body = server.seen[0]
    assert (method, path, json.loads(body)) == ("POST", "/user/new?a=1", {"user_id": "u"})
    assert headers["Authorization"] == "Bearer sk-x"
    assert headers["Content-Type"] == "application/json"


async def test_a_compressed_answer_is_decoded_once(
    serve: Callable[[Handler], Awaitable[Server]],
) -> None:
    async def answer(request: web.Request) -> web.Response:
        body = gzip.compress(b'{"users": []}')
        return web.Response(body=body, headers={"Content-Encoding": "gzip"})

    server = await serve(answer)
    async with client_for(server.url) as client:
        response = await client.get("/user/list")
    assert response.json() == {"users": []}


async def test_a_refused_connection_was_never_sent() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed when the block ends: nothing listens there
    async with LiteLLMClient(
        f"http://127.0.0.1:{port}",
        "sk-x",
        max_retries=0,
        transport=AiohttpTransport(max_connections=2),
    ) as client:
        with pytest.raises(UnsentUnavailable) as caught:
            await client.get_user("u")
    assert not may_have_been_processed(caught.value)


async def test_a_server_that_hangs_up_after_reading_may_have_processed_the_call(
    serve: Callable[[Handler], Awaitable[Server]],
) -> None:
    async def hang_up(request: web.Request) -> web.StreamResponse:
        assert request.transport is not None
        request.transport.close()
        return web.Response()

    server = await serve(hang_up)
    async with LiteLLMClient(
        server.url, "sk-x", max_retries=3, transport=AiohttpTransport(max_connections=2)
    ) as client:
        with pytest.raises(Unavailable) as caught:
            await client.delete_users(["u"])  # not idempotent: never retried blindly
    assert may_have_been_processed(caught.value)
    assert not isinstance(caught.value, UnsentUnavailable)
    assert len(server.seen) == 1


async def test_a_slow_answer_is_a_read_timeout(
    serve: Callable[[Handler], Awaitable[Server]],
) -> None:
    async def slow(request: web.Request) -> web.Response:
        await asyncio.sleep(2)
        return web.Response()

    server = await serve(slow)
    async with client_for(server.url, timeout=httpx.Timeout(0.2)) as client:
        with pytest.raises(httpx.ReadTimeout):
            await client.get("/health")


async def test_waiting_for_a_pooled_connection_times_out_as_never_sent(
    serve: Callable[[Handler], Awaitable[Server]],
) -> None:
    release = asyncio.Event()

    async def held(request: web.Request) -> web.Response:
        await release.wait()
        return web.Response()

    server = await serve(held)
    transport = AiohttpTransport(max_connections=1)
    timeout = httpx.Timeout(5.0, pool=0.2)
    async with httpx.AsyncClient(base_url=server.url, transport=transport, timeout=timeout) as c:
        first = asyncio.create_task(c.get("/a"))
        await asyncio.sleep(0.1)
        with pytest.raises(httpx.ConnectTimeout):
            await c.get("/b")
        release.set()
        assert (await first).status_code == 200
    assert [path for _, path, _, _ in server.seen] == ["/a"]


@pytest.fixture(scope="module")
def self_signed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 and its key, made by openssl."""
    where = tmp_path_factory.mktemp("tls")
    cert, key = where / "cert.pem", where / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
         "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )  # fmt: skip
    return cert, key


@pytest.mark.parametrize(
    ("trusted", "succeeds"),
    [
        pytest.param(True, True, id="trusted-through-SSL_CERT_FILE"),
        pytest.param(False, False, id="unknown-issuer-refused-before-sending"),
    ],
)
async def test_tls_is_trusted_as_httpx_trusts_it(
    self_signed: tuple[Path, Path],
    monkeypatch: pytest.MonkeyPatch,
    trusted: bool,
    succeeds: bool,
) -> None:
    cert, key = self_signed
    if trusted:
        monkeypatch.setenv("SSL_CERT_FILE", str(cert))
    else:
        monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    served = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    served.load_cert_chain(cert, key)

    async def health(request: web.Request) -> web.Response:
        return web.json_response({"ok": True})

    app = web.Application()
    app.router.add_get("/health", health)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=served)
    await site.start()
    port = runner.addresses[0][1]
    try:
        async with client_for(f"https://127.0.0.1:{port}") as client:
            if succeeds:
                assert (await client.get("/health")).json() == {"ok": True}
            else:
                with pytest.raises(httpx.ConnectError):
                    await client.get("/health")
    finally:
        await runner.cleanup()
