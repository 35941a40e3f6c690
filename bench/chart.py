"""The benchmark's chart: time against N beside its floor, and memory per user against N."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only, no display

import matplotlib.pyplot as plt


def draw(document: dict[str, Any], path: Path) -> None:
    ours = [r for r in document["results"] if r.get("operator", "this") == "this"]
    results = sorted(ours, key=lambda r: (r["users"], r.get("round", 1)))
    if not results:
        return
    sizes = [r["users"] for r in results]
    figure, (times, memory) = plt.subplots(1, 2, figsize=(11, 4.2))
    for scenario, colour in (("create", "tab:blue"), ("policy_edit", "tab:orange")):
        label = scenario.replace("_", " ")
        times.plot(
            sizes,
            [r[scenario]["seconds"] for r in results],
            "o-",
            color=colour,
            label=f"{label}: operator",
        )
        times.plot(
            sizes,
            [r[scenario]["floor_seconds"] for r in results],
            "o--",
            color=colour,
            alpha=0.6,
            label=f"{label}: floor (bare client)",
        )
    times.plot(
        sizes,
        [r["restart"]["seconds"] for r in results],
        "o-",
        color="tab:green",
        label="restart to steady state",
    )
    times.set(
        xscale="log",
        yscale="log",
        xlabel="LiteLLMUsers (N)",
        ylabel="seconds",
        title="Time to Ready against the floor",
    )
    times.grid(True, which="both", alpha=0.3)
    times.legend(fontsize=8)

    goal = next(g["limit"] for g in document["goals"] if g["name"] == "memory_at_rest")
    memory.plot(
        sizes,
        [r["memory"]["kib_per_user_after_create"] for r in results],
        "o-",
        label="right after creating N",
    )
    memory.plot(
        sizes,
        [r["memory"]["kib_per_user_settled"] for r in results],
        "o-",
        label="at rest, without a restart",
    )
    memory.plot(
        sizes,
        [r["memory"]["kib_per_user_at_rest"] for r in results],
        "o-",
        label="after a restart (at rest)",
    )
    memory.axhline(goal, color="tab:red", linestyle=":", label=f"goal {goal:g} KiB/user")
    memory.set(
        xscale="log",
        xlabel="LiteLLMUsers (N)",
        ylabel="KiB of RSS per user",
        title="Operator memory per user",
    )
    memory.set_ylim(bottom=0)
    memory.grid(True, which="both", alpha=0.3)
    memory.legend(fontsize=8)
    machine = document["machine"]
    figure.suptitle(
        f"litellm-operator bench, {machine['when']}: {machine['cpus']} CPUs, "
        f"{machine['memory_gib']} GiB; everything on one machine",
        fontsize=9,
    )
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
