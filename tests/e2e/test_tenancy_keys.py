"""A hostile tenant and its keys, end to end: as the tenant's own ServiceAccount (the fixtures of
test_tenancy), judged in LiteLLM with the master key and through the keys themselves.

The tenant writes LiteLLMUsers only; its workloads read the key Secrets (read here with the
admin's client, as a Pod of the tenant would mount them).
"""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest

from devenv.litellm import LiteLLMEndpoint
from litellm_operator.keys.plan import ROTATE_ANNOTATION
from litellm_operator.litellm import KeyRecord, NewUserRequest
from tests.e2e import test_tenancy as tenancy
from tests.e2e.conftest import RESYNC_SECONDS
from tests.e2e.operator_harness import eventually
from tests.e2e.test_tenancy import Admin, Tenant, granted, held_for, ident
from tests.fixtures.key_probes import (
    decoded_key,
    for_inference_only,
    inference_statuses,
    management_statuses,
    works,
)

pytestmark = [pytest.mark.e2e, pytest.mark.integration]

tenant, admin, other_namespace = tenancy.tenant, tenancy.admin, tenancy.other_namespace
"""test_tenancy's fixtures: the tenant's ServiceAccount, the cluster admin, a second namespace."""
MODEL = "gpt-4o-mini"
"""The policy's model (granted()): the testbed routes it to a dead endpoint."""


def key_in(cluster_admin: Admin, namespace: str, secret: str) -> str | None:
    """The key in a Secret of the tenant's, as its workload reads it."""
    data = tenancy.secret_data(cluster_admin, namespace, secret) or {}
    return decoded_key(data)


def wait_key(cluster_admin: Admin, endpoint: LiteLLMEndpoint, namespace: str, secret: str) -> str:
    def working() -> str | None:
        value = key_in(cluster_admin, namespace, secret)
        return value if value and works(endpoint.url, value) else None

    return eventually(working, timeout=30, what=f"a working key in Secret {secret}")


async def user_keys(cluster_admin: Admin, user_id: str) -> list[KeyRecord]:
    return await cluster_admin.litellm.list_user_keys(user_id)


@tenancy.attacks("keys.name", "keys.models")
async def test_every_key_is_for_inference_only_and_old_keys_are_restricted_in_place(
    tenant: Tenant, admin: Admin, litellm_env: LiteLLMEndpoint
) -> None:
    policy = admin.policy(granted(tenant.namespace))
    name = ident("mint")
    tenant.apply(name, {"policyRef": policy, "keys": [{"name": "k"}]})
    value = wait_key(admin, litellm_env, tenant.namespace, f"{name}-k")

    statuses = management_statuses(litellm_env.url, value)
    print(f"\noperator key on management routes: {statuses}")
    print(f"operator key on inference routes: {inference_statuses(litellm_env.url, value, MODEL)}")
    assert for_inference_only(litellm_env.url, value, MODEL), statuses
    before = await user_keys(admin, name)
    assert [k.key_alias for k in before] == [f"{tenant.namespace}/{name}/k"], "nothing minted"

    # A key issued before this restriction (LiteLLM's default: every route of its user) is
    # restricted on the next reconcile by /key/update: the same key, not a new one.
    await admin.litellm.update_key(value, {"allowed_routes": []})

    async def restricted() -> bool:
        info = await admin.litellm.key_info(value)
        return info is not None and info.allowed_routes == ["llm_api_routes"]

    deadline = time.monotonic() + 30
    while not await restricted():
        assert time.monotonic() < deadline, "the key was not restricted again"
        time.sleep(0.5)
    assert key_in(admin, tenant.namespace, f"{name}-k") == value
    assert for_inference_only(litellm_env.url, value, MODEL)


@tenancy.attacks("keys.name", "keys.secretName")
async def test_a_squatted_alias_never_blocks_another_namespaces_key(
    tenant: Tenant, admin: Admin, other_namespace: str, litellm_env: LiteLLMEndpoint
) -> None:
    """The tenant holds a key that can still mint (issued before keys were restricted, or one
    a person made in LiteLLM's UI), and takes the alias another namespace's key will want."""
    policy = admin.policy(
        granted(tenant.namespace, allowedNamespaces=[tenant.namespace, other_namespace])
    )
    mallory, victim = ident("mallory"), ident("bob")
    tenant.apply(mallory, {"policyRef": policy, "keys": [{"name": "k"}]})
    admin.cluster.wait_ready(tenant.namespace, mallory)
    old_key = (await admin.litellm.generate_key(user_id=mallory)).key.get_secret_value()
    wanted = f"{other_namespace}/{victim}/web"
    minted = httpx.post(
        f"{litellm_env.url}/key/generate",
        headers={"Authorization": f"Bearer {old_key}"},
        json={"key_alias": wanted},
        timeout=30,
    )
    assert minted.status_code == 200, "LiteLLM lets an unrestricted key mint"
    squatter = minted.json()["key"]

    admin.cluster.create_user(
        other_namespace, victim, {"policyRef": policy, "keys": [{"name": "web"}]}
    )
    value = wait_key(admin, litellm_env, other_namespace, f"{victim}-web")
    admin.cluster.wait_ready(other_namespace, victim)
    info = await admin.litellm.key_info(value)
    assert info is not None
    assert (info.key_alias, info.user_id) == (wanted, victim)
    assert not works(litellm_env.url, squatter), "the squatting key is revoked"
    events = admin.cluster.events(other_namespace, victim)
    assert any(e[:2] == ("Warning", "KeyRevoked") for e in events), "the take-back is reported"
    for _, _, text in events:
        assert mallory not in text
        assert tenant.namespace not in text


@tenancy.attacks("keys.name")
async def test_an_alias_held_by_a_hand_made_key_is_conflict_and_not_named(
    tenant: Tenant, admin: Admin, litellm_env: LiteLLMEndpoint
) -> None:
    policy = admin.policy(granted(tenant.namespace))
    holder, name = ident("ops"), ident("carol")
    await admin.litellm.create_user(NewUserRequest.of(user_id=holder))
    alias = f"{tenant.namespace}/{name}/web"
    hand_made = await admin.litellm.generate_key(user_id=holder, key_alias=alias)

    tenant.apply(name, {"policyRef": policy, "keys": [{"name": "web"}]})
    condition = admin.cluster.wait_reason(tenant.namespace, name, "Conflict")
    assert holder not in condition["message"]
    assert alias in condition["message"]
    for _, _, text in admin.cluster.events(tenant.namespace, name):
        assert holder not in text
    assert held_for(RESYNC_SECONDS, lambda: True)
    kept = await admin.litellm.key_info(hand_made.key)
    assert kept is not None, "the hand-made key is left alone"
    assert (kept.key_alias, kept.user_id) == (alias, holder)
    assert admin.cluster.condition(tenant.namespace, name)["reason"] == "Conflict"

    await admin.litellm.delete_keys([hand_made.key])  # a LiteLLM admin frees the alias
    value = wait_key(admin, litellm_env, tenant.namespace, f"{name}-web")
    admin.cluster.wait_ready(tenant.namespace, name)
    info = await admin.litellm.key_info(value)
    assert info is not None
    assert (info.key_alias, info.user_id) == (alias, name)


@pytest.mark.parametrize(
    ("name", "keys"),
    [
        pytest.param("bob", [{"name": "web/previous"}], id="key-name-with-slash"),
        pytest.param("bob", [{"name": "../web"}], id="key-name-dots"),
        pytest.param("team-b/bob", [{"name": "web"}], id="user-name-with-slash"),
    ],
)
def test_no_name_reaches_another_namespaces_alias(
    tenant: Tenant, admin: Admin, name: str, keys: list[dict[str, Any]]
) -> None:
    """An alias is <namespace>/<user>/<key> and no part can hold a "/": refused at admission."""
    policy = admin.policy(granted(tenant.namespace))
    result = tenant.apply(name, {"policyRef": policy, "keys": keys}, check=False)
    assert result.returncode != 0


@tenancy.attacks("keys.rotateEvery")
async def test_rotation_cannot_churn_keys(
    tenant: Tenant, admin: Admin, litellm_env: LiteLLMEndpoint
) -> None:
    policy = admin.policy(granted(tenant.namespace))
    for interval in ("0s", "59s", "0m30s"):
        refused = tenant.apply(
            ident("churn"),
            {"policyRef": policy, "keys": [{"name": "a", "rotateEvery": interval}]},
            check=False,
        )
        assert refused.returncode != 0
        assert "at least 1m" in refused.stderr

    below = ident("churn")
    tenant.apply(below, {"policyRef": policy, "keys": [{"name": "a", "rotateEvery": "1m"}]})
    message = admin.cluster.wait_reason(tenant.namespace, below, "OverrideForbidden")["message"]
    assert "minRotateEvery 1h" in message
    assert await admin.record(below) is None, "nothing written to LiteLLM"

    name = ident("churn")
    tenant.apply(name, {"policyRef": policy, "keys": [{"name": "a"}]})
    first = wait_key(admin, litellm_env, tenant.namespace, f"{name}-a")
    started = time.monotonic()
    requests = 20
    for n in range(requests):
        tenant.kube.kubectl(
            "annotate",
            "litellmuser",
            name,
            f"--namespace={tenant.namespace}",
            f"{ROTATE_ANNOTATION}={n}",
            "--overwrite",
        )
        time.sleep(0.5)
    assert held_for(
        2 * RESYNC_SECONDS, lambda: key_in(admin, tenant.namespace, f"{name}-a") == first
    )
    tokens = {k.token for k in await user_keys(admin, name)}
    print(
        f"\n{requests} rotation requests in {time.monotonic() - started:.0f}s: "
        f"{len(tokens) - 1} new key(s) (keys.minRotateEvery 1h)"
    )
    assert len(tokens) == 1
    assert admin.cluster.condition(tenant.namespace, name)["status"] == "True"


@tenancy.attacks(
    "keys.tpmLimit",
    "keys.rpmLimit",
    "keys.maxParallelRequests",
    "keys.budgetDuration",
    "keys.gracePeriod",
)
@pytest.mark.parametrize(
    ("key", "words"),
    [
        pytest.param({"tpmLimit": 999_999_999}, "tpmLimit", id="tpm-above-users"),
        pytest.param({"rpmLimit": 11}, "rpmLimit", id="rpm-above-users"),
        pytest.param({"maxParallelRequests": 3}, "maxParallelRequests", id="parallel-above-users"),
        pytest.param({"budgetDuration": "1s"}, "budgetDuration", id="period-shorter-than-users"),
        pytest.param({"gracePeriod": "99999d"}, "maxGracePeriod", id="grace-over-ceiling"),
    ],
)
async def test_key_limits_have_ceilings(
    tenant: Tenant, admin: Admin, key: dict[str, Any], words: str
) -> None:
    spec = granted(tenant.namespace)
    spec["defaults"] = {
        **spec["defaults"],
        "budgetDuration": "30d",
        "tpmLimit": 1000,
        "maxParallelRequests": 2,
    }
    policy = admin.policy(spec)
    name = ident("limit")
    tenant.apply(name, {"policyRef": policy, "keys": [{"name": "a", **key}]})
    message = admin.cluster.wait_reason(tenant.namespace, name, "OverrideForbidden")["message"]
    assert words in message
    assert await admin.record(name) is None, "refused before anything is written"
    assert await admin.litellm.find_key_by_alias(f"{tenant.namespace}/{name}/a") is None
