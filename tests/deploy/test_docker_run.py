"""The shipped image under ``docker run`` as a hardened runtime starts it: read-only root
filesystem, uid 65532 (no passwd entry), no capabilities, no privilege escalation. It must start,
answer ``/healthz`` and reconcile a user, without ever exiting (issue 23: kopf's start-up looked
the uid's user name up and crashed).
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from devenv.controlplane import free_port
from tests.deploy.harness import (
    DEPLOY,
    EXAMPLES,
    DeployEnv,
    apply_policy,
    assert_user_reconciled,
    example_user,
    http_get,
    install_crds,
    wait_for,
)

pytestmark = [pytest.mark.deploy]

CONTAINER = "litellm-operator-deploy-test"
NAMESPACE = "team-docker"  # the example policy allows team-*


def docker(*args: str, check: bool = True) -> str:
    result = subprocess.run(["docker", *args], capture_output=True, text=True, timeout=120)
    if check and result.returncode != 0:
        raise AssertionError(f"docker {' '.join(args)} failed: {result.stderr}")
    return result.stdout


def container_state() -> dict[str, Any]:
    inspected: list[dict[str, Any]] = json.loads(docker("inspect", CONTAINER))
    return inspected[0]


def container_logs(lines: int) -> str:
    """The operator's output (it logs to stderr, which `docker logs` passes on as stderr)."""
    result = subprocess.run(
        ["docker", "logs", "--tail", str(lines), CONTAINER],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=60,
    )  # fmt: skip
    return result.stdout


def still_running() -> None:
    """Fail at once (with the container's log) when the operator has exited."""
    state = container_state()["State"]
    if not state["Running"]:
        logs = container_logs(30)
        raise AssertionError(f"the operator exited ({state['ExitCode']}):\n{logs}")


@pytest.fixture
def hardened_operator(deploy_env: DeployEnv, tmp_path: Path) -> Iterator[int]:
    """The image running as it would in a restricted pod; yields its health port."""
    env = deploy_env
    kubeconfig, key = tmp_path / "kubeconfig", tmp_path / "master-key"
    kubeconfig.write_bytes(env.node.kubeconfig.read_bytes())
    key.write_text(env.litellm.master_key.get_secret_value())
    for path in (kubeconfig, key):
        path.chmod(0o644)  # readable by uid 65532
    install_crds(env)
    apply_policy(env)
    env.kubectl("create", "namespace", NAMESPACE)
    health = free_port()
    docker("rm", "-f", CONTAINER, check=False)
    docker(
        "run", "--detach", "--name", CONTAINER,
        "--read-only", "--tmpfs", "/tmp", "--user", "65532:65532",
        "--cap-drop", "ALL", "--security-opt", "no-new-privileges",
        "--network", "host",
        "--volume", f"{kubeconfig}:/config/kubeconfig:ro",
        "--volume", f"{key}:/config/master-key:ro",
        "--env", "KUBECONFIG=/config/kubeconfig",
        "--env", "LITELLM_MASTER_KEY_FILE=/config/master-key",
        "--env", f"LITELLM_URL={env.litellm.url}",
        "--env", f"LITELLM_OPERATOR_NAMESPACES={NAMESPACE}",
        "--env", f"LITELLM_OPERATOR_METRICS_PORT={free_port()}",
        env.image, "run", f"--health-port={health}",
    )  # fmt: skip
    try:
        yield health
    finally:
        # While the operator runs: the user's and the policy's finalizers are its own.
        env.kubectl("-n", NAMESPACE, "delete", "litellmusers", "--all", "--wait", check=False)
        env.kubectl(
            "delete", "-f", str(EXAMPLES / "policy.yaml"), "--ignore-not-found", check=False
        )
        print(container_logs(40), file=sys.stderr)
        docker("rm", "-f", CONTAINER, check=False)
        env.kubectl("delete", "namespace", NAMESPACE, "--wait=false", check=False)
        env.kubectl("delete", "-f", str(DEPLOY / "crds"), "--ignore-not-found", check=False)


def test_the_image_runs_read_only_as_uid_65532_without_capabilities(
    deploy_env: DeployEnv, hardened_operator: int
) -> None:
    def healthy() -> bool:
        still_running()
        response = http_get(f"http://127.0.0.1:{hardened_operator}/healthz")
        return response is not None and response.status_code == 200

    wait_for("/healthz", healthy, timeout=90)
    user = example_user("bob", NAMESPACE)
    user_id = assert_user_reconciled(deploy_env, user)
    still_running()

    deploy_env.kubectl("-n", NAMESPACE, "delete", "litellmuser", "bob", "--wait", timeout=60)
    assert deploy_env.litellm_user(user_id) is None, "deleting the LiteLLMUser left its user"

    inspected = container_state()
    assert inspected["RestartCount"] == 0
    assert inspected["Config"]["User"] == "65532:65532"
    assert inspected["HostConfig"]["ReadonlyRootfs"] is True
    assert inspected["HostConfig"]["CapDrop"] == ["ALL"]
