"""The operator's vital signs as metrics, read when ``/metrics`` is scraped: what a long run
must keep flat (asyncio tasks, threads, open file descriptors, resident memory) and what its
own indices hold, beside how often its watch streams listed and stopped.

A soak compares these over hours; an operator compares the index sizes with the API server
(``kubectl get llmusers -A | wc -l``) to see that nothing stale is kept.
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Iterator
from typing import TypeVar

from prometheus_client import CollectorRegistry, ProcessCollector
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from litellm_operator.runtime import kopf_watch
from litellm_operator.runtime.metrics import NAMESPACE

FD_DIR = "/proc/self/fd"
F = TypeVar("F", GaugeMetricFamily, CounterMetricFamily)


def open_fds() -> int:
    try:
        return len(os.listdir(FD_DIR))
    except OSError:  # not Linux
        return -1


class Vitals(Collector):
    """Collects from the running loop and the feeds of the watch streams (set once kopf's
    settings are built; none before)."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.feeds: kopf_watch.Feeds = {}

    def collect(self) -> Iterator[Metric]:
        yield self._gauge("asyncio_tasks", "Tasks of the event loop.", len(self._tasks()))
        yield self._gauge("threads", "Threads of the process.", threading.active_count())
        yield self._gauge("open_fds", "Open file descriptors of the process.", open_fds())
        objects = self._family(GaugeMetricFamily, "index_objects", "Objects the indices hold.")
        keys = GaugeMetricFamily(
            f"{NAMESPACE}_index_keys", "Keys of each index.", labels=["resource", "index"]
        )
        listings = self._family(
            CounterMetricFamily, "listings", "Complete listings read (start-up, then relists)."
        )
        stopped = self._family(
            CounterMetricFamily, "streams_stopped", "Watch streams stopped for good."
        )
        events = CounterMetricFamily(
            f"{NAMESPACE}_watch_events",
            "Watch events that reached kopf's processing, by outcome: processed by kopf, "
            "superseded by a newer one; or without kopf's cycle: settled (observed), followed "
            "(status brought up to date), finalized (kopf's finalizer added), created (the "
            "create handler run, its status stored as kopf would).",
            labels=["resource", "outcome"],
        )
        for (_, plural), feed in sorted(self.feeds.items()):
            for outcome, count in sorted(feed.events.items()):
                events.add_metric([plural, outcome], count)
            objects.add_metric([plural], len(feed.indices))
            listings.add_metric([plural], feed.listings)
            stopped.add_metric([plural], feed.stopped)
            for name, index in sorted(feed.indices.views.items()):
                keys.add_metric([plural, name], len(index))
        yield from (objects, keys, listings, stopped, events)

    def _tasks(self) -> set[asyncio.Task[object]]:
        if self.loop.is_closed():
            return set()
        return asyncio.all_tasks(self.loop)

    @staticmethod
    def _gauge(name: str, documentation: str, value: float) -> GaugeMetricFamily:
        return GaugeMetricFamily(f"{NAMESPACE}_{name}", documentation, value=value)

    @staticmethod
    def _family(kind: type[F], name: str, documentation: str) -> F:
        return kind(f"{NAMESPACE}_{name}", documentation, labels=["resource"])


def register(registry: CollectorRegistry, loop: asyncio.AbstractEventLoop) -> Vitals:
    """Report the vitals (and the process's memory, CPU and descriptors) in ``registry``."""
    vitals = Vitals(loop)
    registry.register(vitals)
    ProcessCollector(registry=registry)
    return vitals
