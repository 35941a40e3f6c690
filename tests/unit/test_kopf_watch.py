"""kopf_watch: kopf's watch events reach its queues without managedFields, and nothing else
about them changes."""

from __future__ import annotations

import copy
from collections.abc import AsyncIterator
from typing import Any

import pytest
from kopf._cogs.clients import watching

from litellm_operator import kopf_watch

MANAGED = [{"manager": "kubectl", "operation": "Update", "fieldsV1": {"f:spec": {}}}]


def user(**metadata: Any) -> dict[str, Any]:
    return {
        "apiVersion": "litellm.platform.dev/v1alpha1",
        "kind": "LiteLLMUser",
        "metadata": {"name": "alice", "namespace": "team-a", "uid": "u-1", **metadata},
        "spec": {"policyRef": "default"},
        "status": {"kopf": {"progress": {}}},
    }


@pytest.mark.parametrize(
    ("event", "expected"),
    [
        pytest.param(
            {"type": None, "object": user(managedFields=MANAGED)},
            {"type": None, "object": user()},
            id="listed-object",
        ),
        pytest.param(
            {"type": "MODIFIED", "object": user(managedFields=MANAGED, resourceVersion="7")},
            {"type": "MODIFIED", "object": user(resourceVersion="7")},
            id="watch-event",
        ),
        pytest.param(
            {"type": "ADDED", "object": user()},
            {"type": "ADDED", "object": user()},
            id="no-managed-fields",
        ),
        pytest.param(
            {"type": "BOOKMARK", "object": {}}, {"type": "BOOKMARK", "object": {}}, id="no-metadata"
        ),
        pytest.param(
            {"type": "ERROR", "object": {"code": 410, "metadata": None}},
            {"type": "ERROR", "object": {"code": 410, "metadata": None}},
            id="error",
        ),
        pytest.param(watching.Bookmark.LISTED, watching.Bookmark.LISTED, id="kopf-bookmark"),
    ],
)
def test_strip_managed_fields(event: Any, expected: Any) -> None:
    assert kopf_watch.strip_managed_fields(event) == expected


async def test_slimmed_watch_yields_every_event_in_order_and_closes_the_source() -> None:
    events = [
        {"type": None, "object": user(managedFields=MANAGED)},
        watching.Bookmark.LISTED,
        {"type": "DELETED", "object": user(managedFields=MANAGED)},
    ]
    seen_kwargs: dict[str, Any] = {}
    closed = []

    async def source(**kwargs: Any) -> AsyncIterator[Any]:
        seen_kwargs.update(kwargs)
        try:
            for event in copy.deepcopy(events):
                yield event
            yield {"type": "ADDED", "object": user()}  # never taken: the consumer stops
        finally:
            closed.append(True)

    got = []
    stream = kopf_watch.slimmed(source)(settings="s", resource="r", namespace=None)
    async for event in stream:
        got.append(event)
        if len(got) == len(events):
            break
    await stream.aclose()  # type: ignore[attr-defined]
    assert got == [
        {"type": None, "object": user()},
        watching.Bookmark.LISTED,
        {"type": "DELETED", "object": user()},
    ]
    assert seen_kwargs == {"settings": "s", "resource": "r", "namespace": None}
    assert closed == [True]


def test_install_wraps_kopf_infinite_watch(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(watching, "infinite_watch", kopf_watch._ORIGINAL_INFINITE_WATCH)
    assert kopf_watch.install()
    assert watching.infinite_watch is not kopf_watch._ORIGINAL_INFINITE_WATCH
    assert kopf_watch.installed()
    wrapped = watching.infinite_watch
    assert kopf_watch.install()  # twice is harmless: not wrapped twice
    assert watching.infinite_watch is wrapped


def test_install_refuses_a_kopf_whose_watch_changed(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def infinite_watch(**_: Any) -> None:  # not an async generator any more
        return None

    monkeypatch.setattr(watching, "infinite_watch", infinite_watch)
    assert not kopf_watch.install()
    current: Any = watching.infinite_watch
    assert current is infinite_watch
    assert "managedFields" in caplog.text
