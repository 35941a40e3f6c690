"""Teams and membership against a real LiteLLM: /team/new, /team/info, /team/member_*."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest

from litellm_operator.fields import TEAM_COLUMNS
from litellm_operator.litellm import (
    BadRequest,
    LiteLLMClient,
    MalformedRequest,
    NewTeamRequest,
    NewUserRequest,
    NotAMember,
    NotFound,
    TeamExists,
    UpdateTeamRequest,
)

pytestmark = pytest.mark.integration


async def test_new_team_info_and_delete(litellm_client: LiteLLMClient, unique_id: str) -> None:
    created = await litellm_client.new_team(unique_id, team_alias="Team A", metadata={"x": 1})
    assert created.team_id == unique_id
    team = await litellm_client.get_team(unique_id)
    assert team is not None
    assert (team.team_alias, team.metadata) == ("Team A", {"x": 1})
    with pytest.raises(TeamExists):
        await litellm_client.new_team(unique_id)
    assert await litellm_client.delete_team(unique_id) == [unique_id]
    assert await litellm_client.get_team(unique_id) is None
    with pytest.raises(NotFound):
        await litellm_client.delete_team(unique_id)


async def test_member_add_update_delete_and_their_idempotent_answers(
    litellm_client: LiteLLMClient, make_id: Callable[[str], str]
) -> None:
    team_id, user_id = make_id("team"), make_id("user")
    await litellm_client.new_team(team_id)
    await litellm_client.create_user(NewUserRequest.of(user_id=user_id))

    assert await litellm_client.add_team_member(team_id, user_id) is True
    assert await litellm_client.add_team_member(team_id, user_id) is False  # already a member
    team = await litellm_client.get_team(team_id)
    assert team is not None
    assert user_id in team.member_ids
    user = await litellm_client.get_user(user_id)
    assert user is not None
    assert user.teams == [team_id]

    member = await litellm_client.update_team_member(team_id, user_id, max_budget_in_team=3.0)
    assert member.user_id == user_id

    assert await litellm_client.remove_team_member(team_id, user_id) is True
    assert await litellm_client.remove_team_member(team_id, user_id) is False  # not a member
    with pytest.raises(NotAMember):
        await litellm_client.update_team_member(team_id, user_id, max_budget_in_team=1.0)
    user = await litellm_client.get_user(user_id)
    assert user is not None
    assert user.teams == []


async def test_membership_calls_on_a_missing_team_raise_not_found(
    litellm_client: LiteLLMClient, make_id: Callable[[str], str]
) -> None:
    team_id, user_id = make_id("team"), make_id("user")
    assert await litellm_client.get_team(team_id) is None
    with pytest.raises(NotFound) as add:
        await litellm_client.add_team_member(team_id, user_id)
    with pytest.raises(NotFound) as remove:
        await litellm_client.remove_team_member(team_id, user_id)
    with pytest.raises(NotFound) as update:
        await litellm_client.update_team_member(team_id, user_id, max_budget_in_team=1.0)
    for info in (add, remove, update):
        assert not isinstance(info.value, NotAMember)
    assert await litellm_client.get_user(user_id) is None


async def test_member_add_creates_an_unknown_user(
    litellm_client: LiteLLMClient, make_id: Callable[[str], str]
) -> None:
    team_id, user_id = make_id("team"), make_id("user")
    await litellm_client.new_team(team_id)
    assert await litellm_client.add_team_member(team_id, user_id) is True
    assert await litellm_client.get_user(user_id) is not None


async def test_team_admin_role_is_an_enterprise_bad_request(
    litellm_client: LiteLLMClient, make_id: Callable[[str], str]
) -> None:
    team_id, user_id = make_id("team"), make_id("user")
    await litellm_client.new_team(team_id)
    with pytest.raises(BadRequest, match="premium feature"):
        await litellm_client.add_team_member(team_id, user_id, role="admin")


async def test_concurrent_adds_to_one_team_are_serialised_and_none_is_lost(
    litellm_client: LiteLLMClient, make_id: Callable[[str], str]
) -> None:
    team_id = make_id("team")
    users = [make_id("user") for _ in range(10)]
    await litellm_client.new_team(team_id)
    await asyncio.gather(*(litellm_client.create_user(NewUserRequest.of(user_id=u)) for u in users))
    added = await asyncio.gather(*(litellm_client.add_team_member(team_id, u) for u in users))
    assert all(added)
    team = await litellm_client.get_team(team_id)
    assert team is not None
    assert set(users) <= team.member_ids


async def test_team_lock_is_one_lock_per_team(litellm_client: LiteLLMClient) -> None:
    assert litellm_client.team_lock("a") is litellm_client.team_lock("a")
    assert litellm_client.team_lock("a") is not litellm_client.team_lock("b")


TEAM_VALUES: dict[str, Any] = {
    "alias": "Crew",
    "models": ["m1", "m2"],
    "max_budget": 5.0,
    "budget_duration": "30d",
    "tpm_limit": 100,
    "rpm_limit": 10,
    "blocked": True,
}
"""A value for every team column (fields.TEAM_COLUMNS): the test fails when one is added."""


async def test_every_team_column_round_trips_through_new_list_and_update(
    litellm_client: LiteLLMClient, unique_id: str
) -> None:
    assert {c.name for c in TEAM_COLUMNS} == set(TEAM_VALUES)
    columns = {c.litellm: c.to_litellm(TEAM_VALUES[c.name]) for c in TEAM_COLUMNS}
    metadata = {"k": "v", "model_rpm_limit": {"m1": 2}}
    await litellm_client.create_team(
        NewTeamRequest.of(team_id=unique_id, metadata=metadata, **columns)
    )
    listed = (await litellm_client.list_teams())[unique_id]
    for column in TEAM_COLUMNS:
        held = column.from_litellm(getattr(listed, column.litellm))
        assert column.same(TEAM_VALUES[column.name], held), column.name
    assert listed.metadata == metadata

    cleared = {c.litellm: c.to_litellm(c.builtin) for c in TEAM_COLUMNS}
    await litellm_client.update_team(
        unique_id, UpdateTeamRequest.of(metadata={"z": "1"}, **cleared)
    )
    listed = (await litellm_client.list_teams())[unique_id]
    for column in TEAM_COLUMNS:
        held = column.from_litellm(getattr(listed, column.litellm))
        assert column.same(column.builtin, held), column.name
    assert listed.metadata == {"z": "1"}  # replaced whole
    await litellm_client.delete_team(unique_id)


async def test_create_team_is_refused_for_a_taken_id(
    litellm_client: LiteLLMClient, unique_id: str
) -> None:
    await litellm_client.create_team(NewTeamRequest.of(team_id=unique_id))
    with pytest.raises(TeamExists):
        await litellm_client.create_team(NewTeamRequest.of(team_id=unique_id, max_budget=1.0))
    with pytest.raises(NotFound):
        await litellm_client.update_team(unique_id + "-x", UpdateTeamRequest.of(max_budget=1.0))
    await litellm_client.delete_team(unique_id)


def test_update_team_rejects_what_litellm_ignores() -> None:
    with pytest.raises(MalformedRequest):
        UpdateTeamRequest.of(blocked=None)
    with pytest.raises(MalformedRequest):
        UpdateTeamRequest.of(metadata=None)
    assert UpdateTeamRequest.of(max_budget=None, models=[]).to_wire() == {
        "max_budget": None,
        "models": [],
    }


async def test_native_team_member_budget_is_not_what_member_budget_needs(
    litellm_client: LiteLLMClient, make_id: Callable[[str], str]
) -> None:
    """Why LiteLLMTeam.memberBudget is written per member (max_budget_in_team) rather than with
    LiteLLM's own ``team_member_budget`` (README, LiteLLMTeam): what 1.108.7 does with it."""
    team_id, plain, own = make_id("team"), make_id("plain"), make_id("own")
    body = {"team_id": team_id, "team_member_budget": 20.0, "budget_duration": "7d"}
    await litellm_client._call("POST", "/team/new", json=body, idempotent=False)
    for user_id in (plain, own):
        await litellm_client.create_user(NewUserRequest.of(user_id=user_id))
    await litellm_client.add_team_member(team_id, plain)
    await litellm_client.add_team_member(team_id, own, max_budget_in_team=9.0)

    # The batched read: /team/list carries only the default's id, not its amount.
    listed = (await litellm_client.list_teams())[team_id]
    default_id = listed.metadata.get("team_member_budget_id")
    assert isinstance(default_id, str)
    assert "team_member_budget" not in listed.model_dump()
    # ... and every member's own budget, which is what the operator writes and compares.
    assert listed.member_budget(own) == 9.0
    raw_info = await litellm_client._call(
        "GET", "/team/info", params={"team_id": team_id}, idempotent=True
    )
    table = raw_info["team_info"].get("team_member_budget_table") or {}
    # The shared default row takes the team's own budget_duration: members' budgets reset with
    # the team's period, which a member's own max_budget_in_team (no period) does not.
    assert (table.get("max_budget"), table.get("budget_duration")) == (20.0, "7d")
    info = await litellm_client.get_team(team_id)
    assert info is not None
    # The member on the default reads as a budget of 20 like any own budget of 20: only the
    # row's id (the team's metadata) tells them apart; the own budget wins, as wanted.
    assert (info.member_budget(plain), info.member_budget(own)) == (20.0, 9.0)
    rows = {m["user_id"]: m for m in raw_info.get("team_memberships") or []}
    assert rows[plain]["budget_id"] == default_id
    assert rows[own]["budget_id"] != default_id
    await litellm_client.delete_team(team_id)
