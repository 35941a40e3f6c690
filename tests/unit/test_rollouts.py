"""The policy rollout publisher: debounced, patches only changes, follows a user's policyRef.

The indices are plain mappings shaped like kopf's (key → a collection of values); the Kubernetes
writes are recorded by a Kube whose patch method is replaced (no API server in unit tests; the
e2e tests cover the real one).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping
from typing import Any

import kubernetes
import pytest

from litellm_operator.kube import Kube
from litellm_operator.policies.rollouts import Members, Rollouts
from litellm_operator.runtime.handling import retry_delay
from litellm_operator.users.indices import IndexedUser


class RecordingKube(Kube):
    def __init__(self) -> None:
        super().__init__(kubernetes.client.ApiClient(kubernetes.client.Configuration()))
        self.patches: list[tuple[str, dict[str, Any]]] = []

    async def patch_policy_status(self, name: str, status: Mapping[str, Any]) -> bool:
        self.patches.append((name, dict(status)))
        return True


def user(name: str, policy: str, policy_generation: int, ready: str = "True") -> IndexedUser:
    return IndexedUser.of(
        {
            "metadata": {"namespace": "ns", "name": name, "generation": 1},
            "status": {
                "observedGeneration": 1,
                "policy": {"name": policy, "generation": policy_generation},
                "conditions": [{"type": "Ready", "status": ready}],
            },
        }
    )


@pytest.fixture
def world() -> tuple[Rollouts, RecordingKube, dict[str, Any]]:
    kube = RecordingKube()
    indices: dict[str, Any] = {
        "policy_bodies": {
            "p": [{"metadata": {"name": "p", "uid": "u1", "generation": 2}, "status": {}}],
            "q": [{"metadata": {"name": "q", "uid": "u2", "generation": 1}, "status": {}}],
        },
        "users_by_policy": {"p": [("ns", "a"), ("ns", "b")]},
        "user_bodies": {("ns", "a"): [user("a", "p", 2)], ("ns", "b"): [user("b", "p", 1)]},
    }
    members = Members(by_policy=indices["users_by_policy"], bodies=indices["user_bodies"])
    rollouts = Rollouts(kube, members, delay=0.05)
    return rollouts, kube, indices


async def test_touches_within_the_delay_make_one_patch(world: Any) -> None:
    rollouts, kube, indices = world
    for _ in range(20):
        rollouts.user_seen(("ns", "a"), "p", indices["policy_bodies"])
    await asyncio.sleep(0.2)
    assert len(kube.patches) == 1
    name, status = kube.patches[0]
    assert name == "p"
    assert (status["users"], status["updatedUsers"], status["readyUsers"]) == (2, 1, 2)
    assert status["conditions"][0]["status"] == "False"


async def test_patches_only_what_changed(world: Any) -> None:
    rollouts, kube, indices = world
    rollouts.touch("p", indices["policy_bodies"])
    await asyncio.sleep(0.2)
    rollouts.touch("p", indices["policy_bodies"])
    await asyncio.sleep(0.2)
    assert len(kube.patches) == 1, "nothing changed: no second patch"
    indices["user_bodies"][("ns", "b")] = [user("b", "p", 2)]
    rollouts.user_seen(("ns", "b"), "p", indices["policy_bodies"])
    await asyncio.sleep(0.2)
    assert len(kube.patches) == 2
    assert set(kube.patches[1][1]) == {"updatedUsers", "conditions"}
    assert kube.patches[1][1]["conditions"][0]["status"] == "True"


async def test_a_user_moving_to_another_policy_touches_both(world: Any) -> None:
    rollouts, kube, indices = world
    rollouts.user_seen(("ns", "b"), "p", indices["policy_bodies"])
    await asyncio.sleep(0.2)
    indices["users_by_policy"].update({"p": [("ns", "a")], "q": [("ns", "b")]})
    rollouts.user_seen(("ns", "b"), "q", indices["policy_bodies"])
    await asyncio.sleep(0.2)
    touched = sorted(name for name, _ in kube.patches[1:])
    assert touched == ["p", "q"]
    rollouts.user_seen(("ns", "b"), None, indices["policy_bodies"])  # deleted
    del indices["users_by_policy"]["q"]
    await asyncio.sleep(0.2)
    name, status = kube.patches[-1]
    assert name == "q"
    assert (status["users"], status["readyUsers"]) == (0, 0), "only what changed is patched"
    assert status["conditions"][0]["status"] == "True"
    await rollouts.close()


@pytest.mark.parametrize(
    ("retry", "retry_after", "expected"),
    [
        pytest.param(0, None, 1.0, id="first-retry"),
        pytest.param(3, None, 8.0, id="doubling"),
        pytest.param(10, None, 15.0, id="capped-so-recovery-is-quick"),
        pytest.param(0, 3.0, 3.0, id="retry-after-honoured"),
        pytest.param(0, 60.0, 60.0, id="a-long-retry-after-is-litellm-s-to-give"),
    ],
)
def test_retry_delay(retry: int, retry_after: float | None, expected: float) -> None:
    assert retry_delay(retry, retry_after) == expected


def test_the_index_keeps_what_the_resync_reads_and_drops_the_rest() -> None:
    body = {
        "apiVersion": "litellm.platform.dev/v1alpha1",
        "kind": "LiteLLMUser",
        "metadata": {
            "namespace": "ns",
            "name": "a",
            "uid": "u",
            "generation": 3,
            "creationTimestamp": "2026-01-01T00:00:00Z",
            "annotations": {
                "litellm.platform.dev/rotate": "r1",
                "kubectl.kubernetes.io/last-applied-configuration": "x" * 4000,
            },
            "managedFields": [{"manager": "kubectl"}] * 5,
        },
        "spec": {"policyRef": "p", "keys": [{"name": "k"}]},
        "status": {
            "observedGeneration": 3,
            "userId": "a",
            "kopf": {"last-handled-configuration": "y" * 4000},
            "conditions": [
                {"type": "Ready", "status": "False"},
                {"type": "Stalled", "status": "True"},
            ],
        },
    }
    indexed = IndexedUser.of(body)
    kept = indexed.body()
    assert kept["metadata"]["annotations"] == {"litellm.platform.dev/rotate": "r1"}
    assert "managedFields" not in kept["metadata"]
    assert "kopf" not in kept["status"]
    assert kept["spec"] == body["spec"]
    assert kept["status"]["userId"] == "a"
    assert len(indexed.compact) < 600
    assert len(indexed.compact) < len(json.dumps(kept, separators=(",", ":"))), "compressed"
    assert (indexed.state.key, indexed.state.ready, indexed.state.stalled) == (
        "ns/a",
        "False",
        True,
    )
    assert indexed.state.fresh


@pytest.mark.parametrize(
    ("users", "delay"),
    [(0, 0.05), (2, 0.05), (1_000, 0.5), (10_000, 5.0)],
    ids=["no-users", "few-users", "1k-users", "10k-users"],
)
def test_recomputation_waits_longer_for_a_larger_policy(
    world: Any, users: int, delay: float
) -> None:
    rollouts, _, indices = world
    indices["users_by_policy"]["p"] = [("ns", f"u{i}") for i in range(users)]
    assert rollouts.delay_for("p") == pytest.approx(delay)
    assert rollouts.delay_for("unknown") == pytest.approx(0.05)


async def test_the_litellm_version_last_read_is_in_the_status(world: Any) -> None:
    rollouts, kube, indices = world
    read: list[str | None] = [None]
    rollouts.litellm_version = lambda: read[0]
    rollouts.touch("p", indices["policy_bodies"])
    await asyncio.sleep(0.2)
    read[0] = "1.108.7"  # read again (a resync, a reconnect): a change of its own
    rollouts.touch("p", indices["policy_bodies"])
    await asyncio.sleep(0.2)
    assert ["litellmVersion" in status for _, status in kube.patches] == [False, True]
    assert kube.patches[1][1]["litellmVersion"] == "1.108.7"
