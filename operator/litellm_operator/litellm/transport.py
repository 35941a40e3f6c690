"""Turning HTTP outcomes into typed errors, and the retry policy (which failures, how long to wait).

Pure functions over httpx objects: no I/O, so the rules are unit-testable on their own.
"""

from __future__ import annotations

import email.utils
import random
import time
from typing import Any

import httpx

from litellm_operator.litellm.errors import (
    AuthError,
    BadRequest,
    Conflict,
    LiteLLMError,
    NotFound,
    RateLimited,
    ServerError,
    Unavailable,
)
from litellm_operator.litellm.redact import redact

#: Transport failures raised before the request left the client: safe to retry on any endpoint.
_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)


class UnsentUnavailable(Unavailable):
    """Unavailable, and the request provably never reached LiteLLM (connect phase)."""


def error_from_transport(exc: httpx.TransportError, endpoint: str, *secrets: str) -> Unavailable:
    """Map a connect/read/write failure (no response) to :class:`Unavailable`."""
    detail = redact(str(exc) or type(exc).__name__, *secrets)
    message = f"{type(exc).__name__}: {detail}"
    if isinstance(exc, _NOT_SENT):
        return UnsentUnavailable(message, endpoint=endpoint)
    return Unavailable(message, endpoint=endpoint)


def error_from_response(response: httpx.Response, endpoint: str, *secrets: str) -> LiteLLMError:
    """Map a non-2xx response to the typed error of its class, with LiteLLM's redacted message."""
    message, error_type = _error_details(response)
    message = redact(message, *secrets)
    status = response.status_code
    kwargs: dict[str, Any] = {"status_code": status, "endpoint": endpoint, "error_type": error_type}
    if status == 429:
        return RateLimited(message, retry_after=parse_retry_after(response.headers), **kwargs)
    if status >= 500:
        return ServerError(message, retry_after=parse_retry_after(response.headers), **kwargs)
    return _CLIENT_ERRORS.get(status, BadRequest)(message, **kwargs)


_CLIENT_ERRORS: dict[int, type[LiteLLMError]] = {
    400: BadRequest,
    401: AuthError,
    403: AuthError,
    404: NotFound,
    409: Conflict,
    422: BadRequest,
}


def _error_details(response: httpx.Response) -> tuple[str, str | None]:
    """LiteLLM's message and error type from any of its error shapes.

    Shapes seen: ``{"error": {"message", "type", "code"}}``, ``{"detail": {"error": "..."}}``,
    ``{"detail": "..."}`` and FastAPI's ``{"detail": [{"loc", "msg"}]}``.
    """
    try:
        body = response.json()
    except ValueError:
        return (response.text[:500] or response.reason_phrase), None
    if not isinstance(body, dict):
        return str(body)[:500], None
    error = body.get("error")
    if isinstance(error, dict):
        return str(error.get("message", error)), _str_or_none(error.get("type"))
    detail = body.get("detail", body)
    if isinstance(detail, dict):
        return str(detail.get("error", detail)), None
    if isinstance(detail, list):
        return "; ".join(_validation_item(item) for item in detail), "validation_error"
    return str(detail), None


def _validation_item(item: Any) -> str:
    if isinstance(item, dict):
        loc = ".".join(str(part) for part in item.get("loc", []))
        return f"{loc}: {item.get('msg', item)}"
    return str(item)


def _str_or_none(value: Any) -> str | None:
    return None if value is None else str(value)


def parse_retry_after(headers: httpx.Headers, *, now: float | None = None) -> float | None:
    """Seconds from a ``Retry-After`` header (delta-seconds or HTTP-date), or ``None``."""
    raw = headers.get("retry-after")
    if raw is None:
        return None
    raw = raw.strip()
    try:
        return max(0.0, float(raw))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(raw)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def retry_delay(
    err: LiteLLMError,
    *,
    attempt: int,
    idempotent: bool,
    max_retries: int,
    backoff_base: float,
    max_delay: float,
) -> float | None:
    """How long to wait before retrying after ``err`` (attempt 0 = the first failure), or ``None``.

    Retried: 429 on any endpoint (LiteLLM did not act on it), connect-phase failures on any
    endpoint (the request never left), and 5xx / read timeouts only on idempotent calls. A
    ``Retry-After`` longer than ``max_delay`` is not waited for: the error goes to the caller.
    """
    if attempt >= max_retries or not _may_retry(err, idempotent):
        return None
    if err.retry_after is not None:
        return err.retry_after if err.retry_after <= max_delay else None
    return backoff(attempt, backoff_base, max_delay)


def _may_retry(err: LiteLLMError, idempotent: bool) -> bool:
    if isinstance(err, RateLimited | UnsentUnavailable):
        return True
    return idempotent and err.retryable


def backoff(attempt: int, base: float, cap: float) -> float:
    """Exponential backoff with jitter: uniform in [d/2, d], d = min(cap, base * 2^attempt)."""
    ceiling: float = min(cap, base * 2.0**attempt)
    return ceiling * (0.5 + random.random() / 2)  # noqa: S311 - jitter, not crypto


def may_have_been_processed(err: LiteLLMError) -> bool:
    """Whether a failed non-idempotent call may nevertheless have taken effect in LiteLLM."""
    if isinstance(err, UnsentUnavailable | RateLimited):
        return False
    return isinstance(err, Unavailable | ServerError)
