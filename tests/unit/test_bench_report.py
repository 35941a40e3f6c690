"""The README's benchmark table is the committed results, rendered (bench/report.py)."""

from __future__ import annotations

import json

from bench.report import README, RESULTS, table, with_table


def test_readme_shows_the_committed_benchmark_results() -> None:
    readme = README.read_text()
    rendered = table(json.loads(RESULTS.read_text()))
    assert with_table(readme, rendered) == readme, "run: python bench/report.py --readme"
