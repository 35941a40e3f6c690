"""Rewrite the README's managed-field table from the field declarations (run by `make crds`)."""

from __future__ import annotations

import sys
from pathlib import Path

from litellm_operator.fields import markdown_table

BEGIN, END = "<!-- fields:begin -->\n", "<!-- fields:end -->"


def main() -> int:
    readme = Path(__file__).resolve().parents[1] / "README.md"
    text = readme.read_text(encoding="utf-8")
    head, rest = text.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    readme.write_text(head + BEGIN + markdown_table() + END + tail, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
