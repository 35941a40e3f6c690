"""The resync's choice of whom to nudge (PolicyHandlers.check, PolicyFollowers.check), with
LiteLLM and the API server replaced by recording fakes; the e2e tests run it against the real ones.

A nudge is a Kubernetes write and a second reconcile: a resync must nudge a user only for drift
it confirmed against the policy as it is at the end of the run."""

from __future__ import annotations

from collections.abc import Mapping
from types import SimpleNamespace
from typing import Any, cast

import kubernetes
import pytest

from litellm_operator.kube import Kube
from litellm_operator.litellm import LiteLLMUserRecord
from litellm_operator.policies.handlers import PolicyHandlers
from litellm_operator.policies.rollouts import Members, Rollouts
from litellm_operator.runtime.metrics import Metrics
from litellm_operator.users.context import Runtime
from litellm_operator.users.following import PolicyFollowers
from litellm_operator.users.indices import IndexedUser
from tests.fixtures.policies import ANY_IDENTITY


class RecordingKube(Kube):
    def __init__(self) -> None:
        super().__init__(kubernetes.client.ApiClient(kubernetes.client.Configuration()))
        self.nudged: list[str] = []

    async def nudge(self, namespace: str, name: str, why: str) -> None:
        self.nudged.append(name)

    async def patch_policy_status(self, name: str, status: Mapping[str, Any]) -> bool:
        return True


class DriftedLiteLLM:
    """Every user looks drifted; ``during_confirm`` runs when the resync reads a suspect again."""

    def __init__(self, during_confirm: Any = None) -> None:
        self.checked: list[str] = []
        self.during_confirm = during_confirm

    async def check(
        self, user: Mapping[str, Any], policy: Any, record: LiteLLMUserRecord | None
    ) -> tuple[str, ...]:
        self.checked.append(user["metadata"]["name"])
        return ("maxBudget",)

    async def read_user(self, user_id: str) -> LiteLLMUserRecord | None:
        if self.during_confirm is not None:
            self.during_confirm()
        return LiteLLMUserRecord(user_id=user_id)


class VersionedProxy:
    """The client as the resync uses it: it reads the proxy's version again at each run."""

    def __init__(self) -> None:
        self.reads = 0

    async def proxy_version(self, *, refresh: bool = False) -> str:
        self.reads += refresh
        return "1.108.7"


class EmptySnapshot:
    async def snapshot(self) -> dict[str, LiteLLMUserRecord]:
        return {}


def user(name: str, policy_generation: int) -> IndexedUser:
    return IndexedUser.of(
        {
            "metadata": {"namespace": "ns", "name": name, "generation": 1},
            "spec": {"policyRef": "p"},
            "status": {
                "userId": name,
                "observedGeneration": 1,
                "policy": {"name": "p", "generation": policy_generation},
                "conditions": [{"type": "Ready", "status": "True"}],
            },
        }
    )


def policy(generation: int) -> dict[str, Any]:
    return {
        "metadata": {"name": "p", "uid": "u1", "generation": generation},
        "spec": {"allowedNamespaces": ["*"], "identities": ANY_IDENTITY},
    }


async def resync(
    users: dict[str, int],
    litellm: DriftedLiteLLM,
    body: dict[str, Any],
    proxy: VersionedProxy | None = None,
) -> RecordingKube:
    kube = RecordingKube()
    runtime = Runtime(
        config=cast(Any, SimpleNamespace(resync_seconds=60)),
        client=cast(Any, proxy or VersionedProxy()),
        reconciler=cast(Any, litellm),
        kube=kube,
        metrics=Metrics(),
        directory=cast(Any, EmptySnapshot()),
        teams=cast(Any, None),
    )
    members = Members(
        by_policy={"p": [("ns", name) for name in users]},
        bodies={("ns", name): [user(name, gen)] for name, gen in users.items()},
    )
    handlers = PolicyHandlers(Rollouts(kube, members), PolicyFollowers(runtime, members))
    await handlers.check("p", cast(Any, body), {"p": [body]})
    return kube


@pytest.mark.parametrize(
    ("users", "nudged"),
    [
        ({"a": 3, "b": 3}, ["a", "b"]),
        ({"a": 3, "b": 2}, ["a"]),
        ({"a": 2, "b": 2}, []),
    ],
    ids=["all-current", "one-mid-rollout", "all-mid-rollout"],
)
async def test_confirmed_drift_is_nudged_and_users_mid_rollout_are_left_to_it(
    users: dict[str, int], nudged: list[str]
) -> None:
    litellm = DriftedLiteLLM()
    kube = await resync(users, litellm, policy(3))
    assert kube.nudged == nudged
    assert sorted(set(litellm.checked)) == nudged  # users behind the policy are not even checked


async def test_no_nudge_when_the_policy_changed_during_the_run() -> None:
    body = policy(3)

    def edited() -> None:
        body["metadata"]["generation"] = 4

    kube = await resync({"a": 3, "b": 3}, DriftedLiteLLM(during_confirm=edited), body)
    assert kube.nudged == []


async def test_each_run_reads_the_proxys_version_again() -> None:
    """A LiteLLM upgraded or rolled back between runs is known before the next write."""
    proxy = VersionedProxy()
    for _ in range(2):
        await resync({"a": 3}, DriftedLiteLLM(), policy(3), proxy)
    assert proxy.reads == 2
