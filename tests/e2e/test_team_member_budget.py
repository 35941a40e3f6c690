"""A LiteLLMTeam's memberBudget end to end: real API server, real LiteLLM, the operator.

The team's ``memberBudget`` is each member's ``max_budget_in_team`` unless the member's own
policy sets ``maxBudgetInTeam``; an edit reaches the members at once (they turn non-Ready, then
are reconciled), a removal clears what the team gave, the resync reverts a drifted member budget
and writes nothing in steady state, and the team's ``status.members`` follows joins without
waiting for a resync. Both sides are asserted: LiteLLM with the master key, and the statuses.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from litellm_operator.litellm import LiteLLMClient, TeamRecord
from litellm_operator.litellm.models import UpdateTeamRequest
from litellm_operator.models import GROUP, TEAM_PLURAL, VERSION
from litellm_operator.users.plan import MEMBER_BUDGET
from tests.e2e.conftest import RESYNC_SECONDS
from tests.e2e.operator_harness import Cluster, OperatorProcess, condition_of, eventually
from tests.e2e.test_teams import TEAMS, Teams
from tests.fixtures.policies import ANY_IDENTITY

pytestmark = [pytest.mark.e2e, pytest.mark.integration]

MEMBER_WRITES = ("/team/member_add", "/team/member_update", "/team/member_delete")
WRITES = (*MEMBER_WRITES, "/team/new", "/team/update", "/user/new", "/user/update")


@pytest.fixture
def teams(
    operator: OperatorProcess,
    cluster: Cluster,
    namespace: str,
    policy_name: str,
    litellm_client: LiteLLMClient,
) -> Teams:
    return Teams(operator, cluster, namespace, policy_name, litellm_client)


def policy(teams: Teams, ceiling: float = 50) -> dict[str, Any]:
    """Role ``crew`` joins the LiteLLMTeam ``crew`` on its memberBudget; role ``vip`` joins it
    with a maxBudgetInTeam of its own, which wins."""
    ref = f"{teams.namespace}/crew"
    return {
        "allowedNamespaces": ["*"],
        "identities": ANY_IDENTITY,
        "teams": {**TEAMS, "memberBudget": ceiling},
        "roles": [
            {"group": "crew", "teams": [ref]},
            {"group": "vip", "teams": [ref], "maxBudgetInTeam": 9},
        ],
    }


def budget_of(record: TeamRecord, user_id: str) -> float | None:
    return record.member_budget(user_id)


async def until_budgets(
    teams: Teams, expected: dict[str, float | None], timeout: float = 30
) -> TeamRecord:
    """LiteLLM's member budgets of team ``crew`` become ``expected``."""
    deadline = time.monotonic() + timeout
    record = None
    while time.monotonic() < deadline:
        record = await teams.held("crew")
        if record is not None and all(
            u in record.member_ids and budget_of(record, u) == b for u, b in expected.items()
        ):
            return record
        await asyncio.sleep(0.2)
    seen = {u: budget_of(record, u) for u in expected} if record else None
    raise AssertionError(f"member budgets never became {expected}; last: {seen}")


def team_budgets(teams: Teams, user: str) -> dict[str, Any]:
    found = teams.cluster.get_user(teams.namespace, user) or {}
    return dict((found.get("status") or {}).get("teamBudgets") or {})


def versions(teams: Teams, users: list[str]) -> list[str]:
    """resourceVersions of the users and the team: any Kubernetes write changes one."""
    objs = [teams.cluster.get_user(teams.namespace, u) or {} for u in users]
    objs.append(teams.get("crew") or {})
    return [str(o.get("metadata", {}).get("resourceVersion")) for o in objs]


async def test_member_budget_applied_edited_drift_reverted_removed(teams: Teams) -> None:
    teams.cluster.create_policy(teams.policy, policy(teams))
    teams.create("crew", memberBudget=20)
    team = teams.ready("crew")
    team_id = teams.team_id("crew")
    assert team["status"]["effective"]["memberBudget"] == 20
    held = await teams.held("crew")
    assert held is not None
    assert held.metadata[MEMBER_BUDGET] == "20.0"

    crew, vip = f"c-{teams.namespace[-6:]}", f"v-{teams.namespace[-6:]}"
    spec = {"policyRef": teams.policy}
    teams.cluster.create_user(teams.namespace, crew, {**spec, "groups": ["crew"]})
    teams.cluster.create_user(teams.namespace, vip, {**spec, "groups": ["vip"]})
    teams.cluster.wait_ready(teams.namespace, crew)
    teams.cluster.wait_ready(teams.namespace, vip)
    await until_budgets(teams, {crew: 20.0, vip: 9.0})
    assert team_budgets(teams, crew) == {team_id: {"maxBudgetInTeam": 20, "source": "team"}}
    assert team_budgets(teams, vip) == {team_id: {"maxBudgetInTeam": 9, "source": "role"}}

    # status.members follows the joins through a recount, not a resync.
    members = eventually(
        lambda: (teams.get("crew") or {}).get("status", {}).get("members") == 2 or None,
        timeout=15,
        what="status.members 2",
    )
    assert members
    recount = f"LiteLLMTeam {teams.namespace}/crew: members joined or left; recounting"
    eventually(lambda: recount in teams.operator.log_text() or None, timeout=5, what="recount")
    team = teams.ready("crew")
    assert team["status"]["members"] == 2

    # An edit reaches the member on the team's budget at once (it turns non-Ready, and the
    # event of that reconciles it); the vip keeps its own and is left alone.
    crew_since = teams.cluster.condition(teams.namespace, crew)["lastTransitionTime"]
    vip_since = teams.cluster.condition(teams.namespace, vip)["lastTransitionTime"]
    await asyncio.sleep(1)  # conditions' times are in seconds
    edited = time.monotonic()
    teams.patch("crew", memberBudget=30)
    await until_budgets(teams, {crew: 30.0, vip: 9.0})
    reached = time.monotonic() - edited
    eventually(
        lambda: team_budgets(teams, crew).get(team_id, {}).get("maxBudgetInTeam") == 30 or None,
        timeout=15,
        what="the member's status says 30",
    )
    found = teams.cluster.wait_ready(teams.namespace, crew)
    assert condition_of(found)["reason"] == "Synced"
    assert teams.cluster.condition(teams.namespace, crew)["lastTransitionTime"] != crew_since
    assert teams.cluster.condition(teams.namespace, vip)["lastTransitionTime"] == vip_since
    print(f"\nmemberBudget edit reached LiteLLM's member budget in {reached:.2f} s")
    assert reached < RESYNC_SECONDS * 3

    # Steady state: three resyncs, no LiteLLM write, no Kubernetes write.
    await asyncio.sleep(RESYNC_SECONDS * 1.5)
    before_calls = teams.calls(*WRITES)
    before_versions = versions(teams, [crew, vip])
    await asyncio.sleep(RESYNC_SECONDS * 3)
    assert teams.calls(*WRITES) == before_calls
    assert versions(teams, [crew, vip]) == before_versions

    # Drift of a member budget is reverted by the resync (read from the shared /team/list).
    await teams.litellm.update_team_member(team_id, crew, max_budget_in_team=99.0)
    await until_budgets(teams, {crew: 30.0, vip: 9.0}, timeout=RESYNC_SECONDS * 5)

    # Removal: the team's budget goes from its members; the vip's own stays. (An omitted
    # memberBudget defaults to the policy's ceiling: lift that first.)
    teams.cluster.patch_policy(teams.policy, {"teams": {**TEAMS, "memberBudget": None}})
    teams.cluster.custom.patch_namespaced_custom_object(
        GROUP, VERSION, teams.namespace, TEAM_PLURAL, "crew", {"spec": {"memberBudget": None}}
    )
    await until_budgets(teams, {crew: None, vip: 9.0})
    eventually(lambda: team_budgets(teams, crew) == {} or None, timeout=15, what="teamBudgets gone")
    held = await teams.held("crew")
    assert held is not None
    assert MEMBER_BUDGET not in held.metadata

    # Members deleted with their LiteLLM users: the team recounts.
    for user in (crew, vip):
        teams.cluster.delete_user(teams.namespace, user)
    eventually(
        lambda: (teams.get("crew") or {}).get("status", {}).get("members") == 0 or None,
        timeout=15,
        what="status.members 0",
    )
    teams.delete("crew")


async def test_a_member_of_an_over_ceiling_team_gets_nothing_from_it(teams: Teams) -> None:
    """A memberBudget over the policy's teams.memberBudget stalls the team (nothing written);
    its members keep no budget from it."""
    teams.cluster.create_policy(teams.policy, policy(teams, ceiling=10))
    teams.create("crew", memberBudget=11)
    team = teams.reason("crew", "CeilingExceeded")
    assert condition_of(team, "Stalled")["status"] == "True"
    assert await teams.held("crew") is None
    teams.delete("crew")


async def test_many_joining_cost_no_team_read_each(teams: Teams) -> None:
    """Users joining a team with a memberBudget read its budget from the shared /team/list
    snapshot, not one /team/info each; the team recounts its members a few times, not once per
    join, and its status.members is current once every member is Ready. An edit then writes
    each member's budget once."""
    count = 20
    teams.cluster.create_policy(teams.policy, policy(teams))
    teams.create("crew", memberBudget=20)
    teams.ready("crew")
    users = [f"j{i}-{teams.namespace[-6:]}" for i in range(count)]
    before = teams.calls("/team/info"), teams.calls("/team/list")
    started = time.monotonic()
    for user in users:
        teams.cluster.create_user(
            teams.namespace, user, {"policyRef": teams.policy, "groups": ["crew"]}
        )
    for user in users:
        teams.cluster.wait_ready(teams.namespace, user, timeout=60)
    ready = time.monotonic() - started
    await until_budgets(teams, dict.fromkeys(users, 20.0))
    eventually(
        lambda: (teams.get("crew") or {}).get("status", {}).get("members") == count or None,
        timeout=15,
        what=f"status.members {count}",
    )
    infos = teams.calls("/team/info") - before[0]
    lists = teams.calls("/team/list") - before[1]
    print(f"\n{count} users joined in {ready:.1f} s: /team/info {infos:g}, /team/list {lists:g}")
    # A figure, not a bound: a join itself reads no team (the budget comes from the snapshot),
    # but the team's resync reads a team whose members were written since the snapshot (one
    # per resync), recounts come one per RECOUNT_AT_MOST_AFTER while joins keep coming, and
    # under load this suite's 3 s resync retries the users not Ready yet (each such reconcile
    # reads its membership's budget fresh).

    # An edit: every member reconciled once, each reading its membership fresh.
    before = teams.calls("/team/info"), teams.calls("/team/member_update")
    edited = time.monotonic()
    teams.patch("crew", memberBudget=25)
    await until_budgets(teams, dict.fromkeys(users, 25.0))
    took = time.monotonic() - edited
    infos = teams.calls("/team/info") - before[0]
    updates = teams.calls("/team/member_update") - before[1]
    print(
        f"edit reached {count} members in {took:.1f} s: /team/info {infos:g}, "
        f"/team/member_update {updates:g}"
    )
    assert updates == count, "one budget write per member, none twice"
    for user in users:
        teams.cluster.delete_user(teams.namespace, user)
    eventually(
        lambda: (teams.get("crew") or {}).get("status", {}).get("members") == 0 or None,
        timeout=30,
        what="status.members 0",
    )
    teams.delete("crew")


async def test_a_stop_between_the_team_write_and_its_members_is_caught_up_at_start(
    teams: Teams,
) -> None:
    """The operator stopped after writing a team's new memberBudget to LiteLLM and before its
    members followed: once back, the member holds the new budget and says so, without waiting
    for a resync (the operator restarts with a resync of 600 s)."""
    teams.cluster.create_policy(teams.policy, policy(teams))
    teams.create("crew", memberBudget=20)
    teams.ready("crew")
    team_id = teams.team_id("crew")
    crew = f"c-{teams.namespace[-6:]}"
    spec = {"policyRef": teams.policy, "groups": ["crew"]}
    teams.cluster.create_user(teams.namespace, crew, spec)
    teams.cluster.wait_ready(teams.namespace, crew)
    await until_budgets(teams, {crew: 20.0})

    operator = teams.operator
    resync = operator.env["LITELLM_OPERATOR_RESYNC_SECONDS"]
    operator.stop()
    try:
        # What the operator had written when it stopped: the team's new budget, in LiteLLM.
        held = await teams.held("crew")
        assert held is not None
        metadata = {**held.metadata, MEMBER_BUDGET: "30.0"}
        await teams.litellm.update_team(team_id, UpdateTeamRequest.of(metadata=metadata))
        teams.patch("crew", memberBudget=30)
        operator.env["LITELLM_OPERATOR_RESYNC_SECONDS"] = "600"
        started = time.monotonic()
        operator.start()
        await until_budgets(teams, {crew: 30.0})
        eventually(
            lambda: team_budgets(teams, crew).get(team_id, {}).get("maxBudgetInTeam") == 30 or None,
            timeout=15,
            what="the member's status says 30",
        )
        print(f"\nthe member held the new budget {time.monotonic() - started:.1f} s after start")
    finally:
        operator.stop()
        operator.env["LITELLM_OPERATOR_RESYNC_SECONDS"] = resync
        operator.start()
    teams.cluster.delete_user(teams.namespace, crew)
    teams.delete("crew")
