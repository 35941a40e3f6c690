"""soak_sample: the soak's reading of /metrics text, latency quantiles from histogram buckets,
counter increases across operator restarts, and the flatness verdicts."""

from __future__ import annotations

import math
from typing import Any

import pytest

from bench import soak_sample as ss

TEXT = """# HELP litellm_operator_asyncio_tasks Tasks of the event loop.
litellm_operator_asyncio_tasks 42.0
litellm_operator_litellm_requests_total{endpoint="/user/new",outcome="ok"} 3.0
litellm_operator_litellm_requests_total{endpoint="/user/new",outcome="error"} 1.0
litellm_operator_litellm_requests_total{endpoint="/user/list",outcome="ok"} 7.0
litellm_operator_reconcile_duration_seconds_bucket{le="0.1"} 5.0
litellm_operator_reconcile_duration_seconds_bucket{le="1.0"} 9.0
litellm_operator_reconcile_duration_seconds_bucket{le="+Inf"} 10.0
"""


def test_parse_sums_and_groups() -> None:
    samples = ss.parse(TEXT)
    assert ss.value(samples, ss.GAUGES["tasks"]) == 42
    assert ss.value(samples, ss.LITELLM_REQUESTS, endpoint="/user/new") == 4
    assert ss.value(samples, "absent") is None
    assert ss.litellm_calls(samples) == {"/user/new": 4, "/user/list": 7}
    assert ss.buckets(samples) == {0.1: 5, 1.0: 9, math.inf: 10}


@pytest.mark.parametrize(
    ("cumulative", "q", "expected"),
    [
        pytest.param({0.1: 5, 1.0: 9, math.inf: 10}, 0.5, 0.1, id="median-on-a-bound"),
        pytest.param({0.1: 0, 1.0: 10, math.inf: 10}, 0.5, 0.55, id="interpolated-in-bucket"),
        pytest.param({0.1: 5, 1.0: 9, math.inf: 10}, 0.99, 1.0, id="beyond-last-bound"),
        pytest.param({0.1: 0, math.inf: 0}, 0.5, None, id="no-observation"),
        pytest.param({}, 0.5, None, id="no-bucket"),
    ],
)
def test_quantile(cumulative: dict[float, float], q: float, expected: float | None) -> None:
    found = ss.quantile(cumulative, q)
    assert found == (None if expected is None else pytest.approx(expected))


@pytest.mark.parametrize(
    ("before", "after", "expected"),
    [
        pytest.param({"a": 3.0}, {"a": 5.0}, {"a": 2.0}, id="increase"),
        pytest.param({"a": 30.0}, {"a": 4.0}, {"a": 4.0}, id="restarted-process"),
        pytest.param({}, {"b": 1.0}, {"b": 1.0}, id="new-series"),
    ],
)
def test_since(before: dict[str, float], after: dict[str, float], expected: Any) -> None:
    assert ss.since(after, before) == expected


def test_phase_latency_merges_phases_of_a_kind() -> None:
    phases = [
        {"kind": "churn", "reconcile_buckets": {0.1: 2, 1.0: 2, math.inf: 2}},
        {"kind": "churn", "reconcile_buckets": {0.1: 0, 1.0: 2, math.inf: 2}},
        {"kind": "quiet", "reconcile_buckets": {0.1: 0, 1.0: 0, math.inf: 0}},
    ]
    latency = ss.phase_latency(phases)
    assert latency["churn"]["reconciles"] == 4
    assert latency["churn"]["p50_seconds"] == pytest.approx(0.1)
    assert latency["quiet"]["p99_seconds"] is None


def end(
    pid: int,
    rss: int,
    tasks: int = 10,
    threads: int = 5,
    fds: int = 20,
    idle_after: float | None = 30.0,
) -> dict[str, Any]:
    return {
        "minute": 4,
        "pid": pid,
        "rss_kib": rss,
        "tasks": tasks,
        "threads": threads,
        "fds": fds,
        "idle_after_seconds": idle_after,
    }


@pytest.mark.parametrize(
    ("ends", "ok"),
    [
        pytest.param([end(1, 100_000), end(1, 104_000), end(1, 99_000)], True, id="flat"),
        pytest.param([end(1, 100_000), end(1, 106_000)], False, id="rss-grew-6-percent"),
        pytest.param([end(1, 100_000), end(1, 100_000, tasks=11)], False, id="a-task-more"),
        pytest.param([end(1, 100_000), end(1, 100_000, fds=18)], True, id="fewer-fds"),
        pytest.param(
            [end(1, 100_000), end(2, 150_000), end(2, 151_000)], True, id="new-process-baseline"
        ),
        pytest.param(
            [end(1, 100_000), end(1, 100_000, idle_after=None)], False, id="never-became-idle"
        ),
        pytest.param(
            [end(1, 100_000), end(2, 80_000), end(2, 104_000)], True, id="standby-warms-to-the-run"
        ),
        pytest.param(
            [end(1, 100_000), end(2, 80_000), end(2, 106_000)],
            False,
            id="standby-grows-past-the-run",
        ),
        pytest.param([end(1, 100_000), end(1, 70_000)], True, id="smaller-is-not-growth"),
        pytest.param(
            [end(1, 100_000, fds=42), end(2, 100_000, fds=41), end(2, 100_000, fds=42)],
            True,
            id="standby-fds-warm-to-the-run",
        ),
        pytest.param(
            [end(1, 100_000, fds=42), end(2, 100_000, fds=41), end(2, 100_000, fds=43)],
            False,
            id="standby-fds-past-the-run",
        ),
        pytest.param([], True, id="no-quiet-phase"),
    ],
)
def test_flatness(ends: list[dict[str, Any]], ok: bool) -> None:
    assert ss.flatness(ends)["ok"] is ok
