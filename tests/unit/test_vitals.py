"""vitals: the loop's tasks, threads, descriptors and the indices' sizes, read at each scrape."""

from __future__ import annotations

import asyncio
from collections.abc import Hashable, Mapping
from typing import Any

from prometheus_client import CollectorRegistry

from litellm_operator.runtime import kopf_watch, vitals
from litellm_operator.runtime.indices import ObjectIndices


def by_email(body: Mapping[str, Any]) -> dict[Hashable, Any]:
    return {body["spec"]["email"]: body["metadata"]["name"]}


def user(name: str, email: str) -> dict[str, Any]:
    return {"metadata": {"name": name, "uid": f"uid-{name}"}, "spec": {"email": email}}


async def test_a_scrape_reports_the_loop_and_the_indices() -> None:
    registry = CollectorRegistry()
    collector = vitals.register(registry, asyncio.get_running_loop())
    indices = ObjectIndices({"by_email": by_email})
    for name, email in (("a", "x@example.com"), ("b", "x@example.com"), ("c", "y@example.com")):
        indices.apply("ns", {"type": "ADDED", "object": user(name, email)})
    feed = kopf_watch.Feed(indices, listings=3, stopped=1)
    sleepers = [asyncio.create_task(asyncio.sleep(10)) for _ in range(5)]
    value = registry.get_sample_value
    try:
        assert value("litellm_operator_index_objects", {"resource": "users"}) is None
        collector.feeds = {("example.com", "users"): feed}
        tasks = value("litellm_operator_asyncio_tasks")
        assert (tasks or 0) >= len(sleepers) + 1
        assert value("litellm_operator_index_objects", {"resource": "users"}) == 3
        keys = value("litellm_operator_index_keys", {"resource": "users", "index": "by_email"})
        assert keys == 2
        assert value("litellm_operator_listings_total", {"resource": "users"}) == 3
        assert value("litellm_operator_streams_stopped_total", {"resource": "users"}) == 1
        fds, threads = value("litellm_operator_open_fds"), value("litellm_operator_threads")
        assert (fds or 0) > 2
        assert (threads or 0) >= 1
        assert value("process_resident_memory_bytes") is not None
    finally:
        for task in sleepers:
            task.cancel()
        await asyncio.gather(*sleepers, return_exceptions=True)
