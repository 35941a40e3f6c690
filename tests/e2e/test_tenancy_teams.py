"""A hostile tenant's LiteLLMTeams, end to end, as the tenant's own ServiceAccount.

The tenant may write LiteLLMTeams in its namespace. Each case tries to declare, adopt, change or
delete a team that is not the tenant's (granted to another namespace's users, owned by another
namespace's resource, not granted at all) or to get more than the policy's ``teams`` section
allows, and judges the outcome in LiteLLM with the master key. Each case names the
``LiteLLMTeam.spec`` fields it attacks (:func:`attacks_team`);
``tests/unit/test_tenancy_registry.py`` fails for a field without one.
"""

from __future__ import annotations

import contextlib
import json
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from litellm_operator.fields import MANAGED_BY
from litellm_operator.litellm import LiteLLMClient, NewTeamRequest, NotFound, TeamRecord
from litellm_operator.models import API_VERSION
from litellm_operator.users.plan import MEMBER_BUDGET
from tests.e2e.operator_harness import Cluster, OperatorProcess, condition_of, eventually
from tests.e2e.test_tenancy import TENANT, make_tenant
from tests.fixtures.kube import KubeEnv, fresh_namespace
from tests.fixtures.policies import ANY_IDENTITY

pytestmark = [pytest.mark.e2e, pytest.mark.integration]

TEAM_RULE = {
    "apiGroups": ["litellm.platform.dev"],
    "resources": ["litellmteams"],
    "verbs": ["get", "list", "watch", "create", "update", "patch", "delete"],
}
TEAMS = {
    "maxBudget": 50,
    "tpmLimit": 1000,
    "rpmLimit": 100,
    "memberBudget": 20,
    "allowedModels": ["gpt-4o-mini"],
}


def attacks_team(*fields: str) -> pytest.MarkDecorator:
    """The ``LiteLLMTeam.spec`` fields a case attacks (the registry's)."""
    return pytest.mark.attacks_team(*fields)


@dataclass
class TeamTenant:
    namespace: str
    kube: KubeEnv
    cluster: Cluster

    def apply(self, name: str, spec: dict[str, Any]) -> None:
        body = {
            "apiVersion": API_VERSION,
            "kind": "LiteLLMTeam",
            "metadata": {"name": name, "namespace": self.namespace},
            "spec": spec,
        }
        self.kube.kubectl("apply", "--server-side", "-f", "-", input=json.dumps(body))

    def delete(self, name: str) -> None:
        self.kube.kubectl("delete", "litellmteam", name, f"--namespace={self.namespace}")

    def get(self, name: str) -> dict[str, Any]:
        out = self.kube.kubectl(
            "get", "litellmteam", name, f"--namespace={self.namespace}", "-o", "json"
        )
        result: dict[str, Any] = json.loads(out.stdout)
        return result

    def reason(self, name: str, reason: str) -> dict[str, Any]:
        def probe() -> dict[str, Any] | None:
            team = self.get(name)
            return team if condition_of(team).get("reason") == reason else None

        return eventually(probe, timeout=30, what=f"team {name} reason {reason}")

    def ready(self, name: str) -> dict[str, Any]:
        def probe() -> dict[str, Any] | None:
            team = self.get(name)
            return team if condition_of(team).get("status") == "True" else None

        return eventually(probe, timeout=30, what=f"team {name} Ready")


@pytest.fixture
def tenant(
    kube_env: KubeEnv, namespace: str, tmp_path: Path, cluster: Cluster, operator: OperatorProcess
) -> TeamTenant:
    del operator
    made = make_tenant(kube_env, namespace, tmp_path / "tenant.kubeconfig")
    role = json.loads(kube_env.kubectl("get", "role", TENANT, f"-n={namespace}", "-o=json").stdout)
    role["rules"].append(TEAM_RULE)
    kube_env.kubectl("apply", f"--namespace={namespace}", "-f", "-", input=json.dumps(role))
    return TeamTenant(namespace, made.kube, cluster)


@pytest.fixture
def other_namespace(kube_env: KubeEnv) -> Iterator[str]:
    with fresh_namespace(kube_env, f"t-other-{uuid.uuid4().hex[:8]}") as name:
        yield name


@dataclass
class Admin:
    cluster: Cluster
    litellm: LiteLLMClient
    policies: list[str]
    teams: list[str]

    def policy(self, **spec: Any) -> str:
        name = f"p-{uuid.uuid4().hex[:8]}"
        body = {"allowedNamespaces": ["*"], "identities": ANY_IDENTITY, "teams": TEAMS, **spec}
        self.cluster.create_policy(name, body)
        self.policies.append(name)
        return name

    async def team(self, team_id: str, **columns: Any) -> None:
        self.teams.append(team_id)
        await self.litellm.create_team(NewTeamRequest.of(team_id=team_id, **columns))

    async def held(self, team_id: str) -> TeamRecord | None:
        return await self.litellm.get_team(team_id)


@pytest.fixture
async def admin(cluster: Cluster, litellm_client: LiteLLMClient) -> AsyncIterator[Admin]:
    made = Admin(cluster, litellm_client, [], [])
    yield made
    for name in made.policies:
        cluster.delete_policy(name)
    for team_id in made.teams:
        with contextlib.suppress(NotFound):  # the operator deleted it already
            await litellm_client.delete_team(team_id)


def explicit_ids(*globs: str) -> list[dict[str, Any]]:
    return [{"namespaces": ["*"], "emails": ["*"], "userIds": ["*"], "teamIds": list(globs)}]


@attacks_team("teamId", "adopt", "maxBudget", "deletionPolicy")
async def test_a_team_granted_to_another_namespace_cannot_be_declared_adopted_or_deleted(
    tenant: TeamTenant, admin: Admin
) -> None:
    victim = f"victims-{uuid.uuid4().hex[:6]}"
    await admin.team(victim, max_budget=5.0, metadata={"owner": "platform"})
    role = {"group": "g", "teams": [victim], "namespaces": ["team-victim"]}
    policy = admin.policy(
        identities=explicit_ids("*"),
        roles=[role],
        teams={**TEAMS, "adoptExistingTeams": True},
    )
    spec = {"policyRef": policy, "teamId": victim, "adopt": True, "maxBudget": 50}
    tenant.apply("grab", {**spec, "deletionPolicy": "Delete"})
    team = tenant.reason("grab", "TeamNotAllowed")
    assert "team-victim" not in condition_of(team)["message"]
    tenant.delete("grab")
    held = await admin.held(victim)
    assert held is not None, "the tenant's delete reached nothing"
    assert (held.max_budget, held.metadata) == (5.0, {"owner": "platform"})


@attacks_team("teamId", "policyRef")
async def test_a_team_id_not_granted_or_a_policy_not_allowed_writes_nothing(
    tenant: TeamTenant, admin: Admin
) -> None:
    team_id = f"ungranted-{uuid.uuid4().hex[:6]}"
    policy = admin.policy(identities=explicit_ids("other-*"))
    tenant.apply("a", {"policyRef": policy, "teamId": team_id})
    tenant.reason("a", "TeamIdNotAllowed")
    elsewhere = admin.policy(allowedNamespaces=["team-elsewhere"])
    tenant.apply("b", {"policyRef": elsewhere})
    tenant.reason("b", "NamespaceNotAllowed")
    assert await admin.held(team_id) is None
    assert await admin.held(f"{tenant.namespace}.b") is None


@attacks_team("teamId", "alias", "metadata", "blocked", "budgetDuration", "memberBudget")
async def test_a_team_another_resource_owns_is_never_changed_or_deleted(
    tenant: TeamTenant, admin: Admin, kube_env: KubeEnv, other_namespace: str
) -> None:
    """Another namespace's LiteLLMTeam owns the id (both may name it): the tenant's is refused
    (Conflict, the owner not named), and its delete leaves the team alone."""
    shared = f"shared-{uuid.uuid4().hex[:6]}"
    admin.teams.append(shared)
    policy = admin.policy(identities=explicit_ids("shared-*"))
    owner = {
        "apiVersion": API_VERSION,
        "kind": "LiteLLMTeam",
        "metadata": {"name": "owner", "namespace": other_namespace},
        "spec": {"policyRef": policy, "teamId": shared, "alias": "Theirs", "maxBudget": 10},
    }
    kube_env.kubectl("apply", "--server-side", "-f", "-", input=json.dumps(owner))
    eventually(
        lambda: (
            condition_of(
                json.loads(
                    kube_env.kubectl(
                        "get", "litellmteam", "owner", f"-n={other_namespace}", "-o=json"
                    ).stdout
                )
            ).get("status")
            == "True"
        ),
        timeout=30,
        what="the other namespace's team Ready",
    )
    hostile = {
        "policyRef": policy,
        "teamId": shared,
        "alias": "Mine",
        "blocked": True,
        "budgetDuration": "1s",
        "metadata": {"x": "y"},
        "memberBudget": 0,
    }
    tenant.apply("mine", hostile)
    team = tenant.reason("mine", "Conflict")
    message = condition_of(team)["message"]
    assert other_namespace not in message
    assert "another namespace" in message
    tenant.delete("mine")
    held = await admin.held(shared)
    assert held is not None
    assert (held.team_alias, held.blocked, held.budget_duration) == ("Theirs", False, None)
    assert "x" not in held.metadata
    assert held.metadata[MANAGED_BY] == "litellm-operator"
    assert held.metadata[MEMBER_BUDGET] == "20.0", "the owner's memberBudget (the ceiling)"
    kube_env.kubectl("delete", "litellmteam", "owner", f"-n={other_namespace}")


@attacks_team("maxBudget", "tpmLimit", "rpmLimit", "memberBudget", "models")
@pytest.mark.parametrize(
    ("spec", "reason"),
    [
        pytest.param({"maxBudget": 51}, "CeilingExceeded", id="budget"),
        pytest.param({"tpmLimit": 10**9}, "CeilingExceeded", id="tpm"),
        pytest.param({"rpmLimit": 101}, "CeilingExceeded", id="rpm"),
        pytest.param({"memberBudget": 21}, "CeilingExceeded", id="member-budget"),
        pytest.param({"models": ["gpt-4o"]}, "ModelNotAllowed", id="model"),
        pytest.param({"models": []}, "ModelNotAllowed", id="all-models"),
    ],
)
async def test_more_than_the_teams_section_allows_writes_nothing(
    tenant: TeamTenant, admin: Admin, spec: dict[str, Any], reason: str
) -> None:
    policy = admin.policy()
    tenant.apply("greedy", {"policyRef": policy, **spec})
    tenant.reason("greedy", reason)
    assert await admin.held(f"{tenant.namespace}.greedy") is None


@attacks_team("metadata", "modelRpmLimit", "modelTpmLimit")
async def test_metadata_cannot_forge_markers_or_pose_as_limits(
    tenant: TeamTenant, admin: Admin
) -> None:
    policy = admin.policy()
    forged = {"policyRef": policy, "metadata": {MANAGED_BY: "litellm-operator"}}
    tenant.apply("forged", forged)
    tenant.reason("forged", "InvalidSpec")
    posing = {"policyRef": policy, "metadata": {"model_rpm_limit": "999"}}
    tenant.apply("posing", posing)
    tenant.reason("posing", "InvalidSpec")
    assert await admin.held(f"{tenant.namespace}.forged") is None
    assert await admin.held(f"{tenant.namespace}.posing") is None
    # Per-model limits of the tenant's own team are its own: written where LiteLLM reads them.
    own = {"policyRef": policy, "modelRpmLimit": {"gpt-4o-mini": 3}, "modelTpmLimit": {"x": 1}}
    tenant.apply("own", own)
    tenant.ready("own")
    held = await admin.held(f"{tenant.namespace}.own")
    assert held is not None
    assert held.metadata["model_rpm_limit"] == {"gpt-4o-mini": 3}
    tenant.delete("own")
    assert await admin.held(f"{tenant.namespace}.own") is None


@attacks_team("adopt", "deletionPolicy")
async def test_an_adopted_team_is_never_deleted_by_its_tenant(
    tenant: TeamTenant, admin: Admin
) -> None:
    team_id = f"{tenant.namespace}.legacy"
    await admin.team(team_id, max_budget=3.0)
    policy = admin.policy(teams={**TEAMS, "adoptExistingTeams": True})
    tenant.apply("legacy", {"policyRef": policy, "adopt": True, "deletionPolicy": "Delete"})
    tenant.ready("legacy")
    tenant.delete("legacy")
    held = await admin.held(team_id)
    assert held is not None, "adopted teams are released, never deleted"
    assert MANAGED_BY not in held.metadata


@attacks_team("deletionPolicy")
async def test_a_team_granted_elsewhere_since_is_never_deleted_by_its_tenant(
    tenant: TeamTenant, admin: Admin
) -> None:
    """The tenant's own team, later named by a policy for other namespaces' users: its
    ``deletionPolicy: Delete`` no longer deletes it (released, kept for those users)."""
    team_id = f"{tenant.namespace}.mine"
    admin.teams.append(team_id)
    policy = admin.policy()
    tenant.apply("mine", {"policyRef": policy, "deletionPolicy": "Delete", "maxBudget": 5})
    tenant.ready("mine")
    admin.policy(roles=[{"group": "g", "teams": [team_id], "namespaces": ["team-victim"]}])
    tenant.delete("mine")
    held = await admin.held(team_id)
    assert held is not None, "a team granted to others is released, not deleted"
    assert MANAGED_BY not in held.metadata


@attacks_team("memberBudget", "teamId", "adopt", "metadata")
async def test_a_team_cannot_set_budgets_on_members_it_does_not_own(
    tenant: TeamTenant, admin: Admin, cluster: Cluster, other_namespace: str
) -> None:
    """Another namespace's user is a member of a team the platform made; the tenant declares
    that team (its id, adopted) with memberBudget 0 to starve the member, or forges the marker
    the members read their team's budget from: refused, and the member's budget in LiteLLM is
    untouched after the member is reconciled again."""
    victim_team = f"victims-{uuid.uuid4().hex[:6]}"
    await admin.team(victim_team)
    role = {"group": "g", "teams": [victim_team], "namespaces": [other_namespace]}
    policy = admin.policy(
        identities=explicit_ids("*"), roles=[role], teams={**TEAMS, "adoptExistingTeams": True}
    )
    victim = f"victim-{uuid.uuid4().hex[:6]}"
    cluster.create_user(other_namespace, victim, {"policyRef": policy, "groups": ["g"]})
    cluster.wait_ready(other_namespace, victim)

    starve = {"policyRef": policy, "teamId": victim_team, "adopt": True, "memberBudget": 0}
    tenant.apply("starve", starve)
    assert other_namespace not in condition_of(tenant.reason("starve", "TeamNotAllowed"))["message"]
    forged = {"policyRef": policy, "metadata": {MEMBER_BUDGET: "0"}}
    tenant.apply("forged", forged)
    tenant.reason("forged", "InvalidSpec")

    cluster.patch_user(other_namespace, victim, {"alias": "reconciled again"})
    found = cluster.wait_ready(other_namespace, victim)
    assert "teamBudgets" not in found["status"]
    held = await admin.held(victim_team)
    assert held is not None
    assert victim in held.member_ids
    assert held.member_budget(victim) is None, "the member got no budget from the tenant"
    assert MEMBER_BUDGET not in held.metadata
    assert await admin.held(f"{tenant.namespace}.forged") is None
    cluster.delete_user(other_namespace, victim)
    eventually(lambda: cluster.get_user(other_namespace, victim) is None, timeout=30, what="gone")
