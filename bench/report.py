"""The README's table of benchmark figures, rendered from ``bench/results/bench.json``.

    python bench/report.py            # print the table
    python bench/report.py --readme   # rewrite it in README.md (make bench does)

A unit test checks that the README shows what the committed results say.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "bench.json"
README = ROOT / "README.md"
BEGIN, END = "<!-- bench:begin -->", "<!-- bench:end -->"
TIMES = "\u00d7"  # the multiplication sign
DASH = "\u2013"  # the en dash


OUTCOMES = ("processed", "superseded", "settled", "followed", "finalized", "created")
"""What became of the LiteLLMUser events (``litellm_operator_watch_events_total``), in order."""


def kopf_events(scenario: Mapping[str, Any]) -> str:
    """The LiteLLMUser events per user, by what became of them (runs before it was counted,
    and operators without the count, show a dash)."""
    events = scenario.get("kopf_events_per_user")
    if not events:
        return DASH
    return " / ".join(f"{events.get(k, 0):g}" for k in OUTCOMES)


def calls(counts: dict[str, int]) -> str:
    return ", ".join(f"{n} {endpoint}" for endpoint, n in sorted(counts.items())) or "none"


def earlier_runs(document: dict[str, Any]) -> list[str]:
    """A line for the sizes measured in another run than the document's (``--keep``)."""
    others = sorted((r["users"], r["when"]) for r in document["results"] if r.get("carried_over"))
    if not others:
        return []
    listed = "; ".join(f"N = {n:,} on {at}" for n, at in others)
    return ["", f"Carried over from an earlier run (`--keep`): {listed}."]


def spread_table(rows: list[dict[str, Any]]) -> list[str]:
    """Min, median and max of each figure, per operator and size measured more than once."""
    if not rows:
        return []

    def span(values: list[float]) -> str:
        low, median, high = values
        return f"{low:g}{DASH}{high:g} ({median:g})"

    lines = [
        "",
        f"Across rounds, min{DASH}max (median):",
        "",
        "| operator | N | runs | create s | its CPU s per 1,000 | policy edit s "
        "| its CPU s per 1,000 | restart s | KiB per user after create | at rest |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for row in rows:
        lines.append(
            f"| {row['operator']} | {row['users']:,} | {row['runs']} | {span(row['create'])} "
            f"| {span(row['create_cpu_per_1000'])} | {span(row['policy_edit'])} "
            f"| {span(row['policy_edit_cpu_per_1000'])} | {span(row['restart'])} "
            f"| {span(row['kib_per_user_after_create'])} | {span(row['kib_per_user_settled'])} |"
        )
    return lines


def baseline_table(results: list[dict[str, Any]]) -> list[str]:
    """This operator beside the ``--baseline`` one, run alternately in the same stack."""
    if not any(r.get("operator") == "baseline" for r in results):
        return []
    lines = [
        "",
        "Beside the `--baseline` operator, run alternately with it in the same stack:",
        "",
        "| operator | N | round | create s | edit s | restart s | operator CPU s per 1,000 "
        "users: create / edit / restart | KiB per user: after create / at rest / after a "
        "restart |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in sorted(results, key=lambda r: (r["users"], r.get("round", 1), r["operator"])):
        m = r["memory"]
        cpu = " / ".join(
            f"{r[k]['operator_cpu_per_1000_users']:g}" for k in ("create", "policy_edit", "restart")
        )
        lines.append(
            f"| {r['operator']} | {r['users']:,} | {r.get('round', 1)} "
            f"| {r['create']['seconds']:.1f} | {r['policy_edit']['seconds']:.1f} "
            f"| {r['restart']['seconds']:.1f} | {cpu} | {m['kib_per_user_after_create']:g} / "
            f"{m['kib_per_user_settled']:g} / {m['kib_per_user_at_rest']:g} |"
        )
    return lines


def table(document: dict[str, Any]) -> str:
    machine = document["machine"]
    goals = "; ".join(g["text"] for g in document["goals"])
    results = [r for r in document["results"] if r.get("operator", "this") == "this"]
    lines = [
        f"Measured {machine['when']} on {machine['cpus']} CPUs ({machine['cpu']}), "
        f"{machine['memory_gib']} GiB, Python {machine['python']}; operator, kube-apiserver, "
        "etcd, LiteLLM and PostgreSQL on that one machine, which other work shared "
        "(CPU seconds are the operator's own, wall times move with the load). "
        f"Goals: {goals}.",
        *earlier_runs(document),
        "",
        "| N | scenario | operator | floor | ratio | LiteLLM calls | Kubernetes writes per user "
        "| user events per user: kopf processed / superseded / settled / followed / finalized "
        "/ created "
        "| CPU s: operator / apiserver / LiteLLM | operator CPU s per 1,000 users |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for result in sorted(results, key=lambda r: (r["users"], r.get("round", 1))):
        n = result["users"]
        for key, label in (
            ("create", "create → all Ready"),
            ("policy_edit", "policy edit → all Ready"),
            ("resync", "2 resync intervals"),
            ("restart", "restart → all resumed"),
        ):
            s = result[key]
            cpu = s["cpu_seconds"]
            floor = f"{s['floor_seconds']:.1f} s" if "floor_seconds" in s else ""
            ratio = f"{s['ratio']:.2f}{TIMES}" if "ratio" in s else ""
            if "bulk_floor_seconds" in s:
                floor += f" (bulk {s['bulk_floor_seconds']:.1f} s)"
                ratio += f" ({s['bulk_ratio']:.2f}{TIMES})"
            lines.append(
                f"| {n:,} | {label} | {s['seconds']:.1f} s | {floor} | {ratio} "
                f"| {calls(s['litellm_calls'])} | {s['k8s_user_writes_per_user']:g} "
                f"| {kopf_events(s)} "
                f"| {cpu.get('operator', 0):g} / {cpu.get('kube-apiserver', 0):g} / "
                f"{cpu.get('litellm', 0):g} | {s['operator_cpu_per_1000_users']:g} |"
            )
    lines += [
        "",
        "| N | RSS idle | create's peak | right after creating N | at rest, no restart "
        "| after the policy edit | restart's peak | after a restart | KiB per user: create's "
        "peak / after create / at rest / after a restart |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for result in sorted(results, key=lambda r: (r["users"], r.get("round", 1))):
        m = result["memory"]
        peak = m.get("rss_create_peak_mib")  # results from before it was measured lack it
        peak_cell = DASH if peak is None else f"{peak:g} MiB"
        peak_kib = m.get("kib_per_user_create_peak")
        peak_kib_cell = DASH if peak_kib is None else f"{peak_kib:g}"
        lines.append(
            f"| {result['users']:,} | {m['rss_idle_mib']:g} MiB | {peak_cell} "
            f"| {m['rss_after_create_mib']:g} MiB | {m['rss_settled_mib']:g} MiB "
            f"| {m['rss_after_policy_edit_mib']:g} MiB | {m['rss_restart_peak_mib']:g} MiB "
            f"| {m['rss_after_restart_mib']:g} MiB | {peak_kib_cell}"
            f" / {m['kib_per_user_after_create']:g} / "
            f"{m['kib_per_user_settled']:g} / {m['kib_per_user_at_rest']:g} |"
        )
    lines += baseline_table(document["results"])
    lines += spread_table(document.get("spread") or [])
    missed = document.get("missed") or []
    lines += ["", f"Goals missed in this run: {', '.join(missed) if missed else 'none'}."]
    return "\n".join(lines)


def with_table(readme: str, rendered: str) -> str:
    head, rest = readme.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    return f"{head}{BEGIN}\n{rendered}\n{END}{tail}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--readme", action="store_true", help="rewrite the table in README.md")
    args = parser.parse_args()
    rendered = table(json.loads(RESULTS.read_text()))
    if args.readme:
        README.write_text(with_table(README.read_text(), rendered))
    else:
        print(rendered)
    return 0


if __name__ == "__main__":
    sys.exit(main())
