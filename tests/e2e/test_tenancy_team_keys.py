"""A hostile tenant and its LiteLLMTeams' keys, end to end, as the tenant's own ServiceAccount
(the fixtures of test_tenancy_teams), judged in LiteLLM with the master key and through the
keys themselves. The tenant writes LiteLLMTeams; its workloads read the key Secrets (read here
with the admin's client, as a Pod of the tenant would mount them).

Each case names the ``LiteLLMTeam.spec.keys`` fields it attacks (:func:`attacks_team`);
``tests/unit/test_tenancy_registry.py`` fails for a field without one.
"""

from __future__ import annotations

import base64
import json
import time
import uuid
from typing import Any

import pytest
from kubernetes.client import ApiException, V1ObjectMeta, V1Secret

from devenv.litellm import LiteLLMEndpoint
from litellm_operator.fields import MANAGER
from litellm_operator.keys.owner import KEY_LABEL, MANAGED_BY_LABEL, TEAM_LABEL
from litellm_operator.keys.plan import ROTATE_ANNOTATION
from litellm_operator.models import API_VERSION
from tests.e2e import test_tenancy_teams as tenancy
from tests.e2e.conftest import RESYNC_SECONDS
from tests.e2e.operator_harness import condition_of, eventually
from tests.e2e.test_tenancy import held_for
from tests.e2e.test_tenancy_teams import Admin, TeamTenant, attacks_team
from tests.fixtures.key_probes import (
    decoded_key,
    for_inference_only,
    inference_statuses,
    management_statuses,
    works,
)
from tests.fixtures.kube import KubeEnv

pytestmark = [pytest.mark.e2e, pytest.mark.integration]

tenant, admin, other_namespace = tenancy.tenant, tenancy.admin, tenancy.other_namespace
"""test_tenancy_teams' fixtures: the tenant's ServiceAccount, the admin, a second namespace."""
MODEL = "gpt-4o-mini"
"""The only model the policy's teams section allows (tenancy.TEAMS)."""
OTHER_MODEL = "gpt-4o"
"""A model of the proxy the tenant's teams are not granted."""


def secret_data(admin: Admin, namespace: str, name: str) -> dict[str, str] | None:
    """A Secret's data as the cluster admin reads it (``None``: no such Secret)."""
    try:
        found = admin.cluster.core.read_namespaced_secret(name, namespace)
    except ApiException as exc:
        if exc.status == 404:
            return None
        raise
    return {key: str(value) for key, value in (found.data or {}).items()}


def key_in(admin: Admin, namespace: str, secret: str) -> str | None:
    data = secret_data(admin, namespace, secret) or {}
    return decoded_key(data)


def wait_key(admin: Admin, endpoint: LiteLLMEndpoint, namespace: str, secret: str) -> str:
    def working() -> str | None:
        value = key_in(admin, namespace, secret)
        return value if value and works(endpoint.url, value) else None

    return eventually(working, timeout=30, what=f"a working key in Secret {secret}")


def refused_at_admission(tenant: TeamTenant, name: str, spec: dict[str, Any]) -> str:
    body = {
        "apiVersion": API_VERSION,
        "kind": "LiteLLMTeam",
        "metadata": {"name": name, "namespace": tenant.namespace},
        "spec": spec,
    }
    result = tenant.kube.kubectl(
        "apply", "--server-side", "-f", "-", input=json.dumps(body), check=False
    )
    assert result.returncode != 0, f"admitted: {spec}"
    return result.stderr


async def nothing_written(admin: Admin, namespace: str, name: str, key: str) -> None:
    assert await admin.held(f"{namespace}.{name}") is None, "the team was not written"
    alias = f"team:{namespace}/{name}/{key}"
    assert await admin.litellm.find_key_by_alias(alias) is None, "no key was minted"


@attacks_team("keys.name", "keys.models")
async def test_a_team_key_is_for_inference_on_the_team_s_models_only(
    tenant: TeamTenant, admin: Admin, litellm_env: LiteLLMEndpoint
) -> None:
    policy = admin.policy()
    tenant.apply("crew", {"policyRef": policy, "keys": [{"name": "k"}]})
    value = wait_key(admin, litellm_env, tenant.namespace, "crew-k")
    tenant.ready("crew")

    statuses = management_statuses(litellm_env.url, value)
    print(f"\nteam key on management routes: {statuses}")
    print(f"team key on {MODEL}: {inference_statuses(litellm_env.url, value, MODEL)}")
    other = inference_statuses(litellm_env.url, value, OTHER_MODEL)
    print(f"team key on {OTHER_MODEL} (not the team's): {other}")
    assert for_inference_only(litellm_env.url, value, MODEL), statuses
    assert other["POST /v1/chat/completions"] in (401, 403), "a model the team is not granted"
    info = await admin.litellm.key_info(value)
    assert info is not None
    assert (info.team_id, info.user_id, info.models) == (f"{tenant.namespace}.crew", None, [MODEL])
    keys = await admin.litellm.list_team_keys(f"{tenant.namespace}.crew")
    assert [k.key_alias for k in keys] == [f"team:{tenant.namespace}/crew/k"], "nothing minted"

    # A key asking for a model of the proxy the team is not granted: refused, nothing written.
    tenant.apply("greedy", {"policyRef": policy, "keys": [{"name": "k", "models": [OTHER_MODEL]}]})
    message = condition_of(tenant.reason("greedy", "ModelNotAllowed"))["message"]
    assert OTHER_MODEL in message
    await nothing_written(admin, tenant.namespace, "greedy", "k")
    tenant.delete("crew")
    assert not works(litellm_env.url, value)


@attacks_team("keys.secretName")
async def test_a_team_key_never_takes_another_object_s_secret(
    tenant: TeamTenant, admin: Admin, litellm_env: LiteLLMEndpoint
) -> None:
    """The Secret of a LiteLLMUser's key, a Secret of the tenant's own app, and one the tenant
    labelled as the team's (labels are the tenant's to write; a key Secret is the operator's
    only when its controller ownerReference is the LiteLLMTeam), named as a team key's
    secretName: Conflict; no Secret changes or goes with the team, the user's key keeps
    working, no team key is minted."""
    policy = admin.policy(defaults={"models": [MODEL]})
    user = f"u-{uuid.uuid4().hex[:6]}"
    admin.cluster.create_user(
        tenant.namespace, user, {"policyRef": policy, "keys": [{"name": "a"}]}
    )
    users_key = wait_key(admin, litellm_env, tenant.namespace, f"{user}-a")
    users_secret = secret_data(admin, tenant.namespace, f"{user}-a")
    app = {"token": base64.b64encode(b"not-yours").decode()}
    admin.cluster.core.create_namespaced_secret(
        tenant.namespace, V1Secret(metadata=V1ObjectMeta(name="app-config"), data=app)
    )
    labels = {MANAGED_BY_LABEL: MANAGER, TEAM_LABEL: "plant", KEY_LABEL: "k"}
    planted = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "planted", "labels": labels},
        "stringData": {"api_key": "sk-planted"},
    }
    ns = f"--namespace={tenant.namespace}"
    tenant.kube.kubectl("apply", ns, "-f", "-", input=json.dumps(planted))
    plant = secret_data(admin, tenant.namespace, "planted")
    cases = (("steal", f"{user}-a"), ("clobber", "app-config"), ("plant", "planted"))

    for name, secret in cases:
        tenant.apply(name, {"policyRef": policy, "keys": [{"name": "k", "secretName": secret}]})
        message = condition_of(tenant.reason(name, "Conflict"))["message"]
        assert secret in message
        assert await admin.litellm.list_team_keys(f"{tenant.namespace}.{name}") == []
    assert held_for(RESYNC_SECONDS, lambda: works(litellm_env.url, users_key))
    assert secret_data(admin, tenant.namespace, f"{user}-a") == users_secret
    assert secret_data(admin, tenant.namespace, "app-config") == app
    assert secret_data(admin, tenant.namespace, "planted") == plant
    for name, _ in cases:
        tenant.delete(name)
    assert secret_data(admin, tenant.namespace, f"{user}-a") == users_secret
    assert secret_data(admin, tenant.namespace, "app-config") == app
    assert secret_data(admin, tenant.namespace, "planted") == plant
    admin.cluster.delete_user(tenant.namespace, user)


@attacks_team("keys.name")
async def test_no_key_name_reaches_another_team_s_key(
    tenant: TeamTenant,
    admin: Admin,
    kube_env: KubeEnv,
    other_namespace: str,
    litellm_env: LiteLLMEndpoint,
) -> None:
    """Another namespace's team of the same name with a key of the same name: the tenant's key
    is its own (its alias starts with its namespace); names that would reach further are
    refused at admission; deleting the tenant's team leaves the other's key working."""
    policy = admin.policy()
    theirs = {
        "apiVersion": API_VERSION,
        "kind": "LiteLLMTeam",
        "metadata": {"name": "crew", "namespace": other_namespace},
        "spec": {"policyRef": policy, "keys": [{"name": "k"}]},
    }
    kube_env.kubectl("apply", "--server-side", "-f", "-", input=json.dumps(theirs))
    their_key = wait_key(admin, litellm_env, other_namespace, "crew-k")
    for keys in ([{"name": "k/previous"}], [{"name": "../k"}], [{"name": "K"}]):
        refused_at_admission(tenant, "crew", {"policyRef": policy, "keys": keys})
    tenant.apply("crew", {"policyRef": policy, "keys": [{"name": "k"}]})
    mine = wait_key(admin, litellm_env, tenant.namespace, "crew-k")
    info = await admin.litellm.key_info(mine)
    assert info is not None
    assert (info.key_alias, info.team_id) == (
        f"team:{tenant.namespace}/crew/k",
        f"{tenant.namespace}.crew",
    )
    tenant.delete("crew")
    assert not works(litellm_env.url, mine)
    assert works(litellm_env.url, their_key), "the other namespace's key is untouched"
    their_info = await admin.litellm.key_info(their_key)
    assert their_info is not None
    assert their_info.team_id == f"{other_namespace}.crew"
    kube_env.kubectl("delete", "litellmteam", "crew", f"-n={other_namespace}")
    assert not works(litellm_env.url, their_key)


@attacks_team("keys.rotateEvery")
async def test_team_key_rotation_cannot_churn_keys(
    tenant: TeamTenant, admin: Admin, litellm_env: LiteLLMEndpoint
) -> None:
    policy = admin.policy()
    for interval in ("0s", "59s"):
        stderr = refused_at_admission(
            tenant, "churn", {"policyRef": policy, "keys": [{"name": "a", "rotateEvery": interval}]}
        )
        assert "at least 1m" in stderr
    tenant.apply("fast", {"policyRef": policy, "keys": [{"name": "a", "rotateEvery": "1m"}]})
    message = condition_of(tenant.reason("fast", "OverrideForbidden"))["message"]
    assert "minRotateEvery 1h" in message
    await nothing_written(admin, tenant.namespace, "fast", "a")

    tenant.apply("churn", {"policyRef": policy, "keys": [{"name": "a"}]})
    first = wait_key(admin, litellm_env, tenant.namespace, "churn-a")
    started = time.monotonic()
    requests = 20
    for n in range(requests):
        tenant.kube.kubectl(
            "annotate",
            "litellmteam",
            "churn",
            f"--namespace={tenant.namespace}",
            f"{ROTATE_ANNOTATION}={n}",
            "--overwrite",
        )
        time.sleep(0.5)
    assert held_for(2 * RESYNC_SECONDS, lambda: key_in(admin, tenant.namespace, "churn-a") == first)
    tokens = {k.token for k in await admin.litellm.list_team_keys(f"{tenant.namespace}.churn")}
    print(
        f"\n{requests} team key rotation requests in {time.monotonic() - started:.0f}s: "
        f"{len(tokens) - 1} new key(s) (keys.minRotateEvery 1h)"
    )
    assert len(tokens) == 1
    assert condition_of(tenant.get("churn"))["status"] == "True"
    tenant.delete("churn")


@attacks_team(
    "keys.tpmLimit",
    "keys.rpmLimit",
    "keys.budgetDuration",
    "keys.gracePeriod",
    "keys.maxBudget",
)
@pytest.mark.parametrize(
    ("key", "words"),
    [
        pytest.param({"tpmLimit": 10**9}, "tpmLimit", id="tpm-above-the-team-s"),
        pytest.param({"rpmLimit": 101}, "rpmLimit", id="rpm-above-the-team-s"),
        pytest.param({"budgetDuration": "1s"}, "budgetDuration", id="period-shorter"),
        pytest.param({"gracePeriod": "99999d"}, "maxGracePeriod", id="grace-over-ceiling"),
        pytest.param({"maxBudget": 6}, "keys.maxBudget", id="budget-over-policy-keys"),
    ],
)
async def test_team_key_limits_have_ceilings(
    tenant: TeamTenant, admin: Admin, key: dict[str, Any], words: str
) -> None:
    """The team gets the teams section's ceilings (tpm 1000, rpm 100) and a 30d period; the
    policy's keys section caps a key's budget at 5."""
    policy = admin.policy(keys={"maxBudget": 5})
    name = f"limit-{uuid.uuid4().hex[:6]}"
    spec = {"policyRef": policy, "budgetDuration": "30d", "keys": [{"name": "a", **key}]}
    tenant.apply(name, spec)
    message = condition_of(tenant.reason(name, "OverrideForbidden"))["message"]
    assert words in message
    await nothing_written(admin, tenant.namespace, name, "a")


@attacks_team("keys.maxParallelRequests")
async def test_a_team_key_s_parallel_limit_restricts_only_the_key(
    tenant: TeamTenant, admin: Admin, litellm_env: LiteLLMEndpoint
) -> None:
    """A team has no parallel limit of its own (LiteLLM ignores it on teams), so a team key's
    maxParallelRequests bounds nothing but the key: a negative one is refused at admission, a
    huge one is the key's and leaves the team's own limits as the policy set them."""
    policy = admin.policy()
    stderr = refused_at_admission(
        tenant, "par", {"policyRef": policy, "keys": [{"name": "a", "maxParallelRequests": -1}]}
    )
    assert "maxParallelRequests" in stderr
    tenant.apply(
        "par", {"policyRef": policy, "keys": [{"name": "a", "maxParallelRequests": 10**6}]}
    )
    value = wait_key(admin, litellm_env, tenant.namespace, "par-a")
    info = await admin.litellm.key_info(value)
    assert info is not None
    assert info.max_parallel_requests == 10**6
    team = await admin.held(f"{tenant.namespace}.par")
    assert team is not None
    assert (team.tpm_limit, team.rpm_limit, team.max_budget) == (1000, 100, 50.0)
    tenant.delete("par")
