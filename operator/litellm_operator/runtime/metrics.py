"""Prometheus metrics of the operator, served on ``/metrics``.

One registry per process (not the global default, so tests can build their own). The LiteLLM
client reports each request through :meth:`Metrics.observe_request`; the reconciler reports
reconciles, drift corrections and readiness.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

NAMESPACE = "litellm_operator"

RECONCILE_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, float("inf"))
"""Up to minutes: under load or a slow LiteLLM a reconcile waits for its batch and its retries,
and a histogram that stops at 10 s would say only "more than 10 s"."""


class Metrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        self.reconciles = Counter(
            "reconciles",
            "Reconciles of LiteLLMUsers by result (in_sync, changed, failed).",
            ["result", "reason"],
            namespace=NAMESPACE,
            registry=self.registry,
        )
        self.team_reconciles = Counter(
            "team_reconciles",
            "Reconciles of LiteLLMTeams by result (in_sync, changed, failed).",
            ["result", "reason"],
            namespace=NAMESPACE,
            registry=self.registry,
        )
        self.reconcile_seconds = Histogram(
            "reconcile_duration_seconds",
            "Wall time of one LiteLLMUser reconcile.",
            buckets=RECONCILE_BUCKETS,
            namespace=NAMESPACE,
            registry=self.registry,
        )
        self.requests = Counter(
            "litellm_requests",
            "Requests to LiteLLM's admin API by endpoint and outcome.",
            ["endpoint", "outcome"],
            namespace=NAMESPACE,
            registry=self.registry,
        )
        self.request_seconds = Histogram(
            "litellm_request_duration_seconds",
            "Latency of requests to LiteLLM's admin API.",
            ["endpoint"],
            namespace=NAMESPACE,
            registry=self.registry,
        )
        self.drift_corrections = Counter(
            "drift_corrections",
            "Changes made in LiteLLM behind the operator's back that it reverted, by field.",
            ["field"],
            namespace=NAMESPACE,
            registry=self.registry,
        )
        self.users = Gauge(
            "users",
            "LiteLLMUsers by the status of their Ready condition.",
            ["ready"],
            namespace=NAMESPACE,
            registry=self.registry,
        )

        self.litellm_version = Gauge(
            "litellm_version_info",
            "1 for the version the LiteLLM proxy reported when last read (at start-up, after "
            "an outage, at each resync).",
            ["version"],
            namespace=NAMESPACE,
            registry=self.registry,
        )
        self.leader = Gauge(
            "leader",
            "1 while this process leads (runs handlers and writes), 0 while it stands by.",
            namespace=NAMESPACE,
            registry=self.registry,
        )

    def observe_request(self, endpoint: str, outcome: str, seconds: float) -> None:
        self.requests.labels(endpoint=endpoint, outcome=outcome).inc()
        self.request_seconds.labels(endpoint=endpoint).observe(seconds)

    def report_litellm_version(self, version: str | None) -> None:
        """The proxy's version, read again: the one series of ``litellm_version_info``."""
        self.litellm_version.clear()
        if version is not None:
            self.litellm_version.labels(version=version).set(1)

    def serve(self, port: int) -> None:
        start_http_server(port, registry=self.registry)
