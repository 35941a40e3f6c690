"""Smoke tests of the real API server: the project's CRDs, status, events, ServiceAccount tokens.

They run unchanged against an envtest control plane or any cluster named by ``$KUBECONFIG``.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client, watch

from tests.fixtures.kube import KubeEnv

pytestmark = pytest.mark.e2e

GROUP = "litellm.platform.dev"
VERSION = "v1alpha1"
USERS = "litellmusers"


@pytest.fixture
def api(kube_env: KubeEnv) -> Iterator[client.ApiClient]:
    with kube_env.api_client() as api_client:
        yield api_client


def _obj(value: object) -> dict[str, Any]:
    """The custom objects API returns plain JSON objects, typed as ``object``."""
    assert isinstance(value, dict)
    return value


def _user(name: str) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "LiteLLMUser",
        "metadata": {"name": name},
        "spec": {"policyRef": "default", "email": f"{name}@example.com"},
    }


def _event_for(user: dict[str, Any], name: str) -> client.CoreV1Event:
    meta = user["metadata"]
    return client.CoreV1Event(
        metadata=client.V1ObjectMeta(name=name, namespace=meta["namespace"]),
        involved_object=client.V1ObjectReference(
            api_version=user["apiVersion"],
            kind=user["kind"],
            name=meta["name"],
            namespace=meta["namespace"],
            uid=meta["uid"],
        ),
        reason="Smoke",
        message="created by the control plane smoke test",
        type="Normal",
        source=client.V1EventSource(component="litellm-operator-tests"),
    )


def test_crds_are_established(crds_installed: list[str]) -> None:
    assert f"{USERS}.{GROUP}" in crds_installed
    assert f"provisioningpolicies.{GROUP}" in crds_installed


@pytest.mark.usefixtures("crds_installed")
def test_user_roundtrip_status_and_event(api: client.ApiClient, namespace: str) -> None:
    custom = client.CustomObjectsApi(api)
    core = client.CoreV1Api(api)
    name = f"alice-{uuid.uuid4().hex[:6]}"

    created = _obj(
        custom.create_namespaced_custom_object(GROUP, VERSION, namespace, USERS, _user(name))
    )
    read = _obj(custom.get_namespaced_custom_object(GROUP, VERSION, namespace, USERS, name))
    assert read["metadata"]["uid"] == created["metadata"]["uid"]
    assert read["spec"]["email"] == f"{name}@example.com"

    status = {"status": {"userId": name, "observedGeneration": read["metadata"]["generation"]}}
    custom.patch_namespaced_custom_object_status(GROUP, VERSION, namespace, USERS, name, status)
    read = _obj(custom.get_namespaced_custom_object(GROUP, VERSION, namespace, USERS, name))
    assert read["status"]["userId"] == name

    selector = f"involvedObject.name={name}"
    before = core.list_namespaced_event(namespace, field_selector=selector)
    since = before.metadata.resource_version if before.metadata else None
    core.create_namespaced_event(namespace, _event_for(read, f"{name}.smoke"))
    stream = watch.Watch().stream(  # type: ignore[no-untyped-call]
        core.list_namespaced_event,
        namespace,
        field_selector=selector,
        resource_version=since,
        timeout_seconds=30,
    )
    seen = next(e["object"] for e in stream if e["type"] == "ADDED")
    assert seen.involved_object.uid == read["metadata"]["uid"]
    assert seen.reason == "Smoke"


def _can_i(env: KubeEnv, namespace: str) -> bool:
    result = env.kubectl("auth", "can-i", "list", "configmaps", "-n", namespace, check=False)
    return result.stdout.strip() == "yes"


def _eventually(predicate: Any, timeout: float = 15.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.3)
    return False


def test_service_account_token_authenticates_and_rbac_applies(
    kube_env: KubeEnv, namespace: str, tmp_path: Path
) -> None:
    kube_env.kubectl("create", "serviceaccount", "robot", "-n", namespace)
    token = kube_env.kubectl("create", "token", "robot", "-n", namespace).stdout.strip()
    robot = kube_env.with_token(token, tmp_path / "robot.kubeconfig")

    whoami = robot.kubectl("auth", "whoami", "-o", "jsonpath={.status.userInfo.username}")
    assert whoami.stdout == f"system:serviceaccount:{namespace}:robot"
    assert not _can_i(robot, namespace)
    denied = robot.kubectl("get", "configmaps", "-n", namespace, check=False)
    assert denied.returncode != 0
    assert "forbidden" in denied.stderr.lower()

    kube_env.kubectl(
        "create", "role", "cm-reader", "--verb=get,list", "--resource=configmaps", "-n", namespace
    )
    kube_env.kubectl(
        "create", "rolebinding", "robot-cm-reader", "--role=cm-reader",
        f"--serviceaccount={namespace}:robot", "-n", namespace,
    )  # fmt: skip
    assert _eventually(lambda: _can_i(robot, namespace))
    robot.kubectl("get", "configmaps", "-n", namespace)


def test_bad_token_is_rejected(kube_env: KubeEnv, tmp_path: Path) -> None:
    stranger = kube_env.with_token("not-a-valid-token", tmp_path / "stranger.kubeconfig")
    result = stranger.kubectl("get", "namespaces", check=False)
    assert result.returncode != 0
    assert "unauthorized" in result.stderr.lower() or "credentials" in result.stderr.lower()
