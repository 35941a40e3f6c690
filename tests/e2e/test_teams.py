"""LiteLLMTeams end to end: real API server, real LiteLLM, the operator; both sides asserted."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, cast

import pytest
from kubernetes.client.exceptions import ApiException

from litellm_operator.fields import MANAGED_BY
from litellm_operator.litellm import LiteLLMClient, NewTeamRequest, TeamRecord, UpdateTeamRequest
from litellm_operator.models import API_VERSION, GROUP, TEAM_PLURAL, VERSION
from litellm_operator.users.plan import ADOPTED, OWNER_UID
from tests.e2e.conftest import RESYNC_SECONDS
from tests.e2e.operator_harness import Cluster, OperatorProcess, condition_of, eventually
from tests.fixtures.gitops import argocd_health, flux_wait, kstatus, tools_dir
from tests.fixtures.kube import KubeEnv
from tests.fixtures.policies import ANY_IDENTITY

pytestmark = [pytest.mark.e2e, pytest.mark.integration]

TEAMS = {"maxBudget": 100, "tpmLimit": 5000, "allowedModels": ["gpt-4o-mini", "gpt-4o"]}
POLICY: dict[str, Any] = {"allowedNamespaces": ["*"], "identities": ANY_IDENTITY, "teams": TEAMS}
TEAM_WRITES = ("/team/new", "/team/update", "/team/delete")


@dataclass
class Teams:
    operator: OperatorProcess
    cluster: Cluster
    namespace: str
    policy: str
    litellm: LiteLLMClient

    def team_id(self, name: str) -> str:
        return f"{self.namespace}.{name}"

    def create(self, name: str, **spec: Any) -> None:
        body = {
            "apiVersion": API_VERSION,
            "kind": "LiteLLMTeam",
            "metadata": {"name": name, "namespace": self.namespace},
            "spec": {"policyRef": self.policy, **spec},
        }
        self.cluster.custom.create_namespaced_custom_object(
            GROUP, VERSION, self.namespace, TEAM_PLURAL, body
        )

    def patch(self, name: str, **spec: Any) -> None:
        self.cluster.custom.patch_namespaced_custom_object(
            GROUP, VERSION, self.namespace, TEAM_PLURAL, name, {"spec": spec}
        )

    def get(self, name: str) -> dict[str, Any] | None:
        try:
            found = self.cluster.custom.get_namespaced_custom_object(
                GROUP, VERSION, self.namespace, TEAM_PLURAL, name
            )
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise
        return cast(dict[str, Any], found)

    def delete(self, name: str) -> None:
        self.cluster.custom.delete_namespaced_custom_object(
            GROUP, VERSION, self.namespace, TEAM_PLURAL, name
        )
        eventually(lambda: self.get(name) is None, timeout=30, what=f"team {name} deleted")

    def ready(self, name: str, timeout: float = 30) -> dict[str, Any]:
        def probe() -> dict[str, Any] | None:
            team = self.get(name) or {}
            fresh = (team.get("status") or {}).get("observedGeneration") == team.get(
                "metadata", {}
            ).get("generation")
            return team if condition_of(team).get("status") == "True" and fresh else None

        return eventually(probe, timeout=timeout, what=f"team {name} Ready")

    def reason(self, name: str, reason: str, timeout: float = 30) -> dict[str, Any]:
        def probe() -> dict[str, Any] | None:
            team = self.get(name) or {}
            return team if condition_of(team).get("reason") == reason else None

        return eventually(probe, timeout=timeout, what=f"team {name} reason {reason}")

    async def held(self, name: str) -> TeamRecord | None:
        return await self.litellm.get_team(self.team_id(name))

    async def until(
        self, name: str, probe: Callable[[TeamRecord], bool], timeout: float = 30
    ) -> TeamRecord:
        deadline = time.monotonic() + timeout
        record = None
        while time.monotonic() < deadline:
            record = await self.held(name)
            if record is not None and probe(record):
                return record
            await asyncio.sleep(0.3)
        raise AssertionError(f"LiteLLM team {name} never matched; last: {record!r}")

    def calls(self, *endpoints: str) -> float:
        metric = "litellm_operator_litellm_requests_total"
        return sum(self.operator.counter(metric, endpoint=e) for e in endpoints)


@pytest.fixture
def teams(
    operator: OperatorProcess,
    cluster: Cluster,
    namespace: str,
    policy_name: str,
    litellm_client: LiteLLMClient,
) -> Teams:
    return Teams(operator, cluster, namespace, policy_name, litellm_client)


@pytest.fixture
async def cleanup(teams: Teams) -> Any:
    """Teams the operator may have left in LiteLLM (Retain, refused adoptions), removed."""
    ids: list[str] = []
    yield ids
    for team_id in ids:
        with contextlib.suppress(Exception):
            await teams.litellm.delete_team(team_id)


async def test_lifecycle_create_update_steady_state_delete(teams: Teams) -> None:
    teams.cluster.create_policy(teams.policy, POLICY)
    teams.create("crew", alias="Crew", models=["gpt-4o-mini"], metadata={"cost-center": "42"})
    team = teams.ready("crew")
    status = team["status"]
    assert status["teamId"] == teams.team_id("crew")
    assert status["policy"]["name"] == teams.policy
    assert status["effective"]["maxBudget"] == 100  # the ceiling, as the default
    assert status["members"] == 0
    record = await teams.held("crew")
    assert record is not None
    assert (record.team_alias, record.models, record.max_budget) == ("Crew", ["gpt-4o-mini"], 100)
    assert (record.tpm_limit, record.rpm_limit, record.budget_duration) == (5000, None, None)
    assert record.metadata["cost-center"] == "42"
    assert record.metadata[MANAGED_BY] == "litellm-operator"

    teams.patch("crew", maxBudget=40)
    await teams.until("crew", lambda r: r.max_budget == 40)
    teams.ready("crew")

    # Steady state: several resyncs, no write and no per-team read.
    await asyncio.sleep(RESYNC_SECONDS)
    before = teams.calls(*TEAM_WRITES, "/team/info")
    await asyncio.sleep(3 * RESYNC_SECONDS)
    assert teams.calls(*TEAM_WRITES, "/team/info") == before
    assert teams.calls("/team/list") > 0

    teams.delete("crew")
    assert await teams.held("crew") is None


async def test_drift_is_reverted_by_the_resync(teams: Teams) -> None:
    teams.cluster.create_policy(teams.policy, POLICY)
    teams.create("drifty", models=["gpt-4o"], maxBudget=20)
    teams.ready("drifty")
    drift = UpdateTeamRequest.of(max_budget=999.0, models=[], blocked=True)
    await teams.litellm.update_team(teams.team_id("drifty"), drift)
    record = await teams.until(
        "drifty", lambda r: r.max_budget == 20 and r.models == ["gpt-4o"] and not r.blocked
    )
    assert record.metadata[OWNER_UID]
    teams.delete("drifty")


@pytest.mark.parametrize(
    ("spec", "reason"),
    [
        pytest.param({"maxBudget": 101}, "CeilingExceeded", id="budget-over-ceiling"),
        pytest.param({"models": ["gpt-5"]}, "ModelNotAllowed", id="model-not-allowed"),
        pytest.param({"models": []}, "ModelNotAllowed", id="all-models-not-allowed"),
        pytest.param({"teamId": "power-users"}, "TeamIdNotAllowed", id="explicit-id-not-granted"),
        pytest.param({"metadata": {MANAGED_BY: "x"}}, "InvalidSpec", id="forged-marker"),
    ],
)
async def test_a_team_beyond_its_policy_is_stalled_and_nothing_is_written(
    teams: Teams, spec: dict[str, Any], reason: str
) -> None:
    teams.cluster.create_policy(teams.policy, POLICY)
    teams.create("bad", **spec)
    team = teams.reason("bad", reason)
    assert condition_of(team, "Stalled")["status"] == "True"
    assert await teams.litellm.get_team(spec.get("teamId") or teams.team_id("bad")) is None
    teams.delete("bad")


async def test_a_policy_without_teams_allows_none(teams: Teams) -> None:
    teams.cluster.create_policy(teams.policy, {k: v for k, v in POLICY.items() if k != "teams"})
    teams.create("none")
    teams.reason("none", "TeamNotAllowed")
    assert await teams.held("none") is None
    teams.delete("none")


async def test_adoption_refused_then_allowed_and_the_adopted_team_is_retained(
    teams: Teams, cleanup: list[str]
) -> None:
    team_id = teams.team_id("old")
    cleanup.append(team_id)
    await teams.litellm.create_team(
        NewTeamRequest.of(team_id=team_id, max_budget=7.0, metadata={"theirs": "1"})
    )
    teams.cluster.create_policy(teams.policy, POLICY)
    teams.create("old", adopt=True, maxBudget=30)
    teams.reason("old", "AlreadyExists")
    record = await teams.held("old")
    assert record is not None
    assert (record.max_budget, MANAGED_BY in record.metadata) == (7.0, False)

    teams.cluster.patch_policy(teams.policy, {"teams": {**TEAMS, "adoptExistingTeams": True}})
    teams.patch("old", alias="Old")  # a change of the team reconciles it at once
    team = teams.ready("old")
    assert team["status"]["adopted"] is True
    record = await teams.held("old")
    assert record is not None
    assert (record.max_budget, record.metadata["theirs"], record.metadata[ADOPTED]) == (
        30.0,
        "1",
        "true",
    )

    teams.delete("old")
    record = await teams.held("old")
    assert record is not None, "an adopted team is retained"
    assert MANAGED_BY not in record.metadata


async def test_retain_keeps_the_team_without_markers(teams: Teams, cleanup: list[str]) -> None:
    cleanup.append(teams.team_id("kept"))
    teams.cluster.create_policy(teams.policy, POLICY)
    teams.create("kept", deletionPolicy="Retain", maxBudget=12)
    teams.ready("kept")
    teams.delete("kept")
    record = await teams.held("kept")
    assert record is not None
    assert record.max_budget == 12
    assert MANAGED_BY not in record.metadata
    assert OWNER_UID not in record.metadata


async def test_a_team_owned_by_another_resource_is_never_touched(
    teams: Teams, cleanup: list[str]
) -> None:
    """Two namespaces' resources cannot share a team: the second is refused (explicit ids)."""
    granted = [{"namespaces": ["*"], "emails": ["*"], "userIds": ["*"], "teamIds": ["shared-*"]}]
    teams.cluster.create_policy(teams.policy, {**POLICY, "identities": granted})
    shared = f"shared-{teams.namespace}"
    cleanup.append(shared)
    teams.create("first", teamId=shared, maxBudget=10)
    teams.ready("first")
    teams.create("second", teamId=shared, maxBudget=90)
    teams.reason("second", "Conflict")
    record = await teams.litellm.get_team(shared)
    assert record is not None
    assert record.max_budget == 10
    teams.delete("second")
    assert await teams.litellm.get_team(shared) is not None, "the second's delete left it alone"
    teams.delete("first")
    assert await teams.litellm.get_team(shared) is None


def verdicts(teams: Teams, kube_env: KubeEnv, name: str) -> tuple[str, str, bool]:
    """Flux's kstatus, Argo CD's Lua and ``kubectl wait`` on the team as it is now."""
    team = teams.get(name)
    assert team is not None
    waited = kube_env.kubectl(
        "wait", "--for=condition=Ready", "--timeout=0s", "-n", teams.namespace,
        f"litellmteams/{name}", check=False,
    )  # fmt: skip
    return kstatus(team), argocd_health(team)[0], waited.returncode == 0


async def test_flux_argo_and_kubectl_wait_verdicts(teams: Teams, kube_env: KubeEnv) -> None:
    tools_dir()
    teams.cluster.create_policy(teams.policy, POLICY)
    ref = f"{GROUP}/LiteLLMTeam/{teams.namespace}"
    teams.create("good", maxBudget=10)
    waited = flux_wait(kube_env.kubeconfig, [f"{ref}/good"], timeout=30)
    assert waited.ready, waited.error
    record = await teams.held("good")
    assert record is not None, "Flux's wait ended only once LiteLLM holds the team"
    assert record.max_budget == 10
    assert verdicts(teams, kube_env, "good") == ("Current", "Healthy", True)

    teams.create("over", maxBudget=1000)
    waited = flux_wait(kube_env.kubeconfig, [f"{ref}/over"], timeout=15, fail_fast=True)
    assert not waited.ready
    teams.reason("over", "CeilingExceeded")
    assert verdicts(teams, kube_env, "over") == ("Failed", "Degraded", False)

    teams.patch("over", maxBudget=99)  # fixed: a new generation, healthy once LiteLLM has it
    teams.ready("over")
    assert verdicts(teams, kube_env, "over") == ("Current", "Healthy", True)
    assert (await teams.held("over")) is not None
    teams.delete("good")
    teams.delete("over")


async def test_a_member_waits_pending_for_its_team_then_joins(teams: Teams) -> None:
    """A role names the LiteLLMTeam by reference before it exists: the user is Pending
    (TeamNotFound, Reconciling, not Stalled), then joins once the team is created."""
    role = {"group": "crew", "teams": [f"{teams.namespace}/crew"]}
    teams.cluster.create_policy(teams.policy, {**POLICY, "roles": [role]})
    user = f"m-{teams.namespace[-6:]}"
    teams.cluster.create_user(
        teams.namespace, user, {"policyRef": teams.policy, "groups": ["crew"]}
    )
    waiting = teams.cluster.wait_reason(teams.namespace, user, "TeamNotFound")
    assert waiting["status"] == "False"
    found = teams.cluster.get_user(teams.namespace, user) or {}
    assert condition_of(found, "Stalled")["status"] == "False"
    assert condition_of(found, "Reconciling")["status"] == "True"

    teams.create("crew")
    teams.ready("crew")
    teams.cluster.wait_ready(teams.namespace, user, timeout=30)
    record = await teams.litellm.get_user(user)
    assert record is not None
    assert teams.team_id("crew") in record.teams
    teams.cluster.delete_user(teams.namespace, user)
    eventually(
        lambda: teams.cluster.get_user(teams.namespace, user) is None, timeout=30, what="gone"
    )
    teams.delete("crew")


async def test_a_deleted_team_s_members_report_it_at_once(teams: Teams) -> None:
    """A LiteLLMTeam deleted (deletionPolicy Delete) takes its members' memberships with it in
    LiteLLM, and its members report it at once (TeamNotFound), not at the next resync (the
    operator runs with a resync of 600 s here)."""
    role = {"group": "crew", "teams": [f"{teams.namespace}/crew"]}
    teams.cluster.create_policy(teams.policy, {**POLICY, "roles": [role]})
    teams.create("crew")
    teams.ready("crew")
    team_id = teams.team_id("crew")
    user = f"g-{teams.namespace[-6:]}"
    spec = {"policyRef": teams.policy, "groups": ["crew"]}
    teams.cluster.create_user(teams.namespace, user, spec)
    teams.cluster.wait_ready(teams.namespace, user, timeout=30)
    operator = teams.operator
    resync = operator.env["LITELLM_OPERATOR_RESYNC_SECONDS"]
    operator.stop()
    operator.env["LITELLM_OPERATOR_RESYNC_SECONDS"] = "600"
    try:
        operator.start()
        teams.cluster.wait_ready(teams.namespace, user, timeout=30)
        teams.delete("crew")
        gone = teams.cluster.wait_reason(teams.namespace, user, "TeamNotFound", timeout=30)
        assert gone["status"] == "False"
        assert await teams.held("crew") is None
        record = await teams.litellm.get_user(user)
        assert record is not None
        assert team_id not in record.teams
    finally:
        operator.stop()
        operator.env["LITELLM_OPERATOR_RESYNC_SECONDS"] = resync
        operator.start()
    teams.cluster.delete_user(teams.namespace, user)


async def test_a_policy_change_is_judged_on_its_teams(teams: Teams) -> None:
    """Lowering the ceiling under a team's budget stalls it (nothing written); the team's
    status names the policy generation it was judged against."""
    teams.cluster.create_policy(teams.policy, POLICY)
    teams.create("judged", maxBudget=80)
    teams.ready("judged")
    teams.cluster.patch_policy(teams.policy, {"teams": {**TEAMS, "maxBudget": 60}})
    team = teams.reason("judged", "CeilingExceeded")
    assert team["status"]["policy"]["generation"] == 2
    assert condition_of(team, "Stalled")["status"] == "True"
    record = await teams.held("judged")
    assert record is not None
    assert record.max_budget == 80, "a refused team is not written"
    teams.cluster.patch_policy(teams.policy, {"teams": {**TEAMS, "maxBudget": 90}})
    team = teams.ready("judged")
    assert team["status"]["policy"]["generation"] == 3
    teams.delete("judged")
