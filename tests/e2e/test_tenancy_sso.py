"""A tenant squatting someone's identity to capture their single sign-on, end to end.

The real OpenID Connect provider and LiteLLM's generic SSO of ``test_sso`` (a LiteLLM and an
operator of this module's own, namespaces ``sso-*``), and the tenant's own ServiceAccount. The
boss signs in with the provider's role claim ``proxy_admin``; LiteLLM lands a sign-in on the
user whose id, ``sso_user_id`` or e-mail is the person's. Without an identity grant the tenant's
LiteLLMUser carrying the boss's e-mail receives the sign-in and the role; with one it is refused
and the boss lands on a user of their own.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from devenv.litellm import LiteLLMEndpoint
from devenv.oidc import OidcProvider
from litellm_operator.fields import MANAGED_BY
from litellm_operator.litellm import LiteLLMClient
from litellm_operator.users.plan import OWNER_NAMESPACE
from tests.e2e.operator_harness import Cluster, eventually
from tests.e2e.test_sso import World, sign_in, sso_stack, sso_world
from tests.e2e.test_tenancy import Tenant, attacks, make_tenant
from tests.fixtures.kube import KubeEnv
from tests.fixtures.policies import ANY_IDENTITY

pytestmark = [pytest.mark.e2e, pytest.mark.integration]

BOSS, CEO = "boss-sub", "ceo-sub"
BOSS_EMAIL, CEO_EMAIL = "boss@example.com", "ceo@example.com"
ACCOUNTS = {
    BOSS: {"email": BOSS_EMAIL, "name": "Boss", "role": "proxy_admin"},
    CEO: {"email": CEO_EMAIL, "name": "Ceo", "role": "proxy_admin"},
}
"""The provider's people, both proxy_admin there: the ceo shows the attack without a grant, the
boss its refusal with one (two people: LiteLLM keeps a signed-in user in its cache after its
row is deleted, so a person's later sign-in would find the deleted user)."""


@pytest.fixture(scope="module")
def squat_world(
    kube_env: KubeEnv, crds_installed: list[str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[World, OidcProvider]]:
    del crds_installed
    with (
        sso_stack(Path(tmp_path_factory.mktemp("sso-squat")), ACCOUNTS) as (endpoint, provider),
        sso_world(kube_env, endpoint, Path(tmp_path_factory.mktemp("sso-squat-op"))) as world,
    ):
        yield world, provider


@pytest.fixture
async def litellm(squat_world: tuple[World, OidcProvider]) -> AsyncIterator[LiteLLMClient]:
    endpoint: LiteLLMEndpoint = squat_world[0].litellm
    async with LiteLLMClient(endpoint.url, endpoint.master_key) as client:
        yield client


@pytest.fixture
def tenant(squat_world: tuple[World, OidcProvider], kube_env: KubeEnv, tmp_path: Path) -> Tenant:
    return make_tenant(kube_env, squat_world[0].namespace, tmp_path / "tenant.kubeconfig")


def sso_policy(cluster: Cluster, name: str, namespace: str, identities: Any) -> None:
    cluster.create_policy(
        name,
        {
            "userIdDomain": "example.com",
            "allowedNamespaces": [namespace],
            "identities": identities,
            "defaults": {"maxBudget": 7, "models": ["gpt-4o"], "userRole": "internal_user"},
            "sso": {"userRole": "Provider"},
        },
    )


async def signs_in(world: World, subject: str) -> None:
    answer = await sign_in(world.litellm.url, subject)
    assert answer.status_code == 303, answer.text
    assert "login=success" in answer.headers["location"]


@attacks("email")
async def test_a_squatted_email_does_not_capture_the_boss_s_sign_in(
    squat_world: tuple[World, OidcProvider],
    tenant: Tenant,
    cluster: Cluster,
    litellm: LiteLLMClient,
    policy_name: str,
) -> None:
    world, _ = squat_world
    ns = world.namespace
    squat = {"email": BOSS_EMAIL, "keys": [{"name": "k"}]}

    # no grant (every identity allowed): the attack of issue 24 works on this stack
    open_policy = f"{policy_name}-open"
    sso_policy(cluster, open_policy, ns, ANY_IDENTITY)
    try:
        tenant.apply("ceo-squat", {"policyRef": open_policy, "email": CEO_EMAIL})
        cluster.wait_ready(ns, "ceo-squat", timeout=60)
        await signs_in(world, CEO)
        captured = await litellm.get_user("ceo-squat@example.com")
        assert captured is not None
        assert (captured.sso_user_id, captured.user_role) == (CEO, "proxy_admin")
        assert captured.metadata[OWNER_NAMESPACE] == ns, "the tenant's user got the ceo's sign-in"
        tenant.delete("ceo-squat")
    finally:
        cluster.delete_policy(open_policy)

    # the grant: the tenant provisions only its own people
    granted = [{"namespaces": [ns], "emails": ["tia@example.com", "*@tenant.example.com"]}]
    sso_policy(cluster, policy_name, ns, granted)
    tenant.apply("squat", {"policyRef": policy_name, **squat})
    tenant.apply("boss", {"policyRef": policy_name})  # derived: boss@example.com
    tenant.apply("tia", {"policyRef": policy_name, "email": "tia@tenant.example.com"})
    for name in ("squat", "boss"):
        message = cluster.wait_reason(ns, name, "IdentityNotAllowed", timeout=60)["message"]
        assert BOSS_EMAIL in message
    cluster.wait_ready(ns, "tia", timeout=60)

    await signs_in(world, BOSS)
    holders = await litellm.users_with_email(BOSS_EMAIL)
    assert holders == [BOSS], "the sign-in lands on a user of the boss's own"
    boss = await litellm.get_user(BOSS)
    assert boss is not None
    assert MANAGED_BY not in boss.metadata, "no LiteLLMUser owns the boss's user"
    for user_id in ("squat@example.com", "boss@example.com"):
        assert await litellm.get_user(user_id) is None
    tia = await litellm.get_user("tia@example.com")
    assert tia is not None
    assert (tia.user_role, tia.sso_user_id) == ("internal_user", None)
    assert (
        cluster.core.list_namespaced_secret(ns, field_selector="metadata.name=squat-k").items == []
    )
    eventually(
        lambda: cluster.condition(ns, "squat").get("reason") == "IdentityNotAllowed",
        timeout=5,
        what="the squat still refused after the sign-in",
    )
