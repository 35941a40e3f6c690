"""`make up` restarts only what died: a control plane whose kube-apiserver (or etcd too) died is
resumed on its ports and store, the operator that kept running still reaches it, and the
resources created before are still there and still reconciled."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Mapping
from pathlib import Path

import pytest

from devenv.controlplane import APISERVER, ETCD, ControlPlane
from tests.fixtures.dev import dev_environment

pytestmark = [pytest.mark.e2e, pytest.mark.integration]

ROOT = Path(__file__).resolve().parents[2]
DEV = ROOT / "hack" / "dev.sh"


def dev(env: dict[str, str], *args: str) -> str:
    done = subprocess.run(
        [str(DEV), *args], env=env, capture_output=True, text=True, timeout=600, check=False
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stderr


def kubectl(env: dict[str, str], *args: str) -> str:
    return subprocess.run(
        ["kubectl", *args], env=env, capture_output=True, text=True, timeout=180, check=True
    ).stdout


def apply(env: dict[str, str], document: Mapping[str, object]) -> None:
    subprocess.run(
        ["kubectl", "apply", "-f", "-"],
        env=env,
        input=json.dumps(document),
        text=True,
        check=True,
        capture_output=True,
        timeout=60,
    )


POLICY = {
    "apiVersion": "litellm.platform.dev/v1alpha1",
    "kind": "ProvisioningPolicy",
    "metadata": {"name": "up"},
    "spec": {
        "userIdDomain": "example.com",
        "allowedNamespaces": ["team-a"],
        "identities": [{"namespaces": ["team-a"], "emails": ["*@example.com"]}],
        "defaults": {"maxBudget": 5},
    },
}


def user(name: str) -> dict[str, object]:
    return {
        "apiVersion": "litellm.platform.dev/v1alpha1",
        "kind": "LiteLLMUser",
        "metadata": {"name": name, "namespace": "team-a"},
        "spec": {"policyRef": "up", "email": f"{name}@example.com"},
    }


def ready(env: dict[str, str], namespace: str, name: str) -> None:
    kubectl(
        env, "wait", "--for=condition=Ready", "--timeout=120s", "-n", namespace, f"llmuser/{name}"
    )


def kill(plane: ControlPlane, *components: str) -> None:
    for component in components:
        pid = plane.pid(component)
        assert pid is not None
        os.killpg(pid, signal.SIGKILL)
        while plane.pid(component) is not None:
            time.sleep(0.1)


def test_up_after_the_control_plane_died_resumes_it(dev_dir: Path) -> None:
    env = dev_environment(dev_dir)
    plane = ControlPlane(dev_dir / "controlplane")
    try:
        dev(env, "up")
        env["KUBECONFIG"] = str(plane.kubeconfig)
        operator_pid = (dev_dir / "operator.pid").read_text()
        server = plane.status()["server"]
        kubectl(env, "create", "namespace", "team-a")
        apply(env, POLICY)
        apply(env, user("before"))
        ready(env, "team-a", "before")

        for dead in ((APISERVER,), (APISERVER, ETCD)):
            kill(plane, *dead)
            said = dev(env, "up")
            assert "control plane resumed" in said, said
            assert plane.status()["server"] == server, "the same address"
            assert (dev_dir / "operator.pid").read_text() == operator_pid, "operator kept"
            assert "before" in kubectl(env, "get", "llmusers", "-n", "team-a"), "the same store"
            name = f"after-{len(dead)}"
            apply(env, user(name))
            ready(env, "team-a", name)  # the operator that kept running reconciles it
    finally:
        subprocess.run([str(DEV), "down"], env=env, capture_output=True, timeout=120)
    assert not (dev_dir / "controlplane" / "state.json").exists(), "down forgets the store"
