"""The README's benchmark table is the committed results, rendered (bench/report.py)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from bench.bench_operator import kept_results
from bench.report import README, RESULTS, earlier_runs, table, with_table


def test_readme_shows_the_committed_benchmark_results() -> None:
    readme = README.read_text()
    rendered = table(json.loads(RESULTS.read_text()))
    assert with_table(readme, rendered) == readme, "run: python bench/report.py --readme"


def test_sizes_from_an_earlier_run_are_named_with_their_time() -> None:
    document: dict[str, Any] = {
        "machine": {"when": "2026-11-27 16:00 UTC"},
        "results": [
            {"users": 100, "when": "2026-11-27 16:00 UTC"},
            {"users": 10_000, "when": "2026-11-27 15:00 UTC", "carried_over": True},
        ],
    }
    assert earlier_runs(document) == [
        "",
        "Carried over from an earlier run (`--keep`): N = 10,000 on 2026-11-27 15:00 UTC.",
    ]
    document["results"].pop()
    assert earlier_runs(document) == []


def test_keep_carries_over_only_the_sizes_not_measured_again(tmp_path: Path) -> None:
    earlier = {"machine": {"when": "then"}, "results": [{"users": 100}, {"users": 10_000}]}
    path = tmp_path / "bench.json"
    path.write_text(json.dumps(earlier))
    assert kept_results(path, [100, 1000]) == [
        {"users": 10_000, "when": "then", "carried_over": True}
    ]
    assert kept_results(tmp_path / "absent.json", [100]) == []
