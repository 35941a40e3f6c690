"""Typed errors of the LiteLLM admin client, one class per failure class.

Every error carries a redacted ``message``, the HTTP ``status_code`` (``None`` when no response
arrived), the ``endpoint`` and a ``retryable`` flag. The reconciler maps ``retryable`` errors to
``kopf.TemporaryError`` (with ``retry_after`` as the delay when set) and the rest to
``kopf.PermanentError``.
"""

from __future__ import annotations

from typing import ClassVar

from litellm_operator.litellm.redact import redact


class LiteLLMError(Exception):
    """Base class: a LiteLLM admin call failed."""

    retryable: ClassVar[bool] = False
    kind: ClassVar[str] = "error"

    def __init__(
        self,
        message: str,
        *,
        status_code: int | None = None,
        endpoint: str | None = None,
        error_type: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        self.message = redact(message)
        self.status_code = status_code
        self.endpoint = endpoint
        self.error_type = error_type
        self.retry_after = retry_after
        super().__init__(self.message)

    def __str__(self) -> str:
        where = f"{self.endpoint}: " if self.endpoint else ""
        code = f" (HTTP {self.status_code})" if self.status_code is not None else ""
        return f"{where}{self.message}{code}"

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(message={self.message!r}, status_code={self.status_code!r}, "
            f"endpoint={self.endpoint!r})"
        )


class NotFound(LiteLLMError):
    """404: the user, team, key or membership does not exist."""

    kind = "not_found"


class Conflict(LiteLLMError):
    """409 (or LiteLLM's 400 for a duplicate): the object, or a unique attribute of it, exists."""

    kind = "conflict"


class UserExists(Conflict):
    """``/user/new`` gave 409 and a user with this ``user_id`` exists."""


class EmailInUse(Conflict):
    """``/user/new`` gave 409 but no user has this id: the e-mail belongs to another user."""


class TeamExists(Conflict):
    """``/team/new`` for an existing team id (LiteLLM answers 400)."""


class KeyAliasInUse(Conflict):
    """``/key/generate`` with a ``key_alias`` another key already has (LiteLLM answers 400)."""


class BadRequest(LiteLLMError):
    """400/422: LiteLLM rejected the request; ``message`` is LiteLLM's (redacted) reason."""

    kind = "bad_request"


class AlreadyMember(BadRequest):
    """``/team/member_add`` for a user who is already a member of the team."""


class NotAMember(NotFound):
    """A membership change for a user who is not a member of the team."""


class AuthError(LiteLLMError):
    """401/403: the master key is missing, wrong or lacks the permission."""

    kind = "auth"


class RateLimited(LiteLLMError):
    """429: slow down; ``retry_after`` holds the server's Retry-After in seconds, if it sent one."""

    kind = "rate_limited"
    retryable = True


class ServerError(LiteLLMError):
    """5xx: LiteLLM or its database failed."""

    kind = "server_error"
    retryable = True


class Unavailable(LiteLLMError):
    """No usable response: connection refused/reset, timeout, or an unreadable response."""

    kind = "unavailable"
    retryable = True


class UnsupportedVersion(LiteLLMError):
    """The proxy runs a release the operator does not write to, or one that lacks what the
    write needs; the message names the release. Nothing was sent."""

    kind = "unsupported_version"


class KeyValueLost(LiteLLMError):
    """``/key/generate`` created the key but its response (the only copy of the secret) was lost.

    ``token`` is the key's hash and ``key_alias`` its alias. The secret cannot be recovered:
    delete the key (``delete_keys(key_aliases=[alias])``) and generate it again.
    """

    kind = "key_value_lost"

    def __init__(self, message: str, *, token: str | None, key_alias: str) -> None:
        super().__init__(message, endpoint="/key/generate")
        self.token = token
        self.key_alias = key_alias
