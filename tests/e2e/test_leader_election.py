"""Leader election with two operator processes on the real API server and the real LiteLLM.

Each test runs its own pair, ``op-a`` then ``op-b``, with leader election on, the Lease in a
fresh ``rbac-*`` namespace (which the session operator leaves alone) and only that namespace
watched. ``op-a`` starts first and leads; ``op-b`` stands by. Measured: the takeover after the
leader is SIGKILLed (the Lease must expire: about 15-19 s) and the handover after SIGTERM (the
leader releases the Lease: seconds). Figures are printed (``pytest -s``).
"""

from __future__ import annotations

import os
import signal
import time
import uuid
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path
from typing import Any

import kopf
import pytest
from kubernetes.client import CoordinationV1Api
from kubernetes.client.exceptions import ApiException

from devenv.litellm import LiteLLMEndpoint
from litellm_operator.runtime.leader import JITTER
from litellm_operator.runtime.lease import LEASE_NAME, Timing
from tests.e2e.conftest import RBAC_NAMESPACE_PREFIX
from tests.e2e.operator_harness import (
    Cluster,
    OperatorProcess,
    eventually,
    free_port,
    permission_errors,
)
from tests.e2e.test_deploy import HealthCheckedOperator
from tests.fixtures.kube import KubeEnv, fresh_namespace
from tests.fixtures.policies import ANY_IDENTITY

pytestmark = [pytest.mark.e2e, pytest.mark.integration]

LEADER = "litellm_operator_leader"
REQUESTS = "litellm_operator_litellm_requests_total"
RECONCILES = "litellm_operator_reconciles_total"
TAKEOVER_LIMIT = 45.0
LITELLM_TIMEOUT = 3.0
RELEASE_LIMIT = kopf.OperatorSettings().queueing.exit_timeout + LITELLM_TIMEOUT + 1.0
"""SIGTERM to the Lease released: kopf lets its workers finish for up to its exit timeout, and a
handler may be waiting for one LiteLLM answer (the operator's timeout here), plus a second."""
POLL_LIMIT = Timing().retry_period * JITTER + 1.0
"""Release to the standby leading: its next campaign try, plus a second to report it."""
LEASE_RULES = "--verb=get,create,update"


@pytest.fixture
def election_namespace(kube_env: KubeEnv) -> Iterator[str]:
    with fresh_namespace(kube_env, f"{RBAC_NAMESPACE_PREFIX}le-{uuid.uuid4().hex[:8]}") as name:
        yield name


@pytest.fixture
def lease_api(kube_env: KubeEnv) -> Iterator[CoordinationV1Api]:
    with kube_env.api_client() as api_client:
        yield CoordinationV1Api(api_client)


class Pair:
    """Start candidates ``op-a``, ``op-b`` ... for one namespace; stops them all at the end."""

    def __init__(
        self, namespace: str, kube_env: KubeEnv, litellm_env: LiteLLMEndpoint, directory: Path
    ) -> None:
        self.namespace = namespace
        self.kube_env = kube_env
        self.litellm_env = litellm_env
        self.directory = directory
        self.started: list[OperatorProcess] = []

    def start(
        self, name: str, kubeconfig: Path | None = None, *, health: bool = False
    ) -> OperatorProcess:
        env = {
            **os.environ,
            "KUBECONFIG": str(kubeconfig or self.kube_env.kubeconfig),
            "LITELLM_URL": self.litellm_env.url,
            "LITELLM_MASTER_KEY": self.litellm_env.master_key.get_secret_value(),
            "LITELLM_OPERATOR_NAMESPACES": self.namespace,
            "LITELLM_OPERATOR_RESYNC_SECONDS": "3",
            "LITELLM_OPERATOR_METRICS_PORT": str(free_port()),
            "LITELLM_OPERATOR_TIMEOUT_SECONDS": f"{LITELLM_TIMEOUT:g}",
            "LITELLM_OPERATOR_LEADER_ELECTION": "true",
            "POD_NAMESPACE": self.namespace,
            "POD_NAME": name,
        }
        log_path = self.directory / f"{name}.log"
        process = HealthCheckedOperator(env, log_path) if health else OperatorProcess(env, log_path)
        self.started.append(process)
        process.start()
        return process

    def stop(self) -> None:
        for process in self.started:
            process.stop()
            text = process.log_text()
            assert self.litellm_env.master_key.get_secret_value() not in text
            print(f"\n{process.env['POD_NAME']} log: {process.log_path}")


@pytest.fixture
def pair(
    election_namespace: str,
    kube_env: KubeEnv,
    crds_installed: list[str],
    litellm_env: LiteLLMEndpoint,
    tmp_path: Path,
) -> Iterator[Pair]:
    del crds_installed
    candidates = Pair(election_namespace, kube_env, litellm_env, tmp_path)
    try:
        yield candidates
    finally:
        candidates.stop()


def holder(lease_api: CoordinationV1Api, namespace: str) -> str:
    try:
        lease: Any = lease_api.read_namespaced_lease(LEASE_NAME, namespace)
    except ApiException as exc:
        if exc.status == 404:
            return ""
        raise
    return str(lease.spec.holder_identity or "")


def transitions(lease_api: CoordinationV1Api, namespace: str) -> int:
    lease: Any = lease_api.read_namespaced_lease(LEASE_NAME, namespace)
    return int(lease.spec.lease_transitions or 0)


def when(condition: Callable[[], bool], timeout: float) -> float:
    """The monotonic time at which ``condition`` first held (polled every 50 ms)."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "not within the timeout"
        time.sleep(0.05)
    return time.monotonic()


def leading(process: OperatorProcess) -> bool:
    return process.gauge(LEADER) == 1


def start_leader(pair: Pair, lease_api: CoordinationV1Api) -> OperatorProcess:
    leader = pair.start("op-a")
    eventually(lambda: leading(leader), timeout=30, what="op-a leads")
    assert holder(lease_api, pair.namespace).startswith("op-a_")
    return leader


def start_standby(pair: Pair, kubeconfig: Path | None = None) -> OperatorProcess:
    standby = pair.start("op-b", kubeconfig)
    eventually(lambda: "standing by" in standby.log_text(), timeout=30, what="op-b sees the leader")
    assert standby.gauge(LEADER) == 0
    return standby


def make_users(
    cluster: Cluster, namespace: str, policy: str, ident: Callable[[str], str]
) -> list[str]:
    cluster.create_policy(
        policy,
        {
            "allowedNamespaces": [namespace],
            "identities": ANY_IDENTITY,
            "defaults": {"maxBudget": 7, "models": ["gpt-4o-mini"]},
        },
    )
    names = [ident("le") for _ in range(3)]
    for name in names:
        cluster.create_user(namespace, name, {"policyRef": policy})
    for name in names:
        cluster.wait_ready(namespace, name, timeout=60)
    for name in names:  # events are posted after the status, in the background: wait for them
        eventually(partial(created_event, cluster, namespace, name), timeout=10, what="Created")
    return names


def created_event(cluster: Cluster, namespace: str, name: str) -> bool:
    return any(e[1] == "Created" for e in cluster.events(namespace, name))


def lease_only_kubeconfig(kube_env: KubeEnv, namespace: str, path: Path) -> Path:
    """A ServiceAccount that may get/create/update Leases in ``namespace`` and nothing else."""
    kube_env.kubectl("create", "serviceaccount", "standby", f"--namespace={namespace}")
    kube_env.kubectl(
        "create",
        "role",
        "lease-only",
        f"--namespace={namespace}",
        LEASE_RULES,
        "--resource=leases.coordination.k8s.io",
    )
    kube_env.kubectl(
        "create",
        "rolebinding",
        "lease-only",
        f"--namespace={namespace}",
        "--role=lease-only",
        f"--serviceaccount={namespace}:standby",
    )
    token = kube_env.kubectl(
        "create", "token", "standby", f"--namespace={namespace}", "--duration=1h"
    ).stdout.strip()
    return kube_env.with_token(token, path).kubeconfig


def test_a_standby_never_writes_and_the_leader_writes_once(
    pair: Pair,
    lease_api: CoordinationV1Api,
    cluster: Cluster,
    kube_env: KubeEnv,
    policy_name: str,
    ident: Callable[[str], str],
    tmp_path: Path,
) -> None:
    ns = pair.namespace
    leader = start_leader(pair, lease_api)
    # The standby may touch the Lease and nothing else: any other write (or read) it attempted
    # would be refused, and show in its log as 403 Forbidden.
    standby = start_standby(
        pair, lease_only_kubeconfig(kube_env, ns, tmp_path / "standby.kubeconfig")
    )

    names = make_users(cluster, ns, policy_name, ident)
    cluster.patch_policy(policy_name, {"defaults": {"maxBudget": 9}})

    def at_new_budget(name: str) -> Callable[[], bool]:
        def probe() -> bool:
            user = cluster.get_user(ns, name) or {}
            return bool(user.get("status", {}).get("effective", {}).get("maxBudget") == 9)

        return probe

    for name in names:
        eventually(at_new_budget(name), timeout=30, what=f"{name} at the new budget")
    time.sleep(7)  # two resync intervals with both running

    # No duplicate LiteLLM writes: one create per user, by the leader alone.
    assert leader.counter(REQUESTS, endpoint="/user/new", outcome="ok") == len(names)
    assert standby.counter(REQUESTS) == 0, "the standby spoke to LiteLLM"
    assert standby.counter(RECONCILES) == 0
    for name in names:
        created = [e for e in cluster.events(ns, name) if e[1] == "Created"]
        assert len(created) == 1, created
    log = standby.log_text()
    assert not any(name in log for name in names), "the standby handled a user"
    assert not permission_errors(log), log  # "forbidden" among them
    assert "kopf" not in log.lower(), "kopf ran in the standby"
    assert standby.gauge(LEADER) == 0
    assert holder(lease_api, ns).startswith("op-a_")
    assert leading(leader)


def test_takeover_after_the_leader_is_killed(
    pair: Pair,
    lease_api: CoordinationV1Api,
    cluster: Cluster,
    policy_name: str,
    ident: Callable[[str], str],
) -> None:
    ns = pair.namespace
    leader = start_leader(pair, lease_api)
    standby = start_standby(pair)
    names = make_users(cluster, ns, policy_name, ident)
    before = transitions(lease_api, ns)

    assert leader.proc is not None
    os.killpg(leader.proc.pid, signal.SIGKILL)
    killed = time.monotonic()
    leader.proc.wait(timeout=10)
    eventually(lambda: leading(standby), timeout=TAKEOVER_LIMIT + 5, what="op-b leads")
    takeover = time.monotonic() - killed
    print(f"\ntakeover after SIGKILL: {takeover:.1f}s")
    assert takeover < TAKEOVER_LIMIT
    assert holder(lease_api, ns).startswith("op-b_")
    assert transitions(lease_api, ns) == before + 1

    # The new leader reconciles: a new user gets created, the existing ones are not re-created.
    late = ident("le-late")
    cluster.create_user(ns, late, {"policyRef": policy_name})
    cluster.wait_ready(ns, late, timeout=60)
    assert standby.counter(REQUESTS, endpoint="/user/new") == 1
    for name in names:
        created = [e for e in cluster.events(ns, name) if e[1] == "Created"]
        assert len(created) == 1, created


def test_handover_after_sigterm(
    pair: Pair,
    lease_api: CoordinationV1Api,
    cluster: Cluster,
    policy_name: str,
    ident: Callable[[str], str],
) -> None:
    ns = pair.namespace
    leader = start_leader(pair, lease_api)
    standby = start_standby(pair)
    make_users(cluster, ns, policy_name, ident)

    assert leader.proc is not None
    os.killpg(leader.proc.pid, signal.SIGTERM)
    stopped = time.monotonic()
    released = when(lambda: not holder(lease_api, ns).startswith("op-a_"), timeout=30)
    led = when(lambda: leading(standby), timeout=30)
    print(f"\nSIGTERM to release: {released - stopped:.1f}s, to op-b leading: {led - stopped:.1f}s")
    assert released - stopped < RELEASE_LIMIT
    assert led - released < POLL_LIMIT
    assert leader.proc.wait(timeout=10) == 0
    assert "released lease" in leader.log_text()
    assert holder(lease_api, ns).startswith("op-b_")

    late = ident("le-late")
    cluster.create_user(ns, late, {"policyRef": policy_name})
    cluster.wait_ready(ns, late, timeout=60)


def test_sigterm_while_standing_by_exits_cleanly(pair: Pair, lease_api: CoordinationV1Api) -> None:
    start_leader(pair, lease_api)
    standby = start_standby(pair)
    assert standby.proc is not None
    os.killpg(standby.proc.pid, signal.SIGTERM)
    assert standby.proc.wait(timeout=10) == 0
    assert holder(lease_api, pair.namespace).startswith("op-a_"), "the standby took nothing"


def test_a_leader_that_cannot_renew_exits_before_the_lease_expires(
    pair: Pair, lease_api: CoordinationV1Api, kube_env: KubeEnv, tmp_path: Path
) -> None:
    """The leader loses its access (as if cut off from the API server): no renewal for the
    renew deadline (10 s) makes it exit with status 3, before the 15 s Lease can expire for
    the standby, which then leads."""
    ns = pair.namespace
    binding = f"leader-{uuid.uuid4().hex[:8]}"
    kube_env.kubectl("create", "serviceaccount", "leader", f"--namespace={ns}")
    kube_env.kubectl(
        "create", "clusterrolebinding", binding, "--clusterrole=cluster-admin",
        f"--serviceaccount={ns}:leader",
    )  # fmt: skip
    try:
        token = kube_env.kubectl(
            "create", "token", "leader", f"--namespace={ns}", "--duration=1h"
        ).stdout.strip()
        kubeconfig = kube_env.with_token(token, tmp_path / "leader.kubeconfig").kubeconfig
        leader = pair.start("op-a", kubeconfig)
        eventually(lambda: leading(leader), timeout=30, what="op-a leads")
        standby = start_standby(pair)

        kube_env.kubectl("delete", "clusterrolebinding", binding)
        revoked = time.monotonic()
        assert leader.proc is not None
        assert leader.proc.wait(timeout=30) == 3
        stepped_down = time.monotonic() - revoked
        eventually(lambda: leading(standby), timeout=TAKEOVER_LIMIT, what="op-b leads")
        taken_over = time.monotonic() - revoked
    finally:
        kube_env.kubectl("delete", "clusterrolebinding", binding, "--ignore-not-found")
    print(f"\nstep-down after losing access: {stepped_down:.1f}s; takeover {taken_over:.1f}s")
    assert stepped_down < 15, "the old leader must stop before the Lease expires"
    assert stepped_down < taken_over
    assert "leadership lost" in leader.log_text()
    assert holder(lease_api, ns).startswith("op-b_")


def test_a_standby_answers_healthz(pair: Pair, lease_api: CoordinationV1Api) -> None:
    """The Deployment's probes hit /healthz on every replica: a standby must answer it (else
    its pod would be restarted forever), and so must the leader (kopf's endpoint) after it."""
    start_leader(pair, lease_api)
    standby = pair.start("op-b", health=True)
    assert isinstance(standby, HealthCheckedOperator)
    eventually(lambda: "standing by" in standby.log_text(), timeout=30, what="op-b stands by")
    assert standby.healthz() == 200
    assert standby.gauge(LEADER) == 0

    first = pair.started[0]
    assert first.proc is not None
    os.killpg(first.proc.pid, signal.SIGTERM)
    eventually(lambda: leading(standby), timeout=30, what="op-b leads")
    eventually(lambda: standby.healthz() == 200, timeout=30, what="kopf's /healthz on op-b")
