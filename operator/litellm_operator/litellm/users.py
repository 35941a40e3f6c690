"""LiteLLM's users: ``/user/info``, ``/user/list``, ``/user/new``, ``/user/update``,
``/user/bulk_update`` and ``/user/delete`` (:class:`UserCalls`).

LiteLLM quirks these calls account for (verified against a real proxy by ``tests/integration``):

* ``/user/update`` creates missing users, so existence is only ever probed with ``/user/info``.
* ``/user/bulk_update`` runs ``/user/update``'s code per entry and reports a failed entry by a
  bare message (:meth:`UserCalls.update_users`).
* ``/user/new`` answers 409 for an existing id *or* an existing e-mail;
  :meth:`UserCalls.create_user` tells them apart (:class:`UserExists` vs :class:`EmailInUse`).
* ``null`` clears only ``max_budget``, ``budget_duration``, ``tpm_limit``, ``rpm_limit``;
  ``metadata`` is replaced as a whole; resending ``budget_duration`` postpones the reset
  (see :class:`UpdateUserRequest`).
* ``/user/delete`` fails as a whole (404) if any id is missing; it deletes the users' keys too.

Older releases differ (:mod:`litellm_operator.litellm.versions`): where ``null`` does not clear
a rate limit, the update calls write :data:`~litellm_operator.litellm.versions.NO_LIMIT`
(read back as no limit on every release, :class:`LiteLLMUserRecord`).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Collection, Iterable, Mapping, Sequence
from typing import Any

from litellm_operator.litellm.connection import Connection
from litellm_operator.litellm.errors import (
    Conflict,
    EmailInUse,
    LiteLLMError,
    UserExists,
)
from litellm_operator.litellm.models import (
    LiteLLMUserRecord,
    NewUserRequest,
    UpdateUserRequest,
    build,
)
from litellm_operator.litellm.transport import (
    may_have_been_processed,
)
from litellm_operator.litellm.versions import NO_LIMIT, NULL_CLEARS_RATE_LIMITS, parse

log = logging.getLogger(__name__)

MAX_PAGE_SIZE = 100  # /user/list rejects larger pages (422)
MAX_BULK_UPDATE = 500  # /user/bulk_update refuses more users in one call (400)
RATE_LIMITS = ("tpm_limit", "rpm_limit")


class UserCalls(Connection):
    """The calls on LiteLLM's users."""

    async def get_user(self, user_id: str) -> LiteLLMUserRecord | None:
        """``/user/info``: the user, or ``None`` if LiteLLM has no such user."""
        body = await self._user_info(user_id)
        if body is None:
            return None
        return LiteLLMUserRecord.model_validate(body["user_info"])

    async def get_users(self, user_ids: Collection[str]) -> dict[str, LiteLLMUserRecord]:
        """``/user/list?user_ids=``: those of ``user_ids`` that exist, by id, in one call.

        At most :data:`MAX_PAGE_SIZE` ids, none with a comma (the filter is comma-separated):
        :class:`ValueError` otherwise. Reading N users this way costs LiteLLM a small fraction
        of N ``/user/info`` calls (measured in the benchmark's README section).
        """
        ids = sorted(set(user_ids))
        if len(ids) > MAX_PAGE_SIZE or any("," in user_id for user_id in ids):
            raise ValueError("get_users takes at most 100 ids, none with a comma")
        if not ids:
            return {}
        params = {"user_ids": ",".join(ids), "page": 1, "page_size": MAX_PAGE_SIZE}
        body = await self._call("GET", "/user/list", params=params, idempotent=True)
        wanted = set(ids)
        records = (LiteLLMUserRecord.model_validate(raw) for raw in body.get("users") or [])
        return {r.user_id: r for r in records if r.user_id in wanted}

    async def create_user(self, req: NewUserRequest) -> LiteLLMUserRecord:
        """``/user/new``. Never blindly retried.

        After an ambiguous failure (timeout, lost response, 5xx) it looks the id up with
        ``/user/info`` and returns the user if it exists, else tries again. A 409 raises
        :class:`UserExists` if the id exists, :class:`EmailInUse` if it does not.
        """
        attempt = 0
        while True:
            try:
                body = await self._call("POST", "/user/new", json=req.to_wire(), idempotent=False)
                return LiteLLMUserRecord.model_validate(body)
            except Conflict as err:
                raise await self._user_conflict(req.user_id, err) from None
            except LiteLLMError as err:
                if not may_have_been_processed(err):
                    raise
                existing = await self.get_user(req.user_id)
                if existing is not None:
                    log.info("LiteLLM /user/new for %s: response lost, user exists", req.user_id)
                    return existing
                if attempt >= self._max_retries:
                    raise
            await self._backoff_sleep(attempt)
            attempt += 1

    async def _user_conflict(self, user_id: str, err: Conflict) -> Conflict:
        kwargs: dict[str, Any] = {"status_code": err.status_code, "endpoint": err.endpoint}
        if await self.get_user(user_id) is not None:
            return UserExists(err.message, **kwargs)
        return EmailInUse(err.message, **kwargs)

    async def update_user(
        self, user_id: str, fields: UpdateUserRequest | Mapping[str, Any]
    ) -> LiteLLMUserRecord:
        """``/user/update`` with only the given fields (``None`` = clear, see the model).

        Caution: LiteLLM creates the user if it does not exist. Call it only for users known to
        exist. A mapping is validated through :class:`UpdateUserRequest` (raises
        :class:`MalformedRequest` for a ``null``/empty value LiteLLM would ignore).
        """
        req = fields if isinstance(fields, UpdateUserRequest) else build(UpdateUserRequest, fields)
        payload = {"user_id": user_id, **req.to_wire()}
        await self._spoken("/user/update", [payload])
        body = await self._call("POST", "/user/update", json=payload, idempotent=True)
        return LiteLLMUserRecord.model_validate(body.get("data", body))

    async def update_users(
        self, updates: Sequence[tuple[str, UpdateUserRequest]]
    ) -> list[LiteLLMUserRecord | None]:
        """``/user/bulk_update``: each ``(user_id, fields)`` as :meth:`update_user` would apply
        it, in one call; the rows as updated, in the same order.

        LiteLLM runs the very code of ``/user/update`` for each entry, one after the other, and
        reports a failed entry by a bare message: ``None`` stands for it (update that user
        alone for a typed error). At most :data:`MAX_BULK_UPDATE` entries, one per user id
        (:class:`ValueError` otherwise). Same caution as :meth:`update_user`: missing users are
        created. A LiteLLM without the endpoint answers 404 (:class:`NotFound`).
        """
        ids = [user_id for user_id, _ in updates]
        if len(ids) > MAX_BULK_UPDATE or len(set(ids)) != len(ids):
            raise ValueError(f"update_users takes at most {MAX_BULK_UPDATE} distinct user ids")
        payload = {"users": [{"user_id": u, **req.to_wire()} for u, req in updates]}
        await self._spoken("/user/bulk_update", payload["users"])
        body = await self._call("POST", "/user/bulk_update", json=payload, idempotent=True)
        results = body.get("results") if isinstance(body, dict) else None
        answered: list[Any] = results if isinstance(results, list) else []
        return [
            _bulk_entry(user_id, answered[i] if i < len(answered) else None)
            for i, user_id in enumerate(ids)
        ]

    async def _spoken(self, path: str, bodies: Sequence[dict[str, Any]]) -> None:
        """Rewrite user update ``bodies`` in place for the release the proxy runs."""
        if NULL_CLEARS_RATE_LIMITS.on(parse(await self._writable(path))):
            return
        for body in bodies:
            for name in RATE_LIMITS:
                if name in body and body[name] is None:
                    body[name] = NO_LIMIT

    async def delete_users(self, user_ids: Iterable[str]) -> None:
        """``/user/delete`` (also deletes their keys). Raises :class:`NotFound` for the whole
        request if any id is missing: nothing is deleted then, so delete existing ids only."""
        ids = list(user_ids)
        await self._call("POST", "/user/delete", json={"user_ids": ids}, idempotent=False)

    async def list_users(self, page_size: int = MAX_PAGE_SIZE) -> AsyncIterator[LiteLLMUserRecord]:
        """``/user/list``, every page (LiteLLM caps pages at 100). Includes ``default_user_id``.

        Pages are offsets: users created or deleted while iterating may be seen twice or missed.
        """
        size = min(max(page_size, 1), MAX_PAGE_SIZE)
        page = 1
        while True:
            body = await self._call(
                "GET", "/user/list", params={"page": page, "page_size": size}, idempotent=True
            )
            users = body.get("users") or []
            for raw in users:
                yield LiteLLMUserRecord.model_validate(raw)
            if not users or page >= int(body.get("total_pages") or 0):
                return
            page += 1

    async def users_with_email(self, email: str) -> list[str]:
        """The ids of the users whose ``user_email`` is ``email``, compared case-insensitively.

        ``/user/list?user_email=`` matches substrings; the exact match is made here.
        """
        wanted = email.lower()
        found = await self._users_matching(user_email=email)
        return [r.user_id for r in found if (r.user_email or "").lower() == wanted]

    async def users_with_sso_user_id(self, sso_user_id: str) -> list[str]:
        """The ids of the users whose ``sso_user_id`` is ``sso_user_id`` (at most one: unique).

        ``/user/new`` answers 500 for a taken ``sso_user_id``, so it is looked up before.
        """
        found = await self._users_matching(sso_user_ids=sso_user_id)
        return [r.user_id for r in found if r.sso_user_id == sso_user_id]

    async def _users_matching(self, **filters: str) -> list[LiteLLMUserRecord]:
        """The first ``/user/list`` page under ``filters`` (lookups that match a handful)."""
        params = {**filters, "page": 1, "page_size": MAX_PAGE_SIZE}
        body = await self._call("GET", "/user/list", params=params, idempotent=True)
        return [LiteLLMUserRecord.model_validate(raw) for raw in body.get("users") or []]


def _bulk_entry(user_id: str, entry: Any) -> LiteLLMUserRecord | None:
    """One entry of ``/user/bulk_update``'s ``results``: the row it answered for ``user_id``, or
    ``None`` for a failed, missing, malformed or mismatched entry."""
    if not isinstance(entry, dict) or entry.get("success") is not True:
        return None
    updated = entry.get("updated_user")
    if not isinstance(updated, dict):
        return None
    row = updated.get("data", updated)
    if not isinstance(row, dict) or row.get("user_id") != user_id:
        return None
    try:
        return LiteLLMUserRecord.model_validate(row)
    except ValueError:
        return None
