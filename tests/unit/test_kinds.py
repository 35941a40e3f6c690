"""The seams of the per-kind layout: what each kind registers, what the runtime feeds, and how
the kinds reach one another (only through what litellm_operator.kinds passes them)."""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from typing import Any, cast

import kopf
import kubernetes
import pytest

from litellm_operator import kinds
from litellm_operator.keys.handlers import Owners, SecretWatch
from litellm_operator.keys.owner import TEAM_OWNER, USER_OWNER
from litellm_operator.kube import Kube
from litellm_operator.litellm import Connection, KeyCalls, LiteLLMClient, TeamCalls, UserCalls
from litellm_operator.models import GROUP, USER_PLURAL
from litellm_operator.policies.handlers import PolicyHandlers
from litellm_operator.policies.rollouts import Members, Rollouts
from litellm_operator.runtime.config import load_config
from litellm_operator.runtime.metrics import Metrics

CONFIG = {"LITELLM_URL": "http://127.0.0.1:1", "LITELLM_MASTER_KEY": "sk-unit"}


class RecordingKube(Kube):
    def __init__(self) -> None:
        super().__init__(kubernetes.client.ApiClient(kubernetes.client.Configuration()))
        self.nudged: list[tuple[str, str]] = []
        self.nudged_teams: list[tuple[str, str]] = []

    async def nudge(self, namespace: str, name: str, why: str) -> None:
        self.nudged.append((namespace, name))

    async def nudge_team(self, namespace: str, name: str, why: str) -> None:
        self.nudged_teams.append((namespace, name))


def handler_ids(registry: kopf.OperatorRegistry) -> dict[str, set[str]]:
    parts: dict[str, Any] = {
        "activities": registry._activities,
        "indexing": registry._indexing,
        "watching": registry._watching,
        "spawning": registry._spawning,
        "changing": registry._changing,
    }
    return {name: {str(h.id) for h in part.get_all_handlers()} for name, part in parts.items()}


class Handover:
    """Records what registering the kinds asks of the watch stream (nothing, it should be)."""

    def __init__(self) -> None:
        self.asked: list[Any] = []

    def release(self, uid: str) -> None:
        self.asked.append(uid)

    def answer(self, kwargs: Mapping[str, Any]) -> bool:
        self.asked.append(kwargs)
        return False


async def test_every_kind_registers_its_handlers_and_only_the_users_are_fed() -> None:
    handover = Handover()
    client = LiteLLMClient(CONFIG["LITELLM_URL"], "sk-unit")
    base = kinds.Base(load_config(CONFIG), client, RecordingKube(), Metrics())
    registry = kopf.OperatorRegistry()
    async with base.client, kinds.started(base) as operated:
        assert [kind.name for kind in operated] == [
            "LiteLLMUser",
            "LiteLLMTeam",
            "ProvisioningPolicy",
            "key Secrets",
        ]
        feeds = [key for kind in operated for key in kind.feeds]
        assert feeds == [(GROUP, USER_PLURAL)]
        for kind in operated:
            kind.register(registry, handover)
    assert handler_ids(registry) == {
        "activities": {
            "prefetch-litellm-users",
            "users",
            "rollouts",
            "watch-key-secrets",
            "key-secrets",
            "team-keys-due",
        },
        "indexing": {"users_listed", "policy_bodies", "teams_by_namespace"},
        "watching": {"rollout", "deleted", "teams-follow-policy"},
        "spawning": {"resync", "team-resync"},
        "changing": {"reconcile", "resume", "finalize", "propagate"},
    }
    assert handover.asked == [], "registering releases or answers nothing"


async def test_the_key_secrets_watch_nudges_only_this_operator_s_owners() -> None:
    kube = RecordingKube()
    owners = {
        USER_OWNER: Owners(lambda key: key == ("ns", "mine"), kube.nudge),
        TEAM_OWNER: Owners(lambda key: key == ("ns", "crew"), kube.nudge_team),
    }
    watch = SecretWatch(kube, owners)
    await watch.nudge(USER_OWNER, "ns", "mine", "deleted")
    await watch.nudge(USER_OWNER, "ns", "elsewhere", "deleted")
    await watch.nudge(USER_OWNER, "ns", "crew", "deleted")
    await watch.nudge(TEAM_OWNER, "ns", "crew", "deleted")
    await watch.nudge(TEAM_OWNER, "ns", "mine", "deleted")
    assert kube.nudged == [("ns", "mine")]
    assert kube.nudged_teams == [("ns", "crew")]


class RecordingFollowers:
    def __init__(self) -> None:
        self.propagated: list[tuple[str, int | None]] = []
        self.checked: list[str] = []
        self.versions_read = 0

    async def propagate(self, name: str, generation: int | None) -> None:
        self.propagated.append((name, generation))

    async def check(self, name: str, body: kopf.Body) -> None:
        self.checked.append(name)

    async def read_litellm_version(self) -> None:
        self.versions_read += 1


@pytest.mark.parametrize(
    ("event", "expected"),
    [
        pytest.param("changed", [("p", 3)], id="created-or-edited-propagates-its-generation"),
        pytest.param("DELETED", [("p", None)], id="deleted-propagates-none"),
        pytest.param("MODIFIED", [], id="other-events-leave-the-users-alone"),
    ],
)
async def test_a_policy_s_handlers_hand_its_changes_to_its_users(
    event: str, expected: list[tuple[str, int | None]]
) -> None:
    followers = RecordingFollowers()
    policies: Mapping[str, Any] = {}
    rollouts = Rollouts(RecordingKube(), Members(by_policy={}, bodies={}))
    handlers = PolicyHandlers(rollouts, followers)
    body = cast(kopf.Body, {"metadata": {"name": "p", "generation": 3}})
    if event == "changed":
        await handlers.changed(name="p", body=body, policy_bodies=policies)
    else:
        await handlers.event(type=event, name="p", policy_bodies=policies)
    await handlers.check("p", body, policies)
    await rollouts.close()
    assert followers.propagated == expected
    assert followers.checked == ["p"]


def test_the_client_s_calls_are_split_between_resources_without_overlap() -> None:
    """A call declared by two resources would silently shadow one (method resolution order)."""

    def calls(cls: type) -> set[str]:
        return {name for name in vars(cls) if not name.startswith("__")}

    resources = [UserCalls, TeamCalls, KeyCalls, Connection]
    for a, b in itertools.combinations(resources, 2):
        assert not calls(a) & calls(b), (a.__name__, b.__name__)
    assert all(issubclass(LiteLLMClient, cls) for cls in resources)
