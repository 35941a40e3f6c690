"""The async LiteLLM admin client: the operator's only way to talk to LiteLLM.

It owns the connection pool, timeouts, the concurrency limit, retries (safe cases only), the
typed error mapping, recovery of lost ``/user/new`` and ``/key/generate`` responses, per-team
membership locks and redaction of the master key and generated keys.

LiteLLM 1.108 quirks the reconciler must know (verified against a real proxy by
``tests/integration``):

* ``/user/update`` creates missing users, so existence is only ever probed with ``/user/info``.
* ``/user/bulk_update`` runs ``/user/update``'s code per entry and reports a failed entry by a
  bare message (:meth:`update_users`).
* ``/user/new`` answers 409 for an existing id *or* an existing e-mail; :meth:`create_user`
  tells them apart (:class:`UserExists` vs :class:`EmailInUse`).
* ``null`` clears only ``max_budget``, ``budget_duration``, ``tpm_limit``, ``rpm_limit``;
  ``metadata`` is replaced as a whole; resending ``budget_duration`` postpones the reset
  (see :class:`UpdateUserRequest`).
* Membership changes are read-modify-write on the team row: concurrent ones can lose members,
  so :meth:`add_team_member` / :meth:`remove_team_member` hold :meth:`team_lock`.
* ``/team/member_add`` for an unknown user creates that user.
* ``/user/delete`` fails as a whole (404) if any id is missing; it deletes the users' keys too.
* ``/team/member_update`` without a ``role`` succeeds for non-members (even unknown users):
  :meth:`update_team_member` always sends the role so a non-member raises :class:`NotAMember`.
* ``/key/info`` answers 200 for deleted keys (``status="deleted"``); :meth:`key_info` hides them.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections.abc import AsyncIterator, Callable, Collection, Iterable, Mapping, Sequence
from types import EllipsisType, TracebackType
from typing import Any, Self

import httpx
from pydantic import SecretStr

from litellm_operator.litellm.errors import (
    AlreadyMember,
    BadRequest,
    Conflict,
    EmailInUse,
    KeyAliasInUse,
    KeyValueLost,
    LiteLLMError,
    NotAMember,
    NotFound,
    TeamExists,
    Unavailable,
    UserExists,
)
from litellm_operator.litellm.models import (
    GeneratedKey,
    GenerateKeyRequest,
    KeyRecord,
    LiteLLMUserRecord,
    NewUserRequest,
    TeamMember,
    TeamRecord,
    TeamRole,
    UpdateUserRequest,
)
from litellm_operator.litellm.transport import (
    backoff,
    error_from_response,
    error_from_transport,
    may_have_been_processed,
    retry_delay,
)

log = logging.getLogger(__name__)

#: ``observer(endpoint, outcome, seconds)`` is called once per HTTP attempt; ``outcome`` is
#: ``"ok"`` or the error's ``kind`` (``not_found``, ``conflict``, ``bad_request``, ``auth``,
#: ``rate_limited``, ``server_error``, ``unavailable``).
Observer = Callable[[str, str, float], None]

MAX_PAGE_SIZE = 100  # /user/list rejects larger pages (422)
MAX_BULK_UPDATE = 500  # /user/bulk_update refuses more users in one call (400)


def key_token(key: str | SecretStr) -> str:
    """The hash LiteLLM stores for a key value (``sk-…``); hashes are passed through unchanged."""
    value = key.get_secret_value() if isinstance(key, SecretStr) else key
    if value.startswith("sk-"):
        return hashlib.sha256(value.encode()).hexdigest()
    return value


class LiteLLMClient:
    """Async client for LiteLLM's admin API. Use as ``async with LiteLLMClient(...) as client``.

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
        self._team_locks: dict[str, asyncio.Lock] = {}
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
        return f"LiteLLMClient(base_url={self._base_url!r}, master_key=SecretStr('**********'))"

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

    # ---------------------------------------------------------------- users

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

    async def _user_info(self, user_id: str) -> dict[str, Any] | None:
        try:
            body: dict[str, Any] = await self._call(
                "GET", "/user/info", params={"user_id": user_id}, idempotent=True
            )
        except NotFound:
            return None
        return body

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
        exist. A mapping is validated through :class:`UpdateUserRequest` (raises ``ValueError``
        for a ``null``/empty value LiteLLM would ignore).
        """
        req = fields if isinstance(fields, UpdateUserRequest) else UpdateUserRequest(**fields)
        payload = {"user_id": user_id, **req.to_wire()}
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
        body = await self._call("POST", "/user/bulk_update", json=payload, idempotent=True)
        results = body.get("results") if isinstance(body, dict) else None
        answered: list[Any] = results if isinstance(results, list) else []
        return [
            _bulk_entry(user_id, answered[i] if i < len(answered) else None)
            for i, user_id in enumerate(ids)
        ]

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

    # ---------------------------------------------------------------- teams

    def team_lock(self, team_id: str) -> asyncio.Lock:
        """The lock serialising membership changes of ``team_id`` within this client."""
        return self._team_locks.setdefault(team_id, asyncio.Lock())

    async def get_team(self, team_id: str) -> TeamRecord | None:
        """``/team/info``: the team with its members, or ``None`` if it does not exist."""
        try:
            body = await self._call(
                "GET", "/team/info", params={"team_id": team_id}, idempotent=True
            )
        except NotFound:
            return None
        return TeamRecord.model_validate(
            {**body["team_info"], "memberships": body.get("team_memberships")}
        )

    async def new_team(
        self,
        team_id: str,
        *,
        team_alias: str | None = None,
        models: list[str] | None = None,
        max_budget: float | None = None,
        metadata: Mapping[str, Any] | None = None,
    ) -> TeamRecord:
        """``/team/new``. Raises :class:`TeamExists` if the id is taken."""
        payload: dict[str, Any] = {"team_id": team_id, "team_alias": team_alias}
        optional = {"models": models, "max_budget": max_budget, "metadata": metadata}
        payload.update({k: v for k, v in optional.items() if v is not None})
        try:
            body = await self._call("POST", "/team/new", json=payload, idempotent=False)
        except BadRequest as err:
            if "already exists" in err.message:
                raise TeamExists(
                    err.message, status_code=err.status_code, endpoint=err.endpoint
                ) from None
            raise
        return TeamRecord.model_validate(body)

    async def delete_team(self, team_ids: str | Iterable[str]) -> list[str]:
        """``/team/delete``; returns the deleted ids. :class:`NotFound` if a team is missing."""
        ids = [team_ids] if isinstance(team_ids, str) else list(team_ids)
        body = await self._call("POST", "/team/delete", json={"team_ids": ids}, idempotent=False)
        return list(body.get("deleted_teams") or ids)

    async def add_team_member(
        self,
        team_id: str,
        user_id: str,
        role: TeamRole = "user",
        *,
        max_budget_in_team: float | None = None,
        serialise: bool = True,
    ) -> bool:
        """``/team/member_add``; ``False`` if the user already is a member.

        Holds :meth:`team_lock` unless ``serialise=False`` (pass that when you hold it already).
        LiteLLM creates an unknown user; role ``admin`` is enterprise-only (:class:`BadRequest`).
        A missing team raises :class:`NotFound`.
        """
        payload: dict[str, Any] = {"team_id": team_id, "member": {"user_id": user_id, "role": role}}
        if max_budget_in_team is not None:
            payload["max_budget_in_team"] = max_budget_in_team
        try:
            await self._locked(team_id, serialise, "/team/member_add", payload)
        except AlreadyMember:
            return False
        except LiteLLMError as err:
            if not may_have_been_processed(err) or not await self._is_member(team_id, user_id):
                raise
            log.info("LiteLLM /team/member_add %s: response lost, the member was added", team_id)
        return True

    async def _is_member(self, team_id: str, user_id: str) -> bool:
        """After an ambiguous ``/team/member_add``: whether the membership exists now."""
        team = await self.get_team(team_id)
        return team is not None and user_id in team.member_ids

    async def remove_team_member(
        self, team_id: str, user_id: str, *, serialise: bool = True
    ) -> bool:
        """``/team/member_delete``; ``False`` if the user was not a member. Holds
        :meth:`team_lock` unless ``serialise=False``. A missing team raises :class:`NotFound`."""
        payload = {"team_id": team_id, "user_id": user_id}
        try:
            await self._locked(team_id, serialise, "/team/member_delete", payload)
        except NotAMember:
            return False
        return True

    async def update_team_member(
        self,
        team_id: str,
        user_id: str,
        *,
        role: TeamRole = "user",
        max_budget_in_team: float | EllipsisType | None = ...,
        serialise: bool = True,
    ) -> TeamMember:
        """``/team/member_update``. Raises :class:`NotAMember` for a non-member and
        :class:`NotFound` for a missing team.

        ``role`` is always sent: LiteLLM checks membership only when a role is given; with just
        ``max_budget_in_team`` it answers 200 for any user and creates a dangling budget row.
        ``max_budget_in_team=None`` removes the member's budget; omitted, it is left alone.
        """
        payload: dict[str, Any] = {"team_id": team_id, "user_id": user_id, "role": role}
        if not isinstance(max_budget_in_team, EllipsisType):
            payload["max_budget_in_team"] = max_budget_in_team
        body = await self._locked(team_id, serialise, "/team/member_update", payload)
        return TeamMember.model_validate({"role": role, **body})

    async def _locked(
        self, team_id: str, serialise: bool, path: str, payload: dict[str, Any]
    ) -> Any:
        if not serialise:
            return await self._membership_call(path, payload)
        async with self.team_lock(team_id):
            return await self._membership_call(path, payload)

    async def _membership_call(self, path: str, payload: dict[str, Any]) -> Any:
        try:
            return await self._call("POST", path, json=payload, idempotent=False)
        except (BadRequest, NotFound) as err:
            raise _membership_error(err) from None

    # ---------------------------------------------------------------- keys

    async def generate_key(
        self,
        req: GenerateKeyRequest | None = None,
        /,
        **fields: Any,
    ) -> GeneratedKey:
        """``/key/generate`` from a request model or its fields as keywords. Never blindly retried.

        After an ambiguous failure, a key with a ``key_alias`` is looked up by alias first: if it
        exists the secret is lost and :class:`KeyValueLost` is raised (no second key is created);
        if not, the call is tried again. Without an alias the failure is raised as is.
        A taken alias raises :class:`KeyAliasInUse`.
        """
        request = req if req is not None else GenerateKeyRequest(**fields)
        attempt = 0
        while True:
            try:
                body = await self._call(
                    "POST", "/key/generate", json=request.to_wire(), idempotent=False
                )
                return GeneratedKey.model_validate(body)
            except BadRequest as err:
                raise _key_alias_error(err) from None
            except LiteLLMError as err:
                if request.key_alias is None or not may_have_been_processed(err):
                    raise
                found = await self.find_key_by_alias(request.key_alias)
                if found is not None:
                    raise KeyValueLost(
                        f"key {request.key_alias!r} was created but its response was lost",
                        token=found.token,
                        key_alias=request.key_alias,
                    ) from None
                if attempt >= self._max_retries:
                    raise
            await self._backoff_sleep(attempt)
            attempt += 1

    async def register_key(self, key: SecretStr, req: GenerateKeyRequest) -> str:
        """``/key/generate`` with a value the caller chose (and already stored); its token.

        LiteLLM stores a key as the SHA-256 of its value (:func:`key_token`), so the call is
        safe to repeat: after an ambiguous failure ``/key/info`` by that hash says whether the
        key exists, and it is only sent again if it does not. The value never leaves this
        method except in the request body. Sent again with its ``key_alias``, LiteLLM answers
        400 (alias taken): the hash then proves it is this very key.
        """
        token = key_token(key)
        payload = {**req.to_wire(), "key": key.get_secret_value()}
        attempt = 0
        while True:
            try:
                await self._call("POST", "/key/generate", json=payload, idempotent=False)
                return token
            except BadRequest as err:
                error = _key_alias_error(err)
                if isinstance(error, KeyAliasInUse) and await self.key_info(token) is not None:
                    return token  # an earlier attempt registered it (the alias is its own)
                raise error from None
            except LiteLLMError as err:
                if not may_have_been_processed(err):
                    raise
                if await self.key_info(token) is not None:
                    return token
                if attempt >= self._max_retries:
                    raise
            await self._backoff_sleep(attempt)
            attempt += 1

    async def key_info(
        self, key: str | SecretStr, *, include_deleted: bool = False
    ) -> KeyRecord | None:
        """``/key/info`` by key value or token hash (always sent as the hash, so no secret lands
        in a URL or access log); ``None`` if unknown.

        LiteLLM answers 200 for a *deleted* key too (from its archive, ``status="deleted"``);
        such a record is treated as absent unless ``include_deleted``.
        """
        try:
            body = await self._call(
                "GET", "/key/info", params={"key": key_token(key)}, idempotent=True
            )
        except NotFound:
            return None
        record = KeyRecord.model_validate({"token": key_token(key), **body["info"]})
        return None if record.deleted and not include_deleted else record

    async def find_key_by_alias(self, key_alias: str) -> KeyRecord | None:
        """``/key/list?key_alias=`` (exact match): the key with this alias, or ``None``."""
        params = {"key_alias": key_alias, "return_full_object": "true"}
        body = await self._call("GET", "/key/list", params=params, idempotent=True)
        keys = body.get("keys") or []
        return KeyRecord.model_validate(keys[0]) if keys else None

    async def list_user_keys(self, user_id: str) -> list[KeyRecord]:
        """The user's keys, from ``/user/info``. Raises :class:`NotFound` for an unknown user."""
        body = await self._user_info(user_id)
        if body is None:
            raise NotFound(f"User {user_id} not found", status_code=404, endpoint="/user/info")
        return [KeyRecord.model_validate(raw) for raw in body.get("keys") or []]

    async def update_key(self, key: str | SecretStr, fields: Mapping[str, Any]) -> KeyRecord:
        """``/key/update`` with the given fields (``metadata`` replaces as a whole)."""
        payload = {**fields, "key": key_token(key)}
        body = await self._call("POST", "/key/update", json=payload, idempotent=True)
        return KeyRecord.model_validate(body)

    async def delete_keys(
        self,
        keys: Iterable[str | SecretStr] = (),
        *,
        key_aliases: Iterable[str] = (),
    ) -> list[str]:
        """``/key/delete`` by value/hash and/or alias; returns what LiteLLM echoes as deleted
        (the hashes sent, or the aliases). :class:`NotFound` when none exists (e.g. twice)."""
        payload: dict[str, Any] = {}
        tokens = [key_token(k) for k in keys]
        aliases = list(key_aliases)
        if tokens:
            payload["keys"] = tokens
        if aliases:
            payload["key_aliases"] = aliases
        body = await self._call("POST", "/key/delete", json=payload, idempotent=False)
        return list(body.get("deleted_keys") or [])

    async def block_key(self, key: str | SecretStr) -> KeyRecord:
        """``/key/block`` (idempotent). :class:`NotFound` for an unknown key."""
        return await self._key_block_call("/key/block", key)

    async def unblock_key(self, key: str | SecretStr) -> KeyRecord:
        """``/key/unblock`` (idempotent). :class:`NotFound` for an unknown key."""
        return await self._key_block_call("/key/unblock", key)

    async def _key_block_call(self, path: str, key: str | SecretStr) -> KeyRecord:
        body = await self._call("POST", path, json={"key": key_token(key)}, idempotent=True)
        return KeyRecord.model_validate(body)


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


def _membership_error(err: LiteLLMError) -> LiteLLMError:
    """Re-type LiteLLM's membership answers (it uses 400 and 404 inconsistently)."""
    kwargs: dict[str, Any] = {
        "status_code": err.status_code,
        "endpoint": err.endpoint,
        "error_type": err.error_type,
    }
    text = err.message.lower()
    if err.error_type == "team_member_already_in_team" or "already in team" in text:
        return AlreadyMember(err.message, **kwargs)
    if "does not exist in db" in text or "doesn't exist in db" in text:
        return NotFound(err.message, **kwargs)
    if "not found in team" in text or "is not a member" in text:
        return NotAMember(err.message, **kwargs)
    return err


def _key_alias_error(err: BadRequest) -> LiteLLMError:
    if "alias" in err.message.lower() and "already exists" in err.message.lower():
        return KeyAliasInUse(err.message, status_code=err.status_code, endpoint=err.endpoint)
    return err
