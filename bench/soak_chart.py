"""The soak's chart: each sampled series against time, the quiet minutes shaded, faults marked.

python bench/soak_chart.py [bench/results/soak.json]   # redraw soak.png beside it
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only, no display

import matplotlib.pyplot as plt
from matplotlib.axes import Axes

PANELS = (
    ("RSS of the leader (MiB)", ("leader_rss_kib",), 1 / 1024),
    ("asyncio tasks", ("tasks",), 1.0),
    ("threads / open fds", ("threads", "fds"), 1.0),
    ("indexed LiteLLMUsers", ("index_objects",), 1.0),
    ("watch requests / listings (cumulative)", ("watches", "lists", "listings"), 1.0),
)


def series(
    samples: list[dict[str, Any]], key: str, scale: float
) -> tuple[list[float], list[float]]:
    points = [(s["t"] / 60, s[key] * scale) for s in samples if s.get(key) is not None]
    return [p[0] for p in points], [p[1] for p in points]


def shade(axes: Axes, document: dict[str, Any]) -> None:
    """Quiet minutes grey, fault minutes red, on the samples' time axis."""
    starts: dict[int, float] = {}
    for sample in document["samples"]:
        starts.setdefault(sample["minute"], sample["t"] / 60)
    for phase in document["phases"]:
        start = starts.get(phase["minute"])
        if start is None:
            continue
        if phase["kind"] == "quiet":
            axes.axvspan(start, start + 1, color="grey", alpha=0.15, lw=0)
        elif phase["kind"].startswith("fault:"):
            axes.axvspan(start, start + 1, color="tab:red", alpha=0.15, lw=0)


def latency_panel(axes: Axes, document: dict[str, Any]) -> None:
    kinds = sorted(document["latency"])
    p50 = [document["latency"][k]["p50_seconds"] or 0 for k in kinds]
    p99 = [document["latency"][k]["p99_seconds"] or 0 for k in kinds]
    positions = range(len(kinds))
    axes.bar([p - 0.2 for p in positions], p50, 0.4, label="p50")
    axes.bar([p + 0.2 for p in positions], p99, 0.4, label="p99")
    axes.set_xticks(list(positions), [k.removeprefix("fault:") for k in kinds], rotation=30,
                    ha="right", fontsize=7)  # fmt: skip
    axes.set_title("reconcile latency by kind of minute (s)", fontsize=9)
    axes.legend(fontsize=7)


def colour(kind: str) -> str:
    return "grey" if kind == "quiet" else "tab:red" if kind.startswith("fault:") else "tab:blue"


def calls_panel(axes: Axes, document: dict[str, Any]) -> None:
    minutes = [p["minute"] for p in document["phases"]]
    calls = [sum(p["litellm_calls"].values()) for p in document["phases"]]
    colours = [colour(p["kind"]) for p in document["phases"]]
    axes.bar(minutes, calls, color=colours)
    axes.set_title("LiteLLM calls per minute (grey: quiet, red: fault)", fontsize=9)
    axes.set_xlabel("soak minute", fontsize=8)


def draw(document: dict[str, Any], path: Path) -> None:
    samples = document["samples"]
    if not samples:
        return
    figure, grid = plt.subplots(4, 2, figsize=(12, 11))
    cells = list(grid.flat)
    for axes, (title, keys, scale) in zip(cells, PANELS, strict=False):
        for key in keys:
            x, y = series(samples, key, scale)
            axes.plot(x, y, lw=1, label=key)
        shade(axes, document)
        axes.set_title(title, fontsize=9)
        axes.set_xlabel("minutes since start", fontsize=8)
        if len(keys) > 1:
            axes.legend(fontsize=7)
    x, y = series(samples, "litellm_calls", 1.0)
    cells[5].plot(x, y, lw=1)
    shade(cells[5], document)
    cells[5].set_title("LiteLLM calls (cumulative, leader)", fontsize=9)
    latency_panel(cells[6], document)
    calls_panel(cells[7], document)
    verdict = "passed" if document.get("ok") else "FAILED"
    figure.suptitle(
        f"soak: {document['minutes']} min, {document['users_declared']} users, {verdict}"
        f" ({document.get('when', '')})",
        fontsize=11,
    )
    figure.tight_layout()
    figure.savefig(path, dpi=90)
    plt.close(figure)


if __name__ == "__main__":
    source = Path(sys.argv[1] if len(sys.argv) > 1 else "bench/results/soak.json")
    draw(json.loads(source.read_text()), source.with_suffix(".png"))
