"""Same-id races on the real stack: one owner per LiteLLM user id, at every moment.

LiteLLM's ``/user/new`` is last-write-wins for one id (two concurrent calls both answer 200), so
the operator decides who creates an id before calling LiteLLM, and the resource whose markers
LiteLLM holds stays the owner across resyncs.
"""

from __future__ import annotations

import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from litellm_operator.litellm import LiteLLMClient
from litellm_operator.users.plan import OWNER_NAMESPACE, OWNER_UID
from tests.e2e.conftest import RESYNC_SECONDS
from tests.e2e.operator_harness import Cluster, OperatorProcess, condition_of, eventually
from tests.fixtures.kube import KubeEnv, fresh_namespace
from tests.fixtures.policies import ANY_IDENTITY

pytestmark = [pytest.mark.e2e, pytest.mark.integration]

PAIRS = 8


def verdicts(cluster: Cluster, pair: list[tuple[str, str]]) -> list[tuple[str, str]]:
    return [
        (
            condition_of(cluster.get_user(ns, name) or {}).get("status", ""),
            condition_of(cluster.get_user(ns, name) or {}).get("reason", ""),
        )
        for ns, name in pair
    ]


async def test_two_namespaces_racing_for_one_id_get_one_owner(
    operator: OperatorProcess,
    cluster: Cluster,
    kube_env: KubeEnv,
    litellm_client: LiteLLMClient,
    policy_name: str,
) -> None:
    del operator
    cluster.create_policy(
        policy_name,
        {
            "allowedNamespaces": ["*"],
            "identities": ANY_IDENTITY,
            "overrides": {"allowedFields": ["userId"]},
        },
    )
    suffix = uuid.uuid4().hex[:6]
    with (
        fresh_namespace(kube_env, f"race-a-{suffix}") as first,
        fresh_namespace(kube_env, f"race-b-{suffix}") as second,
    ):
        ids = [f"race-{suffix}-{i}" for i in range(PAIRS)]
        jobs: list[tuple[str, str, dict[str, Any]]] = [
            (ns, f"u{i}", {"policyRef": policy_name, "userId": user_id})
            for i, user_id in enumerate(ids)
            for ns in (first, second)
        ]
        with ThreadPoolExecutor(len(jobs)) as pool:
            list(pool.map(lambda job: cluster.create_user(*job), jobs))

        def settled() -> bool:
            for i in range(PAIRS):
                states = verdicts(cluster, [(first, f"u{i}"), (second, f"u{i}")])
                if sorted(states) != [("False", "Conflict"), ("True", "Synced")]:
                    return False
            return True

        eventually(settled, timeout=60, what="one Ready and one Conflict per pair")
        winners: dict[str, str] = {}
        for i, user_id in enumerate(ids):
            record = await litellm_client.get_user(user_id)
            assert record is not None
            ready_ns = first if verdicts(cluster, [(first, f"u{i}")])[0][0] == "True" else second
            owner = cluster.get_user(ready_ns, f"u{i}") or {}
            assert record.metadata[OWNER_UID] == owner["metadata"]["uid"], (
                "LiteLLM names the winner"
            )
            assert record.metadata[OWNER_NAMESPACE] == ready_ns
            winners[user_id] = ready_ns

        time.sleep(RESYNC_SECONDS * 3)  # resyncs must not flip a pair
        assert settled(), "a resync changed a winner"
        for user_id, ready_ns in winners.items():
            record = await litellm_client.get_user(user_id)
            assert record is not None
            assert record.metadata[OWNER_NAMESPACE] == ready_ns
