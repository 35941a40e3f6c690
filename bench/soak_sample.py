"""What the soak reads from the operator's ``/metrics`` text, and what it makes of the samples:
latency quantiles from histogram buckets, per-phase summaries and the flatness verdicts.

Pure functions on parsed samples, so they are table-tested (tests/unit/test_soak_sample.py);
:mod:`bench.soak` does the sampling.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

LINE = re.compile(r"^(?P<name>[a-zA-Z_:][a-zA-Z0-9_:]*)(\{(?P<labels>[^}]*)\})? (?P<value>\S+)$")
LABEL = re.compile(r'(\w+)="([^"]*)"')
P = "litellm_operator_"
RECONCILE_BUCKET = P + "reconcile_duration_seconds_bucket"
LITELLM_REQUESTS = P + "litellm_requests_total"
LITELLM_WRITES = frozenset(
    {"/user/new", "/user/update", "/user/bulk_update", "/user/delete", "/team/member_add"}
)
GAUGES = {
    "tasks": P + "asyncio_tasks",
    "threads": P + "threads",
    "fds": P + "open_fds",
    "leader": P + "leader",
}
FLAT_RSS_FRACTION = 0.05
"""RSS at the end of each quiet phase within 5% of the first quiet phase's (the issue's goal)."""
COUNTS = ("tasks", "threads", "fds")
"""What must be back to its baseline at the end of each quiet phase."""

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def parse(text: str) -> Samples:
    """Prometheus text → {(name, sorted labels): value}."""
    found: Samples = {}
    for line in text.splitlines():
        match = LINE.match(line)
        if match is None or line.startswith("#"):
            continue
        labels = tuple(sorted(LABEL.findall(match["labels"] or "")))
        try:
            found[(match["name"], labels)] = float(match["value"])
        except ValueError:
            continue
    return found


def value(samples: Samples, name: str, **labels: str) -> float | None:
    """The sum of ``name``'s samples whose labels include ``labels`` (``None``: none)."""
    wanted = set(labels.items())
    hits = [v for (n, ls), v in samples.items() if n == name and wanted <= set(ls)]
    return sum(hits) if hits else None


def buckets(samples: Samples, name: str = RECONCILE_BUCKET) -> dict[float, float]:
    """A histogram's cumulative buckets: upper bound → count."""
    found: dict[float, float] = {}
    for (n, labels), count in samples.items():
        if n == name:
            le = dict(labels).get("le")
            if le is not None:
                found[float(le)] = found.get(float(le), 0.0) + count
    return found


def litellm_calls(samples: Samples) -> dict[str, float]:
    """LiteLLM requests so far, per endpoint."""
    calls: dict[str, float] = {}
    for (n, labels), count in samples.items():
        if n == LITELLM_REQUESTS:
            endpoint = dict(labels).get("endpoint", "")
            calls[endpoint] = calls.get(endpoint, 0.0) + count
    return calls


def since(after: Mapping[Any, float], before: Mapping[Any, float]) -> dict[Any, float]:
    """Counter increase from ``before`` to ``after``; a counter that went down restarted (a
    new operator process), so its increase is its value."""
    increase: dict[Any, float] = {}
    for key, now in after.items():
        then = before.get(key, 0.0)
        increase[key] = now if now < then else now - then
    return increase


def quantile(cumulative: Mapping[float, float], q: float) -> float | None:
    """The ``q`` quantile of a histogram's cumulative buckets, interpolated linearly inside the
    bucket as Prometheus's ``histogram_quantile`` does (``None``: no observation)."""
    bounds = sorted(cumulative)
    if not bounds or cumulative[bounds[-1]] <= 0:
        return None
    rank = q * cumulative[bounds[-1]]
    lower, below = 0.0, 0.0
    for bound in bounds:
        count = cumulative[bound]
        if count >= rank:
            if math.isinf(bound):
                return lower
            inside = count - below
            return lower + (bound - lower) * ((rank - below) / inside if inside else 1.0)
        lower, below = bound, count
    return lower


def phase_latency(phases: Sequence[Mapping[str, Any]]) -> dict[str, dict[str, float | None]]:
    """Reconcile latency p50/p99 per kind of phase, from the bucket increase of each phase."""
    merged: dict[str, dict[float, float]] = {}
    for phase in phases:
        total = merged.setdefault(phase["kind"], {})
        for bound, count in phase["reconcile_buckets"].items():
            total[float(bound)] = total.get(float(bound), 0.0) + count
    return {
        kind: {
            "p50_seconds": rounded(quantile(total, 0.5)),
            "p99_seconds": rounded(quantile(total, 0.99)),
            "reconciles": total.get(math.inf, 0.0),
        }
        for kind, total in merged.items()
    }


def rounded(number: float | None, digits: int = 3) -> float | None:
    return None if number is None else round(number, digits)


def flatness(quiet: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """The flatness verdicts over the ends of the quiet phases, per leading process; a quiet
    phase that never became idle (``idle_after_seconds`` ``None``) fails them.

    Each process's reference is the run's first quiet end, or the process's own first where
    that is higher: a standby that took over has only listed the objects and starts below the
    run's first; it may warm up to it, not past it. Resident memory: no quiet end more than
    :data:`FLAT_RSS_FRACTION` above the reference; tasks, threads and descriptors: the last
    quiet end at most the reference."""
    ends = list(quiet)
    not_idle = [int(end["minute"]) for end in ends if end.get("idle_after_seconds", 0) is None]
    # A quiet phase the operator did not finish in time measures its backlog, not its growth.
    verdicts: dict[str, Any] = {"processes": [], "not_idle_minutes": not_idle, "ok": not not_idle}
    if not ends:
        return verdicts
    run_first = ends[0]
    verdicts["rss_run_first_mib"] = round(run_first["rss_kib"] / 1024, 1)
    by_pid: dict[int, list[Mapping[str, Any]]] = {}
    for end in ends:
        by_pid.setdefault(int(end["pid"]), []).append(end)
    for pid, own in by_pid.items():
        first, last = own[0], own[-1]
        baseline = {k: max(run_first[k], first[k]) for k in ("rss_kib", *COUNTS)}
        reference = baseline["rss_kib"]
        highest = max(e["rss_kib"] for e in own)
        above = (highest - reference) / reference
        back = {what: [e[what] for e in own if e[what] > baseline[what]] for what in COUNTS}
        process = {
            "pid": pid,
            "quiet_phases": len(own),
            "rss_first_mib": round(first["rss_kib"] / 1024, 1),
            "rss_last_mib": round(last["rss_kib"] / 1024, 1),
            "rss_highest_mib": round(highest / 1024, 1),
            "rss_reference_mib": round(reference / 1024, 1),
            "rss_above_reference_percent": round(100 * above, 1),
            "rss_ok": above <= FLAT_RSS_FRACTION,
            "baseline": {k: baseline[k] for k in COUNTS},
            "last": {k: last[k] for k in COUNTS},
            "back_to_baseline": all(last[k] <= baseline[k] for k in COUNTS),
            "above_baseline": {k: v for k, v in back.items() if v},
        }
        verdicts["processes"].append(process)
        verdicts["ok"] = verdicts["ok"] and process["rss_ok"] and process["back_to_baseline"]
    return verdicts
