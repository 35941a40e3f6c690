"""The operator's Prometheus metrics as a scrape shows them."""

from __future__ import annotations

import pytest
from prometheus_client import generate_latest

from litellm_operator.runtime.metrics import Metrics


@pytest.mark.parametrize(
    ("seconds", "bucket", "below"),
    [
        pytest.param(0.2, 'le="0.25"', 'le="0.1"', id="fast"),
        pytest.param(45.0, 'le="60.0"', 'le="30.0"', id="slow-lite-llm"),
        pytest.param(200.0, 'le="300.0"', 'le="120.0"', id="minutes"),
    ],
)
def test_a_reconcile_s_wall_time_lands_in_its_bucket(
    seconds: float, bucket: str, below: str
) -> None:
    metrics = Metrics()
    metrics.reconcile_seconds.observe(seconds)
    scrape = generate_latest(metrics.registry).decode()
    name = "litellm_operator_reconcile_duration_seconds_bucket"
    assert f"{name}{{{bucket}}} 1.0" in scrape
    assert f"{name}{{{below}}} 0.0" in scrape
