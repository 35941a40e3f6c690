"""kopf_watch.Settled: once kopf has handled an object, an event that shows nothing kopf reads
changed (and that its kind needs only observed) is observed instead of given to kopf; any other
event reaches kopf as before."""

from __future__ import annotations

import asyncio
import copy
from collections.abc import Mapping
from typing import Any, cast

import kopf
import pytest
from kopf._cogs.aiokits import aiotoggles
from kopf._cogs.clients import api as kopf_api
from kopf._cogs.clients import errors as kopf_errors
from kopf._cogs.clients import watching

from litellm_operator.runtime import kopf_watch
from litellm_operator.runtime.handling import with_indices
from litellm_operator.runtime.indices import ObjectIndices
from litellm_operator.runtime.runner import StatusDiffBase, apply_settings
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
    """A kind's shortcuts: quiet unless the body says ``busy``; following when it says
    ``behind``; what was observed and followed."""

    def __init__(self, *, finalized: bool = False, creates: bool = False) -> None:
        self.observed: list[tuple[str, Any]] = []
        self.followed: list[str] = []
        self.created: list[str] = []
        self.finalized = finalized
        self.creates = creates
        self.create_error: Exception | None = None

    def quiet(self, body: Mapping[str, Any]) -> bool:
        status = body.get("status") or {}
        return "busy" not in status and "behind" not in status

    def observe(self, body: Mapping[str, Any], indices: Mapping[str, Any]) -> None:
        self.observed.append((body["metadata"]["resourceVersion"], indices.get("policies")))

    def follows(self, body: Mapping[str, Any]) -> bool:
        status = body.get("status") or {}
        return "behind" in status and "busy" not in status

    async def follow(self, body: Mapping[str, Any], indices: Mapping[str, Any], write: Any) -> None:
        self.followed.append(body["metadata"]["resourceVersion"])
        await write({"behind": None})

    async def create(self, body: Mapping[str, Any], indices: Mapping[str, Any], patch: Any) -> None:
        """Puts the user id in the status; then raises ``create_error``, if any."""
        self.created.append(body["metadata"]["resourceVersion"])
        patch.status["userId"] = body["metadata"]["name"]
        if self.create_error is not None:
            raise self.create_error

    def shortcuts(self) -> kopf_watch.Shortcuts:
        return kopf_watch.Shortcuts(
            self.quiet,
            self.observe,
            self.follows,
            self.follow,
            finalized=self.finalized,
            create=self.create if self.creates else None,
        )


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
    feed = kopf_watch.Feed(ObjectIndices({}), shortcuts=users.shortcuts())
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
    feed = kopf_watch.Feed(ObjectIndices({}), shortcuts=users.shortcuts())
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


FINALIZER = "litellm.platform.dev/finalizer"
NEW = handled(**{"metadata.finalizers": None, "status": None})


@pytest.mark.parametrize(
    ("finalized", "kind", "event", "step"),
    [
        pytest.param(True, "ADDED", NEW, kopf_watch.FINALIZED, id="new"),
        pytest.param(True, "MODIFIED", NEW, kopf_watch.FINALIZED, id="new-modified"),
        pytest.param(
            True,
            "MODIFIED",
            handled(**{"metadata.finalizers": None}),
            kopf_watch.FINALIZED,
            id="finalizer-removed-by-hand",
        ),
        pytest.param(
            True,
            "MODIFIED",
            handled(**{"metadata.finalizers": ["other.example/finalizer"]}),
            kopf_watch.FINALIZED,
            id="beside-another-finalizer",
        ),
        pytest.param(False, "ADDED", NEW, None, id="kind-finalized-by-kopf"),
        pytest.param(True, None, NEW, kopf_watch.FINALIZED, id="listed-new"),
        pytest.param(
            True, None, handled(**{"metadata.finalizers": None}), None, id="listed-handled-before"
        ),
        pytest.param(
            True,
            None,
            handled(
                **{
                    "metadata.finalizers": None,
                    "status": None,
                    "metadata.annotations": {"x.io/last-handled-configuration": "{}"},
                }
            ),
            None,
            id="listed-handled-before-in-an-annotation",
        ),
        pytest.param(True, "DELETED", NEW, None, id="deleted"),
        pytest.param(
            True,
            "ADDED",
            handled(**{"metadata.finalizers": None, "status.busy": 1}),
            None,
            id="event-handler-has-work",
        ),
        pytest.param(
            True,
            "MODIFIED",
            handled(**{"metadata.finalizers": None, "metadata.deletionTimestamp": "2026-12-07"}),
            None,
            id="being-deleted",
        ),
        pytest.param(True, "MODIFIED", handled(), kopf_watch.SETTLED, id="settled"),
        pytest.param(
            True, "MODIFIED", handled(**{"status.behind": 1}), kopf_watch.FOLLOWED, id="behind"
        ),
        pytest.param(
            True,
            "MODIFIED",
            handled(**{"status.behind": 1, "status.busy": 1}),
            None,
            id="behind-and-busy",
        ),
        pytest.param(
            True,
            "MODIFIED",
            handled(**{"status.behind": 1, "metadata.generation": 3}),
            None,
            id="behind-but-spec-changed",
        ),
        pytest.param(True, "ADDED", handled(**{"status.behind": 1}), None, id="behind-added"),
    ],
)
def test_which_shortcut_an_event_takes(
    finalized: bool, kind: str | None, event: dict[str, Any], step: str | None
) -> None:
    feed = kopf_watch.Feed(ObjectIndices({}), shortcuts=Users(finalized=finalized).shortcuts())
    settled = recorded(handled())
    raw = {"type": kind, "object": event}
    assert kopf_watch.shortcut_for(raw, feed, settled, FINALIZER) == step


RESOURCE = kopf.Resource(
    "litellm.platform.dev",
    "v1alpha1",
    "litellmusers",
    namespaced=True,
    subresources=frozenset({"status"}),
)


class Api:
    """Stands in for kopf's API client's ``patch``: records the calls, answers each with the
    next resourceVersion, or raises ``error``."""

    def __init__(self, error: Exception | None = None) -> None:
        self.calls: list[tuple[str, Any]] = []
        self.error = error

    async def patch(self, url: str, *, payload: Any, **_: Any) -> dict[str, Any]:
        self.calls.append((url, payload))
        if self.error is not None:
            raise self.error
        return {"metadata": {"resourceVersion": str(10 + len(self.calls))}}


async def run_released(
    users: Users, raw: dict[str, Any], api: Api, monkeypatch: pytest.MonkeyPatch
) -> tuple[Any, list[Any], kopf_watch.Feed]:
    monkeypatch.setattr(kopf_api, "patch", api.patch)
    feed = kopf_watch.Feed(ObjectIndices({}), shortcuts=users.shortcuts())
    settings = kopf_watch.FedSettings(feeds=fed(feed))
    settings.persistence.finalizer = FINALIZER
    settings.settled.record(handled(), STORED)
    processed: list[Any] = []

    async def process(*, raw_event: Any, **_: Any) -> str:
        processed.append(raw_event)
        return "99"

    result = await kopf_watch.releasing(process)(
        raw_event=raw,
        settings=settings,
        resource=RESOURCE,
        indexers=Indexers(),
        event_queue=asyncio.Queue(),
    )
    return result, processed, feed


async def test_the_shortcuts_writes_in_flight_are_bounded(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """kopf's client opens a connection per request in flight: the shortcuts keep at most
    KUBE_WRITES_IN_FLIGHT of theirs in flight, however many objects write at once."""
    in_flight, most = 0, 0
    release = asyncio.Event()

    async def patch(url: str, **_: Any) -> dict[str, Any]:
        nonlocal in_flight, most
        in_flight += 1
        most = max(most, in_flight)
        await release.wait()
        in_flight -= 1
        return {"metadata": {"resourceVersion": "7"}}

    monkeypatch.setattr(kopf_api, "patch", patch)
    settings = kopf_watch.FedSettings()
    writes = [
        asyncio.create_task(kopf_watch.merge_patch(f"/u/{i}", {}, settings))
        for i in range(kopf_watch.KUBE_WRITES_IN_FLIGHT * 3)
    ]
    for _ in range(5):
        await asyncio.sleep(0)
    assert most == kopf_watch.KUBE_WRITES_IN_FLIGHT
    release.set()
    assert await asyncio.gather(*writes) == ["7"] * len(writes)
    assert most == kopf_watch.KUBE_WRITES_IN_FLIGHT


async def test_a_new_object_gets_kopf_s_finalizer_in_one_conditional_patch(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    users, api = Users(finalized=True), Api()
    new = handled(**{"metadata.finalizers": ["other.example/finalizer"], "status": None})
    result, processed, feed = await run_released(
        users, {"type": "ADDED", "object": new}, api, monkeypatch
    )
    assert processed == []
    assert api.calls == [
        (
            "/apis/litellm.platform.dev/v1alpha1/namespaces/team-a/litellmusers/alice",
            {
                "metadata": {
                    "finalizers": ["other.example/finalizer", FINALIZER],
                    "resourceVersion": "10",
                }
            },
        )
    ]
    assert result == "11", "kopf's worker waits for this patch's echo, as for its own"
    assert feed.echoes.due("uid-alice")
    assert users.observed == [("10", "the policy index")]
    assert feed.events == {"finalized": 1}


async def test_a_conflict_leaves_the_new_object_to_its_next_event(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The object changed since the event (a policy's rollout wrote its status, say): its newer
    event follows and takes the shortcut. Not handing this one to kopf matters: kopf would keep
    its finalizer as a patch still to apply, skip the handlers in its next cycle to apply it,
    find it applied (by the newer event's shortcut), write nothing, and so never get the event
    that would run the create handler."""
    users = Users(finalized=True)
    api = Api(kopf_errors.APIConflictError("changed", status=409, headers={}))
    raw = {"type": "ADDED", "object": NEW}
    result, processed, feed = await run_released(users, raw, api, monkeypatch)
    assert len(api.calls) == 1
    assert (result, processed) == (None, [])
    assert feed.events == {"superseded": 1}
    newer = {"type": "MODIFIED", "object": NEW}
    assert kopf_watch.shortcut_for(newer, feed, None, FINALIZER) == kopf_watch.FINALIZED


async def test_another_error_hands_the_object_s_finalizer_to_kopf(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    users = Users(finalized=True)
    api = Api(kopf_errors.APIForbiddenError("no", status=403, headers={}))
    raw = {"type": "ADDED", "object": NEW}
    result, processed, feed = await run_released(users, raw, api, monkeypatch)
    assert processed == [raw], "kopf's own cycle adds the finalizer"
    assert result == "99"
    assert users.observed == [], "kopf's event handler observes it"
    assert feed.events == {"processed": 1}
    newer = {"type": "MODIFIED", "object": NEW}
    assert kopf_watch.shortcut_for(newer, feed, None, FINALIZER) is None, "kopf keeps it"
    deleted = {"type": "DELETED", "object": NEW}
    settings = kopf_watch.FedSettings(feeds=fed(feed))

    async def process(**_: Any) -> None:
        return None

    await kopf_watch.releasing(process)(raw_event=deleted, settings=settings, resource=RESOURCE)
    assert feed.finalized_by_kopf == set(), "forgotten with the object"


async def test_a_user_behind_its_policy_is_followed_and_its_status_written(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    users, api = Users(), Api()
    raw = {"type": "MODIFIED", "object": handled(**{"status.behind": 1})}
    result, processed, feed = await run_released(users, raw, api, monkeypatch)
    assert processed == []
    assert users.followed == ["10"]
    assert api.calls == [
        (
            "/apis/litellm.platform.dev/v1alpha1/namespaces/team-a/litellmusers/alice/status",
            {"status": {"behind": None}},
        )
    ]
    assert result == "11"
    assert feed.echoes.due("uid-alice")
    assert feed.events == {"followed": 1}


async def test_a_follow_whose_object_is_gone_writes_nothing_and_expects_no_echo(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    users = Users()
    api = Api(kopf_errors.APINotFoundError("gone", status=404, headers={}))
    raw = {"type": "MODIFIED", "object": handled(**{"status.behind": 1})}
    result, processed, feed = await run_released(users, raw, api, monkeypatch)
    assert (result, processed) == (None, [])
    assert not feed.echoes.due("uid-alice")


def test_kopf_offers_what_the_shortcuts_use() -> None:
    assert kopf_watch.shortcuts_supported(kopf_watch._ORIGINAL_PROCESS)


FINALIZED_NEW = handled(**{"status": None})
"""A new user with kopf's finalizer (the echo of the finalizer's patch), never handled."""


NEW_ONE = {"answered": False, "known": False, "consistent": True}
"""A new object as the create shortcut finds it: no answer kept for kopf, no handled body
recorded, no patch's echo awaited."""


@pytest.mark.parametrize(
    ("kind", "event", "state", "step"),
    [
        pytest.param("MODIFIED", FINALIZED_NEW, NEW_ONE, kopf_watch.CREATED, id="finalized-new"),
        pytest.param("ADDED", FINALIZED_NEW, NEW_ONE, kopf_watch.CREATED, id="added-finalized"),
        pytest.param(None, FINALIZED_NEW, NEW_ONE, None, id="listed: kopf may resume it"),
        pytest.param(
            "MODIFIED",
            FINALIZED_NEW,
            {**NEW_ONE, "answered": True},
            None,
            id="answer-left-to-kopf",
        ),
        pytest.param(
            "MODIFIED",
            FINALIZED_NEW,
            {**NEW_ONE, "known": True},
            None,
            id="older-than-a-handled-body: kopf waits for its echo",
        ),
        pytest.param(
            "MODIFIED",
            FINALIZED_NEW,
            {**NEW_ONE, "known": True, "echo": True},
            kopf_watch.SETTLED,
            id="echo-of-a-write-the-create-made",
        ),
        pytest.param(
            "MODIFIED",
            FINALIZED_NEW,
            {**NEW_ONE, "consistent": False},
            None,
            id="older-than-a-patch-of-kopf-s",
        ),
        pytest.param(
            "MODIFIED",
            handled(**{"status": {"kopf": {"progress": {"reconcile": {"retries": 1}}}}}),
            NEW_ONE,
            None,
            id="kopf-retrying-it",
        ),
        pytest.param(
            "MODIFIED",
            handled(**{"status": None, "metadata.deletionTimestamp": "2026-12-07"}),
            NEW_ONE,
            None,
            id="being-deleted",
        ),
        pytest.param(
            "MODIFIED",
            handled(**{"status": {"busy": 1}}),
            NEW_ONE,
            None,
            id="event-handler-has-work",
        ),
        pytest.param(
            "MODIFIED",
            handled(
                **{
                    "status": None,
                    "metadata.annotations": {"x.io/last-handled-configuration": "{}"},
                }
            ),
            NEW_ONE,
            None,
            id="handled-before-in-an-annotation",
        ),
        pytest.param(
            "MODIFIED", handled(), {**NEW_ONE, "known": True}, kopf_watch.SETTLED, id="handled"
        ),
    ],
)
def test_which_new_object_is_created_without_kopf(
    kind: str | None, event: dict[str, Any], state: dict[str, bool], step: str | None
) -> None:
    feed = kopf_watch.Feed(ObjectIndices({}), shortcuts=Users(creates=True).shortcuts())
    if state["answered"]:
        feed.answers.keep(event, {}, None)
    if state.get("echo"):
        feed.echoes.expect("uid-alice")
    settled = recorded(handled()) if state["known"] else kopf_watch.Settled()
    raw = {"type": kind, "object": event}
    found = kopf_watch.shortcut_for(raw, feed, settled, FINALIZER, state["consistent"])
    assert found == step


def test_a_kind_without_a_create_hook_leaves_new_objects_to_kopf() -> None:
    feed = kopf_watch.Feed(ObjectIndices({}), shortcuts=Users().shortcuts())
    raw = {"type": "MODIFIED", "object": FINALIZED_NEW}
    assert kopf_watch.shortcut_for(raw, feed, None, FINALIZER) is None


class Memories:
    """kopf's memories of objects: ``recall`` hands out one :class:`Memory` per body."""

    def __init__(self) -> None:
        self.recalled: list[tuple[str, Any]] = []
        self.memory = Memory()

    async def recall(self, body: Mapping[str, Any], *, memobase: Any = None) -> Memory:
        self.recalled.append((body["metadata"]["uid"], memobase))
        return self.memory


class Memory:
    fully_handled_once = False


async def run_created(
    users: Users, api: Api, monkeypatch: pytest.MonkeyPatch, consistency_time: float | None = None
) -> tuple[Any, list[Any], kopf_watch.FedSettings, Memories]:
    """One event of a new user with kopf's finalizer through :func:`kopf_watch.releasing`, with
    the operator's kopf settings; kopf's cycle (``process``) runs the user's handler through the
    operator's wrapper, as kopf would."""
    monkeypatch.setattr(kopf_api, "patch", api.patch)
    feed = kopf_watch.Feed(ObjectIndices({}), shortcuts=users.shortcuts())
    settings = kopf_watch.FedSettings(feeds=fed(feed))
    apply_settings(settings)
    released: list[str] = []
    settings.release = released.append  # type: ignore[method-assign,assignment]
    memories = Memories()
    ran: list[Any] = []

    async def handler(**kwargs: Any) -> None:
        ran.append(kwargs["body"]["metadata"]["resourceVersion"])

    wrapped = with_indices(ObjectIndices({}), settings)(handler, True)
    processed: list[Any] = []

    async def process(*, raw_event: Any, resource: Any, **_: Any) -> str:
        """kopf's cycle: its change handlers get no settings, only the cause's kwargs."""
        patch = kopf.Patch()
        processed.append((raw_event, patch))
        body = kopf.Body(raw_event["object"])
        try:
            await wrapped(body=body, patch=patch, resource=resource, uid=body.metadata.uid)
        except Exception as exc:
            processed.append(exc)
        return "99"

    result = await kopf_watch.releasing(process)(
        raw_event={"type": "MODIFIED", "object": copy.deepcopy(FINALIZED_NEW)},
        settings=settings,
        resource=RESOURCE,
        indexers=Indexers(),
        registry=kopf.OperatorRegistry(),
        memories=memories,
        memobase="memo",
        event_queue=asyncio.Queue(),
        consistency_time=consistency_time,
    )
    return result, [ran, processed, released], settings, memories


async def test_a_new_object_is_created_and_its_status_stored_as_kopf_would(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    users, api = Users(creates=True), Api()
    result, (ran, processed, released), settings, memories = await run_created(
        users, api, monkeypatch
    )
    assert (users.created, ran, processed) == (["10"], [], [])
    wrapped = kopf.Body(cast(kopf.RawBody, FINALIZED_NEW))
    essence = settings.persistence.diffbase_storage.build(body=wrapped)
    expected = kopf.Patch()
    kopf.StatusDiffBaseStorage().store(body=wrapped, patch=expected, essence=essence)
    assert api.calls == [
        (
            "/apis/litellm.platform.dev/v1alpha1/namespaces/team-a/litellmusers/alice/status",
            {"status": {"userId": "alice", "kopf": dict(expected)["status"]["kopf"]}},
        )
    ]
    assert result == "11", "kopf's worker waits for the status write's echo"
    feed = next(iter(settings.feeds.values()))
    assert feed.events == {"created": 1}
    assert feed.echoes.due("uid-alice")
    assert users.observed == [("10", "the policy index")], "the event handler's part"
    assert released == ["uid-alice"], "the next new object is let in, as the handler's wrapper does"
    assert memories.recalled == [("uid-alice", "memo")]
    assert memories.memory.fully_handled_once, "a relisting does not resume it"
    written = api.calls[0][1]["status"]["kopf"]["last-handled-configuration"]
    echo = handled(
        **{"status.kopf.last-handled-configuration": written, "metadata.resourceVersion": "11"}
    )
    assert settings.settled.inert(echo), "its echo is settled"


@pytest.mark.parametrize(
    "error",
    [
        pytest.param(kopf.TemporaryError("LiteLLM unavailable", delay=4), id="retry-later"),
        pytest.param(RuntimeError("unexpected"), id="unexpected"),
    ],
)
async def test_a_create_that_raises_is_answered_to_kopf_not_run_again(
    error: Exception, monkeypatch: pytest.MonkeyPatch
) -> None:
    """kopf's cycle of the same event retries it as its own handler's failure, with the status
    the handler wrote, without a second run (and a second round of LiteLLM calls)."""
    users, api = Users(creates=True), Api()
    users.create_error = error
    result, (ran, processed, _), settings, _ = await run_created(users, api, monkeypatch)
    assert (users.created, ran, api.calls) == (["10"], [], [])
    (raw, patch), raised = processed
    assert raw["object"]["metadata"]["resourceVersion"] == "10"
    assert raised is error
    assert dict(patch) == {"status": {"userId": "alice"}}
    feed = next(iter(settings.feeds.values()))
    assert feed.events == {"processed": 1}
    assert len(feed.answers) == 0, "taken"
    assert result == "99"


async def test_a_create_whose_status_write_fails_is_answered_to_kopf_as_done(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    users = Users(creates=True)
    api = Api(kopf_errors.APIForbiddenError("no", status=403, headers={}))
    _, (ran, processed, _), _, _ = await run_created(users, api, monkeypatch)
    assert (users.created, ran, len(api.calls)) == (["10"], [], 1)
    [(_, patch)] = processed
    assert dict(patch) == {"status": {"userId": "alice"}}, "kopf stores and writes it itself"


def test_an_answer_kept_for_another_version_is_dropped() -> None:
    answers = kopf_watch.Answers()
    answers.keep(FINALIZED_NEW, {"status": {}}, None)
    newer = handled(**{"status": None, "metadata.resourceVersion": "12"})
    assert answers.take(newer) is None
    assert answers.take(FINALIZED_NEW) is None, "dropped, not kept for later"
    answers.keep(FINALIZED_NEW, {"status": {}}, None)
    answers.forget("uid-alice")
    assert len(answers) == 0


def test_kopf_builds_and_remembers_as_the_create_shortcut_does() -> None:
    assert kopf_watch.create_supported(kopf_watch._ORIGINAL_PROCESS)


async def test_an_event_while_kopf_awaits_a_patch_s_echo_is_left_to_kopf(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """kopf's worker passes the time it waits for a patch's echo until: the event is older than
    that patch (a status write the failed create made, say), and kopf's own wait decides."""
    users, api = Users(creates=True), Api()
    _, (ran, processed, _), _, _ = await run_created(users, api, monkeypatch, consistency_time=1.0)
    assert (users.created, ran, api.calls, len(processed)) == ([], ["10"], [], 1)


async def test_a_shortcut_before_the_operator_is_ready_waits_for_it_and_holds_it_back_no_more(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """kopf makes a readiness toggle per new object while the operator is not ready, and drops
    it when it processes the object's event: an event taken without kopf must drop it too (or
    kopf's readiness never comes, and with it none of kopf's handlers run), and, as kopf does,
    run no handler before every watched kind is listed and indexed."""
    monkeypatch.setattr(kopf_api, "patch", Api().patch)
    users = Users(finalized=True)
    feed = kopf_watch.Feed(ObjectIndices({}), shortcuts=users.shortcuts())
    settings = kopf_watch.FedSettings(feeds=fed(feed))
    settings.persistence.finalizer = FINALIZER
    operator_indexed = aiotoggles.ToggleSet(all)
    this_object = await operator_indexed.make_toggle(name="alice")
    policies_listed = await operator_indexed.make_toggle(name="policies")

    async def process(**_: Any) -> None:
        raise AssertionError("taken without kopf")

    taken: asyncio.Future[Any] = asyncio.ensure_future(
        kopf_watch.releasing(process)(
            raw_event={"type": "ADDED", "object": NEW},
            settings=settings,
            resource=RESOURCE,
            indexers=Indexers(),
            event_queue=asyncio.Queue(),
            operator_indexed=operator_indexed,
            resource_indexed=this_object,
        )
    )
    await asyncio.sleep(0.05)
    assert this_object not in operator_indexed._toggles, "no longer holds readiness back"
    assert not taken.done(), "no handler before the operator is ready"
    assert users.observed == []
    await policies_listed.turn_to(True)
    assert await asyncio.wait_for(taken, 5) == "11"
    assert feed.events == {"finalized": 1}
