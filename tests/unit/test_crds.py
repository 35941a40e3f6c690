"""The CRDs: generated from the models, committed as generated, and structural."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from litellm_operator.cli import main
from litellm_operator.crdgen import build_crds, policy_crd, render_crds, team_crd, user_crd
from litellm_operator.fields import TEAM_FIELDS
from litellm_operator.models import (
    SSO_USER_ID_IMMUTABLE_RULE,
    TEAM_ID_IMMUTABLE_RULE,
    USER_ID_IMMUTABLE_RULE,
)

CRD_DIR = Path(__file__).resolve().parents[2] / "deploy" / "crds"


def openapi(crd: dict[str, Any]) -> dict[str, Any]:
    schema: dict[str, Any] = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    return schema


def at(schema: dict[str, Any], dotted: str) -> dict[str, Any]:
    """The sub-schema at a dotted path; `[]` steps into array items."""
    node = schema
    for part in dotted.split("."):
        node = node["items"] if part == "[]" else node["properties"][part]
    return node


def walk(node: dict[str, Any], path: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    yield path, node
    for name, child in node.get("properties", {}).items():
        yield from walk(child, f"{path}.{name}")
    if "items" in node:
        yield from walk(node["items"], f"{path}[]")
    if isinstance(node.get("additionalProperties"), dict):
        yield from walk(node["additionalProperties"], f"{path}{{}}")


@pytest.mark.parametrize("name", sorted(render_crds()))
def test_committed_yaml_is_generated(name: str) -> None:
    committed = (CRD_DIR / name).read_text(encoding="utf-8")
    assert committed == render_crds()[name], "run `make crds` and commit deploy/crds"


def test_no_stale_crd_files() -> None:
    committed = {p.name for p in CRD_DIR.glob("litellm.platform.dev_*.yaml")}
    assert committed == set(render_crds())


def test_crds_command_writes_the_files(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["crds", "--output", str(tmp_path)]) == 0
    for name, text in render_crds().items():
        assert (tmp_path / name).read_text(encoding="utf-8") == text
    assert capsys.readouterr().out.count(".yaml") == len(render_crds()) == 3


@pytest.mark.parametrize("crd", build_crds(), ids=lambda crd: crd["spec"]["names"]["kind"])
def test_schema_is_structural(crd: dict[str, Any]) -> None:
    for path, node in walk(openapi(crd)):
        assert "type" in node or node.get("x-kubernetes-preserve-unknown-fields"), path
        for forbidden in ("$ref", "$defs", "anyOf", "allOf", "oneOf", "const", "title"):
            assert forbidden not in node, f"{path}: {forbidden}"
        assert node.get("additionalProperties") is not False, path
        assert not ("additionalProperties" in node and "properties" in node), path
        assert node.get("default", 0) is not None, path


@pytest.mark.parametrize("crd", build_crds(), ids=lambda crd: crd["spec"]["names"]["kind"])
def test_crd_basics(crd: dict[str, Any]) -> None:
    version = crd["spec"]["versions"][0]
    assert crd["spec"]["group"] == "litellm.platform.dev"
    assert version["name"] == "v1alpha1"
    assert version["subresources"] == {"status": {}}
    assert version["served"] is True
    assert version["storage"] is True
    status = openapi(crd)["properties"]["status"]
    assert status["x-kubernetes-preserve-unknown-fields"] is True
    assert status["properties"]["kopf"]["x-kubernetes-preserve-unknown-fields"] is True
    columns = {c["name"]: c["jsonPath"] for c in version["additionalPrinterColumns"]}
    assert columns["Ready"] == '.status.conditions[?(@.type=="Ready")].status'
    assert columns["Age"] == ".metadata.creationTimestamp"


def test_policy_crd() -> None:
    crd = policy_crd()
    assert crd["spec"]["scope"] == "Cluster"
    assert "llmpolicy" in crd["spec"]["names"]["shortNames"]
    spec = at(openapi(crd), "spec")
    assert at(spec, "adoptExistingUsers") == {
        "type": "boolean",
        "description": at(spec, "adoptExistingUsers")["description"],
        "default": False,
    }
    assert at(spec, "defaults.userRole")["enum"] == [
        "proxy_admin",
        "proxy_admin_viewer",
        "internal_user",
        "internal_user_viewer",
    ]
    assert at(spec, "defaults.maxBudget")["nullable"] is True
    assert at(spec, "roles.[].group")["type"] == "string"
    assert at(spec, "roles.[]")["required"] == ["group"]
    assert at(spec, "defaults.metadata")["additionalProperties"] == {
        "type": "string",
        "maxLength": 512,
    }
    assert at(spec, "defaults.metadata")["maxProperties"] == 32
    assert crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["required"] == ["spec"]
    assert "allowedNamespaces" in spec["required"]
    assert at(spec, "allowedNamespaces")["minItems"] == 1
    assert at(spec, "roles.[].namespaces")["minItems"] == 1


@pytest.mark.parametrize(
    "path",
    [
        "defaults.maxBudget",
        "defaults.tpmLimit",
        "defaults.rpmLimit",
        "roles.[].maxBudget",
        "roles.[].tpmLimit",
        "roles.[].rpmLimit",
        "overrides.maxBudget",
        "overrides.tpmLimit",
        "overrides.rpmLimit",
    ],
)
def test_policy_budgets_and_limits_are_never_negative(path: str) -> None:
    assert at(at(openapi(policy_crd()), "spec"), path)["minimum"] == 0


@pytest.mark.parametrize(
    "path", ["overrides.maxBudget", "overrides.tpmLimit", "overrides.rpmLimit"]
)
def test_user_overrides_are_never_negative(path: str) -> None:
    assert at(at(openapi(user_crd()), "spec"), path)["minimum"] == 0


@pytest.mark.parametrize(
    "crd", [policy_crd(), user_crd(), team_crd()], ids=["policy", "user", "team"]
)
def test_budget_duration_pattern(crd: dict[str, Any]) -> None:
    durations = [node for path, node in walk(openapi(crd)) if path.endswith(".budgetDuration")]
    assert durations
    assert all(node["pattern"] == "^[1-9][0-9]*(s|m|h|d|mo)$" for node in durations)


def test_user_crd() -> None:
    crd = user_crd()
    assert crd["spec"]["scope"] == "Namespaced"
    assert {"llmuser", "llmusers"} <= set(crd["spec"]["names"]["shortNames"])
    spec = at(openapi(crd), "spec")
    assert spec["x-kubernetes-validations"] == [
        {"rule": USER_ID_IMMUTABLE_RULE, "message": "spec.userId is immutable once set"},
        {"rule": SSO_USER_ID_IMMUTABLE_RULE, "message": "spec.ssoUserId is immutable once set"},
    ]
    assert at(spec, "policyRef")["default"] == "default"
    assert at(spec, "deletionPolicy")["enum"] == ["Delete", "Retain"]
    assert "default" not in at(spec, "deletionPolicy")
    assert at(spec, "adopt")["default"] is False
    columns = [c["name"] for c in crd["spec"]["versions"][0]["additionalPrinterColumns"]]
    assert columns[:2] == ["User ID", "Budget"]


@pytest.mark.parametrize(
    ("path", "type_"),
    [
        ("userId", "string"),
        ("effective.maxBudget", "number"),
        ("effective.models", "array"),
        ("sources", "object"),
        ("matchedRole", "string"),
        ("policy.generation", "integer"),
        ("observedGeneration", "integer"),
        ("conditions.[].lastTransitionTime", "string"),
        ("lastSyncedAt", "string"),
        ("spend", "number"),
        ("budgetResetAt", "string"),
        ("managedTeams", "array"),
        ("adopted", "boolean"),
        ("blockedKeys", "array"),
    ],
)
def test_user_status_has_room_for(path: str, type_: str) -> None:
    assert at(at(openapi(user_crd()), "status"), path)["type"] == type_


def test_committed_yaml_parses_to_the_built_dicts() -> None:
    for crd in build_crds():
        name = f"litellm.platform.dev_{crd['spec']['names']['plural']}.yaml"
        assert yaml.safe_load((CRD_DIR / name).read_text(encoding="utf-8")) == crd


@pytest.mark.parametrize("crd", build_crds(), ids=lambda crd: crd["spec"]["names"]["kind"])
def test_every_field_has_a_description(crd: dict[str, Any]) -> None:
    """`kubectl explain` has something to say about every field (alias, email, userRole ...)."""
    missing = [
        path
        for path, node in walk(openapi(crd))
        if path not in ("", ".metadata")  # the API server forbids a description of metadata
        and not path.endswith(("[]", "}"))
        and not node.get("description")
    ]
    assert missing == []


def test_budget_column_shows_what_litellm_holds() -> None:
    """BUDGET is the budget read back from LiteLLM, not the desired one (status.effective)."""
    columns = {c["name"]: c for c in user_crd()["spec"]["versions"][0]["additionalPrinterColumns"]}
    assert columns["Budget"]["jsonPath"] == ".status.maxBudget"


def test_team_crd() -> None:
    crd = team_crd()
    assert crd["spec"]["scope"] == "Namespaced"
    assert crd["spec"]["names"]["kind"] == "LiteLLMTeam"
    assert {"llmteam", "llmteams"} <= set(crd["spec"]["names"]["shortNames"])
    spec = at(openapi(crd), "spec")
    assert spec["x-kubernetes-validations"] == [
        {"rule": TEAM_ID_IMMUTABLE_RULE, "message": "spec.teamId is immutable once set"}
    ]
    assert at(spec, "policyRef")["default"] == "default"
    assert at(spec, "deletionPolicy")["enum"] == ["Delete", "Retain"]
    columns = [c["name"] for c in crd["spec"]["versions"][0]["additionalPrinterColumns"]]
    assert columns[:3] == ["Team ID", "Budget", "Members"]


def test_every_team_field_is_in_the_team_spec_once() -> None:
    """TEAM_FIELDS is the one declaration: each is a spec field and an effective setting."""
    spec = at(openapi(team_crd()), "spec")
    effective = at(openapi(team_crd()), "status.effective")
    for f in TEAM_FIELDS:
        assert at(spec, f.wire)["description"] == f.description
        assert f.wire in effective["properties"]


@pytest.mark.parametrize(
    "path",
    ["maxBudget", "tpmLimit", "rpmLimit"],
)
def test_team_budgets_and_limits_are_never_negative(path: str) -> None:
    assert at(at(openapi(team_crd()), "spec"), path)["minimum"] == 0


@pytest.mark.parametrize(
    ("path", "type_"),
    [
        ("teams.maxBudget", "number"),
        ("teams.tpmLimit", "integer"),
        ("teams.rpmLimit", "integer"),
        ("teams.allowedModels", "array"),
        ("teams.maxPerNamespace", "integer"),
        ("teams.adoptExistingTeams", "boolean"),
        ("identities.[].teamIds", "array"),
    ],
)
def test_policy_has_a_teams_section(path: str, type_: str) -> None:
    spec = at(openapi(policy_crd()), "spec")
    assert at(spec, path)["type"] == type_
    assert "teams" not in spec.get("required", [])


@pytest.mark.parametrize(
    ("path", "type_"),
    [
        ("teamId", "string"),
        ("effective.maxBudget", "number"),
        ("effective.models", "array"),
        ("policy.generation", "integer"),
        ("observedGeneration", "integer"),
        ("members", "integer"),
        ("maxBudget", "number"),
        ("adopted", "boolean"),
    ],
)
def test_team_status_has_room_for(path: str, type_: str) -> None:
    assert at(at(openapi(team_crd()), "status"), path)["type"] == type_
