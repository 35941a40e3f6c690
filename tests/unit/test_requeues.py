"""keys/due.py: one pending "reconcile again" per object, replaced by a newer one, cancelled at
shutdown."""

from __future__ import annotations

import asyncio

import pytest

from litellm_operator.keys.due import Requeues


@pytest.mark.parametrize(
    ("delays", "nudged"),
    [
        pytest.param([("ns", "a", 0.01)], [("ns", "a")], id="one"),
        pytest.param([("ns", "a", 5.0), ("ns", "a", 0.01)], [("ns", "a")], id="replaced-sooner"),
        pytest.param(
            [("ns", "a", 0.01), ("ns", "b", 0.02)], [("ns", "a"), ("ns", "b")], id="per-object"
        ),
        pytest.param([("ns", "a", 0.01), ("ns", "a", 5.0)], [], id="replaced-later"),
    ],
)
async def test_one_pending_requeue_per_object(
    delays: list[tuple[str, str, float]], nudged: list[tuple[str, str]]
) -> None:
    seen: list[tuple[str, str]] = []

    async def nudge(namespace: str, name: str, why: str) -> None:
        assert why.startswith("keys due at ")
        seen.append((namespace, name))

    due = Requeues(nudge)
    for namespace, name, delay in delays:
        due.requeue(namespace, name, delay)
    await asyncio.sleep(0.2)
    await due.close()
    assert seen == nudged
