"""The fault suite: lost responses, slow and failing LiteLLM, SIGKILL at named points.

An operator of its own runs here (namespaces ``fault-*``), reaching the real LiteLLM through
:class:`tests.e2e.faults.FaultProxy`. After each fault the resources must converge: every
LiteLLMUser Ready for its generation, LiteLLM holding exactly one user per resource, owned by
it, with the right teams; nothing foreign touched; nothing left Terminating. Convergence times
are printed (``FAULT`` lines) and asserted against the README's "Failure behaviour" figures.
"""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes.client import ApiException

from devenv.controlplane import ControlPlane, find_assets, find_kubectl
from devenv.litellm import LiteLLMEndpoint
from litellm_operator.fields import MANAGED_BY
from litellm_operator.keys.plan import ROTATE_ANNOTATION
from litellm_operator.litellm import LiteLLMClient, NewUserRequest
from litellm_operator.models import GROUP, USER_PLURAL, VERSION
from litellm_operator.users.plan import OWNER_UID
from tests.e2e.conftest import FAULT_NAMESPACE_PREFIX
from tests.e2e.faults import FaultProxy, Rule
from tests.e2e.operator_harness import Cluster, OperatorProcess, eventually, free_port
from tests.fixtures.key_probes import decoded_key, works
from tests.fixtures.kube import CRD_DIR, KubeEnv, fresh_namespace
from tests.fixtures.policies import ANY_IDENTITY

pytestmark = [pytest.mark.e2e, pytest.mark.integration]

CONVERGE_SECONDS = 30.0
"""After a fault ends, every resource converges within this (README, "Failure behaviour")."""


@pytest.fixture(scope="module")
def proxy(litellm_env: LiteLLMEndpoint) -> Iterator[FaultProxy]:
    the_proxy = FaultProxy(litellm_env.url)
    the_proxy.start()
    yield the_proxy
    the_proxy.stop()


@pytest.fixture(scope="module")
def fault_operator(
    kube_env: KubeEnv,
    crds_installed: list[str],
    litellm_env: LiteLLMEndpoint,
    proxy: FaultProxy,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[OperatorProcess]:
    del crds_installed
    env = {
        **os.environ,
        "KUBECONFIG": str(kube_env.kubeconfig),
        "LITELLM_URL": proxy.url,
        "LITELLM_MASTER_KEY": litellm_env.master_key.get_secret_value(),
        "LITELLM_OPERATOR_RESYNC_SECONDS": "3",
        "LITELLM_OPERATOR_METRICS_PORT": str(free_port()),
        "LITELLM_OPERATOR_TIMEOUT_SECONDS": "2",
        "LITELLM_OPERATOR_NAMESPACES": f"{FAULT_NAMESPACE_PREFIX}*",
    }
    log_path = Path(tmp_path_factory.mktemp("fault-operator")) / "operator.log"
    process = OperatorProcess(env, log_path)
    process.start()
    yield process
    process.stop()
    assert litellm_env.master_key.get_secret_value() not in process.log_text()


class World:
    """One test's namespace, policy and team, and the checks every fault ends with."""

    def __init__(
        self,
        operator: OperatorProcess,
        proxy: FaultProxy,
        cluster: Cluster,
        litellm: LiteLLMClient,
        namespace: str,
        policy: str,
        team: str,
    ) -> None:
        self.operator, self.proxy, self.cluster, self.litellm = operator, proxy, cluster, litellm
        self.namespace, self.policy, self.team = namespace, policy, team

    def create(self, name: str, **spec: Any) -> None:
        self.cluster.create_user(self.namespace, name, {"policyRef": self.policy, **spec})

    async def converged(self, names: list[str], since: float, what: str) -> float:
        """Wait until every user is Ready and right in LiteLLM; return and print the seconds."""
        for name in names:
            self.cluster.wait_ready(self.namespace, name, timeout=CONVERGE_SECONDS + 30)
        for name in names:
            await self.exactly_right(name)
        seconds = time.monotonic() - since
        print(f"\nFAULT {what}: converged in {seconds:.1f}s")
        return seconds

    async def exactly_right(self, name: str) -> None:
        body = self.cluster.get_user(self.namespace, name) or {}
        record = await self.litellm.get_user(name)
        assert record is not None, f"no LiteLLM user for {name}"
        assert record.metadata.get(OWNER_UID) == body["metadata"]["uid"]
        assert record.teams == [self.team], f"{name} teams {record.teams}"
        assert body["status"]["managedTeams"] == [self.team]

    def gone(self, name: str) -> None:
        eventually(
            lambda: self.cluster.get_user(self.namespace, name) is None,
            timeout=CONVERGE_SECONDS + 30,
            what=f"{name} deleted (not left Terminating)",
        )

    def restart_operator(self) -> None:
        self.operator.kill()
        self.proxy.release()
        self.proxy.clear()
        self.operator.start()


@pytest.fixture
def world(
    fault_operator: OperatorProcess,
    proxy: FaultProxy,
    cluster: Cluster,
    kube_env: KubeEnv,
    litellm_client: LiteLLMClient,
    policy_name: str,
) -> Iterator[World]:
    team = f"fault-team-{uuid.uuid4().hex[:6]}"
    with fresh_namespace(kube_env, f"{FAULT_NAMESPACE_PREFIX}{uuid.uuid4().hex[:8]}") as ns:
        cluster.create_policy(
            policy_name,
            {
                "allowedNamespaces": [ns],
                "identities": ANY_IDENTITY,
                "defaults": {"maxBudget": 7, "teams": [team]},
                "keys": {"minRotateEvery": "1m"},
            },
        )
        the_world = World(fault_operator, proxy, cluster, litellm_client, ns, policy_name, team)
        yield the_world
        proxy.clear()


@pytest.fixture
async def team_of(world: World, litellm_client: LiteLLMClient) -> str:
    await litellm_client.new_team(world.team)
    return world.team


FAULTS = [
    pytest.param(Rule("reset", "/user/new"), id="connection-reset-before-create"),
    pytest.param(Rule("drop", "/user/new"), id="create-response-lost"),
    pytest.param(Rule("garbage", "/user/new"), id="create-answered-with-garbage"),
    pytest.param(Rule("status", "/user/list", times=3, code=500), id="reads-fail-with-500"),
    pytest.param(
        Rule("status", "/user/new", code=429, headers={"Retry-After": "1"}), id="rate-limited"
    ),
    pytest.param(Rule("drop", "/team/member_add"), id="member-add-response-lost"),
    pytest.param(Rule("garbage", "/team/member_add"), id="member-add-answered-with-garbage"),
]


@pytest.mark.parametrize("rule", FAULTS)
async def test_a_fault_on_the_way_converges_exactly_once(
    world: World, team_of: str, rule: Rule
) -> None:
    del team_of
    name = f"f-{uuid.uuid4().hex[:8]}"
    started = time.monotonic()
    with world.proxy.injected(rule):
        world.create(name)
        eventually(lambda: rule.hits >= 1, timeout=30, what=f"the fault {rule.action} hit")
        assert await world.converged([name], started, rule.action + " " + rule.path) < 30
    world.cluster.delete_user(world.namespace, name)
    world.gone(name)
    assert await world.litellm.get_user(name) is None


UPDATE_FAULTS = [
    pytest.param(Rule("drop", "/user/bulk_update"), id="update-response-lost"),
    pytest.param(Rule("garbage", "/user/bulk_update"), id="update-answered-with-garbage"),
    pytest.param(Rule("status", "/user/bulk_update", code=500), id="update-fails-with-500"),
    pytest.param(Rule("status", "/user/bulk_update", code=404), id="no-bulk-endpoint"),
]


@pytest.mark.parametrize("rule", UPDATE_FAULTS)
async def test_a_fault_on_a_coalesced_update_converges_exactly_once(
    world: World, team_of: str, rule: Rule
) -> None:
    """Updates travel as ``/user/bulk_update`` (UserWrites): a lost or garbled answer, a 500,
    or a LiteLLM without the endpoint still lands each update once."""
    del team_of
    name = f"u-{uuid.uuid4().hex[:8]}"
    world.create(name)
    await world.converged([name], time.monotonic(), "baseline")
    started = time.monotonic()
    with world.proxy.injected(rule):
        world.cluster.patch_user(world.namespace, name, {"alias": "Updated Through A Fault"})
        eventually(lambda: rule.hits >= 1, timeout=30, what=f"the fault {rule.action} hit")
        assert await world.converged([name], started, rule.action + " " + rule.path) < 30
    record = await world.litellm.get_user(name)
    assert record is not None
    assert record.user_alias == "Updated Through A Fault"


async def test_litellm_slower_than_the_timeout_then_recovers(world: World, team_of: str) -> None:
    del team_of
    names = [f"slow-{i}-{uuid.uuid4().hex[:6]}" for i in range(3)]
    with world.proxy.injected(Rule("delay", ".*", times=None, seconds=4)):
        for name in names:
            world.create(name)
        time.sleep(12)
        for name in names:
            status = (world.cluster.get_user(world.namespace, name) or {}).get("status") or {}
            conditions = {c["type"]: c for c in status.get("conditions") or []}
            assert conditions.get("Ready", {}).get("status") != "True"
    recovered = time.monotonic()
    assert await world.converged(names, recovered, "slow LiteLLM (4s > 2s timeout)") < 30


async def test_litellm_paused_then_resumed(world: World, team_of: str) -> None:
    del team_of
    name = f"paused-{uuid.uuid4().hex[:6]}"
    world.create(name)
    await world.converged([name], time.monotonic(), "baseline")
    with world.proxy.injected(Rule("delay", ".*", times=None, seconds=60)):
        world.cluster.patch_user(world.namespace, name, {"alias": "Paused Example"})
        time.sleep(8)
    resumed = time.monotonic()
    assert await world.converged([name], resumed, "LiteLLM paused 8s") < 30
    record = await world.litellm.get_user(name)
    assert record is not None
    assert record.user_alias == "Paused Example"


KILL_POINTS = [
    pytest.param("/user/new", "create", id="after-create"),
    pytest.param("/team/member_add", "create", id="after-member-add"),
    pytest.param("/user/bulk_update", "update", id="after-update"),
    pytest.param("/user/delete", "delete", id="after-delete"),
]


@pytest.mark.parametrize(("path", "step"), KILL_POINTS)
async def test_sigkill_after_litellm_acted_but_before_the_operator_saw_it(
    world: World, team_of: str, path: str, step: str
) -> None:
    """The proxy forwards the call, holds LiteLLM's answer, and the test SIGKILLs the operator:
    LiteLLM acted, the operator never learned it. The restarted operator must finish the job
    exactly once."""
    del team_of
    name = f"kill-{uuid.uuid4().hex[:6]}"
    if step != "create":
        world.create(name)
        await world.converged([name], time.monotonic(), "baseline")
    hold = world.proxy.add(Rule("hold", path, method="POST"))
    if step == "create":
        world.create(name)
    elif step == "update":
        world.cluster.patch_user(world.namespace, name, {"alias": "Killed Mid-Update"})
    else:
        world.cluster.delete_user(world.namespace, name)
    assert hold.held.wait(30), f"the operator never called {path}"
    world.restart_operator()
    restarted = time.monotonic()
    if step == "delete":
        world.gone(name)
        assert await world.litellm.get_user(name) is None
        print(f"\nFAULT SIGKILL after {path}: deleted in {time.monotonic() - restarted:.1f}s")
        return
    assert await world.converged([name], restarted, f"SIGKILL after {path}") < 30
    if step == "update":
        record = await world.litellm.get_user(name)
        assert record is not None
        assert record.user_alias == "Killed Mid-Update"
    users = [u async for u in world.litellm.list_users() if u.user_id.startswith(name)]
    assert len(users) == 1, "exactly one LiteLLM user"
    world.cluster.delete_user(world.namespace, name)
    world.gone(name)


async def test_foreign_users_survive_every_fault(world: World, team_of: str) -> None:
    """A user the operator does not own, next to a resource of the same id, is never touched
    whatever fails: the resource stays AlreadyExists and deleting it deletes nothing."""
    del team_of
    name = f"foreign-{uuid.uuid4().hex[:6]}"
    await world.litellm.create_user(NewUserRequest.of(user_id=name, max_budget=1234.0))
    with world.proxy.injected(Rule("drop", "/user/list", times=2)):
        world.create(name)
        world.cluster.wait_reason(world.namespace, name, "AlreadyExists", timeout=60)
    world.cluster.delete_user(world.namespace, name)
    world.gone(name)
    record = await world.litellm.get_user(name)
    assert record is not None
    assert record.max_budget == 1234.0
    assert MANAGED_BY not in record.metadata


async def test_api_server_restart_with_etcd_kept(
    litellm_env: LiteLLMEndpoint,
    litellm_client: LiteLLMClient,
    tmp_path: Path,
) -> None:
    """A control plane of this test's own: the API server goes away for 5 s with users in
    flight, and comes back on the same etcd. The operator's watches reconnect and every user
    converges, exactly once."""
    if os.environ.get("KUBECONFIG") and not os.environ.get("KUBEBUILDER_ASSETS"):
        pytest.skip("a cluster of one's own (KUBECONFIG) is not restarted by the tests")
    assets = find_assets(build=False)
    plane = ControlPlane(tmp_path / "plane", assets=assets, exit_with_parent=True)
    plane.start()
    operator: OperatorProcess | None = None
    try:
        kube = KubeEnv(kubeconfig=plane.kubeconfig, kubectl_path=find_kubectl(assets))
        crds = [f"--filename={f}" for f in sorted(CRD_DIR.glob("*.yaml"))]
        kube.kubectl("apply", "--server-side", *crds)
        kube.kubectl("wait", "--for=condition=Established", "--timeout=60s", "crd", "--all")
        env = {
            **os.environ,
            "KUBECONFIG": str(plane.kubeconfig),
            "LITELLM_URL": litellm_env.url,
            "LITELLM_MASTER_KEY": litellm_env.master_key.get_secret_value(),
            "LITELLM_OPERATOR_RESYNC_SECONDS": "3",
            "LITELLM_OPERATOR_METRICS_PORT": str(free_port()),
            "LITELLM_OPERATOR_TIMEOUT_SECONDS": "2",
        }
        operator = OperatorProcess(env, tmp_path / "operator.log")
        operator.start()
        with kube.api_client() as api_client:
            cluster = Cluster(api_client)
            namespace = f"restart-{uuid.uuid4().hex[:6]}"
            kube.kubectl("create", "namespace", namespace)
            policy = f"p-{uuid.uuid4().hex[:6]}"
            cluster.create_policy(
                policy,
                {
                    "allowedNamespaces": ["*"],
                    "identities": ANY_IDENTITY,
                    "defaults": {"maxBudget": 3},
                },
            )
            names = [f"rs-{i}-{uuid.uuid4().hex[:6]}" for i in range(4)]
            for name in names[:2]:
                cluster.create_user(namespace, name, {"policyRef": policy})
            for name in names[:2]:
                cluster.wait_ready(namespace, name, timeout=30)
            for name in names[2:]:
                cluster.create_user(namespace, name, {"policyRef": policy})
            cluster.patch_policy(policy, {"defaults": {"maxBudget": 4}})
            plane.restart_apiserver(down_for=5)
            back = time.monotonic()
            for name in names:
                cluster.wait_ready(namespace, name, timeout=60)

            async def budget_applied() -> bool:
                for name in names:
                    record = await litellm_client.get_user(name)
                    if record is None or record.max_budget != 4:
                        return False
                return True

            deadline = time.monotonic() + 60
            while not await budget_applied():
                assert time.monotonic() < deadline, "the policy edit never reached LiteLLM"
                await asyncio.sleep(0.5)
            seconds = time.monotonic() - back
            print(f"\nFAULT API server down 5s: converged {seconds:.1f}s after")
            assert seconds < CONVERGE_SECONDS
            for name in names:
                record = await litellm_client.get_user(name)
                assert record is not None
                body = cluster.get_user(namespace, name) or {}
                assert record.metadata[OWNER_UID] == body["metadata"]["uid"]
    finally:
        if operator is not None:
            operator.stop()
        plane.stop()


KEY_KILL_POINTS = [
    pytest.param("/key/generate", "issue", id="after-key-registered"),
    pytest.param("/key/generate", "rotate", id="after-rotated-key-registered"),
    pytest.param("/key/update", "rotate", id="after-previous-key-renamed"),
    pytest.param("/key/delete", "rotate-now", id="after-old-key-revoked"),
    pytest.param(None, "issue", id="after-secret-written-before-registered"),
]


def key_in_secret(world: World, secret: str) -> str | None:
    try:
        found = world.cluster.core.read_namespaced_secret(secret, world.namespace)
    except ApiException as exc:
        if exc.status == 404:
            return None
        raise
    data = found.data or {}
    return decoded_key(data)


def key_works(endpoint: LiteLLMEndpoint, value: str) -> bool:
    return works(endpoint.url, value)


@pytest.mark.parametrize(("path", "step"), KEY_KILL_POINTS)
async def test_sigkill_while_issuing_or_rotating_a_key(
    world: World, team_of: str, litellm_env: LiteLLMEndpoint, path: str | None, step: str
) -> None:
    """Whatever step a SIGKILL interrupts, the restarted operator ends with exactly one key
    per alias, the Secret holding a key that works, no key without its Secret."""
    del team_of
    name = f"kkey-{uuid.uuid4().hex[:6]}"
    secret, alias = f"{name}-app", f"{world.namespace}/{name}/app"
    grace = "0s" if step == "rotate-now" else "1h"
    first = None
    if step != "issue":
        world.create(name, keys=[{"name": "app", "gracePeriod": grace}])
        await world.converged([name], time.monotonic(), "baseline")
        first = eventually(lambda: key_in_secret(world, secret), timeout=30, what="first key")
    if path is None:  # LiteLLM refuses every registration: the pending value is only in the Secret
        rule = world.proxy.add(Rule("status", "/key/generate", code=500, times=None))
    else:
        rule = world.proxy.add(Rule("hold", path, method="POST"))
    if step == "issue":
        world.create(name, keys=[{"name": "app", "gracePeriod": grace}])
    else:
        body = {"metadata": {"annotations": {ROTATE_ANNOTATION: "now"}}}
        world.cluster.custom.patch_namespaced_custom_object(
            GROUP, VERSION, world.namespace, USER_PLURAL, name, body
        )
    # A rotation waits for keys.minRotateEvery (1m, the least there is) after the first key.
    wait = 30 if step == "issue" else 90
    if path is None:
        eventually(lambda: rule.hits > 0, timeout=wait, what="a registration attempt")
    else:
        assert rule.held.wait(wait), f"the operator never called {path}"
    world.restart_operator()
    restarted = time.monotonic()

    def settled() -> str | None:
        value = key_in_secret(world, secret)
        return value if value and value != first and key_works(litellm_env, value) else None

    value = eventually(settled, timeout=CONVERGE_SECONDS, what="a working new key in the Secret")
    print(f"\nFAULT SIGKILL keys {step} {path}: settled in {time.monotonic() - restarted:.1f}s")
    keys = [k for k in await world.litellm.list_user_keys(name) if k.key_alias]
    aliases = sorted(k.key_alias or "" for k in keys)
    expected = [alias, f"{alias}/previous"] if step == "rotate" else [alias]
    assert aliases == expected, "exactly one key per alias, no orphan"
    if first is not None:
        assert key_works(litellm_env, first) == (step == "rotate"), "grace 1h; 0s revokes"
    assert value not in world.operator.log_text()
    world.cluster.delete_user(world.namespace, name)
    world.gone(name)
    assert not key_works(litellm_env, value)
