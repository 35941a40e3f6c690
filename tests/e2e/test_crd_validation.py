"""The generated CRD schemas as a real kube-apiserver enforces them.

Only the API server is needed (no LiteLLM, no operator): the examples are accepted, negative
budgets are rejected, the CEL rule keeps spec.userId immutable, and an explicit null in a
policy's defaults survives (it means "no budget cap").
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.e2e.operator_harness import eventually
from tests.fixtures.kube import KubeEnv
from tests.fixtures.policies import ANY_IDENTITY

pytestmark = pytest.mark.e2e

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def manifest(path: Path, **metadata: str) -> dict[str, Any]:
    body: dict[str, Any] = yaml.safe_load(path.read_text(encoding="utf-8"))
    body["metadata"].update(metadata)
    return body


def apply(kube_env: KubeEnv, body: dict[str, Any], *, check: bool = True) -> Any:
    return kube_env.kubectl(
        "apply",
        "--server-side",
        "--field-manager=e2e",
        "-o",
        "json",
        "-f",
        "-",
        input=json.dumps(body),
        check=check,
    )


def user_body(namespace: str, name: str, spec: dict[str, Any]) -> dict[str, Any]:
    """A LiteLLMUser manifest for the API server alone (no operator involved)."""
    return {
        "apiVersion": "litellm.platform.dev/v1alpha1",
        "kind": "LiteLLMUser",
        "metadata": {"name": name, "namespace": namespace},
        "spec": spec,
    }


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:6]}"


@pytest.mark.parametrize("name", ["alice", "bob", "carol", "svc-ci"])
def test_example_users_are_accepted(
    kube_env: KubeEnv, crds_installed: list[str], namespace: str, name: str
) -> None:
    del crds_installed
    body = manifest(EXAMPLES / "users" / f"{name}.yaml", namespace=namespace)
    stored = json.loads(apply(kube_env, body).stdout)
    assert stored["spec"]["policyRef"] == "default"  # schema default applied
    assert stored["spec"]["adopt"] is False


def test_example_teams_are_accepted(
    kube_env: KubeEnv, crds_installed: list[str], namespace: str
) -> None:
    del crds_installed
    body = manifest(EXAMPLES / "teams" / "power-users.yaml", namespace=namespace)
    stored = json.loads(apply(kube_env, body).stdout)
    assert stored["spec"]["maxBudget"] == 500
    assert stored["spec"]["adopt"] is False


@pytest.mark.parametrize("file", ["policy.yaml", "policy-v2.yaml"])
def test_example_policies_are_accepted_and_keep_explicit_nulls(
    kube_env: KubeEnv, crds_installed: list[str], file: str
) -> None:
    del crds_installed
    name = unique("example")
    body = manifest(EXAMPLES / file, name=name)
    body["spec"]["defaults"]["maxBudget"] = None
    try:
        stored = json.loads(apply(kube_env, body).stdout)
        assert "maxBudget" in stored["spec"]["defaults"]
        assert stored["spec"]["defaults"]["maxBudget"] is None
    finally:
        kube_env.kubectl("delete", "provisioningpolicy", name, "--ignore-not-found")


@pytest.mark.parametrize(
    ("spec", "fragment"),
    [
        pytest.param({"overrides": {"maxBudget": -1}}, "maxBudget", id="negative-budget"),
        pytest.param({"overrides": {"rpmLimit": -1}}, "rpmLimit", id="negative-rpm"),
        pytest.param(
            {"overrides": {"budgetDuration": "monthly"}}, "budgetDuration", id="bad-duration"
        ),
        pytest.param({"deletionPolicy": "Orphan"}, "deletionPolicy", id="bad-enum"),
        pytest.param({"userId": "u" * 255}, "spec.userId", id="user-id-too-long"),
        pytest.param({"userId": "ops\nroot"}, "spec.userId", id="newline-in-user-id"),
        pytest.param({"userId": "ops root"}, "spec.userId", id="space-in-user-id"),
        pytest.param({"email": "alice"}, "spec.email", id="email-without-at"),
        pytest.param({"email": "a@b.io\nx@y.io"}, "spec.email", id="newline-in-email"),
        pytest.param({"email": "a@" + "b" * 250 + ".io"}, "spec.email", id="email-too-long"),
        pytest.param({"alias": "A\u0007lice"}, "spec.alias", id="control-in-alias"),
        pytest.param({"groups": ["g"] * 65}, "spec.groups", id="too-many-groups"),
        pytest.param({"groups": ["g" * 254]}, "spec.groups", id="group-name-too-long"),
        pytest.param(
            {"overrides": {"metadata": {f"k{i}": "v" for i in range(33)}}},
            "spec.overrides.metadata",
            id="too-many-metadata-entries",
        ),
        pytest.param(
            {"overrides": {"metadata": {"k": "v" * 600_000}}},
            "spec.overrides.metadata",
            id="600-kb-metadata-value",
        ),
        pytest.param(
            {"overrides": {"metadata": {"k" * 129: "v"}}},
            "keys must be 1 to 128 characters long",
            id="metadata-key-too-long",
        ),
        pytest.param(
            {"overrides": {"models": [f"m{i}" for i in range(65)]}},
            "spec.overrides.models",
            id="too-many-models",
        ),
        pytest.param(
            {"keys": [{"name": "ci"}, {"name": "ci", "maxBudget": 1}]},
            "duplicate entries for key",
            id="duplicate-key-name",
        ),
        pytest.param({"keys": [{"name": "CI_Key"}]}, "spec.keys[0].name", id="key-not-dns-label"),
        pytest.param(
            {"keys": [{"name": "ci", "gracePeriod": "an hour"}]},
            "spec.keys[0].gracePeriod",
            id="bad-grace-period",
        ),
        pytest.param(
            {"keys": [{"name": f"k{i}"} for i in range(17)]}, "spec.keys", id="too-many-keys"
        ),
        pytest.param(
            {"keys": [{"name": "ci", "rotateEvery": "0s"}]}, "at least 1m", id="rotate-every-0s"
        ),
        pytest.param(
            {"keys": [{"name": "ci", "rotateEvery": "0h59s"}]},
            "at least 1m",
            id="rotate-every-59s",
        ),
    ],
)
def test_invalid_users_are_rejected(
    kube_env: KubeEnv,
    crds_installed: list[str],
    namespace: str,
    spec: dict[str, Any],
    fragment: str,
) -> None:
    del crds_installed
    body = user_body(namespace, "bad", spec)
    result = apply(kube_env, body, check=False)
    assert result.returncode != 0
    assert fragment in result.stderr


@pytest.mark.parametrize(
    ("spec", "fragment"),
    [
        pytest.param(
            {"defaults": {"maxBudget": 1}, "identities": ANY_IDENTITY},
            "allowedNamespaces",
            id="no-namespaces",
        ),
        pytest.param(
            {"allowedNamespaces": [], "identities": ANY_IDENTITY},
            "allowedNamespaces",
            id="empty-namespaces",
        ),
        pytest.param(
            {
                "allowedNamespaces": ["*"],
                "identities": ANY_IDENTITY,
                "roles": [{"group": "g", "namespaces": []}],
            },
            "namespaces",
            id="role-granted-nowhere",
        ),
        pytest.param(
            {"allowedNamespaces": ["Team A"], "identities": ANY_IDENTITY},
            "allowedNamespaces",
            id="not-a-namespace-glob",
        ),
        pytest.param({"allowedNamespaces": ["*"]}, "identities", id="no-identities"),
        pytest.param(
            {"allowedNamespaces": ["*"], "identities": []}, "identities", id="empty-identities"
        ),
        pytest.param(
            {"allowedNamespaces": ["*"], "identities": [{"emails": ["*"]}]},
            "namespaces",
            id="identity-grant-without-namespaces",
        ),
        pytest.param(
            {"allowedNamespaces": ["*"], "identities": [{"namespaces": ["*"], "userIds": ["a b"]}]},
            "userIds",
            id="identity-glob-with-a-space",
        ),
        pytest.param(
            {
                "allowedNamespaces": ["*"],
                "identities": ANY_IDENTITY,
                "keys": {"minRotateEvery": "30s"},
            },
            "at least 1m",
            id="rotation-floor-under-1m",
        ),
        pytest.param(
            {"allowedNamespaces": ["*"], "identities": ANY_IDENTITY, "keys": {"rotateEvery": "0s"}},
            "at least 1m",
            id="default-rotation-under-1m",
        ),
    ],
)
def test_invalid_policies_are_rejected(
    kube_env: KubeEnv, crds_installed: list[str], spec: dict[str, Any], fragment: str
) -> None:
    del crds_installed
    body = {
        "apiVersion": "litellm.platform.dev/v1alpha1",
        "kind": "ProvisioningPolicy",
        "metadata": {"name": unique("bad")},
        "spec": spec,
    }
    result = apply(kube_env, body, check=False)
    assert result.returncode != 0
    assert fragment in result.stderr


def test_policy_without_spec_is_rejected(kube_env: KubeEnv, crds_installed: list[str]) -> None:
    del crds_installed
    body = {
        "apiVersion": "litellm.platform.dev/v1alpha1",
        "kind": "ProvisioningPolicy",
        "metadata": {"name": unique("bare")},
    }
    result = apply(kube_env, body, check=False)
    assert result.returncode != 0
    assert "spec" in result.stderr


def test_user_id_cannot_be_added_after_the_operator_pinned_one(
    kube_env: KubeEnv, crds_installed: list[str], namespace: str
) -> None:
    """Once status.userId is pinned, a spec.userId naming another id is refused at admission."""
    del crds_installed
    body: dict[str, Any] = user_body(namespace, "erin", {"email": "erin@example.com"})
    apply(kube_env, body)
    kube_env.kubectl(
        "patch",
        "litellmuser",
        "erin",
        f"--namespace={namespace}",
        "--subresource=status",
        "--type=merge",
        "--patch",
        json.dumps({"status": {"userId": "erin@example.com"}}),
    )
    body["spec"]["userId"] = "root"
    result = apply(kube_env, body, check=False)
    assert result.returncode != 0
    assert "cannot differ from the user id the operator pinned" in result.stderr
    body["spec"]["userId"] = "erin@example.com"  # naming the pinned id itself is fine
    apply(kube_env, body)


def test_user_id_is_immutable_once_set(
    kube_env: KubeEnv, crds_installed: list[str], namespace: str
) -> None:
    del crds_installed
    body: dict[str, Any] = user_body(namespace, "dana", {"userId": "dana@example.com"})
    apply(kube_env, body)
    body["spec"]["userId"] = "someone-else"
    result = apply(kube_env, body, check=False)
    assert result.returncode != 0
    assert "spec.userId is immutable once set" in result.stderr
    body["spec"] = {"email": "dana@example.com"}
    result = apply(kube_env, body, check=False)
    assert result.returncode != 0, "removing userId must be rejected too"


def team_body(namespace: str, name: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {**user_body(namespace, name, spec), "kind": "LiteLLMTeam"}


@pytest.mark.parametrize(
    ("spec", "fragment"),
    [
        pytest.param({"maxBudget": -1}, "spec.maxBudget", id="negative-budget"),
        pytest.param({"tpmLimit": -5}, "spec.tpmLimit", id="negative-tpm"),
        pytest.param({"budgetDuration": "a month"}, "spec.budgetDuration", id="bad-duration"),
        pytest.param({"alias": "A\nB"}, "spec.alias", id="newline-in-alias"),
        pytest.param({"teamId": "a b"}, "spec.teamId", id="space-in-team-id"),
        pytest.param({"deletionPolicy": "Orphan"}, "spec.deletionPolicy", id="bad-deletion"),
        pytest.param({"blocked": "yes"}, "spec.blocked", id="blocked-not-bool"),
        pytest.param({"models": [f"m{i}" for i in range(65)]}, "spec.models", id="too-many-models"),
    ],
)
def test_invalid_teams_are_rejected(
    kube_env: KubeEnv,
    crds_installed: list[str],
    namespace: str,
    spec: dict[str, Any],
    fragment: str,
) -> None:
    del crds_installed
    result = apply(kube_env, team_body(namespace, "bad", spec), check=False)
    assert result.returncode != 0
    assert fragment in result.stderr


def test_team_id_is_immutable_and_pinned(
    kube_env: KubeEnv, crds_installed: list[str], namespace: str
) -> None:
    del crds_installed
    body: dict[str, Any] = team_body(namespace, "crew", {"teamId": "crew-1", "maxBudget": 5})
    stored = json.loads(apply(kube_env, body).stdout)
    assert stored["spec"]["policyRef"] == "default"
    body["spec"]["teamId"] = "crew-2"
    result = apply(kube_env, body, check=False)
    assert result.returncode != 0
    assert "spec.teamId is immutable once set" in result.stderr
    other: dict[str, Any] = team_body(namespace, "crew-b", {})
    apply(kube_env, other)
    kube_env.kubectl(
        "patch", "litellmteam", "crew-b", f"--namespace={namespace}", "--subresource=status",
        "--type=merge", "--patch", json.dumps({"status": {"teamId": f"{namespace}.crew-b"}}),
    )  # fmt: skip
    other["spec"]["teamId"] = "someone-elses"
    result = apply(kube_env, other, check=False)
    assert result.returncode != 0
    assert "cannot differ from the team id the operator pinned" in result.stderr


def test_policy_teams_section_is_optional_and_bounded(
    kube_env: KubeEnv, crds_installed: list[str]
) -> None:
    del crds_installed
    spec: dict[str, Any] = {"allowedNamespaces": ["*"], "identities": ANY_IDENTITY}
    body: dict[str, Any] = {
        "apiVersion": "litellm.platform.dev/v1alpha1",
        "kind": "ProvisioningPolicy",
        "metadata": {"name": unique("teams")},
        "spec": {**spec, "teams": {"maxBudget": -1}},
    }
    result = apply(kube_env, body, check=False)
    assert result.returncode != 0
    assert "spec.teams.maxBudget" in result.stderr
    body["spec"] = {**spec, "teams": {"maxBudget": 50, "allowedModels": ["m"]}}
    try:
        stored = json.loads(apply(kube_env, body).stdout)
        assert stored["spec"]["teams"]["adoptExistingTeams"] is False
    finally:
        kube_env.kubectl("delete", "provisioningpolicy", body["metadata"]["name"])


@pytest.mark.parametrize(
    "field",
    [
        "litellmteam.spec.maxBudget",
        "litellmteam.status.members",
        "provisioningpolicy.spec.teams.adoptExistingTeams",
        "litellmuser.spec.alias",
        "litellmuser.spec.email",
        "litellmuser.spec.overrides.userRole",
        "litellmuser.status.maxBudget",
        "provisioningpolicy.spec.defaults.userRole",
        "provisioningpolicy.status.updatedUsers",
    ],
)
def test_kubectl_explain_describes_every_field(
    kube_env: KubeEnv, crds_installed: list[str], field: str
) -> None:
    del crds_installed

    def explained() -> str | None:  # the CRD's OpenAPI is published a moment after Established
        result = kube_env.kubectl("explain", field, check=False)
        return result.stdout if result.returncode == 0 else None

    text = eventually(explained, timeout=30, what=f"kubectl explain {field}")
    description = text.split("DESCRIPTION:", 1)[1].strip()
    assert description, text
    assert description != "<empty>", text
