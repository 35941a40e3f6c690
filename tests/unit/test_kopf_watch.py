"""kopf_watch: kopf's watch events reach its queues without managedFields; a fed kind's listing
is indexed whole before kopf sees any of it, then handed over through the replay gate."""

from __future__ import annotations

import asyncio
import copy
from collections.abc import AsyncIterator, Hashable, Mapping
from types import SimpleNamespace
from typing import Any

import pytest
from kopf._cogs.clients import watching
from kopf._core.reactor import processing

from litellm_operator.runtime import kopf_watch
from litellm_operator.runtime.handling import with_indices
from litellm_operator.runtime.indices import ObjectIndices

MANAGED = [{"manager": "kubectl", "operation": "Update", "fieldsV1": {"f:spec": {}}}]


def user(name: str = "alice", **metadata: Any) -> dict[str, Any]:
    metadata.setdefault("uid", f"uid-{name}")
    return {
        "apiVersion": "litellm.platform.dev/v1alpha1",
        "kind": "LiteLLMUser",
        "metadata": {"name": name, "namespace": "team-a", **metadata},
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


USERS = SimpleNamespace(group="litellm.platform.dev", plural="litellmusers")
OTHERS = SimpleNamespace(group="litellm.platform.dev", plural="provisioningpolicies")


def by_name(body: Mapping[str, Any]) -> dict[Hashable, Any]:
    return {body["metadata"]["name"]: body["metadata"].get("resourceVersion")}


class Source:
    """Stands in for kopf's continuous_watch: yields the given events, records its closing."""

    def __init__(self, events: list[Any]) -> None:
        self.events = events
        self.kwargs: dict[str, Any] = {}
        self.closed = False

    async def __call__(self, **kwargs: Any) -> AsyncIterator[Any]:
        self.kwargs = kwargs
        try:
            for event in copy.deepcopy(self.events):
                await asyncio.sleep(0)
                yield event
        finally:
            self.closed = True


def listing(*names: str) -> list[Any]:
    return [{"type": None, "object": user(n, managedFields=MANAGED)} for n in names]


async def take(stream: AsyncIterator[Any], count: int, timeout: float = 1.0) -> list[Any]:
    got: list[Any] = []
    async with asyncio.timeout(timeout):
        async for event in stream:
            got.append(event)
            if len(got) == count:
                break
    return got


def fed(feed: kopf_watch.Feed) -> kopf_watch.Feeds:
    return {(USERS.group, USERS.plural): feed}


@pytest.fixture
def feed() -> Any:
    return kopf_watch.Feed(ObjectIndices({"by_name": by_name}), kopf_watch.ReplayGate(limit=2))


async def watch_of(source: Source, feed: kopf_watch.Feed, resource: Any = USERS) -> Any:
    settings = kopf_watch.FedSettings(feeds=fed(feed))
    stream = kopf_watch.slimmed(source)(
        settings=settings, resource=resource, namespace="team-a", operator_pause_waiter=None
    )
    yield stream


async def test_an_unfed_kind_passes_through_without_managed_fields(feed: Any) -> None:
    source = Source(
        [*listing("a"), watching.Bookmark.LISTED, {"type": "DELETED", "object": user("a")}]
    )
    async for stream in watch_of(source, feed, resource=OTHERS):
        got = await take(stream, 3)
        await stream.aclose()
    assert got == [
        {"type": None, "object": user("a")},
        watching.Bookmark.LISTED,
        {"type": "DELETED", "object": user("a")},
    ]
    assert source.closed
    assert len(feed.indices) == 0
    assert source.kwargs["namespace"] == "team-a"


async def test_a_listing_is_indexed_whole_then_listed_then_replayed(feed: Any) -> None:
    modified = user("b", resourceVersion="9", managedFields=MANAGED)
    source = Source(
        [*listing("a", "b"), watching.Bookmark.LISTED, {"type": "MODIFIED", "object": modified}]
    )
    async for stream in watch_of(source, feed):
        first = await take(stream, 1)
        assert first == [watching.Bookmark.LISTED], (
            "kopf hears the listing is over before any object"
        )
        assert sorted(feed.indices.views["by_name"]) == ["a", "b"], "and the index holds it all"
        replayed = await take(stream, 2)
        assert replayed == [
            {"type": None, "object": user("a")},
            {"type": None, "object": user("b")},
        ]
        for event in replayed:
            kopf_watch.release(fed(feed), event["object"]["metadata"]["uid"], settled=False)
        (watched,) = await take(stream, 1)
        assert watched == {"type": "MODIFIED", "object": user("b", resourceVersion="9")}
        assert list(feed.indices.views["by_name"]["b"]) == ["9"], "indexed before kopf sees it"
        await stream.aclose()
    assert source.closed


async def test_the_stream_tells_which_queued_event_is_the_newest(feed: Any) -> None:
    older, newer = (
        {"type": "MODIFIED", "object": user("a", resourceVersion=v)} for v in ("5", "6")
    )
    source = Source([watching.Bookmark.LISTED, older, newer])
    settings = kopf_watch.FedSettings(feeds=fed(feed))
    stream: Any = kopf_watch.slimmed(source)(
        settings=settings, resource=USERS, namespace="team-a", operator_pause_waiter=None
    )
    got = await take(stream, 3)
    await stream.aclose()
    assert got[1:] == [older, newer]
    assert settings.newest.superseded(older)
    assert not settings.newest.superseded(newer)


async def test_a_listing_cut_short_changes_nothing(feed: Any) -> None:
    feed.indices.apply("team-a", {"type": "ADDED", "object": user("old")})
    source = Source(listing("a", "b"))  # no LISTED: the connection broke
    async for stream in watch_of(source, feed):
        assert await take(stream, 1) == []
    assert list(feed.indices.views["by_name"]) == ["old"]


async def test_a_new_listing_drops_what_is_gone(feed: Any) -> None:
    feed.indices.apply("team-a", {"type": "ADDED", "object": user("gone")})
    source = Source([*listing("a"), watching.Bookmark.LISTED])
    async for stream in watch_of(source, feed):
        await take(stream, 1)
        assert list(feed.indices.views["by_name"]) == ["a"]
        await stream.aclose()


def stream_of(source: Source, feed: kopf_watch.Feed, namespace: str) -> Any:
    settings = kopf_watch.FedSettings(feeds=fed(feed))
    return kopf_watch.slimmed(source)(
        settings=settings, resource=USERS, namespace=namespace, operator_pause_waiter=None
    )


async def test_a_stream_stopped_for_good_drops_what_it_indexed(feed: Any) -> None:
    feed.indices.apply("team-b", {"type": "ADDED", "object": user("other")})
    stream = stream_of(Source([*listing("a"), watching.Bookmark.LISTED]), feed, "team-a")
    await take(stream, 1)
    assert sorted(feed.indices.views["by_name"]) == ["a", "other"]
    await stream.aclose()  # kopf stops the namespace's watcher
    assert list(feed.indices.views["by_name"]) == ["other"], "another stream's entries stay"
    assert (feed.listings, feed.stopped, feed.watchers) == (1, 1, {})


async def test_a_stream_that_ends_keeps_what_it_indexed_for_the_relist(feed: Any) -> None:
    stream = stream_of(Source([*listing("a"), watching.Bookmark.LISTED]), feed, "team-a")
    got = await take(stream, 3)  # LISTED, a, then the watch ends (410 Gone, say)
    assert len(got) == 2
    assert list(feed.indices.views["by_name"]) == ["a"]
    assert (feed.listings, feed.stopped) == (1, 0)


async def test_a_stream_closed_while_its_successor_runs_keeps_its_entries(feed: Any) -> None:
    old = stream_of(Source([*listing("a"), watching.Bookmark.LISTED]), feed, "team-a")
    await take(old, 1)
    new = stream_of(Source([*listing("a", "b"), watching.Bookmark.LISTED]), feed, "team-a")
    await take(new, 1)
    await old.aclose()
    assert sorted(feed.indices.views["by_name"]) == ["a", "b"]
    assert feed.stopped == 0
    await new.aclose()
    assert len(feed.indices) == 0


async def test_at_most_the_gate_limit_is_in_kopf_hands(feed: Any) -> None:
    source = Source([*listing("a", "b", "c"), watching.Bookmark.LISTED])
    async for stream in watch_of(source, feed):
        got = await take(stream, 3)  # LISTED, a, b
        assert len(feed.gate) == 2
        third = asyncio.ensure_future(take(stream, 1))
        await asyncio.sleep(0.05)
        assert not third.done(), "c waits while a and b are in kopf's hands"
        kopf_watch.release(fed(feed), "uid-a", settled=False)
        assert [e["object"]["metadata"]["name"] for e in await third] == ["c"]
        assert [e["object"]["metadata"]["name"] for e in got[1:]] == ["a", "b"]
        await stream.aclose()


async def test_the_gate_never_stalls_for_good() -> None:
    gate = kopf_watch.ReplayGate(limit=1, stall=0.01)
    await gate.admit("a")
    await asyncio.wait_for(gate.admit("b"), 1)  # a never released: taken as gone
    assert len(gate) == 1
    gate.release("nobody")
    gate.release("b")
    assert len(gate) == 0


async def test_kopf_done_with_an_event_releases_its_object() -> None:
    gate = kopf_watch.ReplayGate(limit=5)
    feed = kopf_watch.Feed(ObjectIndices({}), gate)
    calls: list[Any] = []

    async def process(*, raw_event: Any, **kwargs: Any) -> str:
        calls.append((raw_event, kwargs))
        if raw_event["object"]["metadata"]["name"] == "bad":
            raise RuntimeError("boom")
        return "7"

    released = kopf_watch.releasing(process)
    settings = kopf_watch.FedSettings(feeds=fed(feed))
    for name in ("a", "bad"):
        await gate.admit(f"uid-{name}")
    event = {"type": None, "object": user("a")}
    assert await released(raw_event=event, settings=settings, x=1) == "7"
    with pytest.raises(RuntimeError):
        await released(raw_event={"type": None, "object": user("bad")}, settings=settings)
    assert len(gate) == 0
    assert calls[0][1] == {"settings": settings, "x": 1}


async def test_kopf_settings_without_feeds_release_nothing() -> None:
    gate = kopf_watch.ReplayGate(limit=5)
    await gate.admit("uid-a")

    async def process(**_: Any) -> None:
        return None

    plain_settings = SimpleNamespace()
    await kopf_watch.releasing(process)(raw_event={"object": user("a")}, settings=plain_settings)
    assert len(gate) == 1


@pytest.mark.parametrize(
    ("passed", "processed", "expected"),
    [
        pytest.param(
            ["ADDED 1", "MODIFIED 2"], ["ADDED 1", "MODIFIED 2"], ["2"], id="added-superseded"
        ),
        pytest.param(
            ["MODIFIED 2", "MODIFIED 3", "MODIFIED 4"],
            ["MODIFIED 2", "MODIFIED 3", "MODIFIED 4"],
            ["4"],
            id="only-the-newest",
        ),
        pytest.param(
            ["None 1", "MODIFIED 2"], ["None 1", "MODIFIED 2"], ["2"], id="listed-superseded"
        ),
        pytest.param(
            ["MODIFIED 2", "DELETED 3"], ["MODIFIED 2", "DELETED 3"], ["3"], id="before-deletion"
        ),
        pytest.param(
            ["DELETED 3", "ADDED 4"],
            ["DELETED 3", "ADDED 4"],
            ["3", "4"],
            id="deletion-always-processed",
        ),
        pytest.param(
            ["MODIFIED 2"], ["MODIFIED 2", "MODIFIED 2"], ["2", "2"], id="same-version-again"
        ),
        pytest.param([], ["MODIFIED 2"], ["2"], id="not-passed-by-a-stream"),
    ],
)
async def test_an_event_with_a_newer_one_queued_is_not_processed(
    passed: list[str], processed: list[str], expected: list[str]
) -> None:
    settings = kopf_watch.FedSettings()

    def event(spec: str) -> dict[str, Any]:
        kind, version = spec.split()
        return {"type": None if kind == "None" else kind, "object": user(resourceVersion=version)}

    seen: list[str] = []

    async def process(*, raw_event: Any, **_: Any) -> str:
        seen.append(raw_event["object"]["metadata"]["resourceVersion"])
        return "patched"

    released = kopf_watch.releasing(process)
    for spec in passed:
        settings.newest.passed(event(spec))
    results = [await released(raw_event=event(spec), settings=settings) for spec in processed]
    assert seen == expected
    assert results.count("patched") == len(expected)
    assert len(settings.newest) == 0, "nothing is remembered once the newest is processed"


async def test_a_settling_handler_gets_the_indices_and_releases_its_object() -> None:
    indices = ObjectIndices({"by_name": by_name})
    indices.apply("ns", {"type": "ADDED", "object": user("a")})
    gate = kopf_watch.ReplayGate(limit=5)
    seen: dict[str, Any] = {}

    async def handler(**kwargs: Any) -> str:
        seen.update(kwargs)
        return "done"

    settings = kopf_watch.FedSettings(feeds=fed(kopf_watch.Feed(indices, gate)))
    wrap = with_indices(indices, settings)
    await gate.admit("uid-a")
    assert await wrap(handler)(uid="uid-a") == "done"
    assert len(gate) == 1, "a handler that does not settle leaves the object out"
    assert await wrap(handler, True)(uid="uid-a") == "done"
    assert len(gate) == 0
    assert list(seen["by_name"]) == ["a"]


def test_install_wraps_kopf_functions(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(watching, "continuous_watch", kopf_watch._ORIGINAL_CONTINUOUS_WATCH)
    monkeypatch.setattr(processing, "process_resource_event", kopf_watch._ORIGINAL_PROCESS)
    assert kopf_watch.install()
    assert kopf_watch.installed()
    wrapped = watching.continuous_watch
    assert wrapped is not kopf_watch._ORIGINAL_CONTINUOUS_WATCH
    assert kopf_watch.install()  # twice is harmless: not wrapped twice
    assert watching.continuous_watch is wrapped


def test_install_refuses_a_kopf_whose_watch_changed(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def continuous_watch(**_: Any) -> None:  # not an async generator any more
        return None

    monkeypatch.setattr(watching, "continuous_watch", continuous_watch)
    assert not kopf_watch.install()
    current: Any = watching.continuous_watch
    assert current is continuous_watch
    assert "not indexed" in caplog.text


class Open(Source):
    """A watch that stays open after its events (one that ends is listed again by kopf, and
    the listing hands over what was waiting)."""

    async def __call__(self, **kwargs: Any) -> AsyncIterator[Any]:
        async for event in super().__call__(**kwargs):
            yield event
        await asyncio.Event().wait()


def arrivals_feed(limit: int = 2, stall: float = 30.0) -> kopf_watch.Feed:
    return kopf_watch.Feed(
        ObjectIndices({"by_name": by_name}), arrivals=kopf_watch.ReplayGate(limit, stall)
    )


def names(events: list[Any]) -> list[str]:
    return [f"{e['type']} {e['object']['metadata']['name']}" for e in events]


async def test_new_objects_wait_for_room_while_known_ones_pass() -> None:
    feed = arrivals_feed()

    def event(kind: str, name: str, version: str = "1") -> dict[str, Any]:
        return {"type": kind, "object": user(name, resourceVersion=version)}

    source = Open(
        [
            *listing("old"),
            watching.Bookmark.LISTED,
            event("ADDED", "a"),
            event("ADDED", "b"),
            event("ADDED", "c"),
            event("MODIFIED", "c", "2"),
            event("MODIFIED", "a", "3"),
            event("MODIFIED", "old", "4"),
        ]
    )
    async for stream in watch_of(source, feed):
        got = await take(stream, 2)  # LISTED, the listed object
        kopf_watch.release(fed(feed), "uid-old", settled=False)
        got = await take(stream, 4)
        assert names(got) == ["ADDED a", "ADDED b", "MODIFIED a", "MODIFIED old"], (
            "c waits; the events of objects kopf holds pass it"
        )
        assert "c" in feed.indices.views["by_name"], "a waiting object is indexed"
        later = asyncio.ensure_future(take(stream, 1))
        await asyncio.sleep(0.05)
        assert not later.done()
        kopf_watch.release(fed(feed), "uid-a", settled=False)
        await asyncio.sleep(0.05)
        assert not later.done(), "an event processed is not a handler ended"
        kopf_watch.release(fed(feed), "uid-a", settled=True)
        (handed,) = await later
        assert handed == {"type": "MODIFIED", "object": user("c", resourceVersion="2")}, (
            "handed over as its newest event"
        )
        assert feed.seen["team-a"] == {"uid-old", "uid-a", "uid-b", "uid-c"}
        await stream.aclose()
    assert source.closed
    assert feed.seen == {}, "a stream stopped for good forgets what kopf was handed"


async def test_a_new_object_deleted_while_waiting_is_only_deleted() -> None:
    feed = arrivals_feed(limit=1)
    source = Open(
        [
            watching.Bookmark.LISTED,
            {"type": "ADDED", "object": user("a")},
            {"type": "ADDED", "object": user("b")},
            {"type": "DELETED", "object": user("b")},
            {"type": "DELETED", "object": user("a")},
        ]
    )
    async for stream in watch_of(source, feed):
        got = await take(stream, 4)
        assert names(got[1:]) == ["ADDED a", "DELETED b", "DELETED a"]
        assert feed.seen["team-a"] == set()
        assert len(feed.indices) == 0
        await stream.aclose()


async def test_a_held_arrival_is_let_go_after_the_stall() -> None:
    feed = arrivals_feed(limit=1, stall=0.05)
    source = Open(
        [
            watching.Bookmark.LISTED,
            {"type": "ADDED", "object": user("a")},
            {"type": "ADDED", "object": user("b")},
        ]
    )
    async for stream in watch_of(source, feed):
        got = await take(stream, 3)
        assert names(got[1:]) == ["ADDED a", "ADDED b"]
        await stream.aclose()


async def test_kopf_done_with_a_deletion_frees_its_arrival() -> None:
    feed = arrivals_feed(limit=5)
    feed.arrivals.take("uid-a")
    feed.arrivals.take("uid-b")

    async def process(**_: Any) -> None:
        return None

    released = kopf_watch.releasing(process)
    settings = kopf_watch.FedSettings(feeds=fed(feed))
    await released(raw_event={"type": "MODIFIED", "object": user("a")}, settings=settings)
    await released(raw_event={"type": "DELETED", "object": user("b")}, settings=settings)
    assert len(feed.arrivals) == 1
    settings.release("uid-a")
    assert len(feed.arrivals) == 0


def streamed(source: Source, settings: kopf_watch.FedSettings) -> Any:
    return kopf_watch.slimmed(source)(
        settings=settings, resource=USERS, namespace="team-a", operator_pause_waiter=None
    )


def returning_feed(limit: int = 1) -> kopf_watch.Feed:
    return kopf_watch.Feed(
        ObjectIndices({"by_name": by_name}), returning=kopf_watch.ReplayGate(limit, 30.0)
    )


async def test_objects_kopf_was_done_with_come_back_through_their_gate() -> None:
    feed = returning_feed(limit=1)
    settings = kopf_watch.FedSettings(feeds=fed(feed))

    async def process(**_: Any) -> None:
        return None

    released = kopf_watch.releasing(process)
    source = Open(
        [
            *listing("a", "b"),
            watching.Bookmark.LISTED,
            {"type": "MODIFIED", "object": user("a", resourceVersion="5")},
            {"type": "MODIFIED", "object": user("b", resourceVersion="6")},
            {"type": "MODIFIED", "object": user("b", resourceVersion="7")},
        ]
    )
    stream = streamed(source, settings)
    listed = await take(stream, 3)
    for event in listed[1:]:  # kopf processes the listing; nothing of a or b is left in its hands
        await released(raw_event=event, settings=settings)
    (back,) = await take(stream, 1)
    assert back["object"]["metadata"]["resourceVersion"] == "5"
    later = asyncio.ensure_future(take(stream, 1))
    await asyncio.sleep(0.05)
    assert not later.done(), "b waits while a holds the only returning slot"
    assert list(feed.returning._out) == ["uid-a"]
    await released(raw_event=back, settings=settings)
    (handed,) = await later
    assert handed["object"]["metadata"]["resourceVersion"] == "7", "b as its newest event"
    await stream.aclose()


async def test_the_echo_of_kopfs_patch_passes_a_full_gate() -> None:
    feed = returning_feed(limit=1)
    settings = kopf_watch.FedSettings(feeds=fed(feed))

    async def process(*, raw_event: Any, **_: Any) -> str | None:
        return "9" if raw_event["object"]["metadata"]["name"] == "a" else None

    released = kopf_watch.releasing(process)
    source = Open(
        [
            *listing("a", "b"),
            watching.Bookmark.LISTED,
            {"type": "MODIFIED", "object": user("b", resourceVersion="5")},
            {"type": "MODIFIED", "object": user("a", resourceVersion="9")},
        ]
    )
    stream = streamed(source, settings)
    listed = await take(stream, 3)
    for event in listed[1:]:  # a is patched by kopf (version 9), b is not
        await released(raw_event=event, settings=settings)
    assert feed.echoes.due("uid-a")
    assert not feed.echoes.due("uid-b")
    got = await take(stream, 2)
    assert names(got) == ["MODIFIED b", "MODIFIED a"], "a's echo passes though b holds the slot"
    assert not feed.echoes.due("uid-a"), "an echo is expected once"
    assert list(feed.returning._out) == ["uid-b"]
    await stream.aclose()


async def test_a_returning_object_stays_while_a_newer_event_of_it_is_queued() -> None:
    feed = returning_feed(limit=5)
    settings = kopf_watch.FedSettings(feeds=fed(feed))
    first, second = ({"type": "MODIFIED", "object": user(resourceVersion=v)} for v in ("2", "3"))

    async def process(**_: Any) -> None:
        return None

    released = kopf_watch.releasing(process)
    feed.returning.take("uid-alice")
    settings.newest.passed(first)
    settings.newest.passed(second)
    await released(raw_event=first, settings=settings)
    assert "uid-alice" in feed.returning, "its newer event is still to be processed"
    await released(raw_event=second, settings=settings)
    assert "uid-alice" not in feed.returning


@pytest.mark.parametrize(
    ("expected", "waited", "due"),
    [
        pytest.param(["a"], 0.0, {"a": True, "b": False}, id="expected"),
        pytest.param(["a"], 0.06, {"a": False}, id="late"),
        pytest.param([], 0.0, {"a": False}, id="not-expected"),
    ],
)
async def test_echoes_are_due_until_late(
    expected: list[str], waited: float, due: dict[str, bool]
) -> None:
    echoes = kopf_watch.Echoes(seconds=0.05)
    for uid in expected:
        echoes.expect(uid)
    await asyncio.sleep(waited)
    assert {uid: echoes.due(uid) for uid in due} == due


async def test_late_echoes_are_forgotten() -> None:
    echoes = kopf_watch.Echoes(seconds=0.02)
    echoes.expect("a")
    echoes.expect("b")
    await asyncio.sleep(0.05)
    echoes.expect("c")
    assert len(echoes) == 1
    echoes.arrived("c")
    assert len(echoes) == 0
