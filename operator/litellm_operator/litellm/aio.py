"""The bytes of the operator's LiteLLM calls, carried by aiohttp under httpx's client.

The client (:class:`~litellm_operator.litellm.connection.Connection`) stays httpx's: its
requests, responses, errors and retries are httpx's own types. Only the transport is swapped:
httpx's default one (httpcore over anyio) spent most of each call's CPU in its pool and I/O
layers (the README's Performance section has the figures). aiohttp is already what kopf and
the Kubernetes client use.

Errors are mapped by when they happened, since the client retries a call that provably never
left on any endpoint (``transport._NOT_SENT``) and treats anything else as possibly processed:
only a failure to obtain a connection (refused, unresolvable, TLS, the connect or pool wait
timing out) becomes :class:`httpx.ConnectError` or :class:`httpx.ConnectTimeout`; a failure
after a connection was obtained is a read error, a read timeout or a protocol error. (The
``httpx-aiohttp`` package maps every connection error, a server disconnecting mid-response
among them, to ``ConnectTimeout``, which would let a sent ``/user/new`` be retried blindly.)
"""

from __future__ import annotations

import aiohttp
import httpx

KEEPALIVE_SECONDS = 4.0
"""Idle connections are dropped before LiteLLM's server drops them (uvicorn's default: 5 s),
so a request is not written onto a connection the server is closing."""


class AiohttpTransport(httpx.AsyncBaseTransport):
    """An :class:`httpx.AsyncBaseTransport` over one :class:`aiohttp.ClientSession` (made on
    first use, inside the running loop), with at most ``max_connections`` connections."""

    def __init__(self, max_connections: int) -> None:
        self._max_connections = max_connections
        self._session: aiohttp.ClientSession | None = None

    def _opened(self) -> aiohttp.ClientSession:
        if self._session is None:
            connector = aiohttp.TCPConnector(
                limit=self._max_connections,
                keepalive_timeout=KEEPALIVE_SECONDS,
                # httpx's own TLS defaults (certifi's roots, SSL_CERT_FILE / SSL_CERT_DIR),
                # so an https LiteLLM is trusted exactly as before, whatever the image holds.
                ssl=httpx.create_ssl_context(),
            )
            self._session = aiohttp.ClientSession(
                connector=connector,
                auto_decompress=False,  # httpx decodes, by the response's Content-Encoding
                cookie_jar=aiohttp.DummyCookieJar(),  # httpx keeps the cookies, if any
            )
        return self._session

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        timeout = request.extensions.get("timeout", {})
        body = await request.aread()
        session = self._opened()
        try:
            response = await session.request(
                request.method,
                str(request.url),
                headers=request.headers.multi_items(),
                data=body or None,
                allow_redirects=False,
                compress=False,
                timeout=aiohttp.ClientTimeout(
                    total=None,
                    connect=timeout.get("pool"),  # aiohttp: the pool's wait and the connect
                    sock_connect=timeout.get("connect"),
                    sock_read=timeout.get("read"),
                ),
            )
        except aiohttp.ClientError as exc:
            raise as_httpx_error(exc, request) from exc
        try:
            content = await response.read()
        except aiohttp.ClientError as exc:
            raise as_httpx_error(exc, request) from exc
        finally:
            response.release()
        return httpx.Response(
            response.status,
            headers=list(response.raw_headers),
            stream=httpx.ByteStream(content),
            request=request,
            extensions={
                "http_version": http_version(response.version),
                "reason_phrase": (response.reason or "").encode(),
            },
        )

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


def http_version(version: aiohttp.HttpVersion | None) -> bytes:
    """httpx's spelling of a response's HTTP version (``b"HTTP/1.1"``)."""
    major, minor = version if version is not None else (1, 1)
    return f"HTTP/{major}.{minor}".encode()


def as_httpx_error(exc: aiohttp.ClientError, request: httpx.Request) -> httpx.TransportError:
    """The httpx error for an aiohttp failure (see the module's docstring for the rule)."""
    message = f"{type(exc).__name__}: {exc}"
    if isinstance(exc, aiohttp.ClientConnectorError):
        return httpx.ConnectError(message, request=request)
    if isinstance(exc, aiohttp.ConnectionTimeoutError):
        return httpx.ConnectTimeout(message, request=request)
    if isinstance(exc, aiohttp.SocketTimeoutError):
        return httpx.ReadTimeout(message, request=request)
    if isinstance(exc, aiohttp.ClientResponseError | aiohttp.ClientPayloadError):
        return httpx.RemoteProtocolError(message, request=request)
    return httpx.ReadError(message, request=request)
