"""kopf_watch.Settled: once kopf has handled an object, an event that shows nothing kopf reads
changed (and that its kind needs only observed) is observed instead of given to kopf; any other
event reaches kopf as before."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any, cast

import kopf
import pytest
from kopf._cogs.clients import watching

from litellm_operator.runtime import kopf_watch
from litellm_operator.runtime.indices import ObjectIndices
from litellm_operator.runtime.runner import StatusDiffBase
from tests.unit.test_kopf_watch import USERS, Source, fed, listing, take

STORED = '{"spec":{"policyRef":"default"}}'


def handled(**changes: Any) -> dict[str, Any]:
    """A user kopf has handled (as the event of kopf's own patch shows it), with ``changes``
    (dotted paths; ``None`` removes)."""
    body: dict[str, Any] = {
        "metadata": {
            "name": "alice",
            "namespace": "team-a",
            "uid": "uid-alice",
            "generation": 2,
            "resourceVersion": "10",
            "labels": {"app": "x"},
            "annotations": {"note": "y"},
            "finalizers": ["litellm.platform.dev/finalizer"],
        },
        "spec": {"policyRef": "default"},
        "status": {"kopf": {"last-handled-configuration": STORED}, "userId": "alice"},
    }
    for path, value in changes.items():
        *parents, leaf = path.split(".")
        node = body
        for key in parents:
            node = node.setdefault(key, {})
        if value is None:
            node.pop(leaf, None)
        else:
            node[leaf] = value
    return body


def recorded(body: Mapping[str, Any]) -> kopf_watch.Settled:
    settled = kopf_watch.Settled()
    settled.record(body, STORED)
    return settled


@pytest.mark.parametrize(
    ("event", "inert"),
    [
        pytest.param(handled(), True, id="kopf-s-own-patch"),
        pytest.param(handled(**{"status.conditions": [{"type": "Ready"}]}), True, id="status"),
        pytest.param(handled(**{"metadata.resourceVersion": "11"}), True, id="newer-version"),
        pytest.param(handled(**{"metadata.generation": 3}), False, id="spec-changed"),
        pytest.param(handled(**{"metadata.labels": {"app": "z"}}), False, id="label"),
        pytest.param(
            handled(**{"metadata.annotations": {"note": "y", "r": "1"}}), False, id="annotation"
        ),
        pytest.param(handled(**{"metadata.finalizers": None}), False, id="finalizer-gone"),
        pytest.param(
            handled(**{"metadata.deletionTimestamp": "2026-12-07T00:00:00Z"}), False, id="deleted"
        ),
        pytest.param(
            handled(**{"status.kopf.progress": {"reconcile": {"retries": 1}}}),
            False,
            id="handler-in-progress",
        ),
        pytest.param(
            handled(**{"status.kopf.last-handled-configuration": '{"spec":{}}'}),
            False,
            id="stored-another",
        ),
        pytest.param(handled(**{"status.kopf": None}), False, id="nothing-stored"),
        pytest.param(handled(**{"metadata.uid": "uid-bob"}), False, id="another-object"),
    ],
)
def test_an_event_is_inert_only_when_nothing_kopf_reads_changed(
    event: dict[str, Any], inert: bool
) -> None:
    assert recorded(handled()).inert(event) is inert


def test_an_object_never_handled_or_forgotten_is_never_inert() -> None:
    settled = kopf_watch.Settled()
    assert not settled.inert(handled())
    settled.record(handled(), STORED)
    settled.forget("uid-alice")
    assert not settled.inert(handled())
    assert len(settled) == 0


class Users:
    """A kind's quiet hooks: quiet unless the body says ``busy``; what was observed."""

    def __init__(self) -> None:
        self.observed: list[tuple[str, Any]] = []

    def quiet(self, body: Mapping[str, Any]) -> bool:
        return "busy" not in (body.get("status") or {})

    def observe(self, body: Mapping[str, Any], indices: Mapping[str, Any]) -> None:
        self.observed.append((body["metadata"]["resourceVersion"], indices.get("policies")))


class Indexers:
    indices = {"policies": "the policy index"}


@pytest.mark.parametrize(
    ("kind", "event", "observed"),
    [
        pytest.param("MODIFIED", handled(), True, id="settled-echo"),
        pytest.param("MODIFIED", handled(**{"status.busy": True}), False, id="kind-not-quiet"),
        pytest.param("MODIFIED", handled(**{"metadata.generation": 3}), False, id="changed"),
        pytest.param(None, handled(), False, id="listed"),
        pytest.param("ADDED", handled(), False, id="added"),
        pytest.param("DELETED", handled(), False, id="deleted"),
    ],
)
async def test_a_settled_event_is_observed_not_processed(
    kind: str | None, event: dict[str, Any], observed: bool
) -> None:
    users = Users()
    feed = kopf_watch.Feed(ObjectIndices({}), quiet=kopf_watch.Quiet(users.quiet, users.observe))
    settings = kopf_watch.FedSettings(feeds=fed(feed))
    settings.settled.record(handled(), STORED)
    processed: list[Any] = []

    async def process(*, raw_event: Any, **_: Any) -> None:
        processed.append(raw_event)

    released = kopf_watch.releasing(process)
    raw = {"type": kind, "object": copy.deepcopy(event)}
    await released(raw_event=raw, settings=settings, resource=USERS, indexers=Indexers())
    assert bool(users.observed) is observed
    assert bool(processed) is not observed
    assert feed.events == {"settled" if observed else "processed": 1}
    if observed:
        assert users.observed == [("10", "the policy index")]
    if kind == "DELETED":
        assert len(settings.settled) == 0, "a deleted object is forgotten"


@pytest.mark.parametrize(
    ("echo_due", "event", "observed"),
    [
        pytest.param(True, handled(**{"status.kopf": None}), True, id="before-kopf-s-patch"),
        pytest.param(False, handled(**{"status.kopf": None}), False, id="no-patch-pending"),
        pytest.param(
            True,
            handled(**{"status.kopf": None, "metadata.generation": 3}),
            False,
            id="spec-changed-meanwhile",
        ),
        pytest.param(
            True,
            handled(**{"status.kopf": {"progress": {"reconcile": {"retries": 1}}}}),
            False,
            id="handler-in-progress",
        ),
    ],
)
async def test_an_event_older_than_kopf_s_patch_waits_for_its_echo(
    echo_due: bool, event: dict[str, Any], observed: bool
) -> None:
    users = Users()
    feed = kopf_watch.Feed(ObjectIndices({}), quiet=kopf_watch.Quiet(users.quiet, users.observe))
    settings = kopf_watch.FedSettings(feeds=fed(feed))
    settings.settled.record(handled(), STORED)
    if echo_due:
        feed.echoes.expect("uid-alice")
    processed: list[Any] = []

    async def process(*, raw_event: Any, **_: Any) -> None:
        processed.append(raw_event)

    raw = {"type": "MODIFIED", "object": event}
    await kopf_watch.releasing(process)(
        raw_event=raw, settings=settings, resource=USERS, indexers=Indexers()
    )
    assert bool(users.observed) is observed
    assert bool(processed) is not observed


async def test_a_kind_without_quiet_hooks_has_every_event_processed() -> None:
    feed = kopf_watch.Feed(ObjectIndices({}))
    settings = kopf_watch.FedSettings(feeds=fed(feed))
    settings.settled.record(handled(), STORED)
    processed: list[Any] = []

    async def process(*, raw_event: Any, **_: Any) -> None:
        processed.append(raw_event)

    raw = {"type": "MODIFIED", "object": handled()}
    await kopf_watch.releasing(process)(raw_event=raw, settings=settings, resource=USERS)
    assert processed == [raw]


def test_kopf_storing_a_configuration_records_it() -> None:
    """The diff-base storage tells Settled what kopf stores, as kopf would write it."""
    settled = kopf_watch.Settled()
    storage = StatusDiffBase(settled)
    body = kopf.Body(cast(kopf.RawBody, handled(**{"status.kopf": None})))
    patch = kopf.Patch()
    storage.store(body=body, patch=patch, essence=storage.build(body=body))
    written = patch["status"]["kopf"]["last-handled-configuration"]
    echo = handled(**{"status.kopf.last-handled-configuration": written})
    assert settled.inert(echo)
    assert not settled.inert(handled(**{"status.kopf.last-handled-configuration": written + " "}))


def test_kopf_keeps_its_state_where_settled_reads_it() -> None:
    assert kopf_watch.kopf_state_where_expected()


def stream(source: Source, feed: kopf_watch.Feed, settings: kopf_watch.FedSettings) -> Any:
    return kopf_watch.slimmed(source)(
        settings=settings, resource=USERS, namespace="team-a", operator_pause_waiter=None
    )


async def test_what_a_relist_or_a_stopped_stream_drops_is_forgotten() -> None:
    feed = kopf_watch.Feed(ObjectIndices({}))
    settings = kopf_watch.FedSettings(feeds=fed(feed))
    for name in ("kept", "gone", "elsewhere"):
        settings.settled.record(handled(**{"metadata.uid": f"uid-{name}"}), STORED)
    feed.seen["team-b"] = {"uid-elsewhere"}
    first = stream(Source([*listing("kept", "gone"), watching.Bookmark.LISTED]), feed, settings)
    await take(first, 1)
    relisted = stream(Source([*listing("kept"), watching.Bookmark.LISTED]), feed, settings)
    await take(relisted, 1)
    assert len(settings.settled) == 2, "deleted while the watch was down: forgotten"
    await first.aclose()
    assert len(settings.settled) == 2, "the stream still runs in its successor"
    await relisted.aclose()  # the namespace is no longer watched
    assert len(settings.settled) == 1, "only another stream's object is left"
