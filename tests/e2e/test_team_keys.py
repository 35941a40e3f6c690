"""A LiteLLMTeam's keys end to end: a real API server, a real LiteLLM and the operator, judged
through the keys themselves (``GET /v1/models`` with the key answers 200 while it works, 401
once revoked) and with the master key (the key is the team's: ``team_id`` set, no user)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from devenv.litellm import LiteLLMEndpoint
from litellm_operator.keys.plan import ROTATE_ANNOTATION
from litellm_operator.litellm import LiteLLMClient
from litellm_operator.models import GROUP, TEAM_PLURAL, VERSION
from tests.e2e.conftest import RESYNC_SECONDS
from tests.e2e.operator_harness import Cluster, OperatorProcess, eventually
from tests.e2e.test_keys import SECRET_DATA, Keys, until
from tests.e2e.test_teams import Teams
from tests.fixtures.key_probes import for_inference_only, management_statuses
from tests.fixtures.policies import ANY_IDENTITY

pytestmark = [pytest.mark.e2e, pytest.mark.integration]

MODEL = "gpt-4o-mini"
POLICY: dict[str, Any] = {
    "allowedNamespaces": ["*"],
    "identities": ANY_IDENTITY,
    "teams": {"maxBudget": 100, "tpmLimit": 5000, "allowedModels": ["gpt-4o-mini", "gpt-4o"]},
    "keys": {"maxPerUser": 3, "maxBudget": 5, "minRotateEvery": "1m"},
}


class TeamKeys(Keys):
    """The users' key scene (Secrets, probes, the leak check) over a team."""

    def __init__(self, teams: Teams, endpoint: LiteLLMEndpoint) -> None:
        super().__init__(teams.cluster, teams.namespace, teams.policy, teams.litellm, endpoint)
        self.teams = teams

    def annotate(self, name: str, annotations: dict[str, str]) -> None:
        self.cluster.custom.patch_namespaced_custom_object(
            GROUP,
            VERSION,
            self.namespace,
            TEAM_PLURAL,
            name,
            {"metadata": {"annotations": annotations}},
        )

    def team_status_keys(self, name: str) -> list[dict[str, Any]]:
        team = self.teams.get(name) or {}
        return list((team.get("status") or {}).get("keys") or [])


@pytest.fixture
def team_keys(
    operator: OperatorProcess,
    cluster: Cluster,
    namespace: str,
    policy_name: str,
    litellm_client: LiteLLMClient,
    litellm_env: LiteLLMEndpoint,
) -> Iterator[TeamKeys]:
    """Also the leak check: no key value the test saw is in the log, the events or statuses."""
    cluster.create_policy(policy_name, POLICY)
    scene = TeamKeys(Teams(operator, cluster, namespace, policy_name, litellm_client), litellm_env)
    yield scene
    events = cluster.core.list_namespaced_event(namespace).items
    text = "\n".join(f"{e.reason} {e.message}" for e in events)
    text += repr(
        cluster.custom.list_namespaced_custom_object(GROUP, VERSION, namespace, TEAM_PLURAL)
    )
    log = operator.log_text()
    for value in scene.seen:
        assert value not in text, "a key value is in an event or a status"
        assert value not in log, "a key value is in the operator log"


async def test_team_key_issue_content_update_revocation_and_delete(
    team_keys: TeamKeys, ident: Callable[[str], str]
) -> None:
    scene, teams = team_keys, team_keys.teams
    name = ident("crew")
    teams.create(
        name,
        models=["gpt-4o-mini", "gpt-4o"],
        keys=[
            {"name": "ci", "models": ["gpt-4o-mini"], "rpmLimit": 30},
            {"name": "web", "secretName": f"{name}-frontend"},
        ],
    )
    ci = scene.wait_value(f"{name}-ci")
    web = scene.wait_value(f"{name}-frontend")
    assert ci != web
    team = teams.ready(name)

    secret = scene.secret(f"{name}-ci") or {}
    assert set(secret["data"]) == SECRET_DATA
    assert secret["metadata"]["labels"] == {
        "app.kubernetes.io/managed-by": "litellm-operator",
        "litellm.platform.dev/team": name,
        "litellm.platform.dev/key": "ci",
    }
    (owner,) = secret["metadata"]["ownerReferences"]
    assert (owner["kind"], owner["name"], owner["uid"], owner["controller"]) == (
        "LiteLLMTeam",
        name,
        team["metadata"]["uid"],
        True,
    )

    info = await scene.litellm.key_info(ci)
    assert info is not None
    print(f"\nteam key in LiteLLM: team_id={info.team_id} user_id={info.user_id}")
    assert (info.key_alias, info.team_id, info.user_id) == (
        f"team:{scene.namespace}/{name}/ci",
        teams.team_id(name),
        None,
    )
    assert (info.models, info.max_budget, info.rpm_limit) == (["gpt-4o-mini"], 5.0, 30)
    assert info.allowed_routes == ["llm_api_routes"]
    web_info = await scene.litellm.key_info(web)
    assert web_info is not None
    assert sorted(web_info.models) == ["gpt-4o", "gpt-4o-mini"], "all of the team's"

    statuses = management_statuses(scene.endpoint.url, ci)
    print(f"team key on management routes: {statuses}")
    assert for_inference_only(scene.endpoint.url, ci, MODEL), statuses

    status = eventually(
        lambda: [k for k in scene.team_status_keys(name) if k["ready"]],
        timeout=30,
        what="status.keys ready",
    )
    assert {(k["name"], k["secretName"], k["keyAlias"]) for k in status} == {
        ("ci", f"{name}-ci", f"team:{scene.namespace}/{name}/ci"),
        ("web", f"{name}-frontend", f"team:{scene.namespace}/{name}/web"),
    }

    # A spec change is a /key/update of the same key; a key removed from the spec is revoked.
    teams.patch(name, keys=[{"name": "ci", "models": ["gpt-4o-mini"], "maxBudget": 1}])

    async def updated() -> bool:
        record = await scene.litellm.key_info(ci)
        return record is not None and record.max_budget == 1.0

    await until(updated, "the key's budget updated")
    assert scene.works(ci)
    scene.until_revoked(web)
    eventually(lambda: scene.secret(f"{name}-frontend") is None, timeout=30, what="Secret gone")

    # A deleted Secret is noticed (the Secrets' watch nudges the team): a new key, the old one
    # revoked.
    scene.cluster.core.delete_namespaced_secret(f"{name}-ci", scene.namespace)
    fresh = scene.wait_value(f"{name}-ci", not_in=(None, ci))
    scene.until_revoked(ci)

    # Deletion (Delete, the default): the team's keys revoked, its Secrets deleted, the team gone.
    teams.delete(name)
    scene.until_revoked(fresh)
    eventually(lambda: scene.secret(f"{name}-ci") is None, timeout=30, what="Secret deleted")
    assert await teams.held(name) is None
    assert await scene.litellm.list_team_keys(teams.team_id(name)) == []


def test_team_key_rotation_with_and_without_grace(
    team_keys: TeamKeys, ident: Callable[[str], str]
) -> None:
    scene, teams = team_keys, team_keys.teams
    name = ident("rot")
    teams.create(
        name, keys=[{"name": "a", "gracePeriod": "4s"}, {"name": "b", "gracePeriod": "0s"}]
    )
    first_a, first_b = scene.wait_value(f"{name}-a"), scene.wait_value(f"{name}-b")
    scene.annotate(name, {ROTATE_ANNOTATION: "1"})
    second_a = scene.wait_value(f"{name}-a", not_in=(None, first_a), timeout=90)
    assert scene.works(first_a), "the previous key works during the grace period"
    second_b = scene.wait_value(f"{name}-b", not_in=(None, first_b))
    assert not scene.works(first_b), "0s: the previous key is revoked at once"
    assert scene.works(second_a)
    assert scene.works(second_b)
    scene.until_revoked(first_a, timeout=30)  # the grace period (4 s) is over
    status = eventually(
        lambda: [k for k in scene.team_status_keys(name) if "previousExpiresAt" not in k] or None,
        timeout=30,
        what="previousExpiresAt cleared",
    )
    assert {k["rotation"] for k in status} == {"1"}
    teams.delete(name)


async def test_retain_leaves_the_team_s_keys_and_secrets(
    team_keys: TeamKeys, ident: Callable[[str], str]
) -> None:
    scene, teams = team_keys, team_keys.teams
    name = ident("keep")
    teams.create(name, deletionPolicy="Retain", keys=[{"name": "a"}])
    value = scene.wait_value(f"{name}-a")
    teams.ready(name)
    try:
        teams.delete(name)
        secret = scene.secret(f"{name}-a") or {}
        assert not secret["metadata"].get("ownerReferences"), "released: no garbage collection"
        assert scene.works(value), "the key is left working"
        held = await teams.held(name)
        assert held is not None, "the team is retained"
    finally:
        with contextlib.suppress(Exception):
            await scene.litellm.delete_keys([value])
        with contextlib.suppress(Exception):
            await scene.litellm.delete_team(teams.team_id(name))
        with contextlib.suppress(Exception):
            scene.cluster.core.delete_namespaced_secret(f"{name}-a", scene.namespace)


async def test_a_user_and_a_team_of_one_name_have_their_own_keys(
    team_keys: TeamKeys, ident: Callable[[str], str]
) -> None:
    """Aliases of users and teams never meet (a team's start with ``team:``): each key is bound
    to its own owner in LiteLLM, and revoking one leaves the other."""
    scene, teams = team_keys, team_keys.teams
    name = ident("same")
    scene.cluster.patch_policy(scene.policy, {**POLICY, "defaults": {"models": [MODEL]}})
    scene.create_user(name, keys=[{"name": "a"}])
    users_key = scene.wait_value(f"{name}-a")
    teams.create(name, keys=[{"name": "a", "secretName": f"{name}-t"}])
    teams_key = scene.wait_value(f"{name}-t")
    user_info, team_info = (
        await scene.litellm.key_info(users_key),
        await scene.litellm.key_info(teams_key),
    )
    assert user_info is not None
    assert team_info is not None
    assert (user_info.key_alias, user_info.user_id, user_info.team_id) == (
        f"{scene.namespace}/{name}/a",
        name,
        None,
    )
    assert (team_info.key_alias, team_info.user_id, team_info.team_id) == (
        f"team:{scene.namespace}/{name}/a",
        None,
        teams.team_id(name),
    )
    teams.delete(name)
    scene.until_revoked(teams_key)
    assert scene.works(users_key), "the user's key is not the team's"
    scene.cluster.delete_user(scene.namespace, name)
    scene.until_revoked(users_key)


async def test_team_keys_in_steady_state_cost_reads_only(
    team_keys: TeamKeys, ident: Callable[[str], str]
) -> None:
    """Two resyncs of a Ready team with keys: no key write, one ``/key/list`` per resync."""
    scene, teams = team_keys, team_keys.teams
    name = ident("calm")
    teams.create(name, keys=[{"name": "a"}, {"name": "b", "maxBudget": 1}])
    value = scene.wait_value(f"{name}-a")
    scene.wait_value(f"{name}-b")
    teams.ready(name)
    await asyncio.sleep(1)  # the reconcile that issued them has published its status
    writes = ("/key/generate", "/key/update", "/key/delete", "/key/unblock")
    before, lists = teams.calls(*writes), teams.calls("/key/list")
    await asyncio.sleep(2 * RESYNC_SECONDS + 1)
    listed = teams.calls("/key/list") - lists
    print(
        f"\n2 resyncs of a team with 2 keys: {teams.calls(*writes) - before:g} key writes, "
        f"{listed:g} /key/list (every team of the session's operator)"
    )
    assert teams.calls(*writes) == before
    assert scene.works(value)
    teams.delete(name)
