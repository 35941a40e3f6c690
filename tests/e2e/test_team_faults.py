"""A fault at each LiteLLMTeam write (tests/e2e/faults.py between the operator and the real
LiteLLM): every team converges exactly once, Ready with the operator's markers, and its deletion
completes."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator
from typing import Any, cast

import pytest

from litellm_operator.litellm import LiteLLMClient, UpdateTeamRequest
from litellm_operator.models import API_VERSION, GROUP, TEAM_PLURAL, VERSION
from litellm_operator.users.plan import OWNER_UID
from tests.e2e.conftest import FAULT_NAMESPACE_PREFIX
from tests.e2e.faults import FaultProxy, Rule
from tests.e2e.operator_harness import Cluster, OperatorProcess, condition_of, eventually
from tests.e2e.test_faults import CONVERGE_SECONDS, fault_operator, proxy  # noqa: F401
from tests.fixtures.kube import KubeEnv, fresh_namespace
from tests.fixtures.policies import ANY_IDENTITY

pytestmark = [pytest.mark.e2e, pytest.mark.integration]


class TeamWorld:
    def __init__(self, cluster: Cluster, litellm: LiteLLMClient, faults: FaultProxy, ns: str):
        self.cluster, self.litellm, self.proxy, self.namespace = cluster, litellm, faults, ns
        self.policy = f"p-{uuid.uuid4().hex[:8]}"

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

    def get(self, name: str) -> dict[str, Any] | None:
        listed = cast(
            dict[str, Any],
            self.cluster.custom.list_namespaced_custom_object(
                GROUP, VERSION, self.namespace, TEAM_PLURAL
            ),
        )
        return next((i for i in listed["items"] if i["metadata"]["name"] == name), None)

    def ready(self, name: str) -> dict[str, Any]:
        def probe() -> dict[str, Any] | None:
            team = self.get(name) or {}
            fresh = (team.get("status") or {}).get("observedGeneration") == team.get(
                "metadata", {}
            ).get("generation")
            return team if fresh and condition_of(team).get("status") == "True" else None

        return eventually(probe, timeout=CONVERGE_SECONDS + 30, what=f"team {name} Ready")

    def delete(self, name: str) -> None:
        self.cluster.custom.delete_namespaced_custom_object(
            GROUP, VERSION, self.namespace, TEAM_PLURAL, name
        )
        eventually(
            lambda: self.get(name) is None,
            timeout=CONVERGE_SECONDS + 30,
            what=f"team {name} deleted (not left Terminating)",
        )

    async def exactly_right(self, name: str, max_budget: float) -> None:
        team = self.get(name) or {}
        record = await self.litellm.get_team(f"{self.namespace}.{name}")
        assert record is not None
        assert record.metadata.get(OWNER_UID) == team["metadata"]["uid"]
        assert record.max_budget == max_budget
        same_alias = [t for t in (await self.litellm.list_teams()).values() if t.team_alias == name]
        assert len(same_alias) == 1, "one team, never a duplicate"


@pytest.fixture
def team_world(
    fault_operator: OperatorProcess,  # noqa: F811
    proxy: FaultProxy,  # noqa: F811
    cluster: Cluster,
    kube_env: KubeEnv,
    litellm_client: LiteLLMClient,
) -> Iterator[TeamWorld]:
    del fault_operator
    with fresh_namespace(kube_env, f"{FAULT_NAMESPACE_PREFIX}{uuid.uuid4().hex[:8]}") as ns:
        world = TeamWorld(cluster, litellm_client, proxy, ns)
        spec = {"allowedNamespaces": [ns], "identities": ANY_IDENTITY, "teams": {}}
        cluster.create_policy(world.policy, spec)
        try:
            yield world
        finally:
            proxy.clear()
            cluster.delete_policy(world.policy)


CREATE_FAULTS = [
    pytest.param(Rule("reset", "/team/new"), id="connection-reset-before-create"),
    pytest.param(Rule("drop", "/team/new"), id="create-response-lost"),
    pytest.param(Rule("garbage", "/team/new"), id="create-answered-with-garbage"),
    pytest.param(Rule("status", "/team/new", code=500), id="create-fails-with-500"),
    pytest.param(
        Rule("status", "/team/new", code=429, headers={"Retry-After": "1"}), id="rate-limited"
    ),
    pytest.param(Rule("status", "/team/info", times=3, code=500), id="reads-fail-with-500"),
]


@pytest.mark.parametrize("rule", CREATE_FAULTS)
async def test_a_fault_at_create_converges_exactly_once(team_world: TeamWorld, rule: Rule) -> None:
    name = f"t-{uuid.uuid4().hex[:8]}"
    started = time.monotonic()
    with team_world.proxy.injected(rule):
        team_world.create(name, alias=name, maxBudget=7)
        eventually(lambda: rule.hits >= 1, timeout=30, what=f"the fault {rule.action} hit")
        team_world.ready(name)
    await team_world.exactly_right(name, 7)
    print(f"\nFAULT {rule.action} {rule.path}: converged in {time.monotonic() - started:.1f}s")
    team_world.delete(name)
    assert await team_world.litellm.get_team(f"{team_world.namespace}.{name}") is None


UPDATE_FAULTS = [
    pytest.param(Rule("drop", "/team/update"), id="update-response-lost"),
    pytest.param(Rule("garbage", "/team/update"), id="update-answered-with-garbage"),
    pytest.param(Rule("status", "/team/update", code=500), id="update-fails-with-500"),
    pytest.param(Rule("reset", "/team/update"), id="update-connection-reset"),
]


@pytest.mark.parametrize("rule", UPDATE_FAULTS)
async def test_a_fault_at_update_and_at_drift_converges(team_world: TeamWorld, rule: Rule) -> None:
    name = f"t-{uuid.uuid4().hex[:8]}"
    team_world.create(name, alias=name, maxBudget=7)
    team_world.ready(name)
    team_id = f"{team_world.namespace}.{name}"
    with team_world.proxy.injected(rule):
        team_world.cluster.custom.patch_namespaced_custom_object(
            GROUP, VERSION, team_world.namespace, TEAM_PLURAL, name, {"spec": {"maxBudget": 9}}
        )
        eventually(lambda: rule.hits >= 1, timeout=30, what=f"the fault {rule.action} hit")
    team_world.ready(name)
    await team_world.exactly_right(name, 9)
    # Drift while the resync's own write fails once: reverted all the same.
    await team_world.litellm.update_team(team_id, UpdateTeamRequest.of(max_budget=99.0))
    rule.times, rule.hits = 1, 0
    with team_world.proxy.injected(rule):
        eventually(lambda: rule.hits >= 1, timeout=30, what="the resync's write hit the fault")
    deadline = time.monotonic() + CONVERGE_SECONDS
    while time.monotonic() < deadline:
        record = await team_world.litellm.get_team(team_id)
        if record is not None and record.max_budget == 9:
            break
        await asyncio.sleep(0.5)
    await team_world.exactly_right(name, 9)
    team_world.delete(name)


DELETE_FAULTS = [
    pytest.param(Rule("drop", "/team/delete"), id="delete-response-lost"),
    pytest.param(Rule("status", "/team/delete", code=500), id="delete-fails-with-500"),
    pytest.param(Rule("reset", "/team/delete"), id="delete-connection-reset"),
]


@pytest.mark.parametrize("rule", DELETE_FAULTS)
async def test_a_fault_at_delete_still_deletes(team_world: TeamWorld, rule: Rule) -> None:
    name = f"t-{uuid.uuid4().hex[:8]}"
    team_world.create(name, alias=name)
    team_world.ready(name)
    with team_world.proxy.injected(rule):
        team_world.delete(name)
        assert rule.hits >= 1
    assert await team_world.litellm.get_team(f"{team_world.namespace}.{name}") is None
