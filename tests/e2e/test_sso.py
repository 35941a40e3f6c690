"""Single sign-on, end to end: people sign in through LiteLLM's SSO and land on their user.

A real OpenID Connect provider (npm ``oidc-provider``, :mod:`devenv.oidc`) and a LiteLLM of the
module's own (the project's pinned proxy, its generic SSO pointed at that provider; without a
licence it signs people in only while its user table holds at most 5 rows, so nothing else may
share it), with an operator of its own (namespaces ``sso-*``). The browser flow
(``/sso/key/generate`` → the provider's login and consent → ``/sso/callback``) is driven with
httpx.

The four people cover the ways LiteLLM matches a sign-in: by user id (the id claim ``sub`` is
the user id), by ``sso_user_id`` (spec.ssoUserId, no e-mail), by e-mail case-insensitively (the
id derived from the policy's userIdDomain); and a role the provider owns (spec.sso.userRole:
Provider) next to roles the operator owns; then the licence limit itself.
"""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

import httpx
import pytest
import yaml

from devenv.litellm import DEFAULT_CONFIG, DevEnvError, Instance, LiteLLMEndpoint
from devenv.oidc import OidcProvider
from devenv.postgres import PostgresError
from litellm_operator.litellm import LiteLLMClient, LiteLLMUserRecord
from tests.e2e.conftest import SSO_NAMESPACE_PREFIX
from tests.e2e.operator_harness import Cluster, OperatorProcess, eventually, free_port
from tests.e2e.test_crd_validation import apply, user_body
from tests.fixtures.kube import KubeEnv, fresh_namespace
from tests.fixtures.litellm import _unavailable
from tests.fixtures.policies import ANY_IDENTITY

pytestmark = [pytest.mark.e2e, pytest.mark.integration]

RESYNC_SECONDS = 3
ACCOUNTS: dict[str, dict[str, str]] = {
    "cy@example.com": {"email": "cy@example.com", "name": "Cy"},
    "sub-bob": {"name": "Bob"},
    "ann-7f3": {"email": "Ann@Example.com", "name": "Ann"},
    "dan-9": {"email": "dan@example.com", "name": "Dan", "role": "internal_user_viewer"},
}
"""The provider's people by subject (the id claim); only dan's provider yields a role."""
USER_OF = {
    "cy@example.com": "cy@example.com",
    "sub-bob": "bob-01",
    "ann-7f3": "ann@example.com",
    "dan-9": "dan@example.com",
}
"""The LiteLLM user each sign-in must land on."""
ROLE_OF = {
    "cy@example.com": "internal_user",
    "bob-01": "internal_user",
    "ann@example.com": "internal_user",
    "dan@example.com": "internal_user_viewer",
}
"""Roles held after sign-in: the policy's where the operator owns the role, else the provider's."""
LITELLM_OWN_USERS = {"default_user_id"}


@dataclass
class World:
    """The module's LiteLLM (SSO on), its operator and its namespace."""

    litellm: LiteLLMEndpoint
    operator: OperatorProcess
    namespace: str


@contextmanager
def sso_stack(
    directory: Path, accounts: dict[str, dict[str, str]]
) -> Iterator[tuple[LiteLLMEndpoint, OidcProvider]]:
    """The provider (with ``accounts``) and a LiteLLM whose generic SSO uses it (each needs the
    other's address)."""
    provider = OidcProvider(port=free_port(), redirect_uri="", accounts=accounts)
    config = yaml.safe_load(DEFAULT_CONFIG)
    config["environment_variables"] = provider.litellm_env(id_claim="sub")
    config_file = directory / "config.yaml"
    config_file.write_text(yaml.safe_dump(config))
    config_file.chmod(0o600)
    instance = Instance(directory / "litellm")
    try:
        try:
            endpoint = instance.start(config=config_file, exit_with_parent=True)
        except (DevEnvError, PostgresError) as exc:
            _unavailable(f"the project's LiteLLM did not start: {exc}")
            return
        provider.redirect_uri = f"{endpoint.url}/sso/callback"
        try:
            provider.start(directory)
        except DevEnvError as exc:
            _unavailable(f"the OpenID Connect provider (npm oidc-provider) did not start: {exc}")
            return
        yield endpoint, provider
    finally:
        provider.stop()
        instance.stop()


@contextmanager
def sso_world(kube_env: KubeEnv, endpoint: LiteLLMEndpoint, directory: Path) -> Iterator[World]:
    """An operator of the SSO LiteLLM's own, watching ``sso-*``, and a fresh namespace there."""
    env = {
        **os.environ,
        "KUBECONFIG": str(kube_env.kubeconfig),
        "LITELLM_URL": endpoint.url,
        "LITELLM_MASTER_KEY": endpoint.master_key.get_secret_value(),
        "LITELLM_OPERATOR_RESYNC_SECONDS": str(RESYNC_SECONDS),
        "LITELLM_OPERATOR_METRICS_PORT": str(free_port()),
        "LITELLM_OPERATOR_TIMEOUT_SECONDS": "5",
        "LITELLM_OPERATOR_NAMESPACES": f"{SSO_NAMESPACE_PREFIX}*",
    }
    process = OperatorProcess(env, directory / "operator.log")
    process.start()
    with fresh_namespace(kube_env, f"{SSO_NAMESPACE_PREFIX}{uuid.uuid4().hex[:8]}") as namespace:
        try:
            yield World(endpoint, process, namespace)
        finally:
            process.stop()
            assert endpoint.master_key.get_secret_value() not in process.log_text()


@pytest.fixture(scope="module")
def sso_litellm(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[LiteLLMEndpoint, OidcProvider]]:
    with sso_stack(Path(tmp_path_factory.mktemp("sso")), ACCOUNTS) as stack:
        yield stack


@pytest.fixture(scope="module")
def world(
    kube_env: KubeEnv,
    crds_installed: list[str],
    sso_litellm: tuple[LiteLLMEndpoint, OidcProvider],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[World]:
    del crds_installed
    endpoint, _ = sso_litellm
    with sso_world(kube_env, endpoint, Path(tmp_path_factory.mktemp("sso-operator"))) as the_world:
        yield the_world


@pytest.fixture
async def litellm(world: World) -> AsyncIterator[LiteLLMClient]:
    async with LiteLLMClient(world.litellm.url, world.litellm.master_key) as client:
        yield client


async def sign_in(litellm_url: str, subject: str) -> httpx.Response:
    """The browser flow, as a browser does it: follow redirects, sign in as ``subject``, consent."""
    async with httpx.AsyncClient(timeout=30) as browser:
        answer = await browser.get(f"{litellm_url}/sso/key/generate")
        for _ in range(20):
            if answer.status_code == 200 and "/interaction/" in answer.url.path:
                prompt = answer.json()["prompt"]
                step = {"login": "login", "consent": "confirm"}[prompt]
                answer = await browser.post(f"{answer.url}/{step}", data={"login": subject})
                continue
            if answer.status_code not in (302, 303, 307):
                break
            target = urljoin(str(answer.url), answer.headers["location"])
            if "/sso/callback" in str(answer.url):
                return answer  # LiteLLM's answer to the callback: off to its UI
            answer = await browser.get(target)
        raise AssertionError(f"sign-in of {subject} ended at {answer.url}: {answer.status_code}")


async def licence_limit(
    world: World, cluster: Cluster, litellm: LiteLLMClient, policy: str
) -> None:
    """Without LITELLM_LICENSE, SSO signs people in while the user table holds at most 5 rows."""
    ns = world.namespace
    rows = [u async for u in litellm.list_users()]
    assert len(rows) == 4, [u.user_id for u in rows]  # a fresh proxy has no default_user_id row
    cluster.create_user(ns, "eve", {"policyRef": policy})
    cluster.wait_ready(ns, "eve", timeout=60)
    answer = await sign_in(world.litellm.url, "cy@example.com")  # 5 rows: still signs in
    assert "login=success" in answer.headers["location"]
    cluster.create_user(ns, "fay", {"policyRef": policy})
    cluster.wait_ready(ns, "fay", timeout=60)
    async with httpx.AsyncClient(timeout=30) as browser:
        refused = await browser.get(f"{world.litellm.url}/sso/key/generate")
    assert refused.status_code == 403  # 6 rows
    assert "more than 5 users" in refused.text
    for name in ("eve", "fay"):
        cluster.delete_user(ns, name)
    eventually(
        lambda: all(cluster.get_user(ns, n) is None for n in ("eve", "fay")),
        timeout=60,
        what="eve and fay deleted",
    )
    answer = await sign_in(world.litellm.url, "cy@example.com")
    assert "login=success" in answer.headers["location"]


def policy(cluster: Cluster, name: str, namespace: str, **spec: Any) -> None:
    cluster.create_policy(
        name,
        {
            "userIdDomain": "example.com",
            "allowedNamespaces": [namespace],
            "identities": ANY_IDENTITY,
            "defaults": {"maxBudget": 7, "models": ["gpt-4o"], "userRole": "internal_user"},
            "overrides": {"allowedFields": ["userId", "ssoUserId"]},
            **spec,
        },
    )


async def users(litellm: LiteLLMClient) -> dict[str, LiteLLMUserRecord]:
    return {u.user_id: u async for u in litellm.list_users() if u.user_id not in LITELLM_OWN_USERS}


async def assert_landed(litellm: LiteLLMClient) -> None:
    """Exactly the provisioned users, with the policy's settings and the expected roles."""
    held = await users(litellm)
    assert sorted(held) == sorted(USER_OF.values()), "a sign-in created a user of its own"
    assert {uid: u.user_role for uid, u in held.items()} == ROLE_OF
    assert {uid: u.max_budget for uid, u in held.items()} == dict.fromkeys(ROLE_OF, 7.0)
    assert held["bob-01"].sso_user_id == "sub-bob"
    assert held["ann@example.com"].user_email == "ann@example.com"


async def role_becomes(litellm: LiteLLMClient, user_id: str, role: str) -> None:
    deadline = time.monotonic() + RESYNC_SECONDS * 6
    while (record := await litellm.get_user(user_id)) is None or record.user_role != role:
        assert time.monotonic() < deadline, f"{user_id} kept {record and record.user_role}"
        await asyncio.sleep(0.3)


async def steady(litellm: LiteLLMClient, seconds: float) -> None:
    """Roles sampled through several resyncs never move (no flip-flop)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        held = await users(litellm)
        assert {uid: u.user_role for uid, u in held.items()} == ROLE_OF
        await asyncio.sleep(0.5)


async def test_sign_ins_land_on_the_provisioned_users(
    world: World, cluster: Cluster, litellm: LiteLLMClient, policy_name: str
) -> None:
    ns = world.namespace
    provider_role = f"{policy_name}-provider-role"
    policy(cluster, policy_name, ns)
    policy(cluster, provider_role, ns, sso={"userRole": "Provider"})
    try:
        cluster.create_user(ns, "cy", {"policyRef": policy_name, "userId": "cy@example.com"})
        cluster.create_user(
            ns, "bob", {"policyRef": policy_name, "userId": "bob-01", "ssoUserId": "sub-bob"}
        )
        cluster.create_user(ns, "ann", {"policyRef": policy_name})
        cluster.create_user(ns, "dan", {"policyRef": provider_role})
        for name in ("cy", "bob", "ann", "dan"):
            cluster.wait_ready(ns, name, timeout=60)
        created = await users(litellm)
        assert {uid: u.user_role for uid, u in created.items()} == dict.fromkeys(
            ROLE_OF, "internal_user"
        )
        writes = "litellm_operator_litellm_requests_total"
        updates = ("/user/update", "/user/bulk_update")
        updates_before = sum(world.operator.counter(writes, endpoint=e) for e in updates)

        for round_ in (1, 2):
            for subject in ACCOUNTS:
                answer = await sign_in(world.litellm.url, subject)
                assert answer.status_code == 303, f"round {round_}, {subject}: {answer.text}"
                assert "login=success" in answer.headers["location"]
            await assert_landed(litellm)
            await steady(litellm, RESYNC_SECONDS * 3)
            for name in ("cy", "bob", "ann", "dan"):
                cluster.wait_ready(ns, name, timeout=5)

        assert sum(world.operator.counter(writes, endpoint=e) for e in updates) == updates_before
        drift = "litellm_operator_drift_corrections_total"
        assert world.operator.counter(drift, field="userRole") == 0
        assert world.operator.counter(drift, field="email") == 0

        # the same policy handing the role to the operator: it takes dan's role back, and keeps
        # taking it back after each sign-in (why the README says: no role claim then)
        cluster.patch_policy(provider_role, {"sso": {"userRole": "Operator"}})
        await role_becomes(litellm, "dan@example.com", "internal_user")  # a policy change
        corrections = world.operator.counter(drift, field="userRole")
        await sign_in(world.litellm.url, "dan-9")
        await role_becomes(litellm, "dan@example.com", "internal_user")  # drift, corrected
        assert world.operator.counter(drift, field="userRole") > corrections

        # sso_user_id is unique: a second claim of bob's subject is refused, nothing created
        hal = {"policyRef": policy_name, "userId": "hal-01", "ssoUserId": "sub-bob"}
        cluster.create_user(ns, "hal", hal)
        refusal = cluster.wait_reason(ns, "hal", "SsoUserIdInUse")
        assert "bob-01" not in refusal["message"]  # the holder is not named
        assert await litellm.get_user("hal-01") is None
        cluster.delete_user(ns, "hal")

        await licence_limit(world, cluster, litellm, policy_name)
    finally:
        cluster.delete_policy(provider_role)


def test_sso_user_id_is_immutable_once_set(
    kube_env: KubeEnv, crds_installed: list[str], namespace: str
) -> None:
    """LiteLLM writes sso_user_id only on /user/new, so the API server keeps it as first set."""
    del crds_installed
    body: dict[str, Any] = user_body(namespace, "gil", {"userId": "gil-01"})
    apply(kube_env, body)
    body["spec"]["ssoUserId"] = "sub-gil"  # added later: allowed
    apply(kube_env, body)
    body["spec"]["ssoUserId"] = "sub-other"
    result = apply(kube_env, body, check=False)
    assert result.returncode != 0
    assert "spec.ssoUserId is immutable once set" in result.stderr
    del body["spec"]["ssoUserId"]
    result = apply(kube_env, body, check=False)
    assert result.returncode != 0, "removing ssoUserId must be rejected too"
