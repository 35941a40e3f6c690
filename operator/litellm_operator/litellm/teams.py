"""LiteLLM's teams and their members: ``/team/info``, ``/team/list``, ``/team/new``,
``/team/update``, ``/team/delete`` and the ``/team/member_*`` calls (:class:`TeamCalls`).

LiteLLM quirks these calls account for (verified against a real proxy by ``tests/integration``):

* Membership changes are read-modify-write on the team row: concurrent ones can lose members,
  so :meth:`TeamCalls.add_team_member` / :meth:`TeamCalls.remove_team_member` hold
  :meth:`TeamCalls.team_lock`.
* ``/team/member_add`` for an unknown user creates that user.
* ``/team/member_update`` without a ``role`` succeeds for non-members (even unknown users):
  :meth:`TeamCalls.update_team_member` always sends the role so a non-member raises
  :class:`NotAMember`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Mapping
from types import EllipsisType
from typing import Any

from litellm_operator.litellm.connection import Connection
from litellm_operator.litellm.errors import (
    AlreadyMember,
    BadRequest,
    LiteLLMError,
    NotAMember,
    NotFound,
    TeamExists,
)
from litellm_operator.litellm.models import (
    NewTeamRequest,
    TeamMember,
    TeamRecord,
    TeamRole,
    UpdateTeamRequest,
)
from litellm_operator.litellm.transport import (
    may_have_been_processed,
)

log = logging.getLogger(__name__)


class TeamCalls(Connection):
    """The calls on LiteLLM's teams and their members."""

    def team_lock(self, team_id: str) -> asyncio.Lock:
        """The lock serialising membership changes of ``team_id`` within this client."""
        return self._locks.setdefault(f"team:{team_id}", asyncio.Lock())

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

    async def list_teams(self) -> dict[str, TeamRecord]:
        """``/team/list``: every team by id, with its columns and members, in one call (the
        resync's batched read; LiteLLM 1.108 answers the master key with all teams)."""
        body = await self._call("GET", "/team/list", idempotent=True)
        rows = body if isinstance(body, list) else (body or {}).get("teams") or []
        records = (TeamRecord.model_validate(raw) for raw in rows)
        return {r.team_id: r for r in records}

    async def create_team(self, req: NewTeamRequest) -> TeamRecord:
        """``/team/new`` with every managed column. Never blindly retried: after an ambiguous
        failure (timeout, lost response, 5xx) it looks the id up and returns the team if it
        exists (the caller judges whose it is by its markers), else raises. Raises
        :class:`TeamExists` if the id is taken."""
        try:
            body = await self._call("POST", "/team/new", json=req.to_wire(), idempotent=False)
        except BadRequest as err:
            if "already exists" in err.message:
                raise TeamExists(
                    err.message, status_code=err.status_code, endpoint=err.endpoint
                ) from None
            raise
        except LiteLLMError as err:
            if not may_have_been_processed(err):
                raise
            existing = await self.get_team(req.team_id)
            if existing is None:
                raise
            log.info("LiteLLM /team/new for %s: response lost, the team exists", req.team_id)
            return existing
        return TeamRecord.model_validate(body)

    async def update_team(self, team_id: str, req: UpdateTeamRequest) -> None:
        """``/team/update`` with what differs. Idempotent in effect (the same values again), so
        an ambiguous failure is left to the next reconcile, which reads before it writes. A
        missing team raises :class:`NotFound`."""
        body = {"team_id": team_id, **req.to_wire()}
        await self._call("POST", "/team/update", json=body, idempotent=False)

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
