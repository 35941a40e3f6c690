"""`litellm-operator explain` end to end: real example files in, text/JSON/YAML out, exit codes."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path
from typing import Any

import pytest
import yaml

from litellm_operator.cli import main

ANY_IDS = "identities: [{namespaces: ['*'], emails: ['*'], userIds: ['*']}]"

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
POLICY = str(EXAMPLES / "policy.yaml")
POLICY_V2 = str(EXAMPLES / "policy-v2.yaml")
USERS = str(EXAMPLES / "users")
KEYS = {
    "name",
    "namespace",
    "userId",
    "policy",
    "matchedRole",
    "ignoredGroups",
    "effective",
    "sources",
    "keys",
}
EFFECTIVE_KEYS = [
    "maxBudget",
    "budgetDuration",
    "models",
    "teams",
    "maxBudgetInTeam",
    "tpmLimit",
    "rpmLimit",
    "maxParallelRequests",
    "modelRpmLimit",
    "modelTpmLimit",
    "userRole",
    "metadata",
]


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def explain_json(capsys: pytest.CaptureFixture[str], *argv: str) -> Any:
    code, out, err = run(capsys, "explain", *argv, "-o", "json")
    assert (code, err) == (0, "")
    return json.loads(out)


def write(directory: Path, name: str, text: str) -> str:
    path = directory / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return str(path)


# --- good input --------------------------------------------------------------------------------


def test_json_has_exactly_the_documented_keys(capsys: pytest.CaptureFixture[str]) -> None:
    records = explain_json(capsys, "--policy", POLICY, "--user", USERS)
    assert [r["name"] for r in records] == ["alice", "bob", "carol", "svc-ci"]
    for record in records:
        assert set(record) == KEYS
        assert list(record["effective"]) == EFFECTIVE_KEYS
        assert list(record["sources"]) == EFFECTIVE_KEYS
        assert set(record["sources"].values()) <= {"builtin", "default", "role", "override"}


def test_json_values_of_the_examples(capsys: pytest.CaptureFixture[str]) -> None:
    alice, bob, carol, ci = explain_json(capsys, "--policy", POLICY, "--user", USERS)
    assert alice["userId"] == "alice@example.com"
    assert alice["matchedRole"] == "ai-power-users"
    assert alice["effective"]["maxBudget"] == 100
    assert alice["effective"]["metadata"] == {
        "provisioned-by": "litellm-operator",
        "cost-center": "research",
    }
    assert bob["matchedRole"] is None
    assert bob["ignoredGroups"] == ["platform-admins"], "granted to namespace platform only"
    assert bob["effective"]["userRole"] == "internal_user"
    assert bob["sources"]["maxBudget"] == "default"
    assert alice["ignoredGroups"] == []
    assert carol["userId"] == "carol.admin"
    assert carol["matchedRole"] == "group:default/platform-admins"
    assert carol["namespace"] == "platform"
    assert carol["effective"]["userRole"] == "proxy_admin"
    assert carol["effective"]["models"] == []
    assert ci["effective"]["maxBudget"] == 50
    assert ci["sources"]["models"] == "override"


def test_users_keep_input_order(capsys: pytest.CaptureFixture[str]) -> None:
    records = explain_json(
        capsys,
        "--policy",
        POLICY,
        "--user",
        str(EXAMPLES / "users" / "svc-ci.yaml"),
        "--user",
        str(EXAMPLES / "users" / "alice.yaml"),
    )
    assert [r["name"] for r in records] == ["svc-ci", "alice"]


def test_yaml_output_matches_json(capsys: pytest.CaptureFixture[str]) -> None:
    as_json = explain_json(capsys, "--policy", POLICY, "--user", USERS)
    code, out, _ = run(capsys, "explain", "--policy", POLICY, "--user", USERS, "-o", "yaml")
    assert code == 0
    assert yaml.safe_load(out) == as_json


def test_table_is_the_default(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "explain", "--policy", POLICY, "--user", USERS)
    assert (code, err) == (0, "")
    assert "team-a/alice: userId alice@example.com, policy default, role ai-power-users" in out
    assert "maxBudget" in out
    assert "(no role matched)" in out
    assert "note: spec.overrides.maxBudget: 75 exceeds the policy ceiling 50" in out


def test_directory_scan_skips_policies(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for source in [EXAMPLES / "policy.yaml", *sorted((EXAMPLES / "users").glob("*.yaml"))]:
        (tmp_path / source.name).write_text(source.read_text(encoding="utf-8"), encoding="utf-8")
    (tmp_path / "README.md").write_text("not yaml: [", encoding="utf-8")
    records = explain_json(capsys, "--policy", POLICY, "--user", str(tmp_path))
    assert [r["name"] for r in records] == ["alice", "bob", "carol", "svc-ci"]


def test_multi_document_and_list_files(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    users = write(
        tmp_path,
        "users.yaml",
        """\
        apiVersion: litellm.platform.dev/v1alpha1
        kind: LiteLLMUser
        metadata: {name: one}
        ---
        ---
        apiVersion: v1
        kind: List
        items:
        - apiVersion: litellm.platform.dev/v1alpha1
          kind: LiteLLMUser
          metadata: {name: two, namespace: team-b}
        """,
    )
    policies = write(
        tmp_path,
        "policies.yaml",
        """\
        apiVersion: litellm.platform.dev/v1alpha1
        kind: ProvisioningPolicy
        metadata: {name: default}
        spec:
          allowedNamespaces: ["*"]
          identities: [{namespaces: ["*"], emails: ["*"], userIds: ["*"]}]
        ---
        apiVersion: litellm.platform.dev/v1alpha1
        kind: ProvisioningPolicy
        metadata: {name: other}
        spec:
          allowedNamespaces: ["*"]
          identities: [{namespaces: ["*"], emails: ["*"], userIds: ["*"]}]
          defaults: {maxBudget: null}
        """,
    )
    one, two = explain_json(capsys, "--policy", policies, "--user", users)
    assert (one["name"], one["namespace"], one["effective"]["maxBudget"]) == ("one", "default", 10)
    assert (two["name"], two["namespace"]) == ("two", "team-b")


# --- compare -----------------------------------------------------------------------------------


def test_compare_table(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(
        capsys, "explain", "--policy", POLICY_V2, "--user", USERS, "--compare", POLICY
    )
    assert (code, err) == (0, "")
    assert "team-a/alice (alice@example.com):" in out
    assert "  maxBudget: 100 -> 150" in out
    assert "  budgetDuration: 7d -> 30d" in out
    assert "  rpmLimit: 60 -> 120" in out
    assert "  models: gpt-4o-mini, claude-3-5-haiku -> " in out
    assert "text-embedding-3-small (+text-embedding-3-small)" in out
    assert "team-a/carol" not in out
    assert out.rstrip().endswith("1 user unchanged")


def test_compare_json(capsys: pytest.CaptureFixture[str]) -> None:
    report = explain_json(capsys, "--policy", POLICY_V2, "--user", USERS, "--compare", POLICY)
    assert report["unchanged"] == 1
    changed = {entry["name"]: entry for entry in report["changed"]}
    assert set(changed) == {"alice", "bob", "svc-ci"}
    assert changed["alice"]["changes"]["maxBudget"] == {"old": 100, "new": 150}
    assert changed["svc-ci"]["changes"] == {"rpmLimit": {"old": 60, "new": 120}}
    assert changed["bob"]["oldError"] is None


def test_compare_shows_whose_role_a_namespace_grant_changes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = (EXAMPLES / "policy.yaml").read_text(encoding="utf-8")
    widened = text.replace("namespaces: [platform]", "namespaces: [platform, team-a]")
    assert widened != text
    new = write(tmp_path, "new.yaml", widened)
    report = explain_json(capsys, "--policy", new, "--user", USERS, "--compare", POLICY)
    changed = {entry["name"]: entry["changes"] for entry in report["changed"]}
    assert set(changed) == {"bob"}, "only bob claims platform-admins in team-a"
    assert changed["bob"]["matchedRole"] == {"old": None, "new": "group:default/platform-admins"}
    assert changed["bob"]["userRole"] == {"old": "internal_user", "new": "proxy_admin"}


def test_compare_same_policy_changes_nothing(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "explain", "--policy", POLICY, "--user", USERS, "--compare", POLICY)
    assert code == 0
    assert out == "no user's effective settings change\n4 users unchanged\n"


def test_compare_reports_users_the_old_policy_rejected(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    old = write(
        tmp_path,
        "old.yaml",
        """\
        apiVersion: litellm.platform.dev/v1alpha1
        kind: ProvisioningPolicy
        metadata: {name: default}
        spec:
          allowedNamespaces: [prod]
          identities: [{namespaces: ["*"], emails: ["*"], userIds: ["*"]}]
        """,
    )
    report = explain_json(
        capsys, "--policy", POLICY, "--user", str(EXAMPLES / "users" / "bob.yaml"), "--compare", old
    )
    (entry,) = report["changed"]
    assert "NamespaceNotAllowed" in entry["oldError"]
    assert "metadata.namespace" in entry["oldError"]


# --- bad input ---------------------------------------------------------------------------------

GOOD_USER = """\
apiVersion: litellm.platform.dev/v1alpha1
kind: LiteLLMUser
metadata: {name: dave, namespace: team-a}
"""

BAD_USERS = [
    pytest.param("key: [unclosed\n", ["document 1", "invalid YAML"], id="unparseable-yaml"),
    pytest.param(
        GOOD_USER + "---\nkey: [unclosed\n", ["document 2", "invalid YAML"], id="yaml-error-later"
    ),
    pytest.param(
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: cm}\n",
        ["document 1 (cm)", "kind", "expected LiteLLMUser, got 'ConfigMap'"],
        id="wrong-kind",
    ),
    pytest.param("- just\n- a list\n", ["document 1", "expected a mapping"], id="not-a-mapping"),
    pytest.param(
        GOOD_USER.replace("v1alpha1", "v1"),
        ["document 1 (dave)", "apiVersion"],
        id="wrong-api-version",
    ),
    pytest.param(
        GOOD_USER + "spec: {groups: ai-power-users}\n",
        ["document 1 (dave)", "spec.groups", "valid list"],
        id="wrong-type",
    ),
    pytest.param(
        GOOD_USER + "spec: {overrides: {maxBudget: '10'}}\n",
        ["document 1 (dave)", "spec.overrides.maxBudget", "valid number"],
        id="string-is-not-a-number",
    ),
    pytest.param(
        GOOD_USER + "spec: {overrides: {maxBudget: -5}}\n",
        ["document 1 (dave)", "spec.overrides.maxBudget", "greater than or equal to 0"],
        id="negative-budget",
    ),
    pytest.param(
        GOOD_USER + "spec: {groupz: [x]}\n",
        ["document 1 (dave)", "spec.groupz", "Extra inputs"],
        id="typo-in-field-name",
    ),
    pytest.param(
        GOOD_USER + "spec: {policyRef: nope}\n",
        ["document 1 (dave)", "spec.policyRef", "policy 'nope' not found"],
        id="policy-does-not-exist",
    ),
    pytest.param(
        GOOD_USER + "spec: {overrides: {userRole: proxy_admin}}\n",
        ["document 1 (dave)", "spec.overrides.userRole", "OverrideForbidden"],
        id="override-forbidden",
    ),
    pytest.param(
        GOOD_USER + "spec: {overrides: {models: [gpt-4o]}}\n",
        ["document 1 (dave)", "spec.overrides.models", "ModelNotAllowed"],
        id="model-not-allowed",
    ),
    pytest.param(
        GOOD_USER.replace("team-a", "kube-system"),
        ["document 1 (dave)", "metadata.namespace", "NamespaceNotAllowed"],
        id="namespace-not-allowed",
    ),
    pytest.param(
        GOOD_USER + "spec: {email: boss@corp.example}\n",
        [
            "document 1 (dave)",
            "spec.email",
            "does not grant 'boss@corp.example'",
            "IdentityNotAllowed",
        ],
        id="identity-not-granted",
    ),
    pytest.param(
        GOOD_USER.replace("dave", "{}"),
        ["document 1", "metadata.name"],
        id="name-of-wrong-type",
    ),
    pytest.param(
        (EXAMPLES / "policy.yaml").read_text(encoding="utf-8"),
        ["document 1 (default)", "kind", "expected LiteLLMUser, got 'ProvisioningPolicy'"],
        id="policy-in-a-user-file",
    ),
    pytest.param("", ["no LiteLLMUser documents found"], id="no-users"),
]


@pytest.mark.parametrize(("text", "expected"), BAD_USERS)
def test_bad_user_input(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str, expected: list[str]
) -> None:
    path = write(tmp_path, "bad.yaml", text)
    code, out, err = run(capsys, "explain", "--policy", POLICY, "--user", path)
    assert code == 2
    assert out == ""
    assert "Traceback" not in err
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith(path)
    for fragment in expected:
        assert fragment in lines[0]


BAD_POLICIES = [
    pytest.param(
        "apiVersion: litellm.platform.dev/v1alpha1\nkind: ProvisioningPolicy\n"
        "metadata: {name: default}\n"
        "spec: {allowedNamespaces: ['*'], " + ANY_IDS + ", defaults: {maxBudget: -1}}\n",
        ["document 1 (default)", "spec.defaults.maxBudget", "greater than or equal to 0"],
        id="negative-default-budget",
    ),
    pytest.param(
        "apiVersion: litellm.platform.dev/v1alpha1\nkind: ProvisioningPolicy\n"
        "metadata: {name: default}\n"
        "spec: {allowedNamespaces: ['*'], "
        + ANY_IDS
        + ", roles: [{group: a, budgetDuration: monthly}]}\n",
        ["spec.roles[0].budgetDuration", "pattern"],
        id="bad-duration-in-role",
    ),
    pytest.param(
        "apiVersion: litellm.platform.dev/v1alpha1\nkind: ProvisioningPolicy\n"
        "metadata: {name: default}\n"
        "spec: {allowedNamespaces: ['*'], " + ANY_IDS + ", defaults: {userRole: god}}\n",
        ["spec.defaults.userRole", "proxy_admin"],
        id="unknown-user-role",
    ),
    pytest.param(GOOD_USER, ["expected ProvisioningPolicy"], id="user-in-a-policy-file"),
    pytest.param(
        "apiVersion: litellm.platform.dev/v1alpha1\nkind: ProvisioningPolicy\n"
        "metadata: {name: default}\nspec: {" + ANY_IDS + ", defaults: {maxBudget: 5}}\n",
        ["spec.allowedNamespaces", "required"],
        id="no-allowed-namespaces",
    ),
    pytest.param(
        "apiVersion: litellm.platform.dev/v1alpha1\nkind: ProvisioningPolicy\n"
        "metadata: {name: default}\nspec: {allowedNamespaces: ['*']}\n",
        ["spec.identities", "required"],
        id="no-identities",
    ),
    pytest.param(
        "apiVersion: litellm.platform.dev/v1alpha1\nkind: ProvisioningPolicy\n"
        "metadata: {name: default}\nspec: {allowedNamespaces: [], " + ANY_IDS + "}\n",
        ["spec.allowedNamespaces", "at least 1"],
        id="empty-allowed-namespaces",
    ),
    pytest.param(
        "apiVersion: litellm.platform.dev/v1alpha1\nkind: ProvisioningPolicy\n"
        "metadata: {name: default}\n"
        "spec: {allowedNamespaces: ['*'], " + ANY_IDS + ", roles: [{group: a, namespaces: []}]}\n",
        ["spec.roles[0].namespaces", "at least 1"],
        id="role-granted-nowhere",
    ),
    pytest.param(
        "apiVersion: litellm.platform.dev/v1alpha1\nkind: ProvisioningPolicy\n"
        "metadata: {name: default}\n"
        "spec: {allowedNamespaces: ['*'], "
        + ANY_IDS
        + ", overrides: {userIdPattern: '(unclosed'}}\n",
        ["spec.overrides.userIdPattern", "not a regular expression"],
        id="user-id-pattern-does-not-compile",
    ),
]


@pytest.mark.parametrize(("text", "expected"), BAD_POLICIES)
def test_bad_policy_input(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str, expected: list[str]
) -> None:
    path = write(tmp_path, "policy.yaml", text)
    code, out, err = run(capsys, "explain", "--policy", path, "--user", USERS)
    assert (code, out) == (2, "")
    assert "Traceback" not in err
    (line,) = err.splitlines()
    assert line.startswith(f"{path}: document 1")
    for fragment in expected:
        assert fragment in line


def test_every_problem_is_reported(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    users = write(
        tmp_path,
        "users.yaml",
        GOOD_USER
        + "spec: {overrides: {maxBudget: -1, tpmLimit: x}}\n---\n"
        + GOOD_USER.replace("dave", "erin")
        + "spec: {overrides: {teams: [t]}}\n",
    )
    missing = str(tmp_path / "missing.yaml")
    code, out, err = run(capsys, "explain", "--policy", POLICY, "--user", users, "--user", missing)
    assert (code, out) == (2, "")
    lines = err.splitlines()
    assert len(lines) == 4, err
    assert any("document 1 (dave): spec.overrides.maxBudget" in line for line in lines)
    assert any("document 1 (dave): spec.overrides.tpmLimit" in line for line in lines)
    assert any("document 2 (erin): spec.overrides.teams" in line for line in lines)
    assert any(line.startswith(f"{missing}: cannot read") for line in lines)


def test_bad_compare_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    old = write(tmp_path, "old.yaml", "kind: [\n")
    code, out, err = run(capsys, "explain", "--policy", POLICY, "--user", USERS, "--compare", old)
    assert (code, out) == (2, "")
    assert err.startswith(f"{old}: document 1: invalid YAML")


def test_duplicate_policy_names(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(
        capsys, "explain", "--policy", POLICY, "--policy", POLICY_V2, "--user", USERS
    )
    assert code == 2
    assert "duplicate policy 'default'" in err


def test_usage_errors_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "explain", "--user", USERS)
    assert code == 2
    assert "--policy" in err


KEYS_POLICY = """
    apiVersion: litellm.platform.dev/v1alpha1
    kind: ProvisioningPolicy
    metadata: {name: default}
    spec:
      allowedNamespaces: ["*"]
      identities: [{namespaces: ["*"], emails: ["*"], userIds: ["*"]}]
      defaults: {models: [gpt-4o, gpt-4o-mini]}
      keys: {maxBudget: 5, rotateEvery: 7d}
    """


def test_keys_and_their_effective_limits(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    policy = write(tmp_path, "policy.yaml", KEYS_POLICY)
    user = write(
        tmp_path,
        "user.yaml",
        """
        apiVersion: litellm.platform.dev/v1alpha1
        kind: LiteLLMUser
        metadata: {name: app, namespace: team-a}
        spec:
          keys:
            - {name: ci, models: [gpt-4o], rpmLimit: 30}
            - {name: web, secretName: web-llm, gracePeriod: 0s, maxBudget: 2}
        """,
    )
    (record,) = explain_json(capsys, "--policy", policy, "--user", user)
    ci, web = record["keys"]
    assert ci == {
        "name": "ci",
        "secretName": "app-ci",
        "keyAlias": "team-a/app/ci",
        "models": ["gpt-4o"],
        "maxBudget": 5.0,
        "budgetDuration": None,
        "tpmLimit": None,
        "rpmLimit": 30,
        "maxParallelRequests": None,
        "allowedRoutes": ["llm_api_routes"],
        "rotateEvery": "7d",
        "gracePeriod": "1h",
    }
    assert (web["secretName"], web["models"], web["maxBudget"], web["gracePeriod"]) == (
        "web-llm",
        ["gpt-4o", "gpt-4o-mini"],
        2.0,
        "0s",
    )
    code, out, _ = run(capsys, "explain", "--policy", policy, "--user", user)
    assert code == 0
    assert (
        "  key ci: Secret app-ci, models gpt-4o, maxBudget 5, rpmLimit 30, "
        "rotateEvery 7d, gracePeriod 1h"
    ) in out.splitlines()


def test_forbidden_key_is_an_input_problem(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    policy = write(tmp_path, "policy.yaml", KEYS_POLICY)
    user = write(
        tmp_path,
        "user.yaml",
        """
        apiVersion: litellm.platform.dev/v1alpha1
        kind: LiteLLMUser
        metadata: {name: app, namespace: team-a}
        spec:
          keys: [{name: ci, models: [o1]}]
        """,
    )
    code, _, err = run(capsys, "explain", "--policy", policy, "--user", user)
    assert code == 2
    assert "spec.keys" in err
    assert "[ModelNotAllowed]" in err


TEAM_POLICY = """
apiVersion: litellm.platform.dev/v1alpha1
kind: ProvisioningPolicy
metadata: {name: default}
spec:
  allowedNamespaces: ["*"]
  identities: [{namespaces: ['*'], emails: ['*'], userIds: ['*'], teamIds: ['crew-*']}]
  defaults: {models: [mini]}
  roles:
    - {group: crew, teams: [team-a.crew], namespaces: [team-a]}
    - {group: vip, teams: [team-a.crew], namespaces: [team-a], maxBudgetInTeam: 5}
  teams: {maxBudget: 40, memberBudget: 15, allowedModels: [mini, big]}
"""
TEAM = """
apiVersion: litellm.platform.dev/v1alpha1
kind: LiteLLMTeam
metadata: {name: crew, namespace: team-a}
spec: {models: [mini], alias: Crew, keys: [{name: ci}]}
"""
TEAM_USERS = """
apiVersion: litellm.platform.dev/v1alpha1
kind: LiteLLMUser
metadata: {name: ann, namespace: team-a}
spec: {groups: [crew]}
---
apiVersion: litellm.platform.dev/v1alpha1
kind: LiteLLMUser
metadata: {name: bo, namespace: team-a}
spec: {}
---
apiVersion: litellm.platform.dev/v1alpha1
kind: LiteLLMUser
metadata: {name: cy, namespace: team-a}
spec: {groups: [vip]}
"""


def team_files(tmp_path: Path, team: str = TEAM) -> tuple[str, str, str]:
    files = {"policy.yaml": TEAM_POLICY, "team.yaml": team, "users.yaml": TEAM_USERS}
    for name, text in files.items():
        (tmp_path / name).write_text(textwrap.dedent(text))
    return tuple(str(tmp_path / name) for name in files)  # type: ignore[return-value]


def test_explain_teams_shows_settings_and_who_would_join(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    policy, team, users = team_files(tmp_path)
    code, out, err = run(
        capsys, "explain", "--policy", policy, "--user", users, "--team", team, "-o", "json"
    )
    assert (code, err) == (0, "")
    (record,) = json.loads(out)
    assert set(record) == {
        "name",
        "namespace",
        "teamId",
        "policy",
        "effective",
        "sources",
        "members",
        "keys",
    }
    assert record["teamId"] == "team-a.crew"
    assert record["effective"]["maxBudget"] == 40
    assert record["sources"]["maxBudget"] == "ceiling"
    assert record["effective"]["models"] == ["mini"]
    assert record["effective"]["memberBudget"] == 15  # the ceiling, as the default
    assert record["members"] == [
        {"userId": "ann", "maxBudgetInTeam": 15, "source": "team"},
        {"userId": "cy", "maxBudgetInTeam": 5, "source": "role"},  # its own wins
    ]
    (key,) = record["keys"]
    assert (key["keyAlias"], key["secretName"], key["models"]) == (
        "team:team-a/crew/ci",
        "crew-ci",
        ["mini"],
    )
    code, table, _ = run(capsys, "explain", "--policy", policy, "--user", users, "--team", team)
    assert code == 0
    assert "team-a/crew: teamId team-a.crew, policy default" in table
    assert "key ci: " in table
    assert "members: ann (maxBudgetInTeam 15 from team), cy (maxBudgetInTeam 5 from role)" in table


@pytest.mark.parametrize(
    ("spec", "fragment"),
    [
        pytest.param("{maxBudget: 41}", "[CeilingExceeded]", id="ceiling"),
        pytest.param("{models: [huge]}", "[ModelNotAllowed]", id="model"),
        pytest.param("{teamId: other}", "[TeamIdNotAllowed]", id="team-id"),
        pytest.param("{policyRef: nope}", "policy 'nope' not found", id="policy"),
        pytest.param(
            "{models: [mini], keys: [{name: ci, models: [big]}]}",
            "spec.keys: key 'ci': model(s) big are not among the team's models (mini) "
            "[ModelNotAllowed]",
            id="team-key-model",
        ),
    ],
)
def test_explain_teams_reports_refusals(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], spec: str, fragment: str
) -> None:
    bad = TEAM.replace("spec: {models: [mini], alias: Crew, keys: [{name: ci}]}", f"spec: {spec}")
    policy, team, users = team_files(tmp_path, bad)
    code, out, err = run(capsys, "explain", "--policy", policy, "--user", users, "--team", team)
    assert (code, out) == (2, "")
    assert fragment in err
