"""Virtual keys in Secrets, end to end: a real API server and a real LiteLLM, judged through the
keys themselves (``GET /v1/models`` with the key as Bearer answers 200 while it works, 401 once
revoked or blocked), and no key value anywhere but in its Secret."""

from __future__ import annotations

import asyncio
import base64
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from kubernetes.client import ApiException, V1ObjectMeta, V1Secret

from devenv.litellm import LiteLLMEndpoint
from litellm_operator.keys.plan import ROTATE_ANNOTATION
from litellm_operator.litellm import LiteLLMClient
from litellm_operator.models import GROUP, USER_PLURAL, VERSION
from tests.e2e.conftest import RESYNC_SECONDS
from tests.e2e.operator_harness import Cluster, OperatorProcess, eventually
from tests.fixtures.key_probes import decoded_key, works
from tests.fixtures.policies import ANY_IDENTITY

pytestmark = [pytest.mark.e2e, pytest.mark.integration]

POLICY: dict[str, Any] = {
    "allowedNamespaces": ["*"],
    "identities": ANY_IDENTITY,
    "defaults": {"maxBudget": 10, "models": ["gpt-4o", "gpt-4o-mini"]},
    "keys": {"maxPerUser": 3, "maxBudget": 5, "minRotateEvery": "1m"},
}
SECRET_DATA = {"api_key", "base_url", "OPENAI_API_KEY", "OPENAI_BASE_URL"}


class Keys:
    """One test's keys: its namespace, policy and user, and every key value it ever saw."""

    def __init__(
        self,
        cluster: Cluster,
        namespace: str,
        policy: str,
        litellm: LiteLLMClient,
        endpoint: LiteLLMEndpoint,
    ) -> None:
        self.cluster, self.namespace, self.policy = cluster, namespace, policy
        self.litellm, self.endpoint = litellm, endpoint
        self.seen: set[str] = set()

    def create_user(self, name: str, **spec: Any) -> None:
        self.cluster.create_user(self.namespace, name, {"policyRef": self.policy, **spec})

    def patch_user(self, name: str, body: dict[str, Any]) -> None:
        self.cluster.custom.patch_namespaced_custom_object(
            GROUP, VERSION, self.namespace, USER_PLURAL, name, body
        )

    def secret(self, name: str) -> dict[str, Any] | None:
        try:
            found = self.cluster.core.read_namespaced_secret(name, self.namespace)
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise
        return dict(self.cluster.core.api_client.sanitize_for_serialization(found))

    def value(self, name: str) -> str | None:
        """The key in Secret ``name`` (remembered for the leak check)."""
        secret = self.secret(name)
        data = (secret or {}).get("data") or {}
        value = decoded_key(data)
        if value is not None:
            self.seen.add(value)
        return value

    def wait_value(
        self, name: str, not_in: tuple[str | None, ...] = (None,), timeout: float = 30
    ) -> str:
        def fresh() -> str | None:
            value = self.value(name)
            return value if value not in not_in and self.works(value or "") else None

        return eventually(fresh, timeout=timeout, what=f"a working key in Secret {name}")

    def works(self, value: str) -> bool:
        return bool(value) and works(self.endpoint.url, value)

    def until_revoked(self, value: str, timeout: float = 30) -> None:
        eventually(lambda: not self.works(value), timeout=timeout, what="the key revoked")

    def status_keys(self, name: str) -> list[dict[str, Any]]:
        user = self.cluster.get_user(self.namespace, name) or {}
        return list((user.get("status") or {}).get("keys") or [])


@pytest.fixture
def keys(
    operator: OperatorProcess,
    cluster: Cluster,
    namespace: str,
    policy_name: str,
    litellm_client: LiteLLMClient,
    litellm_env: LiteLLMEndpoint,
) -> Iterator[Keys]:
    """Also the leak check: no key value the test saw is in the log, the events or statuses."""
    cluster.create_policy(policy_name, POLICY)
    scene = Keys(cluster, namespace, policy_name, litellm_client, litellm_env)
    yield scene
    events = cluster.core.list_namespaced_event(namespace).items
    text = "\n".join(f"{e.reason} {e.message}" for e in events)
    users = cluster.custom.list_namespaced_custom_object(GROUP, VERSION, namespace, USER_PLURAL)
    text += repr(users)
    log = operator.log_text()
    for value in scene.seen:
        assert value not in text, "a key value is in an event or a status"
        assert value not in log, "a key value is in the operator log"


async def test_issue_limits_update_and_removal(keys: Keys, ident: Callable[[str], str]) -> None:
    name = ident("app")
    keys.create_user(
        name,
        keys=[
            {"name": "ci", "models": ["gpt-4o"], "maxParallelRequests": 2, "rpmLimit": 30},
            {"name": "web", "secretName": f"{name}-frontend"},
        ],
    )
    ci = keys.wait_value(f"{name}-ci")
    web = keys.wait_value(f"{name}-frontend")
    assert ci != web

    secret = keys.secret(f"{name}-ci") or {}
    assert set(secret["data"]) == SECRET_DATA
    assert secret["data"]["api_key"] == secret["data"]["OPENAI_API_KEY"]
    assert secret["metadata"]["labels"] == {
        "app.kubernetes.io/managed-by": "litellm-operator",
        "litellm.platform.dev/user": name,
        "litellm.platform.dev/key": "ci",
    }
    user = keys.cluster.get_user(keys.namespace, name) or {}
    (owner,) = secret["metadata"]["ownerReferences"]
    assert (owner["kind"], owner["name"], owner["uid"], owner["controller"]) == (
        "LiteLLMUser",
        name,
        user["metadata"]["uid"],
        True,
    )

    info = await keys.litellm.key_info(ci)
    assert info is not None
    assert (info.key_alias, info.user_id) == (f"{keys.namespace}/{name}/ci", name)
    assert (info.models, info.max_budget, info.max_parallel_requests, info.rpm_limit) == (
        ["gpt-4o"],
        5.0,  # the policy's ceiling is the default
        2,
        30,
    )
    web_info = await keys.litellm.key_info(web)
    assert web_info is not None
    assert sorted(web_info.models) == ["gpt-4o", "gpt-4o-mini"]  # all of the user's

    status = eventually(
        lambda: [k for k in keys.status_keys(name) if k["ready"]],
        timeout=30,
        what="status.keys ready",
    )
    assert {(k["name"], k["secretName"], k["keyAlias"]) for k in status} == {
        ("ci", f"{name}-ci", f"{keys.namespace}/{name}/ci"),
        ("web", f"{name}-frontend", f"{keys.namespace}/{name}/web"),
    }
    assert all(k["issuedAt"] for k in status)

    # Settings drift back: a spec change is a /key/update, same key.
    keys.patch_user(
        name, {"spec": {"keys": [{"name": "ci", "models": ["gpt-4o"], "maxBudget": 1}]}}
    )

    async def updated() -> bool:
        record = await keys.litellm.key_info(ci)
        return record is not None and record.max_budget == 1.0

    await until(updated, "the key's budget updated")
    assert keys.works(ci)
    # ... and "web" was removed from the spec: revoked, its Secret deleted.
    keys.until_revoked(web)
    eventually(lambda: keys.secret(f"{name}-frontend") is None, timeout=30, what="Secret gone")

    # Deleting the user revokes its keys and deletes its Secrets (no garbage collector here).
    keys.cluster.delete_user(keys.namespace, name)
    keys.until_revoked(ci)
    eventually(lambda: keys.secret(f"{name}-ci") is None, timeout=30, what="Secret deleted")


async def until(probe: Callable[[], Any], what: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if await probe():
            return
        await asyncio.sleep(0.3)
    raise AssertionError(f"timed out waiting for {what}")


def test_rotation_with_and_without_grace(keys: Keys, ident: Callable[[str], str]) -> None:
    """A rotation request waits until keys.minRotateEvery (1m here, the least admission allows)
    has passed since the key was issued; then the previous key works for its grace period."""
    name = ident("rot")
    keys.create_user(
        name, keys=[{"name": "a", "gracePeriod": "4s"}, {"name": "b", "gracePeriod": "0s"}]
    )
    first_a, first_b = keys.wait_value(f"{name}-a"), keys.wait_value(f"{name}-b")
    issued = time.monotonic()

    keys.patch_user(name, {"metadata": {"annotations": {ROTATE_ANNOTATION: "1"}}})
    second_a = keys.wait_value(f"{name}-a", not_in=(None, first_a), timeout=90)
    waited = time.monotonic() - issued
    print(f"\nrotation requested at once, done after {waited:.1f}s (floor 1m)")
    assert waited >= 50, "no new key before the floor"
    assert keys.works(first_a), "the previous key works during the grace period"
    second_b = keys.wait_value(f"{name}-b", not_in=(None, first_b))
    assert not keys.works(first_b), "0s: the previous key is revoked at once"
    assert keys.works(second_a)
    assert keys.works(second_b)
    status = {k["name"]: k for k in keys.status_keys(name)}
    assert status["a"].get("previousExpiresAt")
    assert status["a"]["rotation"] == status["b"]["rotation"] == "1"
    keys.until_revoked(first_a, timeout=30)  # the grace period (4 s) is over
    eventually(
        lambda: all("previousExpiresAt" not in k for k in keys.status_keys(name)),
        timeout=30,
        what="previousExpiresAt cleared",
    )


def test_deleted_or_edited_secret_gets_a_new_key(keys: Keys, ident: Callable[[str], str]) -> None:
    name = ident("drift")
    keys.create_user(name, keys=[{"name": "a"}])
    first = keys.wait_value(f"{name}-a")
    keys.cluster.core.delete_namespaced_secret(f"{name}-a", keys.namespace)
    # The Secret watch (or the next resync) notices; the lost key is revoked.
    second = keys.wait_value(f"{name}-a", not_in=(None, first))
    keys.until_revoked(first)

    edited = base64.b64encode(b"sk-someone-elses").decode()
    keys.cluster.core.patch_namespaced_secret(
        f"{name}-a", keys.namespace, {"data": {"api_key": edited}}
    )
    third = keys.wait_value(f"{name}-a", not_in=(None, second, "sk-someone-elses"))
    keys.until_revoked(second)
    assert keys.works(third)


def test_suspend_blocks_and_resume_unblocks(keys: Keys, ident: Callable[[str], str]) -> None:
    name = ident("susp")
    keys.create_user(name, keys=[{"name": "a"}])
    value = keys.wait_value(f"{name}-a")
    keys.patch_user(name, {"spec": {"suspend": True}})
    keys.until_revoked(value)
    keys.patch_user(name, {"spec": {"suspend": False}})
    eventually(lambda: keys.works(value), timeout=30, what="the key unblocked")
    assert keys.value(f"{name}-a") == value, "the same key, not a new one"


async def test_forbidden_requests_change_nothing(keys: Keys, ident: Callable[[str], str]) -> None:
    name = ident("forbid")
    keys.create_user(name, keys=[{"name": "a", "models": ["o1-preview"]}])
    cond = keys.cluster.wait_reason(keys.namespace, name, "ModelNotAllowed")
    assert "o1-preview" in cond["message"]
    other = ident("budget")
    keys.create_user(other, keys=[{"name": "a", "maxBudget": 50}])
    cond = keys.cluster.wait_reason(keys.namespace, other, "OverrideForbidden")
    assert "maxBudget" in cond["message"]
    for user in (name, other):
        assert keys.secret(f"{user}-a") is None
        assert await keys.litellm.find_key_by_alias(f"{keys.namespace}/{user}/a") is None
        assert await keys.litellm.get_user(user) is None, "nothing changed in LiteLLM"


def test_retain_keeps_key_and_secret_without_owner(keys: Keys, ident: Callable[[str], str]) -> None:
    name = ident("keep")
    keys.create_user(name, keys=[{"name": "a"}], deletionPolicy="Retain")
    value = keys.wait_value(f"{name}-a")
    keys.cluster.delete_user(keys.namespace, name)
    eventually(
        lambda: keys.cluster.get_user(keys.namespace, name) is None, timeout=30, what="deleted"
    )
    secret = keys.secret(f"{name}-a") or {}
    assert not secret["metadata"].get("ownerReferences")
    assert keys.works(value)


async def test_key_changed_in_litellm_is_put_right(keys: Keys, ident: Callable[[str], str]) -> None:
    """Found by the resync (3 s here): limits drifted → /key/update; blocked → unblocked; deleted
    → a new key in the Secret."""
    name = ident("kdrift")
    keys.create_user(name, keys=[{"name": "a", "maxBudget": 2}])
    value = keys.wait_value(f"{name}-a")

    await keys.litellm.update_key(value, {"max_budget": 99.0})

    async def restored() -> bool:
        record = await keys.litellm.key_info(value)
        return record is not None and record.max_budget == 2.0

    await until(restored, "the key's budget restored")

    await keys.litellm.block_key(value)
    eventually(lambda: keys.works(value), timeout=30, what="the key unblocked")

    await keys.litellm.delete_keys([value])
    fresh = keys.wait_value(f"{name}-a", not_in=(None, value))
    assert not keys.works(value)
    assert keys.works(fresh)


async def test_every_limit_set_then_removed_settles_without_key_updates(
    keys: Keys, operator: OperatorProcess, ident: Callable[[str], str]
) -> None:
    """A key with every limit set, then none: LiteLLM ends up holding no limit (the budget
    falls back to the policy's keys.maxBudget), and two resyncs later the operator has made no
    /key/update: "none" is written as LiteLLM reads it back, amounts compare with a tolerance."""
    name = ident("klimits")
    limits = {
        "models": ["gpt-4o"],
        "maxBudget": 0.1,
        "budgetDuration": "1mo",
        "tpmLimit": 100,
        "rpmLimit": 10,
        "maxParallelRequests": 2,
    }
    keys.create_user(name, keys=[{"name": "a", **limits}])
    value = keys.wait_value(f"{name}-a")

    async def holds(expected: dict[str, Any]) -> bool:
        record = await keys.litellm.key_info(value)
        held = {field: getattr(record, field, None) for field in expected}
        return record is not None and held == expected

    everything = {
        "models": ["gpt-4o"],
        "max_budget": 0.1,
        "budget_duration": "1mo",
        "tpm_limit": 100,
        "rpm_limit": 10,
        "max_parallel_requests": 2,
    }
    await until(lambda: holds(everything), "every limit in LiteLLM")
    keys.patch_user(name, {"spec": {"keys": [{"name": "a"}]}})
    none = {
        "models": ["gpt-4o", "gpt-4o-mini"],  # all of the user's
        "max_budget": 5.0,  # the policy's keys.maxBudget
        "budget_duration": None,
        "tpm_limit": None,
        "rpm_limit": None,
        "max_parallel_requests": None,
    }
    await until(lambda: holds(none), "no limit in LiteLLM")
    keys.cluster.wait_ready(keys.namespace, name)
    await asyncio.sleep(1)  # the reconcile that wrote it has published its status

    requests = "litellm_operator_litellm_requests_total"
    before = operator.counter(requests, endpoint="/key/update")
    await asyncio.sleep(2 * RESYNC_SECONDS + 1)
    assert operator.counter(requests, endpoint="/key/update") == before
    assert await holds(none)
    assert keys.works(value), "the same key throughout"


def test_a_foreign_secret_is_never_overwritten(keys: Keys, ident: Callable[[str], str]) -> None:
    name = ident("taken")
    foreign = {"api_key": base64.b64encode(b"not-yours").decode()}
    keys.cluster.core.create_namespaced_secret(
        keys.namespace, V1Secret(metadata=V1ObjectMeta(name=f"{name}-a"), data=foreign)
    )
    keys.create_user(name, keys=[{"name": "a"}])
    cond = keys.cluster.wait_reason(keys.namespace, name, "Conflict")
    assert f"{name}-a" in cond["message"]
    secret = keys.secret(f"{name}-a") or {}
    assert secret["data"] == foreign
    assert not secret["metadata"].get("labels")
