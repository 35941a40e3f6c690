"""A fault-injecting HTTP proxy between the operator and the real LiteLLM, for the fault suite.

Each request is forwarded to LiteLLM unless a :class:`Rule` matching its method and path says
otherwise; a rule applies ``times`` times (or until removed):

* ``delay``: wait ``seconds`` before forwarding (LiteLLM slower than the operator's timeout);
* ``reset``: close the connection without forwarding (the request never reached LiteLLM);
* ``status``: answer ``code`` (429, 500 ...) with ``headers`` without forwarding;
* ``garbage``: forward, then answer 200 with a body that is not JSON;
* ``drop``: forward, then close the connection without answering (a lost response);
* ``hold``: forward, then keep the answer until :meth:`FaultProxy.release` — the test decides
  what happens meanwhile (a SIGKILL of the operator: a kill point that is not timing luck).

It speaks just enough HTTP/1.1 for the operator's httpx client (Content-Length bodies, one
request per connection: it answers ``Connection: close``). It runs its own event loop in a
thread so synchronous tests can drive it.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Literal

import httpx

from tests.e2e.operator_harness import free_port

Action = Literal["delay", "reset", "status", "garbage", "drop", "hold"]


@dataclass
class Rule:
    action: Action
    path: str = ".*"
    """A regular expression the request path (without query) must match in full."""
    method: str | None = None
    times: int | None = 1
    """How many requests the rule applies to; ``None``: until removed."""
    seconds: float = 0.0
    code: int = 500
    headers: dict[str, str] = field(default_factory=dict)
    hits: int = 0
    held: threading.Event = field(default_factory=threading.Event)
    """Set when a ``hold`` rule has forwarded a request and holds its answer."""

    def matches(self, method: str, path: str) -> bool:
        if self.times is not None and self.hits >= self.times:
            return False
        if self.method is not None and self.method != method:
            return False
        return re.fullmatch(self.path, path) is not None


class FaultProxy:
    def __init__(self, target: str) -> None:
        self.target = target.rstrip("/")
        self.port = free_port()
        self.rules: list[Rule] = []
        self.forwarded: list[tuple[str, str]] = []
        self._release = threading.Event()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._started = threading.Event()
        self._server: asyncio.Server | None = None
        self._client: httpx.AsyncClient
        self._writers: set[asyncio.StreamWriter] = set()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    # ------------------------------------------------------------------ control (test thread)

    def start(self) -> None:
        self._thread.start()
        if not self._started.wait(10):
            raise RuntimeError("fault proxy did not start")

    def stop(self) -> None:
        """Close the listener, every open connection and the client; then the loop itself."""
        self._release.set()
        asyncio.run_coroutine_threadsafe(self._shutdown(), self._loop).result(timeout=30)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()

    async def _shutdown(self) -> None:
        if self._server is not None:
            self._server.close()
            for writer in list(self._writers):
                writer.close()
            await self._server.wait_closed()
        await self._client.aclose()

    def add(self, rule: Rule) -> Rule:
        self._release.clear()
        self.rules.append(rule)
        return rule

    def clear(self) -> None:
        self.rules.clear()
        self._release.set()

    def release(self) -> None:
        """Let held answers go (to a connection that may be gone by then)."""
        self._release.set()

    @contextlib.contextmanager
    def injected(self, rule: Rule) -> Iterator[Rule]:
        self.add(rule)
        try:
            yield rule
        finally:
            self.clear()

    # ------------------------------------------------------------------ serving (proxy thread)

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._server = self._loop.run_until_complete(
            asyncio.start_server(self._serve, "127.0.0.1", self.port)
        )
        self._client = httpx.AsyncClient(base_url=self.target, timeout=120)
        self._started.set()
        self._loop.run_forever()

    def _rule_for(self, method: str, path: str) -> Rule | None:
        for rule in self.rules:
            if rule.matches(method, path):
                rule.hits += 1
                return rule
        return None

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        try:
            request = await _read_request(reader)
            if request is None:
                return
            method, target, headers, body = request
            path = target.split("?", 1)[0]
            rule = self._rule_for(method, path)
            if rule is not None and rule.action == "delay":
                await asyncio.sleep(rule.seconds)
            if rule is not None and rule.action == "reset":
                return
            if rule is not None and rule.action == "status":
                await _write(writer, rule.code, b'{"error": {"message": "injected"}}', rule.headers)
                return
            upstream = await self._client.request(
                method,
                target,
                content=body,
                headers={k: v for k, v in headers.items() if k.lower() in FORWARDED_HEADERS},
            )
            self.forwarded.append((method, path))
            if rule is not None and rule.action == "drop":
                return
            if rule is not None and rule.action == "hold":
                rule.held.set()
                await asyncio.get_running_loop().run_in_executor(None, self._release.wait, 120)
            if rule is not None and rule.action == "garbage":
                await _write(writer, 200, b"<html>upstream proxy error</html>", {})
                return
            ctype = {"content-type": upstream.headers.get("content-type", "application/json")}
            await _write(writer, upstream.status_code, upstream.content, ctype)
        except (ConnectionError, asyncio.IncompleteReadError, httpx.HTTPError):
            return
        finally:
            self._writers.discard(writer)
            with contextlib.suppress(ConnectionError, OSError):
                writer.close()
                await writer.wait_closed()


FORWARDED_HEADERS = frozenset({"authorization", "content-type", "accept"})


async def _read_request(
    reader: asyncio.StreamReader,
) -> tuple[str, str, dict[str, str], bytes] | None:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    if not lines or not lines[0]:
        return None
    method, target, _ = lines[0].split(" ", 2)
    headers: dict[str, str] = {}
    for line in lines[1:]:
        if ":" in line:
            name, value = line.split(":", 1)
            headers[name.strip()] = value.strip()
    length = int(next((v for k, v in headers.items() if k.lower() == "content-length"), "0"))
    body = await reader.readexactly(length) if length else b""
    return method, target, headers, body


async def _write(
    writer: asyncio.StreamWriter, code: int, body: bytes, headers: dict[str, str]
) -> None:
    lines = [f"HTTP/1.1 {code} X", f"Content-Length: {len(body)}", "Connection: close"]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body)
    await writer.drain()
