"""A hostile tenant, end to end: every escalation tried as the tenant's own ServiceAccount.

The tenant may write LiteLLMUsers in its namespace and nothing else (a namespaced Role, as a
platform team would grant it). Each test tries one way to get more than the cluster admin's
ProvisioningPolicy grants that namespace, and judges the outcome where it matters: in
LiteLLM (read with the master key), as well as in the resource's status.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from litellm_operator.litellm import LiteLLMClient, LiteLLMUserRecord, NewUserRequest
from litellm_operator.models import API_VERSION
from litellm_operator.plan import MANAGED_BY
from tests.e2e.conftest import RESYNC_SECONDS
from tests.e2e.operator_harness import Cluster, OperatorProcess, eventually
from tests.fixtures.kube import KubeEnv, fresh_namespace
from tests.fixtures.policies import ANY_IDENTITY

pytestmark = [pytest.mark.e2e, pytest.mark.integration]

TENANT = "tenant"
TENANT_ROLE = {
    "apiVersion": "rbac.authorization.k8s.io/v1",
    "kind": "Role",
    "metadata": {"name": TENANT},
    "rules": [
        {
            "apiGroups": ["litellm.platform.dev"],
            "resources": ["litellmusers"],
            "verbs": ["get", "list", "watch", "create", "update", "patch", "delete"],
        }
    ],
}


@dataclass
class Tenant:
    """A namespace, and kubectl as the ServiceAccount that may write LiteLLMUsers there."""

    namespace: str
    kube: KubeEnv

    def apply(self, name: str, spec: dict[str, Any], *, check: bool = True) -> Any:
        body = {
            "apiVersion": API_VERSION,
            "kind": "LiteLLMUser",
            "metadata": {"name": name, "namespace": self.namespace},
            "spec": spec,
        }
        return self.kube.kubectl(
            "apply", "--server-side", "-f", "-", input=json.dumps(body), check=check
        )

    def delete(self, name: str) -> None:
        self.kube.kubectl("delete", "litellmuser", name, f"--namespace={self.namespace}")


@pytest.fixture
def tenant(kube_env: KubeEnv, namespace: str, tmp_path: Path) -> Tenant:
    for manifest in (
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": TENANT}},
        TENANT_ROLE,
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "RoleBinding",
            "metadata": {"name": TENANT},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": TENANT},
            "subjects": [{"kind": "ServiceAccount", "name": TENANT, "namespace": namespace}],
        },
    ):
        kube_env.kubectl("apply", f"--namespace={namespace}", "-f", "-", input=json.dumps(manifest))
    token = kube_env.kubectl(
        "create", "token", TENANT, f"--namespace={namespace}", "--duration=1h"
    ).stdout.strip()
    kube = kube_env.with_token(token, tmp_path / "tenant.kubeconfig")
    whoami = kube.kubectl("auth", "whoami", "-o", "jsonpath={.status.userInfo.username}")
    assert whoami.stdout == f"system:serviceaccount:{namespace}:{TENANT}"
    return Tenant(namespace, kube)


@pytest.fixture
def other_namespace(kube_env: KubeEnv) -> Iterator[str]:
    with fresh_namespace(kube_env, f"t-other-{uuid.uuid4().hex[:8]}") as name:
        yield name


@dataclass
class Admin:
    """The cluster admin's side: policies, and LiteLLM read with the master key."""

    cluster: Cluster
    litellm: LiteLLMClient
    names: list[str]

    def policy(self, spec: dict[str, Any]) -> str:
        name = f"p-{uuid.uuid4().hex[:8]}"
        self.cluster.create_policy(name, spec)
        self.names.append(name)
        return name

    async def record(self, user_id: str) -> LiteLLMUserRecord | None:
        return await self.litellm.get_user(user_id)


@pytest.fixture
def admin(
    operator: OperatorProcess, cluster: Cluster, litellm_client: LiteLLMClient
) -> Iterator[Admin]:
    del operator  # the session operator reconciles what the tenant applies
    the_admin = Admin(cluster, litellm_client, [])
    yield the_admin
    for name in the_admin.names:
        cluster.delete_policy(name)


def granted(namespace: str, **extra: Any) -> dict[str, Any]:
    """A policy for ``namespace`` whose privileged roles are granted to other namespaces only."""
    return {
        "allowedNamespaces": [namespace],
        "identities": ANY_IDENTITY,
        "defaults": {"maxBudget": 5, "models": ["gpt-4o-mini"], "rpmLimit": 10},
        "roles": [
            {
                "group": "platform-admins",
                "namespaces": ["platform"],
                "userRole": "proxy_admin",
                "models": [],
                "rpmLimit": 600,
            },
            {"group": "ai-power-users", "namespaces": ["research-*"], "maxBudget": 100},
        ],
        **extra,
    }


def ident(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def held_for(seconds: float, probe: Callable[[], bool]) -> bool:
    """True when ``probe`` stays true for ``seconds`` (a negative outcome given time to fail)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not probe():
            return False
        time.sleep(0.5)
    return True


async def test_groups_claim_no_role_outside_the_namespaces_it_is_granted_to(
    tenant: Tenant, admin: Admin
) -> None:
    policy = admin.policy(granted(tenant.namespace))
    name = ident("eve")
    tenant.apply(name, {"policyRef": policy, "groups": ["platform-admins", "ai-power-users"]})
    ready = admin.cluster.wait_ready(tenant.namespace, name)

    record = await admin.record(name)
    assert record is not None
    assert (record.user_role, record.max_budget, record.rpm_limit) == ("internal_user", 5, 10)
    assert record.models == ["gpt-4o-mini"]
    message = admin.cluster.condition(tenant.namespace, name)["message"]
    assert "platform-admins, ai-power-users ignored" in message
    assert ready["status"].get("matchedRole") is None
    warnings = [e for e in admin.cluster.events(tenant.namespace, name) if e[1] == "GroupsIgnored"]
    assert warnings, "an event names the ignored groups"


async def test_a_policy_not_granted_to_the_namespace_provisions_nothing(
    tenant: Tenant, admin: Admin
) -> None:
    policy = admin.policy(
        {
            "allowedNamespaces": ["research-*"],
            "identities": ANY_IDENTITY,
            "defaults": {"maxBudget": 1000},
        }
    )
    name = ident("eve")
    tenant.apply(name, {"policyRef": policy})
    admin.cluster.wait_reason(tenant.namespace, name, "NamespaceNotAllowed")
    assert await admin.record(name) is None


async def test_a_foreign_admin_cannot_be_adopted_changed_or_deleted(
    tenant: Tenant, admin: Admin
) -> None:
    root = ident("ops-root")
    await admin.litellm.create_user(
        NewUserRequest(user_id=root, user_role="proxy_admin", max_budget=1000.0)
    )
    evil = {"userId": root, "adopt": True, "deletionPolicy": "Delete", "groups": ["x"]}

    ids_forbidden = admin.policy(granted(tenant.namespace))
    tenant.apply("take-1", {"policyRef": ids_forbidden, **evil})
    admin.cluster.wait_reason(tenant.namespace, "take-1", "OverrideForbidden")

    ids_allowed = admin.policy(
        granted(tenant.namespace, overrides={"allowedFields": ["userId"]})
    )  # but adoptExistingUsers stays false
    tenant.apply("take-2", {"policyRef": ids_allowed, **evil})
    message = admin.cluster.wait_reason(tenant.namespace, "take-2", "AlreadyExists")["message"]
    assert "1000" not in message, "nothing of the foreign user's settings is revealed"

    tenant.delete("take-1")
    tenant.delete("take-2")
    time.sleep(RESYNC_SECONDS)
    record = await admin.record(root)
    assert record is not None, "the foreign user survived the deletions"
    assert (record.user_role, record.max_budget) == ("proxy_admin", 1000)
    assert MANAGED_BY not in record.metadata


async def test_litellm_own_admin_is_refused_even_where_adoption_is_allowed(
    tenant: Tenant, admin: Admin
) -> None:
    before = await admin.record("default_user_id")
    policy = admin.policy(
        granted(
            tenant.namespace,
            adoptExistingUsers=True,
            overrides={"allowedFields": ["userId"]},
            defaults={"maxBudget": 0, "teams": ["tenant-team"]},
        )
    )
    tenant.apply("root", {"policyRef": policy, "userId": "default_user_id", "adopt": True})
    admin.cluster.wait_reason(tenant.namespace, "root", "UserIdNotAllowed")
    tenant.delete("root")
    after = await admin.record("default_user_id")
    if before is None:
        assert after is None
    else:
        assert after is not None
        assert (after.user_role, after.max_budget, after.teams, after.metadata) == (
            before.user_role,
            before.max_budget,
            before.teams,
            before.metadata,
        )


async def test_no_squatting_of_another_namespaces_id_and_no_names_leak(
    tenant: Tenant, admin: Admin, other_namespace: str
) -> None:
    policy = admin.policy(
        {
            **granted(tenant.namespace),
            "allowedNamespaces": [tenant.namespace, other_namespace],
            "identities": ANY_IDENTITY,
            "userIdDomain": "corp.example",
            "overrides": {"allowedFields": ["userId"], "userIdPattern": "^svc-[a-z0-9-]+$"},
        }
    )
    name = ident("frank")
    admin.cluster.create_user(other_namespace, name, {"policyRef": policy})
    admin.cluster.wait_ready(other_namespace, name)
    victim = f"{name}@corp.example"
    before = await admin.record(victim)
    assert before is not None

    tenant.apply("squat", {"policyRef": policy, "userId": victim, "overrides": {}})
    admin.cluster.wait_reason(tenant.namespace, "squat", "UserIdNotAllowed")

    tenant.apply(name, {"policyRef": policy})  # the same name: the same derived id
    conflict = admin.cluster.wait_reason(tenant.namespace, name, "Conflict")
    assert other_namespace not in conflict["message"]
    assert "another namespace" in conflict["message"]
    for _, _, text in admin.cluster.events(tenant.namespace, name):
        assert other_namespace not in text

    tenant.delete(name)
    tenant.delete("squat")
    assert held_for(RESYNC_SECONDS, lambda: True)
    record = await admin.record(victim)
    assert record is not None, "the victim's user was not deleted"
    assert record.max_budget == before.max_budget
    assert admin.cluster.condition(other_namespace, name)["status"] == "True"


async def test_an_email_of_another_litellm_user_is_refused(tenant: Tenant, admin: Admin) -> None:
    owner = ident("grace")
    await admin.litellm.create_user(NewUserRequest(user_id=owner, user_email=f"{owner}@corp.io"))
    policy = admin.policy(granted(tenant.namespace))
    name = ident("mallory")
    tenant.apply(name, {"policyRef": policy, "email": f"{name}@corp.io"})
    admin.cluster.wait_ready(tenant.namespace, name)

    tenant.apply(name, {"policyRef": policy, "email": f"{owner.upper()}@corp.io"})
    message = admin.cluster.wait_reason(tenant.namespace, name, "EmailInUse")["message"]
    assert owner not in message.replace(f"{owner}@corp.io", "")
    record = await admin.record(name)
    assert record is not None
    assert record.user_email == f"{name}@corp.io"


def test_the_tenant_cannot_write_status_or_repin_its_id(tenant: Tenant, admin: Admin) -> None:
    policy = admin.policy(granted(tenant.namespace, overrides={"allowedFields": ["userId"]}))
    name = ident("ivan")
    tenant.apply(name, {"policyRef": policy})
    admin.cluster.wait_ready(tenant.namespace, name)

    forged = tenant.kube.kubectl(
        "patch",
        "litellmuser",
        name,
        f"--namespace={tenant.namespace}",
        "--subresource=status",
        "--type=merge",
        "--patch",
        json.dumps({"status": {"userId": "default_user_id"}}),
        check=False,
    )
    assert forged.returncode != 0
    assert "forbidden" in forged.stderr

    repin = tenant.apply(name, {"policyRef": policy, "userId": "ops-root"}, check=False)
    assert repin.returncode != 0
    assert "cannot differ from the user id the operator pinned" in repin.stderr


def test_oversized_input_is_rejected_at_admission(tenant: Tenant, admin: Admin) -> None:
    policy = admin.policy(granted(tenant.namespace, overrides={"allowedFields": ["metadata"]}))
    result = tenant.apply(
        "huge", {"policyRef": policy, "overrides": {"metadata": {"k": "v" * 600_000}}}, check=False
    )
    assert result.returncode != 0
    assert admin.cluster.get_user(tenant.namespace, "huge") is None


ADMISSION_POLICY = Path(__file__).resolve().parents[2] / "deploy/manifests/admission-policy.yaml"


def test_huge_annotations_are_refused_so_kopf_always_has_room(
    tenant: Tenant, admin: Admin, kube_env: KubeEnv
) -> None:
    """The schema cannot bound metadata: the shipped ValidatingAdmissionPolicy does. An object
    admitted before the policy existed is never wedged by it: it can still be deleted."""
    policy = admin.policy(granted(tenant.namespace))

    def body(name: str, note: int) -> dict[str, Any]:
        return {
            "apiVersion": API_VERSION,
            "kind": "LiteLLMUser",
            "metadata": {
                "name": name,
                "namespace": tenant.namespace,
                "annotations": {"note": "x" * note},
            },
            "spec": {"policyRef": policy},
        }

    def create(name: str, note: int) -> Any:
        return tenant.kube.kubectl(
            "create", "-f", "-", input=json.dumps(body(name, note)), check=False
        )

    binding = "validatingadmissionpolicybinding/litellm-operator-annotation-budget"
    kube_env.kubectl("delete", binding, "--ignore-not-found")
    legacy = ident("legacy")
    eventually(
        lambda: create(legacy, 100_000).returncode == 0, timeout=30, what="no policy in force"
    )
    admin.cluster.wait_ready(tenant.namespace, legacy)

    kube_env.kubectl("apply", "--server-side", "-f", str(ADMISSION_POLICY))

    def refused() -> str | None:
        """The policy's refusal, once the API server enforces it (policies load in a moment)."""
        name = ident("bloated")
        result = create(name, 200_000)
        if result.returncode == 0:
            admin.cluster.delete_user(tenant.namespace, name)  # no wait: it may be large too
            return None
        assert "annotation-budget" in result.stderr, result.stderr
        return str(result.stderr)

    message = eventually(refused, timeout=30, what="the admission policy in force")
    assert "64 KiB" in message

    small = ident("small")
    assert create(small, 1000).returncode == 0
    admin.cluster.wait_ready(tenant.namespace, small)
    for name in (small, legacy):  # the legacy object's finalizer is removed despite its size
        admin.cluster.delete_user(tenant.namespace, name)
        eventually(
            lambda name=name: admin.cluster.get_user(tenant.namespace, name) is None,  # type: ignore[misc]
            timeout=60,
            what=f"{name} deleted, not wedged",
        )
