"""LiteLLM's virtual keys: ``/key/generate``, ``/key/regenerate``-free registration of a
chosen value, ``/key/info``, ``/key/list`` (by alias, by team), ``/key/update``, ``/key/delete`` and
``/key/block`` / ``/key/unblock`` (:class:`KeyCalls`).

LiteLLM quirks these calls account for (verified against a real proxy by ``tests/integration``):

* a lost ``/key/generate`` response is recovered by the key's alias;
* ``/key/info`` answers 200 for deleted keys (``status="deleted"``);
  :meth:`KeyCalls.key_info` hides them.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from typing import Any

from pydantic import SecretStr

from litellm_operator.litellm.connection import Connection
from litellm_operator.litellm.errors import (
    BadRequest,
    KeyAliasInUse,
    KeyValueLost,
    LiteLLMError,
    NotFound,
)
from litellm_operator.litellm.models import (
    GeneratedKey,
    GenerateKeyRequest,
    KeyRecord,
    build,
)
from litellm_operator.litellm.transport import (
    may_have_been_processed,
)

KEY_PAGE_SIZE = 100
"""``/key/list``'s largest page."""


def key_token(key: str | SecretStr) -> str:
    """The hash LiteLLM stores for a key value (``sk-…``); hashes are passed through unchanged."""
    value = key.get_secret_value() if isinstance(key, SecretStr) else key
    if value.startswith("sk-"):
        return hashlib.sha256(value.encode()).hexdigest()
    return value


class KeyCalls(Connection):
    """The calls on LiteLLM's virtual keys."""

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
        request = req if req is not None else build(GenerateKeyRequest, fields)
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

    async def list_team_keys(
        self, team_id: str, *, page_size: int = KEY_PAGE_SIZE
    ) -> list[KeyRecord]:
        """The keys bound to the team (``/key/list?team_id=``, every page). An unknown team has
        none (LiteLLM answers an empty list)."""
        records: list[KeyRecord] = []
        page = 1
        while True:
            params = {
                "team_id": team_id,
                "return_full_object": "true",
                "size": str(page_size),
                "page": str(page),
            }
            body = await self._call("GET", "/key/list", params=params, idempotent=True)
            records.extend(KeyRecord.model_validate(raw) for raw in body.get("keys") or [])
            if page >= int(body.get("total_pages") or 1):
                return records
            page += 1

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


def _key_alias_error(err: BadRequest) -> LiteLLMError:
    if "alias" in err.message.lower() and "already exists" in err.message.lower():
        return KeyAliasInUse(err.message, status_code=err.status_code, endpoint=err.endpoint)
    return err
