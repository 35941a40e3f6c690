"""A fault at each LiteLLMTeam write (tests/e2e/faults.py between the operator and the real
LiteLLM): every team converges exactly once, Ready with the operator's markers, and its deletion
completes. The same for each write of a team's keys: whatever fails or is lost (or a SIGKILL
between two steps), the team ends with exactly one key per alias, bound to the team, and its
Secret holds the key that works."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator
from typing import Any, cast

import pytest
from kubernetes.client import ApiException

from devenv.litellm import LiteLLMEndpoint
from litellm_operator.fields import MANAGED_BY
from litellm_operator.keys.plan import PENDING_KEY, ROTATE_ANNOTATION
from litellm_operator.litellm import LiteLLMClient, NewTeamRequest, UpdateTeamRequest
from litellm_operator.models import API_VERSION, GROUP, TEAM_PLURAL, VERSION
from litellm_operator.runtime.runner import FINALIZER
from litellm_operator.users.plan import OWNER_UID
from tests.e2e.conftest import FAULT_NAMESPACE_PREFIX
from tests.e2e.faults import FaultProxy, Rule
from tests.e2e.operator_harness import Cluster, OperatorProcess, condition_of, eventually
from tests.e2e.test_faults import CONVERGE_SECONDS, fault_operator, proxy  # noqa: F401
from tests.fixtures.key_probes import decoded_key, works
from tests.fixtures.kube import KubeEnv, fresh_namespace
from tests.fixtures.policies import ANY_IDENTITY

pytestmark = [pytest.mark.e2e, pytest.mark.integration]


class TeamWorld:
    def __init__(
        self,
        cluster: Cluster,
        litellm: LiteLLMClient,
        faults: FaultProxy,
        ns: str,
        operator: OperatorProcess,
    ):
        self.cluster, self.litellm, self.proxy, self.namespace = cluster, litellm, faults, ns
        self.operator = operator
        self.policy = f"p-{uuid.uuid4().hex[:8]}"

    def create(self, name: str, *, finalizers: tuple[str, ...] = (), **spec: Any) -> None:
        metadata: dict[str, Any] = {"name": name, "namespace": self.namespace}
        if finalizers:
            metadata["finalizers"] = list(finalizers)
        body = {
            "apiVersion": API_VERSION,
            "kind": "LiteLLMTeam",
            "metadata": metadata,
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

    def delete(self, name: str, *, wait: bool = True) -> None:
        self.cluster.custom.delete_namespaced_custom_object(
            GROUP, VERSION, self.namespace, TEAM_PLURAL, name
        )
        if wait:
            self.delete_finished(name)

    def delete_finished(self, name: str) -> None:
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
    with fresh_namespace(kube_env, f"{FAULT_NAMESPACE_PREFIX}{uuid.uuid4().hex[:8]}") as ns:
        world = TeamWorld(cluster, litellm_client, proxy, ns, fault_operator)
        spec = {
            "allowedNamespaces": [ns],
            "identities": ANY_IDENTITY,
            "teams": {},
            "keys": {"minRotateEvery": "1m"},
        }
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


# --- the team's keys ---------------------------------------------------------------------------


def key_in_secret(world: TeamWorld, secret: str) -> str | None:
    try:
        found = world.cluster.core.read_namespaced_secret(secret, world.namespace)
    except ApiException as exc:
        if exc.status == 404:
            return None
        raise
    data = found.data or {}
    return decoded_key(data)


def working_key(
    world: TeamWorld, endpoint: LiteLLMEndpoint, secret: str, not_in: tuple[str | None, ...]
) -> str:
    def settled() -> str | None:
        value = key_in_secret(world, secret)
        return value if value not in not_in and works(endpoint.url, value or "") else None

    return eventually(settled, timeout=CONVERGE_SECONDS + 60, what=f"a working key in {secret}")


async def one_key_per_alias(world: TeamWorld, name: str, expected: list[str]) -> None:
    team_id = f"{world.namespace}.{name}"
    keys = await world.litellm.list_team_keys(team_id)
    assert sorted(k.key_alias or "" for k in keys) == expected, "exactly one key per alias"
    assert {(k.team_id, k.user_id) for k in keys} <= {(team_id, None)}


KEY_WRITE_FAULTS = [
    pytest.param(Rule("reset", "/key/generate"), "issue", id="issue-connection-reset"),
    pytest.param(Rule("drop", "/key/generate"), "issue", id="issue-response-lost"),
    pytest.param(Rule("garbage", "/key/generate"), "issue", id="issue-answered-with-garbage"),
    pytest.param(Rule("status", "/key/generate", code=500), "issue", id="issue-fails-with-500"),
    pytest.param(Rule("status", "/key/list", times=3, code=500), "issue", id="key-reads-fail"),
    pytest.param(Rule("drop", "/key/update"), "update", id="update-response-lost"),
    pytest.param(Rule("status", "/key/update", code=500), "update", id="update-fails-with-500"),
    pytest.param(Rule("drop", "/key/delete"), "revoke", id="revoke-response-lost"),
    pytest.param(Rule("status", "/key/delete", code=500), "revoke", id="revoke-fails-with-500"),
    pytest.param(Rule("reset", "/key/delete"), "revoke", id="revoke-connection-reset"),
]


@pytest.mark.parametrize(("rule", "step"), KEY_WRITE_FAULTS)
async def test_a_fault_at_a_team_key_write_converges_exactly_once(
    team_world: TeamWorld, litellm_env: LiteLLMEndpoint, rule: Rule, step: str
) -> None:
    name = f"tk-{uuid.uuid4().hex[:8]}"
    alias = f"team:{team_world.namespace}/{name}/app"
    keys = [{"name": "app"}, {"name": "old"}]
    if step != "issue":
        team_world.create(name, keys=keys)
        team_world.ready(name)
    first = key_in_secret(team_world, f"{name}-app")
    old = key_in_secret(team_world, f"{name}-old")
    started = time.monotonic()
    with team_world.proxy.injected(rule):
        if step == "issue":
            team_world.create(name, keys=keys)
        elif step == "update":
            patch = {"spec": {"keys": [{"name": "app", "maxBudget": 3}, {"name": "old"}]}}
            team_world.cluster.custom.patch_namespaced_custom_object(
                GROUP, VERSION, team_world.namespace, TEAM_PLURAL, name, patch
            )
        else:
            patch = {"spec": {"keys": [{"name": "app"}]}}
            team_world.cluster.custom.patch_namespaced_custom_object(
                GROUP, VERSION, team_world.namespace, TEAM_PLURAL, name, patch
            )
        eventually(lambda: rule.hits >= 1, timeout=30, what=f"the fault {rule.action} hit")
        value = working_key(team_world, litellm_env, f"{name}-app", (None,))
    team_world.ready(name)
    if step != "issue":
        assert value == first, "the same key: a fault never re-issues it"
    if step == "update":

        async def updated() -> bool:
            record = await team_world.litellm.key_info(value)
            return record is not None and record.max_budget == 3

        deadline = time.monotonic() + CONVERGE_SECONDS
        while not await updated():
            assert time.monotonic() < deadline, "the key's update never landed"
            await asyncio.sleep(0.5)
    expected = [alias] if step == "revoke" else [alias, alias.removesuffix("app") + "old"]
    await one_key_per_alias(team_world, name, sorted(expected))
    if step == "revoke":
        assert old is not None
        assert not works(litellm_env.url, old), "the removed key is revoked"
        eventually(
            lambda: key_in_secret(team_world, f"{name}-old") is None, timeout=30, what="Secret gone"
        )
    seconds = time.monotonic() - started
    print(f"\nFAULT {rule.action} {rule.path} ({step}): team keys settled in {seconds:.1f}s")
    team_world.delete(name)
    assert not works(litellm_env.url, value)
    assert await team_world.litellm.list_team_keys(f"{team_world.namespace}.{name}") == []


TEAM_KEY_KILL_POINTS = [
    pytest.param("/key/generate", "issue", id="after-key-registered"),
    pytest.param(None, "issue", id="after-secret-written-before-registered"),
    pytest.param("/key/generate", "rotate", id="after-rotated-key-registered"),
    pytest.param("/key/update", "rotate", id="after-previous-key-renamed"),
    pytest.param("/key/delete", "rotate-now", id="after-old-key-revoked"),
]


@pytest.mark.parametrize(("path", "step"), TEAM_KEY_KILL_POINTS)
async def test_sigkill_while_issuing_or_rotating_a_team_key(
    team_world: TeamWorld, litellm_env: LiteLLMEndpoint, path: str | None, step: str
) -> None:
    """Whatever step a SIGKILL interrupts, the restarted operator ends with exactly one key
    per alias, bound to the team, and the Secret holding a key that works."""
    world = team_world
    name = f"kt-{uuid.uuid4().hex[:6]}"
    secret, alias = f"{name}-app", f"team:{world.namespace}/{name}/app"
    keys = [{"name": "app", "gracePeriod": "0s" if step == "rotate-now" else "1h"}]
    first = None
    if step != "issue":
        world.create(name, keys=keys)
        world.ready(name)
        first = working_key(world, litellm_env, secret, (None,))
    if path is None:  # LiteLLM refuses every registration: the pending value is only in the Secret
        rule = world.proxy.add(Rule("status", "/key/generate", code=500, times=None))
    else:
        rule = world.proxy.add(Rule("hold", path, method="POST"))
    if step == "issue":
        world.create(name, keys=keys)
    else:
        body = {"metadata": {"annotations": {ROTATE_ANNOTATION: "now"}}}
        world.cluster.custom.patch_namespaced_custom_object(
            GROUP, VERSION, world.namespace, TEAM_PLURAL, name, body
        )
    wait = 30 if step == "issue" else 90  # a rotation waits for keys.minRotateEvery (1m)
    if path is None:
        eventually(lambda: rule.hits > 0, timeout=wait, what="a registration attempt")
    else:
        assert rule.held.wait(wait), f"the operator never called {path}"
    world.operator.kill()
    world.proxy.release()
    world.proxy.clear()
    world.operator.start()
    restarted = time.monotonic()
    value = working_key(world, litellm_env, secret, (None, first))
    print(
        f"\nFAULT SIGKILL team keys {step} {path}: settled in {time.monotonic() - restarted:.1f}s"
    )
    world.ready(name)
    expected = [alias, f"{alias}/previous"] if step == "rotate" else [alias]
    await one_key_per_alias(world, name, expected)
    if first is not None:
        assert works(litellm_env.url, first) == (step == "rotate"), "grace 1h; 0s revokes"
    assert value not in world.operator.log_text()
    world.delete(name)
    assert not works(litellm_env.url, value)


# --- deleted before the status recorded the team ----------------------------------------------


def pending_key_in_secret(world: TeamWorld, secret: str) -> str:
    """The value a Secret holds while its key is being registered (before the status write)."""
    found = world.cluster.core.read_namespaced_secret(secret, world.namespace)
    value = decoded_key(found.data or {}, PENDING_KEY)
    assert value is not None, "the Secret holds a pending value"
    return value


APP_KEY = ({"name": "app"},)
UNRECORDED_KILL_POINTS = [
    pytest.param("/team/new", (), "Delete", id="after-team-created"),
    pytest.param("/key/generate", APP_KEY, "Delete", id="after-team-key-issued"),
    pytest.param("/key/generate", APP_KEY, "Retain", id="after-team-key-issued-retained"),
]


@pytest.mark.parametrize(("path", "keys", "policy"), UNRECORDED_KILL_POINTS)
async def test_a_team_deleted_before_its_status_recorded_it_is_deleted_once(
    team_world: TeamWorld,
    litellm_env: LiteLLMEndpoint,
    path: str,
    keys: tuple[dict[str, Any], ...],
    policy: str,
) -> None:
    """SIGKILL after LiteLLM created the team (or issued its key), before status.teamId was
    written; the LiteLLMTeam is deleted while the operator is down. The restarted operator finds
    the team under the id it was created under, by its markers: no team, no key left (Retain:
    both kept, the team released)."""
    world = team_world
    name = f"kd-{uuid.uuid4().hex[:6]}"
    team_id, alias = f"{world.namespace}.{name}", f"team:{world.namespace}/{name}/app"
    rule = world.proxy.add(Rule("hold", path, method="POST"))
    spec: dict[str, Any] = {"alias": name, "deletionPolicy": policy}
    world.create(name, **({**spec, "keys": list(keys)} if keys else spec))
    assert rule.held.wait(30), f"the operator never called {path}"
    world.operator.kill()
    world.proxy.release()
    world.proxy.clear()
    assert not ((world.get(name) or {}).get("status") or {}).get("teamId"), "no status written"
    assert await world.litellm.get_team(team_id) is not None, "LiteLLM holds the team"
    issued = [pending_key_in_secret(world, f"{name}-app")] if keys else []
    assert len(await world.litellm.list_team_keys(team_id)) == len(keys)
    assert all(works(litellm_env.url, value) for value in issued)
    world.delete(name, wait=False)
    world.operator.start()
    restarted = time.monotonic()
    world.delete_finished(name)
    seconds = time.monotonic() - restarted
    print(f"\nFAULT SIGKILL {path} then deleted ({policy}): finalized in {seconds:.1f}s")
    if policy == "Retain":
        kept = await world.litellm.get_team(team_id)
        assert kept is not None, "Retain keeps the team"
        assert MANAGED_BY not in kept.metadata, "released: the markers removed"
        assert all(works(litellm_env.url, value) for value in issued), "and its keys working"
        await world.litellm.delete_team(team_id)
        return
    assert await world.litellm.get_team(team_id) is None, "the team is deleted"
    assert await world.litellm.list_team_keys(team_id) == []
    assert await world.litellm.find_key_by_alias(alias) is None, "its key is revoked"
    assert not any(works(litellm_env.url, value) for value in issued)
    assert key_in_secret(world, f"{name}-app") is None


async def test_a_foreign_team_of_the_id_is_untouched_by_an_unrecorded_deletion(
    team_world: TeamWorld, litellm_env: LiteLLMEndpoint
) -> None:
    """The operator is down between its finalizer and the status write; a team of the same id
    that carries no markers of this resource (and a key aliased as the team's) is LiteLLM's own
    business: the deletion completes and leaves both as they were."""
    world = team_world
    name = f"kf-{uuid.uuid4().hex[:6]}"
    team_id, alias = f"{world.namespace}.{name}", f"team:{world.namespace}/{name}/app"
    theirs = {"theirs": "1"}
    await world.litellm.create_team(
        NewTeamRequest.of(team_id=team_id, max_budget=5.0, metadata=theirs)
    )
    key = await world.litellm.generate_key(team_id=team_id, key_alias=alias)
    world.operator.kill()
    try:
        world.create(name, finalizers=(FINALIZER,), keys=[{"name": "app"}])
        world.delete(name, wait=False)
    finally:
        world.operator.start()
    world.delete_finished(name)
    record = await world.litellm.get_team(team_id)
    assert record is not None, "a foreign team is never deleted"
    assert record.metadata == theirs, "nor its metadata changed"
    assert record.max_budget == 5.0, "nor its settings"
    assert works(litellm_env.url, key.key.get_secret_value()), "nor its key revoked"
    await world.litellm.delete_team(team_id)
