"""The ClusterRoles that extend the built-in edit/admin and view roles (issue 9, item 6).

The test control plane runs no controllers, so no aggregation happens there: the ClusterRoles
are bound directly (a RoleBinding in a tenant namespace, as a cluster admin would bind `edit`),
and the answers of the API server are checked as each ServiceAccount (its own token). The
aggregation labels, which make the built-in roles pick the rules up on a real cluster, are
checked on the files.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.e2e.conftest import RBAC_NAMESPACE_PREFIX
from tests.e2e.test_deploy import can_i
from tests.fixtures.kube import REPO_ROOT, KubeEnv, fresh_namespace

pytestmark = [pytest.mark.e2e]

ROLES = REPO_ROOT / "deploy" / "manifests" / "aggregated-clusterroles.yaml"
EDIT = "litellm-operator-edit"
VIEW = "litellm-operator-view"
USERS = "litellmusers.litellm.platform.dev"
TEAMS = "litellmteams.litellm.platform.dev"
POLICIES = "provisioningpolicies.litellm.platform.dev"
AGGREGATE = "rbac.authorization.k8s.io/aggregate-to-"


def roles() -> dict[str, dict[str, Any]]:
    return {d["metadata"]["name"]: d for d in yaml.safe_load_all(ROLES.read_text()) if d}


def test_aggregation_labels() -> None:
    labels = {name: role["metadata"].get("labels", {}) for name, role in roles().items()}
    assert labels == {
        EDIT: {f"{AGGREGATE}edit": "true", f"{AGGREGATE}admin": "true"},
        VIEW: {f"{AGGREGATE}view": "true"},
    }


def test_no_role_grants_the_status_or_secrets() -> None:
    for role in roles().values():
        for rule in role["rules"]:
            assert "*" not in rule["verbs"] + rule["resources"] + rule["apiGroups"], rule
            assert not [r for r in rule["resources"] if "/" in r], "no subresources"
            assert rule["apiGroups"] == ["litellm.platform.dev"]


class Tenants:
    """A tenant namespace with an editor and a viewer bound there, and a cluster-wide viewer."""

    def __init__(self, namespace: str, editor: KubeEnv, viewer: KubeEnv, cluster_viewer: KubeEnv):
        self.namespace = namespace
        self.editor = editor
        self.viewer = viewer
        self.cluster_viewer = cluster_viewer


def token_kube(kube_env: KubeEnv, namespace: str, account: str, directory: Path) -> KubeEnv:
    kube_env.kubectl("create", "serviceaccount", account, f"--namespace={namespace}")
    token = kube_env.kubectl(
        "create", "token", account, f"--namespace={namespace}", "--duration=1h"
    ).stdout.strip()
    return kube_env.with_token(token, directory / f"{account}.kubeconfig")


@pytest.fixture(scope="module")
def tenants(
    kube_env: KubeEnv, crds_installed: list[str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Tenants]:
    del crds_installed
    kube_env.kubectl("apply", f"--filename={ROLES}")
    directory = tmp_path_factory.mktemp("tenants")
    # An rbac-* namespace: the session operator leaves what the editor creates there alone.
    name = f"{RBAC_NAMESPACE_PREFIX}tenant-{uuid.uuid4().hex[:8]}"
    binding = f"cluster-viewer-{uuid.uuid4().hex[:8]}"
    try:
        with fresh_namespace(kube_env, name) as ns:
            editor = token_kube(kube_env, ns, "editor", directory)
            viewer = token_kube(kube_env, ns, "viewer", directory)
            cluster_viewer = token_kube(kube_env, ns, "cluster-viewer", directory)
            for account, role in (("editor", EDIT), ("viewer", VIEW)):
                kube_env.kubectl(
                    "create", "rolebinding", account, f"--namespace={ns}",
                    f"--clusterrole={role}", f"--serviceaccount={ns}:{account}",
                )  # fmt: skip
            kube_env.kubectl(
                "create", "clusterrolebinding", binding, f"--clusterrole={VIEW}",
                f"--serviceaccount={ns}:cluster-viewer",
            )  # fmt: skip
            yield Tenants(ns, editor, viewer, cluster_viewer)
    finally:
        kube_env.kubectl("delete", "clusterrolebinding", binding, "--ignore-not-found")
        kube_env.kubectl("delete", "--ignore-not-found", f"--filename={ROLES}")


OTHER = "team-elsewhere"
CHECKS = [
    *(
        pytest.param("editor", verb, USERS, None, True, id=f"editor-may-{verb}")
        for verb in ("get", "list", "watch", "create", "update", "patch", "delete")
    ),
    pytest.param("editor", "deletecollection", USERS, None, True, id="editor-may-deletecollection"),
    pytest.param("editor", "patch", f"{USERS}/status", None, False, id="editor-not-status-patch"),
    pytest.param("editor", "update", f"{USERS}/status", None, False, id="editor-not-status-update"),
    pytest.param("editor", "create", USERS, OTHER, False, id="editor-not-other-namespace"),
    pytest.param("editor", "create", POLICIES, "", False, id="editor-not-create-policies"),
    pytest.param("editor", "get", "secrets", None, False, id="editor-not-secrets"),
    *(
        pytest.param("viewer", verb, USERS, None, True, id=f"viewer-may-{verb}")
        for verb in ("get", "list", "watch")
    ),
    *(
        pytest.param("viewer", verb, USERS, None, False, id=f"viewer-not-{verb}")
        for verb in ("create", "update", "patch", "delete")
    ),
    pytest.param("viewer", "get", USERS, OTHER, False, id="viewer-not-other-namespace"),
    pytest.param("cluster_viewer", "list", POLICIES, "", True, id="cluster-viewer-lists-policies"),
    pytest.param("cluster_viewer", "get", POLICIES, "", True, id="cluster-viewer-gets-policies"),
    pytest.param("cluster_viewer", "list", USERS, "", True, id="cluster-viewer-lists-users"),
    pytest.param("cluster_viewer", "create", POLICIES, "", False, id="cluster-viewer-no-writes"),
    pytest.param("cluster_viewer", "patch", f"{USERS}/status", OTHER, False, id="cv-not-status"),
    *(
        pytest.param("editor", verb, TEAMS, None, True, id=f"editor-may-{verb}-teams")
        for verb in ("get", "list", "watch", "create", "update", "patch", "delete")
    ),
    pytest.param("editor", "patch", f"{TEAMS}/status", None, False, id="editor-not-team-status"),
    pytest.param("editor", "create", TEAMS, OTHER, False, id="editor-not-other-ns-teams"),
    *(
        pytest.param("viewer", verb, TEAMS, None, allowed, id=f"viewer-{verb}-teams")
        for verb, allowed in (("get", True), ("list", True), ("create", False), ("delete", False))
    ),
    pytest.param("cluster_viewer", "list", TEAMS, "", True, id="cluster-viewer-lists-teams"),
]


@pytest.mark.parametrize(("who", "verb", "resource", "namespace", "allowed"), CHECKS)
def test_can_i(
    tenants: Tenants, who: str, verb: str, resource: str, namespace: str | None, allowed: bool
) -> None:
    """``namespace``: None = the tenant's own, "" = cluster-wide."""
    kube: KubeEnv = getattr(tenants, who)
    where = tenants.namespace if namespace is None else (namespace or None)
    assert can_i(kube, verb, resource, where) is allowed


def user_manifest(namespace: str, name: str) -> str:
    return yaml.safe_dump(
        {
            "apiVersion": "litellm.platform.dev/v1alpha1",
            "kind": "LiteLLMUser",
            "metadata": {"name": name, "namespace": namespace},
            "spec": {"email": f"{name}@example.com"},
        }
    )


def test_editor_manages_users_and_the_viewer_reads_them(tenants: Tenants) -> None:
    """Real requests with the tokens, not only access reviews."""
    ns = tenants.namespace
    name = f"tenant-{uuid.uuid4().hex[:6]}"
    tenants.editor.kubectl("create", "--filename=-", input=user_manifest(ns, name))
    listed = tenants.viewer.kubectl("get", USERS, f"--namespace={ns}", "--output=name")
    assert f"litellmuser.litellm.platform.dev/{name}" in listed.stdout

    denied = tenants.viewer.kubectl(
        "delete", USERS, name, f"--namespace={ns}", "--wait=false", check=False
    )
    assert denied.returncode != 0
    assert "forbidden" in denied.stderr.lower()
    forged = tenants.editor.kubectl(
        "patch", USERS, name, f"--namespace={ns}", "--subresource=status", "--type=merge",
        '--patch={"status": {"userId": "ops-root"}}', check=False,
    )  # fmt: skip
    assert forged.returncode != 0
    assert "forbidden" in forged.stderr.lower()

    tenants.editor.kubectl("delete", USERS, name, f"--namespace={ns}", "--wait=false")
