"""Rewrite the README's tables generated from declarations (run by `make crds`): the managed
fields (fields.FIELDS), the LiteLLMTeam settings (fields.TEAM_FIELDS) and what each LiteLLM
capability needs (litellm.versions.CAPABILITIES)."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

from litellm_operator import fields
from litellm_operator.litellm import versions

TABLES: dict[str, Callable[[], str]] = {
    "fields": fields.markdown_table,
    "team-fields": fields.team_markdown_table,
    "litellm-capabilities": versions.markdown_table,
}
"""The name in the README's ``<!-- NAME:begin -->`` / ``<!-- NAME:end -->`` markers → renderer."""


def with_table(text: str, name: str, rendered: str) -> str:
    head, rest = text.split(f"<!-- {name}:begin -->\n", 1)
    _, tail = rest.split(f"<!-- {name}:end -->", 1)
    return f"{head}<!-- {name}:begin -->\n{rendered}<!-- {name}:end -->{tail}"


def main() -> int:
    readme = Path(__file__).resolve().parents[1] / "README.md"
    text = readme.read_text(encoding="utf-8")
    for name, render in TABLES.items():
        text = with_table(text, name, render())
    readme.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
