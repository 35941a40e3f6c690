"""The one connection to LiteLLM's admin API that every resource's calls go through.

:class:`Connection` owns the connection pool, timeouts, the concurrency limit, retries (safe
cases only), the typed error mapping and the redaction of the master key; the calls of each
resource (:mod:`~litellm_operator.litellm.users`, :mod:`~litellm_operator.litellm.teams`,
:mod:`~litellm_operator.litellm.keys`) are made through its :meth:`Connection._call`.

With ``watch_version`` (the running operator) it also knows which LiteLLM release it speaks to
(:mod:`litellm_operator.litellm.versions`): it reads the proxy's version before its first
write, again after an outage and whenever :meth:`Connection.proxy_version` is asked to, and to
a release older than :data:`~litellm_operator.litellm.versions.MINIMUM` (or one whose version
it cannot read) it writes nothing (:class:`UnsupportedVersion`) unless ``allow_untested``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping
from types import EllipsisType, TracebackType
from typing import Any, Self

import httpx
from pydantic import SecretStr

from litellm_operator.litellm.errors import (
    LiteLLMError,
    NotFound,
    Unavailable,
    UnsupportedVersion,
)
from litellm_operator.litellm.transport import (
    backoff,
    error_from_response,
    error_from_transport,
    retry_delay,
)
from litellm_operator.litellm.versions import unsupported

log = logging.getLogger(__name__)

#: ``observer(endpoint, outcome, seconds)`` is called once per HTTP attempt; ``outcome`` is
#: ``"ok"`` or the error's ``kind`` (``not_found``, ``conflict``, ``bad_request``, ``auth``,
#: ``rate_limited``, ``server_error``, ``unavailable``).
Observer = Callable[[str, str, float], None]
#: ``on_version(version)`` is called whenever the proxy's reported version is read and differs
#: from the one read before (``None``: it reports none).
VersionObserver = Callable[[str | None], None]


class Connection:
    """The connection to LiteLLM's admin API. Use as ``async with LiteLLMClient(...) as client``.

    Every call has a timeout (``timeout`` seconds), at most ``max_concurrency`` calls are in
    flight, and idempotent calls are retried up to ``max_retries`` times with jittered
    exponential backoff from ``backoff_base`` seconds. Errors are the typed
    :class:`~litellm_operator.litellm.errors.LiteLLMError` subclasses.
    """

    def __init__(
        self,
        base_url: str,
        master_key: SecretStr | str,
        *,
        timeout: float = 10.0,
        max_concurrency: int = 8,
        max_retries: int = 3,
        backoff_base: float = 0.2,
        max_retry_delay: float = 30.0,
        transport: httpx.AsyncBaseTransport | None = None,
        observer: Observer | None = None,
        watch_version: bool = False,
        allow_untested: bool = False,
        on_version: VersionObserver | None = None,
    ) -> None:
        self._master_key = (
            master_key if isinstance(master_key, SecretStr) else SecretStr(master_key)
        )
        self._base_url = base_url.rstrip("/")
        self._max_retries = max_retries
        self._backoff_base = backoff_base
        self._max_retry_delay = max_retry_delay
        self._observer = observer
        self._semaphore = asyncio.Semaphore(max_concurrency)
        self._locks: dict[str, asyncio.Lock] = {}
        """Locks serialising read-modify-write calls on one LiteLLM row (a team's members)."""
        self._watch_version = watch_version
        self._allow_untested = allow_untested
        self._on_version = on_version
        self._reported: str | EllipsisType | None = ...  # ...: to be read before a write
        self._version_lock = asyncio.Lock()
        self._http = httpx.AsyncClient(
            base_url=self._base_url,
            headers={"Authorization": f"Bearer {self._master_key.get_secret_value()}"},
            timeout=httpx.Timeout(timeout),
            limits=httpx.Limits(
                max_connections=max_concurrency, max_keepalive_connections=max_concurrency
            ),
            transport=transport,
        )

    def __repr__(self) -> str:
        name = type(self).__name__
        return f"{name}(base_url={self._base_url!r}, master_key=SecretStr('**********'))"

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self._http.aclose()

    # ---------------------------------------------------------------- plumbing

    async def _call(
        self,
        method: str,
        path: str,
        *,
        idempotent: bool,
        json: Mapping[str, Any] | None = None,
        params: Mapping[str, Any] | None = None,
    ) -> Any:
        """One logical call: attempts with the retry policy; returns the decoded JSON body."""
        if method != "GET":
            await self._writable(path)
        attempt = 0
        while True:
            try:
                return await self._attempt(method, path, json=json, params=params)
            except LiteLLMError as err:
                delay = retry_delay(
                    err,
                    attempt=attempt,
                    idempotent=idempotent,
                    max_retries=self._max_retries,
                    backoff_base=self._backoff_base,
                    max_delay=self._max_retry_delay,
                )
                if delay is None:
                    raise
                log.warning(
                    "LiteLLM %s failed (%s); retry %d in %.2fs", path, err, attempt + 1, delay
                )
                await asyncio.sleep(delay)
                attempt += 1

    async def _attempt(
        self,
        method: str,
        path: str,
        *,
        json: Mapping[str, Any] | None,
        params: Mapping[str, Any] | None,
    ) -> Any:
        secret = self._master_key.get_secret_value()
        async with self._semaphore:
            started = time.monotonic()
            try:
                response = await self._http.request(method, path, json=json, params=params)
            except httpx.TransportError as exc:
                self._reported = ...  # an outage: the proxy may come back as another release
                err: LiteLLMError = error_from_transport(exc, path, secret)
                self._observe(path, err.kind, started)
                raise err from None
        if response.is_success:
            self._observe(path, "ok", started)
            log.debug("LiteLLM %s %s -> %d", method, path, response.status_code)
            return self._decode(response, path)
        err = error_from_response(response, path, secret)
        self._observe(path, err.kind, started)
        log.debug("LiteLLM %s %s -> %s", method, path, err)
        raise err

    def _decode(self, response: httpx.Response, path: str) -> Any:
        """The JSON body of a 2xx answer. One that is not JSON (a proxy's error page, a cut
        body) says nothing of what LiteLLM did: :class:`Unavailable`, so it is retried like a
        lost response, never taken for a rejection."""
        try:
            return response.json()
        except ValueError:
            message = f"LiteLLM answered {response.status_code} with a body that is not JSON"
            raise Unavailable(message, status_code=response.status_code, endpoint=path) from None

    def _observe(self, endpoint: str, outcome: str, started: float) -> None:
        if self._observer is not None:
            self._observer(endpoint, outcome, time.monotonic() - started)

    async def _backoff_sleep(self, attempt: int) -> None:
        await asyncio.sleep(backoff(attempt, self._backoff_base, self._max_retry_delay))

    # ---------------------------------------------------------------- health

    async def readiness(self) -> dict[str, Any]:
        """``/health/readiness``: LiteLLM's readiness document (``status``, ``db``, …)."""
        body: dict[str, Any] = await self._call("GET", "/health/readiness", idempotent=True)
        return body

    async def version(self) -> str | None:
        """The proxy's version (``None``: not reported): from ``/health/readiness/details``
        where it exists (the public probe stopped showing it), else ``/health/readiness``."""
        try:
            body: dict[str, Any] = await self._call(
                "GET", "/health/readiness/details", idempotent=True
            )
        except NotFound:
            body = await self.readiness()
        reported = body.get("litellm_version")
        return str(reported) if reported else None

    async def proxy_version(self, *, refresh: bool = False) -> str | None:
        """The proxy's version as last read (read now if never read since an outage, or if
        ``refresh``); ``on_version`` hears of every change."""
        async with self._version_lock:
            if refresh or self._reported is ...:
                reported = await self.version()
                if reported != self._reported:
                    log.info("LiteLLM %s", reported or "reports no version")
                    if self._on_version is not None:
                        self._on_version(reported)
                self._reported = reported
            return self._reported

    @property
    def reported_version(self) -> str | None:
        """The proxy's version as last read (``None``: not read since start or an outage)."""
        return None if self._reported is ... else self._reported

    async def _writable(self, path: str) -> str | None:
        """The proxy's version, when it may be written to; :class:`UnsupportedVersion` if not."""
        if not self._watch_version:
            return None
        reported = await self.proxy_version()
        problem = unsupported(reported)
        if problem and not self._allow_untested:
            message = f"{problem}: nothing is written to it (see the README's LiteLLM matrix)"
            raise UnsupportedVersion(message, endpoint=path)
        return reported

    async def _user_info(self, user_id: str) -> dict[str, Any] | None:
        """``/user/info``'s body (the user and its keys), ``None`` for an unknown user."""
        try:
            body: dict[str, Any] = await self._call(
                "GET", "/user/info", params={"user_id": user_id}, idempotent=True
            )
        except NotFound:
            return None
        return body
