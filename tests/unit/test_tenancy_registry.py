"""Every field a tenant writes has its attack: ``LiteLLMUser.spec`` enumerated from the models
(nested key and override fields included, so a field added later is counted) against the cases
of ``tests/e2e/test_tenancy*.py`` that name it with ``@attacks(...)``, and against the README's
security table."""

from __future__ import annotations

import importlib
import inspect
import re
from pathlib import Path
from typing import Any, get_args

from pydantic import BaseModel

from litellm_operator.models import TeamSpec, UserSpec

ROOT = Path(__file__).resolve().parents[2]
TENANCY_MODULES = sorted((ROOT / "tests" / "e2e").glob("test_tenancy*.py"))


def nested_model(annotation: Any) -> type[BaseModel] | None:
    """The model a field holds, directly or in a list or optional."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    return next((m for a in get_args(annotation) if (m := nested_model(a)) is not None), None)


def spec_fields(model: type[BaseModel] = UserSpec, prefix: str = "") -> list[str]:
    """The leaf fields of ``model`` as dotted wire paths: ``email``, ``keys.models`` ..."""
    fields: list[str] = []
    for name, info in model.model_fields.items():
        path = f"{prefix}{info.alias or name}"
        nested = nested_model(info.annotation)
        fields += spec_fields(nested, f"{path}.") if nested is not None else [path]
    return fields


def attack_cases(mark_name: str = "attacks") -> dict[str, list[str]]:
    """Field → the tenancy cases that attack it (``module::test``); ``attacks_team`` for the
    LiteLLMTeam's fields."""
    cases: dict[str, list[str]] = {}
    for path in TENANCY_MODULES:
        module = importlib.import_module(f"tests.e2e.{path.stem}")
        for name, case in vars(module).items():
            if not name.startswith("test_") or getattr(case, "__module__", "") != module.__name__:
                continue
            for mark in getattr(case, "pytestmark", []):
                if mark.name == mark_name:
                    for field in mark.args:
                        cases.setdefault(field, []).append(f"{path.stem}::{name}")
    return cases


def test_the_enumeration_reaches_nested_fields() -> None:
    fields = spec_fields()
    assert {"policyRef", "email", "keys.models", "keys.secretName", "overrides.maxBudget"} <= set(
        fields
    )
    assert "keys" not in fields
    assert "overrides" not in fields


def test_every_spec_field_has_its_attack() -> None:
    cases = attack_cases()
    missing = [f for f in spec_fields() if f not in cases]
    assert not missing, f"LiteLLMUser.spec fields without a hostile tenancy case: {missing}"
    unknown = sorted(set(cases) - set(spec_fields()))
    assert not unknown, f"@attacks names fields LiteLLMUser.spec does not have: {unknown}"


def test_every_attack_runs_as_the_tenant() -> None:
    for path in TENANCY_MODULES:
        module = importlib.import_module(f"tests.e2e.{path.stem}")
        for name, case in vars(module).items():
            marks = [m.name for m in getattr(case, "pytestmark", [])]
            if name.startswith("test_") and {"attacks", "attacks_team"} & set(marks):
                parameters = inspect.signature(case).parameters
                assert "tenant" in parameters, f"{path.stem}::{name} does not run as the tenant"


def test_the_readme_security_table_lists_every_spec_field() -> None:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Security model", 1)[1].split("\n## ", 1)[0]
    first_cells = " ".join(
        line.split("|")[1] for line in section.splitlines() if re.match(r"^\| [^-]", line)
    )
    missing = [f for f in spec_fields() if f"`{f}" not in first_cells]
    assert not missing, f"README's security table does not list: {missing}"


def test_every_team_spec_field_has_its_attack() -> None:
    cases = attack_cases("attacks_team")
    fields = spec_fields(TeamSpec)
    missing = [f for f in fields if f not in cases]
    assert not missing, f"LiteLLMTeam.spec fields without a hostile tenancy case: {missing}"
    unknown = sorted(set(cases) - set(fields))
    assert not unknown, f"@attacks_team names fields LiteLLMTeam.spec does not have: {unknown}"


def test_the_readme_team_security_table_lists_every_team_spec_field() -> None:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("### LiteLLMTeam security", 1)[1].split("\n## ", 1)[0]
    first_cells = " ".join(
        line.split("|")[1] for line in section.splitlines() if re.match(r"^\| [^-]", line)
    )
    missing = [f for f in spec_fields(TeamSpec) if f"`{f}" not in first_cells]
    assert not missing, f"README's team security table does not list: {missing}"
