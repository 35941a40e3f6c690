"""End-to-end fixtures: one operator process for the session, on the real API server and LiteLLM."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import urlparse

import pytest

from devenv.litellm import LiteLLMEndpoint
from tests.e2e.operator_harness import Cluster, Forwarder, OperatorProcess, free_port
from tests.fixtures.kube import KubeEnv

RESYNC_SECONDS = 3
RBAC_NAMESPACE_PREFIX = "rbac-"
FAULT_NAMESPACE_PREFIX = "fault-"
"""Namespaces of the fault suite, which runs its own operator behind a fault proxy."""
"""Namespaces the session operator leaves alone: test_deploy runs its own operator there, as the
ServiceAccount of deploy/manifests, and a second operator must not do the work for it."""
SSO_NAMESPACE_PREFIX = "sso-"
"""Namespaces of the SSO suite, whose operator manages a LiteLLM of its own (test_sso)."""


@pytest.fixture(scope="session")
def forwarder(litellm_env: LiteLLMEndpoint) -> Iterator[Forwarder]:
    target = urlparse(litellm_env.url)
    relay = Forwarder(target.hostname or "127.0.0.1", target.port or 80)
    relay.restore()
    try:
        yield relay
    finally:
        relay.cut()


@pytest.fixture(scope="session")
def operator(
    kube_env: KubeEnv,
    crds_installed: list[str],
    litellm_env: LiteLLMEndpoint,
    forwarder: Forwarder,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[OperatorProcess]:
    """``litellm-operator run`` watching every namespace but ``rbac-*``, ``fault-*`` and
    ``sso-*`` (kopf namespace globs), reaching LiteLLM through ``forwarder``."""
    del crds_installed
    env = {
        **os.environ,
        "KUBECONFIG": str(kube_env.kubeconfig),
        "LITELLM_URL": forwarder.url,
        "LITELLM_MASTER_KEY": litellm_env.master_key.get_secret_value(),
        "LITELLM_OPERATOR_RESYNC_SECONDS": str(RESYNC_SECONDS),
        "LITELLM_OPERATOR_METRICS_PORT": str(free_port()),
        "LITELLM_OPERATOR_TIMEOUT_SECONDS": "3",
        "LITELLM_OPERATOR_NAMESPACES": ",".join(
            f"!{prefix}*"
            for prefix in (RBAC_NAMESPACE_PREFIX, FAULT_NAMESPACE_PREFIX, SSO_NAMESPACE_PREFIX)
        ),
    }
    log_path = Path(tmp_path_factory.mktemp("operator")) / "operator.log"
    process = OperatorProcess(env, log_path)
    try:
        process.start()
        yield process
    finally:
        process.stop()
        text = process.log_text()
        assert litellm_env.master_key.get_secret_value() not in text, "master key leaked to logs"
        print(f"\noperator log: {log_path} ({len(text.splitlines())} lines)")


@pytest.fixture(scope="session")
def cluster(kube_env: KubeEnv) -> Iterator[Cluster]:
    with kube_env.api_client() as api_client:
        yield Cluster(api_client)


@pytest.fixture
def policy_name(cluster: Cluster) -> Iterator[str]:
    """A unique ProvisioningPolicy name (policies are cluster-scoped), deleted afterwards."""
    name = f"p-{uuid.uuid4().hex[:8]}"
    yield name
    cluster.delete_policy(name)


@pytest.fixture
def ident() -> Callable[[str], str]:
    """Unique, DNS-safe resource names (also used as LiteLLM user ids)."""
    return lambda prefix: f"{prefix}-{uuid.uuid4().hex[:8]}"
