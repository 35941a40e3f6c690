"""A hostile tenant, end to end: every escalation tried as the tenant's own ServiceAccount.

The tenant may write LiteLLMUsers and Secrets in its namespace and nothing else (a namespaced
Role, as a platform team would grant it with ``edit``). Each test tries one way to get more than
the cluster admin's ProvisioningPolicy grants that namespace, and judges the outcome where it
matters: in LiteLLM (read with the master key), as well as in the resource's status.

Every case names the ``LiteLLMUser.spec`` fields it attacks with :func:`attacks`; a test here
enumerates the spec's fields from the models and fails for any field without a case in the
``test_tenancy*.py`` modules, so a field added later needs its attack too.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from kubernetes.client import ApiException

from devenv.litellm import LiteLLMEndpoint
from litellm_operator.fields import MANAGED_BY, MANAGER
from litellm_operator.keys.owner import KEY_LABEL, MANAGED_BY_LABEL, USER_LABEL
from litellm_operator.litellm import (
    KeyRecord,
    LiteLLMClient,
    LiteLLMUserRecord,
    NewUserRequest,
    NotFound,
)
from litellm_operator.models import API_VERSION
from litellm_operator.users.plan import OWNER_UID
from tests.e2e.conftest import RESYNC_SECONDS
from tests.e2e.operator_harness import Cluster, OperatorProcess, eventually
from tests.fixtures.key_probes import decoded_key, works
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
        },
        {
            "apiGroups": [""],
            "resources": ["secrets"],
            "verbs": ["get", "list", "watch", "create", "update", "patch", "delete"],
        },
    ],
}


def attacks(*fields: str) -> pytest.MarkDecorator:
    """The ``LiteLLMUser.spec`` fields a case attacks, as dotted wire paths (``keys.models``,
    ``overrides.maxBudget``): the registry :func:`test_every_spec_field_has_its_attack` reads."""
    return pytest.mark.attacks(*fields)


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


def make_tenant(kube_env: KubeEnv, namespace: str, kubeconfig: Path) -> Tenant:
    """The tenant's ServiceAccount in ``namespace``, bound to :data:`TENANT_ROLE` there."""
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
    kube = kube_env.with_token(token, kubeconfig)
    whoami = kube.kubectl("auth", "whoami", "-o", "jsonpath={.status.userInfo.username}")
    assert whoami.stdout == f"system:serviceaccount:{namespace}:{TENANT}"
    return Tenant(namespace, kube)


@pytest.fixture
def tenant(kube_env: KubeEnv, namespace: str, tmp_path: Path) -> Tenant:
    return make_tenant(kube_env, namespace, tmp_path / "tenant.kubeconfig")


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


@attacks("groups")
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


@attacks("policyRef")
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


@attacks("userId", "adopt", "deletionPolicy")
async def test_a_foreign_admin_cannot_be_adopted_changed_or_deleted(
    tenant: Tenant, admin: Admin
) -> None:
    root = ident("ops-root")
    await admin.litellm.create_user(
        NewUserRequest.of(user_id=root, user_role="proxy_admin", max_budget=1000.0)
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


@attacks("userId", "adopt")
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


@attacks("userId")
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


@attacks("email")
async def test_an_email_of_another_litellm_user_is_refused(tenant: Tenant, admin: Admin) -> None:
    owner = ident("grace")
    await admin.litellm.create_user(NewUserRequest.of(user_id=owner, user_email=f"{owner}@corp.io"))
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


@attacks("userId")
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


@attacks("overrides.metadata")
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


# --- identities, adoption, deletion, Secrets, every field (issue 24) ----------------------------


def secret_data(admin: Admin, namespace: str, name: str) -> dict[str, str] | None:
    """A Secret's data as the cluster admin reads it (``None``: no such Secret)."""
    try:
        found = admin.cluster.core.read_namespaced_secret(name, namespace)
    except ApiException as exc:
        if exc.status == 404:
            return None
        raise
    return {key: str(value) for key, value in (found.data or {}).items()}


def key_value(admin: Admin, namespace: str, secret: str) -> str | None:
    data = secret_data(admin, namespace, secret) or {}
    return decoded_key(data)


async def keys_held(admin: Admin, user_id: str) -> list[KeyRecord]:
    """The user's keys in LiteLLM (none when there is no such user)."""
    try:
        return await admin.litellm.list_user_keys(user_id)
    except NotFound:
        return []


def synced_under(admin: Admin, namespace: str, name: str, policy: str) -> bool:
    """Whether the resource is Ready, reconciled under ``policy``."""
    body = admin.cluster.get_user(namespace, name) or {}
    status = body.get("status") or {}
    ready = admin.cluster.condition(namespace, name)
    return ready.get("status") == "True" and (status.get("policy") or {}).get("name") == policy


@attacks("userId", "email", "ssoUserId")
async def test_identities_outside_the_namespace_s_grant_provision_nothing(
    tenant: Tenant, admin: Admin
) -> None:
    """LiteLLM's SSO lands a sign-in on the user with the person's id, sso_user_id or e-mail:
    an identity the policy does not grant the namespace is refused, however it is spelt."""
    domain = f"{uuid.uuid4().hex[:6]}.example"
    policy = admin.policy(
        {
            **granted(tenant.namespace),
            "userIdDomain": domain,
            "identities": [
                {
                    "namespaces": [tenant.namespace],
                    "emails": [f"*@team.{domain}"],
                    "userIds": ["svc-t-*"],
                },
                {"namespaces": ["platform"], "emails": [f"*@{domain}"], "userIds": ["*"]},
            ],
            "overrides": {"allowedFields": ["userId", "ssoUserId"]},
        }
    )
    boss = ident("boss")
    attempts: dict[str, dict[str, Any]] = {
        boss: {},  # the derived id boss-…@domain: the boss's own
        "explicit": {"userId": f"{boss.upper()}@{domain}"},
        "mail": {"userId": ident("svc-t"), "email": f"{boss}@{domain.upper()}"},
        "subject": {"userId": ident("svc-t"), "ssoUserId": boss},
    }
    for name, spec in attempts.items():
        tenant.apply(name, {"policyRef": policy, **spec})
    for name in attempts:
        admin.cluster.wait_reason(tenant.namespace, name, "IdentityNotAllowed")

    ids = [f"{boss}@{domain}", f"{boss.upper()}@{domain}"]
    ids += [attempts["mail"]["userId"], attempts["subject"]["userId"]]
    for user_id in ids:
        assert await admin.record(user_id) is None, user_id
    assert await admin.litellm.users_with_email(f"{boss}@{domain}") == []
    assert await admin.litellm.users_with_sso_user_id(boss) == []

    own = ident("svc-t")  # within the grant: provisioned
    tenant.apply("own", {"policyRef": policy, "userId": own, "email": f"Own@TEAM.{domain}"})
    admin.cluster.wait_ready(tenant.namespace, "own")
    record = await admin.record(own)
    assert record is not None
    assert record.user_email == f"own@team.{domain}"


@attacks("adopt")
async def test_adoption_never_keeps_a_role_above_the_grant(
    tenant: Tenant, admin: Admin, litellm_env: LiteLLMEndpoint
) -> None:
    """Where the provider owns userRole the operator never writes it: adopting a proxy_admin
    would keep it (and hand it to the keys issued). Such an adoption is refused."""
    ns = tenant.namespace
    root, low = ident("ops-root"), ident("viewer")
    await admin.litellm.create_user(
        NewUserRequest.of(user_id=root, user_role="proxy_admin", max_budget=1000.0)
    )
    await admin.litellm.create_user(
        NewUserRequest.of(user_id=low, user_role="internal_user_viewer")
    )
    policy = admin.policy(
        granted(
            ns,
            adoptExistingUsers=True,
            sso={"userRole": "Provider"},
            overrides={"allowedFields": ["userId"]},
        )
    )
    key = [{"name": "k"}]
    tenant.apply("take", {"policyRef": policy, "userId": root, "adopt": True, "keys": key})
    message = admin.cluster.wait_reason(ns, "take", "AdoptionRefused")["message"]
    assert "proxy_admin" not in message, "the held role is not revealed"
    assert held_for(RESYNC_SECONDS, lambda: secret_data(admin, ns, "take-k") is None)
    record = await admin.record(root)
    assert record is not None
    assert (record.user_role, record.max_budget) == ("proxy_admin", 1000)
    assert MANAGED_BY not in record.metadata
    assert await keys_held(admin, root) == []

    tenant.apply("keep", {"policyRef": policy, "userId": low, "adopt": True, "keys": key})
    assert admin.cluster.wait_ready(ns, "keep")["status"]["adopted"] is True
    value = eventually(
        lambda: key_value(admin, ns, "keep-k"), timeout=30, what="the adopted user's key"
    )
    minted = ident("minted")
    answer = httpx.post(
        f"{litellm_env.url}/user/new",
        headers={"Authorization": f"Bearer {value}"},
        json={"user_id": minted, "user_role": "proxy_admin"},
        timeout=10,
    )
    assert answer.status_code in (401, 403), answer.status_code
    assert await admin.record(minted) is None
    adopted = await admin.record(low)
    assert adopted is not None
    assert adopted.user_role == "internal_user_viewer"


@attacks("policyRef", "deletionPolicy", "adopt")
async def test_an_adopted_user_s_deletion_is_fixed_at_adoption(
    tenant: Tenant, admin: Admin
) -> None:
    """Adopted under a policy that retains adopted users, the user survives a switch of
    policyRef to a policy that deletes them, whether that policy allows the namespace or not;
    and no user is deleted under a policy that does not allow the namespace."""
    ns = tenant.namespace
    root = ident("root-admin")
    await admin.litellm.create_user(NewUserRequest.of(user_id=root, max_budget=1000.0))
    adopting: dict[str, Any] = {
        "adoptExistingUsers": True,
        "overrides": {"allowedFields": ["userId"]},
    }
    keeps = admin.policy(granted(ns, **adopting))
    here = admin.policy(granted(ns, **adopting, deleteAdoptedUsers=True))
    elsewhere = admin.policy(
        {**granted(ns, **adopting, deleteAdoptedUsers=True), "allowedNamespaces": ["elsewhere"]}
    )
    for switched in (elsewhere, here):
        tenant.apply("adopt", {"policyRef": keeps, "userId": root, "adopt": True})
        assert admin.cluster.wait_ready(ns, "adopt")["status"]["adopted"] is True
        evil = {"policyRef": switched, "userId": root, "adopt": True, "deletionPolicy": "Delete"}
        tenant.apply("adopt", evil)
        if switched == elsewhere:
            admin.cluster.wait_reason(ns, "adopt", "NamespaceNotAllowed")
        else:
            eventually(
                lambda: synced_under(admin, ns, "adopt", here),
                timeout=30,
                what="the resource in sync under the deleting policy",
            )
        tenant.delete("adopt")
        record = await admin.record(root)
        assert record is not None, f"deleted after a switch to the policy {switched}"
        assert record.max_budget == 5  # as the adopting policy set it: released, not deleted
        assert MANAGED_BY not in record.metadata

    own = ident("own")
    tenant.apply("own", {"policyRef": here, "userId": own, "deletionPolicy": "Delete"})
    admin.cluster.wait_ready(ns, "own")
    tenant.apply("own", {"policyRef": elsewhere, "userId": own, "deletionPolicy": "Delete"})
    admin.cluster.wait_reason(ns, "own", "NamespaceNotAllowed")
    tenant.delete("own")
    record = await admin.record(own)
    assert record is not None, "deleted under a policy that does not allow the namespace"
    assert MANAGED_BY not in record.metadata


@attacks("keys.secretName", "keys.name")
async def test_a_secret_labelled_as_the_operator_s_is_not_taken(
    tenant: Tenant, admin: Admin
) -> None:
    """Labels are the tenant's to write: a key Secret is the operator's only when its controller
    ownerReference is the LiteLLMUser. A Secret that merely carries the labels is neither
    written, nor counted as a key's, nor deleted with the user."""
    ns = tenant.namespace
    policy = admin.policy(granted(ns, overrides={"allowedFields": ["userId"]}))
    user_a, user_b = ident("svc-a"), ident("svc-b")
    planted = {"mine": (user_a, "k"), "stray": (user_b, "gone")}
    for secret, (user, key) in planted.items():
        manifest = {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {
                "name": secret,
                "labels": {MANAGED_BY_LABEL: MANAGER, USER_LABEL: user, KEY_LABEL: key},
            },
            "stringData": {"api_key": f"tenant-{secret}"},
        }
        tenant.kube.kubectl("apply", f"--namespace={ns}", "-f", "-", input=json.dumps(manifest))
    before = {name: secret_data(admin, ns, name) for name in planted}

    tenant.apply(
        user_a,
        {"policyRef": policy, "userId": user_a, "keys": [{"name": "k", "secretName": "mine"}]},
    )
    tenant.apply(user_b, {"policyRef": policy, "userId": user_b, "keys": [{"name": "w"}]})
    admin.cluster.wait_reason(ns, user_a, "Conflict")
    admin.cluster.wait_ready(ns, user_b)
    eventually(
        lambda: key_value(admin, ns, f"{user_b}-w"), timeout=30, what="svc-b's own key Secret"
    )
    assert held_for(
        RESYNC_SECONDS,
        lambda: all(secret_data(admin, ns, name) == data for name, data in before.items()),
    )
    assert await keys_held(admin, user_a) == []

    tenant.delete(user_a)
    tenant.delete(user_b)
    for name, data in before.items():
        assert secret_data(admin, ns, name) == data, f"{name} was changed or deleted"
    assert secret_data(admin, ns, f"{user_b}-w") is None
    assert await admin.record(user_b) is None


@attacks("keys.models", "keys.maxBudget", "keys.name")
async def test_keys_stay_within_the_user_and_the_namespace(
    tenant: Tenant, admin: Admin, other_namespace: str, litellm_env: LiteLLMEndpoint
) -> None:
    """A key asks for no model the user lacks and no budget above the policy's; a key named
    like another namespace's key is a key of its own (aliases carry the namespace)."""
    ns = tenant.namespace
    policy = admin.policy(
        {
            **granted(ns, overrides={"allowedFields": ["userId"]}, keys={"maxBudget": 2}),
            "allowedNamespaces": [ns, other_namespace],
        }
    )
    greedy = {
        "models": ([{"name": "k", "models": ["gpt-4o"]}], "ModelNotAllowed"),
        "budget": ([{"name": "k", "maxBudget": 1000}], "OverrideForbidden"),
    }
    for name, (keys, _) in greedy.items():
        tenant.apply(name, {"policyRef": policy, "userId": f"{ns}-{name}", "keys": keys})
    for name, (_, reason) in greedy.items():
        admin.cluster.wait_reason(ns, name, reason)
        assert await admin.record(f"{ns}-{name}") is None
        assert secret_data(admin, ns, f"{name}-k") is None

    theirs, mine = ident("svc-o"), ident("svc-t")
    admin.cluster.create_user(
        other_namespace, "web", {"policyRef": policy, "userId": theirs, "keys": [{"name": "k"}]}
    )
    admin.cluster.wait_ready(other_namespace, "web")
    tenant.apply("web", {"policyRef": policy, "userId": mine, "keys": [{"name": "k"}]})
    admin.cluster.wait_ready(ns, "web")
    values = {}
    for namespace, user_id in ((other_namespace, theirs), (ns, mine)):
        value = eventually(
            lambda namespace=namespace: key_value(admin, namespace, "web-k"),  # type: ignore[misc]
            timeout=30,
            what=f"the key in {namespace}",
        )
        (record,) = await admin.litellm.list_user_keys(user_id)
        assert record.key_alias == f"{namespace}/web/k"
        assert record.max_budget == 2
        values[namespace] = value
    assert values[ns] != values[other_namespace]
    assert all(works(litellm_env.url, v) for v in values.values())


VERDICTS = {"Synced", "InvalidSpec", "OverrideForbidden", "Rejected"}
"""Ready reasons that end a key's first reconcile: in sync, or refused."""
KEY_LIMIT_POLICY = {
    "defaults": {
        "maxBudget": 5,
        "budgetDuration": "30d",
        "tpmLimit": 1000,
        "rpmLimit": 10,
        "maxParallelRequests": 2,
    }
}


@attacks(
    "keys.tpmLimit",
    "keys.rpmLimit",
    "keys.maxParallelRequests",
    "keys.budgetDuration",
    "keys.rotateEvery",
    "keys.gracePeriod",
)
@pytest.mark.parametrize(
    "key",
    [
        pytest.param({"tpmLimit": 999_999_999}, id="tpm"),
        pytest.param({"rpmLimit": 999_999}, id="rpm"),
        pytest.param({"maxParallelRequests": 9999}, id="parallel"),
        pytest.param({"budgetDuration": "1s"}, id="budget-duration"),
        pytest.param({"rotateEvery": "0s"}, id="rotate-every"),
        pytest.param({"gracePeriod": "99999d"}, id="grace-period"),
    ],
)
async def test_key_limits_never_exceed_the_user_s(
    tenant: Tenant, admin: Admin, key: dict[str, Any]
) -> None:
    """A key above the user's own limits (or a period, rotation or grace beyond the policy's
    bounds) is refused before anything is written: at admission, or as a condition."""
    ns = tenant.namespace
    policy = admin.policy({**granted(ns), **KEY_LIMIT_POLICY})
    name = ident("limits")
    applied = tenant.apply(name, {"policyRef": policy, "keys": [{"name": "k", **key}]}, check=False)
    try:
        if applied.returncode == 0:
            eventually(
                lambda: admin.cluster.condition(ns, name).get("reason") in VERDICTS,
                timeout=30,
                what="a verdict",
            )
            assert admin.cluster.condition(ns, name, "Stalled")["status"] == "True"
        assert await keys_held(admin, name) == []
    finally:
        if applied.returncode == 0:
            tenant.delete(name)  # a rotation due every second would go on until then


@attacks(
    "overrides.maxBudget",
    "overrides.tpmLimit",
    "overrides.rpmLimit",
    "overrides.maxParallelRequests",
    "overrides.maxBudgetInTeam",
    "overrides.modelRpmLimit",
    "overrides.modelTpmLimit",
    "overrides.metadata",
)
async def test_overrides_are_clamped_to_what_the_policy_gives(tenant: Tenant, admin: Admin) -> None:
    """Every override with a ceiling, allowed and asked far above it: LiteLLM holds the
    policy's values, and metadata overrides never touch the operator's markers or the keys
    LiteLLM reads limits from."""
    ns = tenant.namespace
    team = ident("t-team")
    await admin.litellm.new_team(team)
    numbers = ["maxBudget", "tpmLimit", "rpmLimit", "maxParallelRequests", "maxBudgetInTeam"]
    limits = ["modelRpmLimit", "modelTpmLimit", "metadata"]
    policy = admin.policy(
        granted(
            ns,
            defaults={
                "maxBudget": 5,
                "models": ["gpt-4o-mini"],
                "teams": [team],
                "maxBudgetInTeam": 1,
                "tpmLimit": 1000,
                "rpmLimit": 10,
                "maxParallelRequests": 2,
                "modelRpmLimit": {"gpt-4o-mini": 5},
                "modelTpmLimit": {"gpt-4o-mini": 500},
            },
            overrides={"allowedFields": numbers + limits},
        )
    )
    name = ident("greedy")
    forged = {
        MANAGED_BY: "someone-else",
        OWNER_UID: "forged",
        "model_rpm_limit": '{"gpt-4o-mini": 100000}',
        "model_tpm_limit": '{"gpt-4o-mini": 100000}',
    }
    overrides = {
        **dict.fromkeys(numbers, 100_000),
        "modelRpmLimit": {"gpt-4o-mini": 100_000},
        "modelTpmLimit": {"gpt-4o-mini": 100_000},
        "metadata": forged,
    }
    tenant.apply(name, {"policyRef": policy, "overrides": overrides})
    uid = admin.cluster.wait_ready(ns, name)["metadata"]["uid"]

    record = await admin.record(name)
    assert record is not None
    held = (record.max_budget, record.tpm_limit, record.rpm_limit, record.max_parallel_requests)
    assert held == (5, 1000, 10, 2)
    assert (record.metadata[MANAGED_BY], record.metadata[OWNER_UID]) == ("litellm-operator", uid)
    assert record.metadata["model_rpm_limit"] == {"gpt-4o-mini": 5}
    assert record.metadata["model_tpm_limit"] == {"gpt-4o-mini": 500}
    info = await admin.litellm.get_team(team)
    assert info is not None
    (membership,) = [m for m in info.memberships if m.user_id == name]
    assert membership.max_budget_in_team == 1


@attacks("overrides.models", "overrides.teams", "overrides.userRole", "overrides.budgetDuration")
async def test_overrides_beyond_the_policy_are_refused(tenant: Tenant, admin: Admin) -> None:
    """Allowed to override them, the tenant asks for a model, a team, a role and a shorter
    budget period the policy does not give: each is refused, and nothing reaches LiteLLM."""
    ns = tenant.namespace
    fields = ["models", "teams", "userRole", "budgetDuration"]
    policy = admin.policy(
        granted(
            ns,
            defaults={"models": ["gpt-4o-mini"], "budgetDuration": "30d", "teams": []},
            overrides={"allowedFields": fields},
        )
    )
    asks: dict[str, tuple[Any, str]] = {
        "models": (["gpt-4o"], "ModelNotAllowed"),
        "teams": ([ident("admins")], "TeamNotAllowed"),
        "userRole": ("proxy_admin", "RoleNotAllowed"),
        "budgetDuration": ("1s", "OverrideForbidden"),
    }
    names = {field: ident(field.lower()) for field in asks}
    for field, (value, _) in asks.items():
        tenant.apply(names[field], {"policyRef": policy, "overrides": {field: value}})
    for field, (_, reason) in asks.items():
        condition = admin.cluster.wait_reason(ns, names[field], reason)
        assert f"spec.overrides.{field}" in condition["message"]
        assert await admin.record(names[field]) is None, field


@attacks("alias")
async def test_an_alias_is_only_a_display_name(tenant: Tenant, admin: Admin) -> None:
    """An alias with control characters or beyond the size limit is refused at admission; a
    valid one is the user's display name and nothing else (no id, e-mail or role)."""
    ns = tenant.namespace
    policy = admin.policy(granted(ns))
    for alias in ("Boss\nproxy_admin", "x" * 300):
        refused = tenant.apply("odd", {"policyRef": policy, "alias": alias}, check=False)
        assert refused.returncode != 0
    assert admin.cluster.get_user(ns, "odd") is None
    name = ident("alias")
    tenant.apply(name, {"policyRef": policy, "alias": "default_user_id"})
    admin.cluster.wait_ready(ns, name)
    record = await admin.record(name)
    assert record is not None
    assert (record.user_alias, record.user_role, record.user_email) == (
        "default_user_id",
        "internal_user",
        None,
    )


@attacks("suspend")
async def test_suspend_never_unblocks_what_the_admin_blocked(
    tenant: Tenant, admin: Admin, litellm_env: LiteLLMEndpoint
) -> None:
    """Suspending blocks the user's keys; lifting it unblocks only the keys the suspension
    blocked: a key the admin blocked by hand stays blocked through any number of toggles."""
    ns = tenant.namespace
    policy = admin.policy(granted(ns))
    name = ident("toggler")
    tenant.apply(name, {"policyRef": policy})
    admin.cluster.wait_ready(ns, name)
    by_hand = await admin.litellm.generate_key(user_id=name, key_alias=ident("by-hand"))
    spare = await admin.litellm.generate_key(user_id=name, key_alias=ident("spare"))
    await admin.litellm.block_key(by_hand.key)
    for suspend in (True, False, True, False):
        tenant.apply(name, {"policyRef": policy, "suspend": suspend})
        reason = "Suspended" if suspend else "Synced"
        admin.cluster.wait_reason(ns, name, reason)
        assert works(litellm_env.url, spare.key.get_secret_value()) is not suspend
    assert not works(litellm_env.url, by_hand.key.get_secret_value())


def test_the_operator_s_annotations_are_the_operator_s(
    tenant: Tenant, admin: Admin, kube_env: KubeEnv
) -> None:
    """Under the shipped admission policy, a tenant writes no annotation under the operator's
    or kopf's prefixes (the rotate annotation aside, bounded), and every annotation it can write
    counts towards the 64 KiB budget; the operator (here: system:masters) still writes them."""
    ns = tenant.namespace
    policy = admin.policy(granted(ns))
    kube_env.kubectl("apply", "--server-side", "-f", str(ADMISSION_POLICY))

    def create(annotations: dict[str, str]) -> Any:
        body = {
            "apiVersion": API_VERSION,
            "kind": "LiteLLMUser",
            "metadata": {"name": ident("notes"), "namespace": ns, "annotations": annotations},
            "spec": {"policyRef": policy},
        }
        return tenant.kube.kubectl("create", "-f", "-", input=json.dumps(body), check=False)

    def annotate(who: KubeEnv, name: str, *changes: str) -> Any:
        return who.kubectl(
            "annotate",
            "litellmuser",
            name,
            f"--namespace={ns}",
            "--overwrite",
            *changes,
            check=False,
        )

    reserved = "annotations under litellm.platform.dev/ and kopf.zalando.org/ are the operator's"
    eventually(
        lambda: reserved in create({"litellm.platform.dev/owner-uid": "forged"}).stderr,
        timeout=30,
        what="the admission policy in force",
    )
    for key in (
        "kopf.zalando.org/last-handled-configuration",
        "litellm.platform.dev/adopted",
        "reconcile.litellm.platform.dev/progress",
        "Kopf.Zalando.org/x",
    ):
        refused = create({key: "{}"})
        assert refused.returncode != 0, key
        assert reserved in refused.stderr, key

    big = {"example.com/note": "x" * 65_500}
    assert "64 KiB" in create({**big, "litellm.platform.dev/rotate": "r" * 60}).stderr
    assert "at most 63" in create({"litellm.platform.dev/rotate": "r" * 64}).stderr
    accepted = create(big)
    assert accepted.returncode == 0, accepted.stderr

    name = ident("kept")
    tenant.apply(name, {"policyRef": policy})
    admin.cluster.wait_ready(ns, name)
    assert annotate(kube_env, name, "litellm.platform.dev/mark=operator").returncode == 0
    assert annotate(tenant.kube, name, "note=mine").returncode == 0
    assert annotate(tenant.kube, name, "litellm.platform.dev/rotate=r2").returncode == 0
    for change in ("litellm.platform.dev/mark=tenant", "litellm.platform.dev/mark-"):
        refused = annotate(tenant.kube, name, change)
        assert refused.returncode != 0, change
        assert reserved in refused.stderr
    notes = (admin.cluster.get_user(ns, name) or {})["metadata"]["annotations"]
    assert notes["litellm.platform.dev/mark"] == "operator"
    for created in [name, accepted.stdout.split("/")[-1].split()[0]]:
        admin.cluster.delete_user(ns, created)
