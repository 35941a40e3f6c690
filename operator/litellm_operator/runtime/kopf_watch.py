"""What kopf's watchers see: objects without ``managedFields``, and a restart's listing handed
over a few objects at a time, after the operator's own indices hold all of it.

**managedFields.** The API server sends each object with its server-side-apply bookkeeping:
one ``managedFields`` entry per manager and subresource, a nested ``fieldsV1`` map of every
field it owns: a quarter of a LiteLLMUser's JSON, and many small dicts once
parsed. Neither kopf nor the operator reads it (kopf's patches are merge patches; its
last-handled configuration is the object's essence, which leaves ``managedFields`` out).

**The listing.** kopf lists every object at start-up and gives each one a worker. With a kopf
index on the kind, every worker holds its event (the parsed body, its queue, loggers, patch and
task) until every object of the listing has been indexed, so at a restart with N users all N
exist at once; and what that burst allocates stays resident after it (CPython's allocator
cannot return an arena that one long-lived object still uses). kopf's ``worker_limit`` cannot
bound it: with any limit below N the indexing deadlocks.

So for a kind given a :class:`Feed`, the watch stream itself does the indexing
(:class:`~litellm_operator.runtime.indices.ObjectIndices`): it reads the whole listing first,
keeping each object compressed and its index entries; once the listing is complete it
replaces what the indices held for that stream, tells kopf the listing is over
(``Bookmark.LISTED``, which is all kopf's readiness waits for), and only then hands kopf the
listed objects, at most :data:`REPLAY_IN_FLIGHT` in kopf's hands at once (:class:`ReplayGate`).
An object leaves kopf's hands when its create/update/resume/delete handler ends, or when kopf
is done with its event (:func:`install` wraps kopf's ``process_resource_event`` for that).
Watch events update the indices before kopf sees them. A listing cut short changes nothing:
kopf lists again. A stream that stops for good (kopf stops watching a namespace that was
deleted or no longer matches) drops what it indexed (:func:`watching_stream`). What this and
:data:`litellm_operator.runtime.runner.WORKER_IDLE_SECONDS` saved is measured in the README's
Performance section ("Memory").

**New objects.** ``kubectl apply`` of a thousand users hands kopf a thousand ADDED events
within seconds, and kopf starts a worker per object, each holding its body, queue, task and
handler until that user's turn among the reconciles in progress; what that burst allocates
stays resident too. The watch is read ahead of kopf (:func:`arriving`): events of objects kopf
has been handed pass at once (the echoes of their handlers' writes among them), while a new
object is handed over only when fewer than :data:`ARRIVALS_IN_FLIGHT` new ones are in kopf's
hands (``Feed.arrivals``), each until a handler of its ends or it is deleted; meanwhile it waits
as its newest event, packed, and is already indexed. A watch that ends drops what waits: kopf
lists again, and the listing hands it over.

**Objects coming back.** A policy's rollout turns every user behind it non-Ready at once: a
thousand status writes, whose events would reach kopf together, a worker each, though kopf was
done with these objects. So an object kopf has been handed, but holds no more (nothing of it
in a gate, no event of it queued or being processed, no echo of kopf's own patch of it due),
comes back through a gate of its own (``Feed.returning``, :data:`RETURNS_IN_FLIGHT`), until
kopf has processed its event (and its patch's echo, which passes at once) or a handler of it
ends; meanwhile it waits as its newest event, packed, like a new one.

**Settled echoes and other shortcuts.** Once kopf has handled an object (its handlers done, its
last-handled configuration stored), the event of its own status patch, and of the operator's
other status writes, would only run kopf's event machinery to find nothing to do: the spec's
generation, labels, annotations, finalizers and deletion are what kopf handled, and its stored
configuration is what it stored (:class:`Settled`). For a kind that says how
(:class:`Shortcuts`), such an event is not given to kopf:

* if the kind's event handler has nothing to do for it but ``observe`` it, ``observe`` sees it;
* if that handler's only work is to bring the status up to date (``follow``: a user its policy
  left behind), it is done here, and its status write applied here;
* so is an event queued before kopf's latest patch of the object (the operator's own status
  write while its handler ran) that shows the handled spec and metadata: the patch's echo,
  which kopf waits for, follows it.

And a new object of a kind whose every object kopf finalizes gets kopf's finalizer here, in one
conditional merge patch, instead of in a cycle of kopf's own (a deep copy and a JSON diff of
the body, besides the cycle). Its next event, the object with the finalizer, is created here
(``create``, the kind's create handler) as kopf's cycle would create it: the handler fills a
patch, the last-handled configuration kopf would build from that event is stored in it, kopf's
memory of the object says it was handled, and the status is merge-patched; kopf then finds the
object handled. A handler that raises, or a status write that fails, leaves the event to kopf's
cycle with an :class:`Answer`: kopf's run of the handler answers with what this run did (its
patch, its error), so kopf keeps the retries and their back-off and LiteLLM is not called twice.
Any other event (a spec or metadata change, a handler still in progress, a listed object kopf
handled before, a deletion, an event older than a patch whose echo is awaited) goes to kopf as
before; but an event whose finalizer patch meets a conflict is dropped, since the object's newer
event follows (handed to kopf, it would leave kopf a pending patch that the newer event's
shortcut makes a no-op, and kopf would then wait for an event that never comes before it runs
the create handler). Before the operator is ready, an event taken here drops its object's
readiness toggle, as kopf's processing does first, and a shortcut waits for the readiness, as
kopf's handlers do (:func:`indexed`, :func:`ready`).

**Superseded events.** kopf queues every event of an object and processes each in turn, though
its handlers only look at the newest body (they compare it with the last-handled state). While
a user is created or rolled out, the operator's own status writes come back as events that
queue behind each other; each one processed costs a body wrapper, loggers, a patch and the
handler-selection pass. :class:`Newest` remembers the resourceVersion of the last event the
stream passed on per object, and an ADDED, MODIFIED or listed event older than that one is not
processed: the newer one, already queued for the same worker, is.

:func:`install` wraps kopf's ``continuous_watch`` (one listing and the watch after it) and
``process_resource_event``; it refuses (and kopf keeps its own functions) when kopf's internals
no longer look as this module expects. This is a change to a library's internals, written here
because kopf has no setting for it; it belongs upstream. :func:`take_shortcut` writes through
kopf's own API client (its session, credentials and retries); :func:`shortcuts_supported` is
checked with the rest.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import copy
import dataclasses
import inspect
import logging
import time
from asyncio import FIRST_COMPLETED
from collections import Counter
from collections.abc import (
    AsyncGenerator,
    AsyncIterator,
    Awaitable,
    Callable,
    Iterable,
    Iterator,
    Mapping,
)
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar, cast

import kopf
from kopf._cogs.clients import api, errors, watching
from kopf._core.engines import posting
from kopf._core.reactor import inventory, processing, running

from litellm_operator.runtime.indices import Entries, ObjectIndices, pack, uid_of, unpack

log = logging.getLogger(__name__)
T = TypeVar("T")

Watch = Callable[..., AsyncIterator[Any]]
Process = Callable[..., Awaitable[Any]]

REPLAY_IN_FLIGHT = 200
"""Listed objects in kopf's hands at once: more than the reconciles the operator runs at once
(:data:`litellm_operator.users.context.RECONCILES_PER_LITELLM_SLOT` times its concurrency)."""

REPLAY_STALL_SECONDS = 30.0
"""If no listed object has left kopf's hands for this long, the oldest is taken as gone (a
slow handler, say) and the next one is handed over: the gate bounds memory, never progress."""

ARRIVALS_IN_FLIGHT = 100
"""New objects (a ``kubectl apply`` of a thousand users) in kopf's hands at once, each until a
handler of its ends: three times the reconciles the operator runs at once, so they never wait
for the gate, while the rest wait as one packed event each instead of a kopf worker each."""

RETURNS_IN_FLIGHT = 100
"""Objects kopf was done with, back with an event (a policy's rollout), in kopf's hands at once:
as many as new objects, for the same reason."""

KUBE_WRITES_IN_FLIGHT = 8
"""The shortcuts' writes through kopf's API client in flight at once. kopf's client sets no
bound on its connections to the API server and opens one (with its TLS handshake and buffers)
for each request in flight beyond those idle in its pool: a thousand new users at once kept
about 50 open (the README's Performance section)."""

ECHO_SECONDS = 10.0
"""How long after kopf patched an object its next event still passes at once, as the echo kopf
waits for (its consistency timeout, 5 s by default, is shorter)."""

PACK_LEVEL = 1
"""zlib's fastest level: the listing is held only until it is handed over."""

_ORIGINAL_CONTINUOUS_WATCH: Watch = watching.continuous_watch
_ORIGINAL_PROCESS: Process = processing.process_resource_event
_WATCH_PARAMETERS = ("settings", "resource", "namespace", "operator_pause_waiter")


class ReplayGate:
    """At most ``limit`` objects of a replayed listing in kopf's hands at once."""

    def __init__(self, limit: int = REPLAY_IN_FLIGHT, stall: float = REPLAY_STALL_SECONDS):
        self.limit = limit
        self.stall = stall
        self._out: dict[str, None] = {}  # insertion-ordered: the oldest first
        self._freed = asyncio.Event()

    def __len__(self) -> int:
        return len(self._out)

    def has_room(self) -> bool:
        return len(self._out) < self.limit

    def take(self, uid: str) -> None:
        """Count ``uid`` out (whether or not there was room)."""
        self._out[uid] = None

    async def room(self) -> None:
        """Wait until fewer than ``limit`` are out."""
        while len(self._out) >= self.limit:
            self._freed.clear()
            try:
                await asyncio.wait_for(self._freed.wait(), self.stall)
            except TimeoutError:
                if len(self._out) >= self.limit:
                    oldest = next(iter(self._out))
                    log.debug("object %s held for %.0f s: not waited for", oldest, self.stall)
                    del self._out[oldest]

    async def admit(self, uid: str) -> None:
        """Wait until fewer than ``limit`` are out, then count ``uid`` out."""
        await self.room()
        self.take(uid)

    def release(self, uid: str) -> None:
        """Object ``uid`` left kopf's hands (nothing happens if it was not out)."""
        if self._out.pop(uid, 0) is None:
            self._freed.set()

    def __contains__(self, uid: object) -> bool:
        return uid in self._out


class Echoes:
    """Objects kopf has just patched, until the event of that patch passes (or it is late)."""

    def __init__(self, seconds: float = ECHO_SECONDS) -> None:
        self.seconds = seconds
        self._due: dict[str, float] = {}  # uid → when it is late; insertion-ordered

    def expect(self, uid: str) -> None:
        now = time.monotonic()
        self._due.pop(uid, None)
        self._due[uid] = now + self.seconds
        while self._due:  # the oldest first: drop those that never came (a patch without change)
            oldest = next(iter(self._due))
            if self._due[oldest] > now:
                break
            del self._due[oldest]

    def due(self, uid: str) -> bool:
        """Whether ``uid``'s next event is taken as the echo of kopf's patch."""
        return self._due.get(uid, 0.0) > time.monotonic()

    def arrived(self, uid: str) -> None:
        self._due.pop(uid, None)

    def __len__(self) -> int:
        return len(self._due)


Observe = Callable[[Mapping[str, Any], Mapping[str, Any]], None]
"""A kind's look at an event kopf is not given: the object's body and kopf's indices."""

WriteStatus = Callable[[Mapping[str, Any]], Awaitable[None]]
"""Merge-patches these fields into the object's status (its echo then passes at once)."""

Follow = Callable[[Mapping[str, Any], Mapping[str, Any], WriteStatus], Awaitable[None]]
"""A kind's work for an event whose only job is to bring the object's status up to date: the
body, kopf's indices, and how to write the status."""


Create = Callable[[Mapping[str, Any], Mapping[str, Any], kopf.Patch], Awaitable[None]]
"""A kind's create handler for a new object, without kopf's cycle: the body, kopf's indices,
and kopf's patch to fill; it raises as the handler would (:class:`kopf.TemporaryError` to be
retried later)."""


def never_follows(_: Mapping[str, Any]) -> bool:
    return False


@dataclass(frozen=True)
class Shortcuts:
    """The events of a kind that need less than kopf's whole cycle, and what is done instead.

    * ``quiet(body)``: once kopf has handled the object (see :class:`Settled`), the kind's event
      handler has nothing to do for this body but what ``observe`` does: kopf is not given it.
    * ``follows(body)``: likewise, but the event handler's only work is ``follow`` (a user its
      policy left behind): it runs here, and its status write is applied here.
    * ``finalized``: kopf would add its finalizer to every object of the kind. A new object
      (or one that lost it) whose body is ``quiet`` gets it here, in one merge patch, instead of
      in a cycle of kopf's of its own; kopf then sees the object first with its finalizer.
    * ``create``: the kind's create handler. A new object with kopf's finalizer, that kopf has
      never handled and whose body is ``quiet``, is created here, and its status written with
      the last-handled configuration kopf would store (see :func:`take_shortcut`).
    """

    quiet: Callable[[Mapping[str, Any]], bool]
    observe: Observe
    follows: Callable[[Mapping[str, Any]], bool] = never_follows
    follow: Follow | None = None
    finalized: bool = False
    create: Create | None = None


KOPF_STATUS = "kopf"
LAST_HANDLED = "last-handled-configuration"
PROGRESS = "progress"


def kopf_state(body: Mapping[str, Any]) -> Mapping[str, Any]:
    """What kopf keeps in the object's status (its last-handled configuration, progress)."""
    state = (body.get("status") or {}).get(KOPF_STATUS)
    return state if isinstance(state, Mapping) else {}


def handled_fingerprint(body: Mapping[str, Any]) -> int:
    """What kopf's change detection and finalizer logic read of an object besides its stored
    state: the spec's generation, labels, annotations, finalizers and deletion. A hash (the
    interpreter's, keyed per process): one int per object, not a copy of its metadata."""
    meta = body.get("metadata") or {}
    return hash(
        (
            meta.get("generation"),
            meta.get("deletionTimestamp"),
            tuple(meta.get("finalizers") or ()),
            tuple(sorted((meta.get("labels") or {}).items())),
            tuple(sorted((meta.get("annotations") or {}).items())),
        )
    )


class ByObject(Generic[T]):
    """Something kept per object (by uid), forgotten with the object."""

    def __init__(self) -> None:
        self._items: dict[str, T] = {}

    def forget(self, uid: str) -> None:
        self._items.pop(uid, None)

    def __contains__(self, uid: object) -> bool:
        return uid in self._items

    def __len__(self) -> int:
        return len(self._items)


class Settled(ByObject[tuple[int, int]]):
    """Per object, what kopf last finished handling: the fingerprint of the body its handlers
    were done with and the last-handled configuration it stored then.

    An event that still shows both, with no handler's progress in its status, is one kopf
    would find nothing to do in (its diff against what it stored is empty): :meth:`inert`.
    An event queued before kopf's latest patch of the object (the operator's own status write
    during the handler, say) that shows the handled body's fingerprint is older than that
    patch's echo, which brings the same body with the stored configuration; kopf would only
    wait in it for that echo: :meth:`handled_alike`."""

    def record(self, body: Mapping[str, Any], last_handled: str) -> None:
        """kopf stores ``last_handled`` for ``body``: its handlers are done with it."""
        uid = uid_of(body)
        if uid is not None:
            self._items[uid] = (handled_fingerprint(body), hash(last_handled))

    def inert(self, body: Mapping[str, Any]) -> bool:
        handled = self._handled_for(body)
        stored = kopf_state(body).get(LAST_HANDLED)
        if handled is None or not isinstance(stored, str):
            return False
        return handled == (handled_fingerprint(body), hash(stored))

    def handled_alike(self, body: Mapping[str, Any]) -> bool:
        handled = self._handled_for(body)
        return handled is not None and handled[0] == handled_fingerprint(body)

    def _handled_for(self, body: Mapping[str, Any]) -> tuple[int, int] | None:
        """What was recorded for the object, unless a handler of it is in progress."""
        uid = uid_of(body)
        if uid is None or PROGRESS in kopf_state(body):
            return None
        return self._items.get(uid)


@dataclass(frozen=True)
class Answer:
    """How a shortcut's run of a create handler ended, for kopf's run of the same event."""

    version: str | None
    """The resourceVersion of the event it ran for."""
    patch: Mapping[str, Any]
    """What the handler put in kopf's patch."""
    error: BaseException | None
    """What the handler raised (kopf retries it as it would its own), if anything."""


class Answers(ByObject[Answer]):
    """Per object, the :class:`Answer` a create shortcut left to kopf: a handler that raised (a
    retry for later), or a status write that failed. kopf's cycle of the same event then runs
    the handler wrapper, which answers with it (:func:`answer_for`) instead of doing the work,
    LiteLLM's calls among it, a second time; kopf keeps the retries, its back-off and its patch."""

    def keep(
        self, body: Mapping[str, Any], patch: Mapping[str, Any], error: BaseException | None
    ) -> None:
        uid = uid_of(body)
        if uid is not None:
            version = (body.get("metadata") or {}).get("resourceVersion")
            self._items[uid] = Answer(version, copy.deepcopy(dict(patch)), error)

    def take(self, body: Mapping[str, Any]) -> Answer | None:
        """The answer kept for ``body``'s object, if it was for this very version (one kept for
        an older one is dropped: its event was not the one kopf then ran)."""
        uid = uid_of(body)
        answer = self._items.pop(uid, None) if uid is not None else None
        version = (body.get("metadata") or {}).get("resourceVersion")
        return answer if answer is not None and answer.version == version else None


@dataclass
class Feed:
    """The indices a watched kind feeds, the gates its listings and its new objects pass
    through, and what its streams have done (read by :mod:`litellm_operator.vitals`)."""

    indices: ObjectIndices
    gate: ReplayGate = field(default_factory=ReplayGate)
    arrivals: ReplayGate = field(default_factory=lambda: ReplayGate(ARRIVALS_IN_FLIGHT))
    """New objects of the watch, in kopf's hands until a handler of theirs ends."""
    returning: ReplayGate = field(default_factory=lambda: ReplayGate(RETURNS_IN_FLIGHT))
    """Objects kopf was done with, back with an event, in its hands until it is processed."""
    echoes: Echoes = field(default_factory=Echoes)
    seen: dict[str | None, set[str]] = field(default_factory=dict)
    """Per stream, the objects kopf has been handed (their events pass at once while it holds
    them, see :func:`held`; otherwise through ``returning``)."""
    listings: int = 0
    """Complete listings read: one per stream at start, then one per relist."""
    stopped: int = 0
    """Streams that stopped for good (a namespace no longer watched), their entries dropped."""
    watchers: dict[str | None, int] = field(default_factory=dict)
    """Running ``continuous_watch`` calls per stream."""
    shortcuts: Shortcuts | None = None
    """The kind's events that need less than kopf's whole cycle."""
    finalized_by_kopf: set[str] = field(default_factory=set)
    """Objects whose finalizer kopf adds itself: a shortcut's patch of theirs failed, and kopf's
    cycle took over (it may hold the finalizer as a patch still to apply; see
    :func:`shortcut_for`)."""
    answers: Answers = field(default_factory=Answers)
    """What create shortcuts left to kopf's cycle of the same event."""
    events: Counter[str] = field(default_factory=Counter)
    """Events that reached kopf's processing, by what became of them: ``processed`` by kopf,
    ``superseded`` by a newer one queued; or, not given to kopf (:class:`Shortcuts`),
    ``settled`` (observed), ``followed`` (its status brought up to date here),
    ``finalized`` (kopf's finalizer added here) or ``created`` (its create handler run here)."""


Feeds = Mapping[tuple[str, str], Feed]
"""The fed kinds, by (group, plural)."""


class Newest:
    """Per object, the resourceVersion of the newest event passed to kopf and not yet processed."""

    SUPERSEDABLE = (None, "ADDED", "MODIFIED")

    def __init__(self) -> None:
        self._versions: dict[str, str] = {}

    @staticmethod
    def _identity(event: Any) -> tuple[str, str] | None:
        body = event.get("object") if isinstance(event, dict) else None
        if not isinstance(body, dict):
            return None
        uid, version = uid_of(body), (body.get("metadata") or {}).get("resourceVersion")
        return (uid, version) if uid is not None and isinstance(version, str) else None

    def passed(self, event: Any) -> None:
        """``event`` goes to kopf's queue of its object."""
        found = self._identity(event)
        if found is not None:
            self._versions[found[0]] = found[1]

    def superseded(self, event: Any) -> bool:
        """Whether a newer event of the same object is queued behind ``event``."""
        found = self._identity(event)
        if found is None or event.get("type") not in self.SUPERSEDABLE:
            return False
        newest = self._versions.get(found[0])
        return newest is not None and newest != found[1]

    def processed(self, event: Any) -> None:
        """``event`` has been processed: forget its object if nothing newer is queued."""
        found = self._identity(event)
        if found is not None and self._versions.get(found[0]) == found[1]:
            del self._versions[found[0]]

    def pending(self, uid: str) -> bool:
        """Whether an event of ``uid`` is queued in kopf or being processed."""
        return uid in self._versions

    def __len__(self) -> int:
        return len(self._versions)


@dataclass
class FedSettings(kopf.OperatorSettings):
    """kopf's settings, carrying the feeds to the patched watch stream and event processing
    (kopf hands its settings to both), so nothing here is shared through a module global."""

    feeds: Feeds = field(default_factory=dict)
    newest: Newest = field(default_factory=Newest)
    settled: Settled = field(default_factory=Settled)
    writes: asyncio.Semaphore = field(
        default_factory=lambda: asyncio.Semaphore(KUBE_WRITES_IN_FLIGHT)
    )
    """Bounds the shortcuts' writes in flight (:data:`KUBE_WRITES_IN_FLIGHT`)."""

    def release(self, uid: str) -> None:
        """A handler of object ``uid`` ended: let the next listed or new object in."""
        release(self.feeds, uid, settled=True)

    def answer(self, kwargs: Mapping[str, Any]) -> bool:
        """:func:`answer_for` a handler's kwargs (kopf gives handlers no settings)."""
        return answer_for(self, kwargs)


def release(feeds: Feeds, uid: str, *, settled: bool, processed: bool = False) -> None:
    """Object ``uid`` left kopf's hands: let the next listed object of ``feeds`` in; the next
    returning one if ``processed`` (kopf has no event of it left) or ``settled``; and the next
    new one if ``settled`` (a handler of ``uid`` ended, or it is gone)."""
    for feed in feeds.values():
        feed.gate.release(uid)
        if settled or processed:
            feed.returning.release(uid)
        if settled:
            feed.arrivals.release(uid)


def expect_echo(feeds: Feeds, uid: str) -> None:
    """kopf patched ``uid``: its next event is the echo kopf waits for, and passes at once."""
    for feed in feeds.values():
        feed.echoes.expect(uid)


def feeds_of(settings: Any) -> Feeds:
    """The feeds kopf's ``settings`` carry (none unless they are :class:`FedSettings`)."""
    return settings.feeds if isinstance(settings, FedSettings) else {}


def settled_of(settings: Any) -> Settled | None:
    """What kopf has finished handling, as kopf's ``settings`` carry it (see :class:`Settled`)."""
    return settings.settled if isinstance(settings, FedSettings) else None


def feed_of(settings: Any, resource: Any) -> Feed | None:
    """The feed of ``resource`` (one of kopf's resources) among ``settings``' feeds."""
    key = (getattr(resource, "group", ""), getattr(resource, "plural", ""))
    return feeds_of(settings).get(key)


SETTLED, FOLLOWED, FINALIZED, CREATED = "settled", "followed", "finalized", "created"
"""What :func:`shortcut_for` can find an event to need instead of kopf's cycle."""


def shortcut_for(
    raw_event: Any,
    feed: Feed | None,
    settled: Settled | None,
    finalizer: str | None,
    consistent: bool = True,
) -> str | None:
    """Which of its kind's :class:`Shortcuts` ``raw_event`` takes instead of kopf's cycle
    (:data:`SETTLED`, :data:`FOLLOWED`, :data:`FINALIZED` or :data:`CREATED`); ``None`` when
    kopf must see it. ``consistent``: kopf's worker awaits no patch's echo (else the event is
    older than a patch of the object, and only kopf's wait for that echo may let it create)."""
    shortcuts = feed.shortcuts if feed is not None else None
    if shortcuts is None or not isinstance(raw_event, dict):
        return None
    body = raw_event.get("object")
    uid = uid_of(body) if isinstance(body, dict) else None
    if feed is None or body is None or uid is None:
        return None
    kind = raw_event.get("type")
    unfinalized = finalizer is not None and lacks_finalizer(body, finalizer)
    if shortcuts.finalized and unfinalized:
        if kind == "DELETED" or uid in feed.finalized_by_kopf:
            return None
        # A listed object kopf has handled before is resumed by kopf (its resume handlers run
        # only where kopf noticed it by the listing); a new one is only created.
        if kind is None and not never_handled(body):
            return None
        return FINALIZED if shortcuts.quiet(body) else None
    if kind == "MODIFIED" and settled is not None and is_settled(body, uid, feed, settled):
        if shortcuts.quiet(body):
            return SETTLED
        if shortcuts.follow is not None and shortcuts.follows(body):
            return FOLLOWED
        return None
    if shortcuts.create is not None and kind in ("ADDED", "MODIFIED") and never_handled(body):
        # A listed one is left to kopf (it may resume it); so is one kopf took over, and an
        # event older than a handled one (the echo of a status write the create made).
        if finalizer is None or unfinalized or deleting(body):
            return None
        if uid in feed.finalized_by_kopf or uid in feed.answers:
            return None
        if not consistent or (settled is not None and uid in settled):
            return None
        return CREATED if shortcuts.quiet(body) else None
    return None


def is_settled(body: Mapping[str, Any], uid: str, feed: Feed, settled: Settled) -> bool:
    """Whether kopf has handled ``body`` as it is (:meth:`Settled.inert`), or it is older than
    the echo of kopf's latest patch and shows the handled spec and metadata."""
    return settled.inert(body) or (feed.echoes.due(uid) and settled.handled_alike(body))


def lacks_finalizer(body: Mapping[str, Any], finalizer: str) -> bool:
    """Whether kopf's first cycle for ``body`` would only add ``finalizer``: it is missing, and
    the object is not being deleted."""
    meta = body.get("metadata") or {}
    return not deleting(body) and finalizer not in (meta.get("finalizers") or ())


def deleting(body: Mapping[str, Any]) -> bool:
    return bool((body.get("metadata") or {}).get("deletionTimestamp"))


def never_handled(body: Mapping[str, Any]) -> bool:
    """Whether kopf has stored nothing for ``body``: no state in its status, no last-handled
    configuration in an annotation (where earlier versions kept it)."""
    annotations = (body.get("metadata") or {}).get("annotations") or {}
    stored = any(key.endswith(f"/{LAST_HANDLED}") for key in annotations)
    return not kopf_state(body) and not stored


MERGE_PATCH = {"Content-Type": "application/merge-patch+json"}


async def merge_patch(url: str, payload: Mapping[str, Any], settings: Any) -> str | None:
    """Merge-patch ``url`` through kopf's API client; the patched resourceVersion (``None`` if
    the object is gone). Any other API error raises. At most :data:`KUBE_WRITES_IN_FLIGHT`
    are in flight at once for one operator (its :class:`FedSettings`)."""
    patched = await _patched(url, payload, settings)
    version = ((patched or {}).get("metadata") or {}).get("resourceVersion")
    return version if isinstance(version, str) else None


async def patch_found(url: str, payload: Mapping[str, Any], settings: Any) -> bool:
    """:func:`merge_patch`, ``False`` if the object is gone (a :data:`~litellm_operator.kube.
    PatchStatus` once ``settings`` is bound)."""
    return await _patched(url, payload, settings) is not None


async def _patched(url: str, payload: Mapping[str, Any], settings: Any) -> Mapping[str, Any] | None:
    bound: contextlib.AbstractAsyncContextManager[Any] = (
        settings.writes if isinstance(settings, FedSettings) else contextlib.nullcontext()
    )
    try:
        async with bound:
            patched = await api.patch(
                url, headers=MERGE_PATCH, payload=payload, settings=settings, logger=log
            )
    except errors.APINotFoundError:
        return None  # deleted meanwhile: its deletion's events follow
    return patched if isinstance(patched, Mapping) else {}


async def add_finalizer(
    body: Mapping[str, Any], finalizer: str, resource: Any, settings: Any
) -> str | None:
    """Add kopf's ``finalizer`` to ``body``'s object as kopf would, but in one merge patch,
    conditional on the body's resourceVersion; the patched resourceVersion (``None`` if the
    object is gone). A conflict (the object changed meanwhile) raises, as any API error."""
    meta = body.get("metadata") or {}
    payload = {
        "metadata": {
            "finalizers": [*(meta.get("finalizers") or ()), finalizer],
            "resourceVersion": meta.get("resourceVersion"),
        }
    }
    url = resource.get_url(namespace=meta.get("namespace"), name=meta.get("name"))
    return await merge_patch(url, payload, settings)


def status_writer(
    body: Mapping[str, Any], resource: Any, settings: Any
) -> tuple[WriteStatus, list[str]]:
    """A :data:`WriteStatus` for ``body``'s object, and the resourceVersions its writes made."""
    meta = body.get("metadata") or {}
    url = resource.get_url(
        namespace=meta.get("namespace"), name=meta.get("name"), subresource="status"
    )
    versions: list[str] = []

    async def write(changes: Mapping[str, Any]) -> None:
        if changes:
            version = await merge_patch(url, {"status": dict(changes)}, settings)
            if version is not None:
                versions.append(version)

    return write, versions


async def take_shortcut(
    step: str, raw_event: dict[str, Any], shortcuts: Shortcuts, kwargs: Mapping[str, Any]
) -> str | None:
    """Do what :func:`shortcut_for` found ``raw_event`` to need; the resourceVersion of the
    write made (whose echo kopf's worker then waits for, as for its own patch), if any."""
    body = raw_event["object"]
    settings, resource = kwargs.get("settings"), kwargs.get("resource")
    indices = getattr(kwargs.get("indexers"), "indices", {})
    if step == FINALIZED:
        finalizer = settings.persistence.finalizer  # type: ignore[union-attr]
        version = await add_finalizer(body, finalizer, resource, settings)
        shortcuts.observe(body, indices)
        return version
    if step == FOLLOWED and shortcuts.follow is not None:
        post_events_to(kwargs)
        write, versions = status_writer(body, resource, settings)
        await shortcuts.follow(body, indices, write)
        return versions[-1] if versions else None
    if step == CREATED and shortcuts.create is not None:
        post_events_to(kwargs)
        shortcuts.observe(body, indices)  # kopf runs the event handler before the others
        try:
            return await create(body, shortcuts.create, indices, kwargs)
        finally:
            if isinstance(settings, FedSettings):
                settings.release(str(uid_of(body)))  # as the handler's wrapper would
    shortcuts.observe(body, indices)
    return None


class HandedToKopf(Exception):
    """A shortcut left its event to kopf's cycle (with an :class:`Answer` for its handler)."""


def post_events_to(kwargs: Mapping[str, Any]) -> None:
    """What kopf sets for the object's worker in its own cycle (``kopf.event`` reads it)."""
    posting.event_queue_loop_var.set(asyncio.get_running_loop())
    posting.event_queue_var.set(kwargs["event_queue"])


async def create(
    body: dict[str, Any], handler: Create, indices: Mapping[str, Any], kwargs: Mapping[str, Any]
) -> str | None:
    """kopf's create cycle for a new object, as kopf would run it for this event: the handler
    fills a patch; once it returns, the last-handled configuration kopf would build from the
    event's body is stored in the patch, kopf's memory of the object says it was handled (a
    relisting then does not resume it), and the patch is merge-patched into the status; the
    patched resourceVersion. A handler that raises, or a write that fails, leaves the event to
    kopf with an :class:`Answer` (:class:`HandedToKopf`)."""
    settings = kwargs["settings"]
    wrapped = kopf.Body(cast(kopf.RawBody, body))
    essence = essence_of(wrapped, kwargs)
    patch = kopf.Patch()
    feed = feed_of(settings, kwargs.get("resource"))
    answers = feed.answers if feed is not None else Answers()
    try:
        await handler(body, indices, patch)
    except Exception as exc:
        answers.keep(body, patch, exc)
        raise HandedToKopf("the create handler raised") from exc
    # What the handler patched, before kopf's configuration joins it (kept only on a failure).
    answer = {
        key: dict(value) if isinstance(value, Mapping) else value for key, value in patch.items()
    }
    if set(patch) - {"status"}:
        answers.keep(body, answer, None)
        raise HandedToKopf("the handler patched more than the status")
    settings.persistence.diffbase_storage.store(body=wrapped, patch=patch, essence=essence)
    memory = await kwargs["memories"].recall(body, memobase=kwargs.get("memobase"))
    memory.fully_handled_once = True
    write, versions = status_writer(body, kwargs.get("resource"), settings)
    try:
        await write(patch["status"])
    except Exception as exc:
        answers.keep(body, answer, None)
        raise HandedToKopf("the status write failed") from exc
    return versions[-1] if versions else None


def essence_of(body: kopf.Body, kwargs: Mapping[str, Any]) -> Any:
    """What kopf's cycle of this event would store as the last-handled configuration (its
    ``_detect_causes``: the essence with the fields handlers declared, without progress)."""
    registry, resource = kwargs["registry"], kwargs.get("resource")
    persistence = kwargs["settings"].persistence
    extra_fields = (
        registry._watching.get_extra_fields(resource=resource)
        | registry._changing.get_extra_fields(resource=resource)
        | registry._spawning.get_extra_fields(resource=resource)
    )
    essence = persistence.diffbase_storage.build(body=body, extra_fields=extra_fields)
    return persistence.progress_storage.clear(essence=essence)


def answer_for(settings: Any, kwargs: Mapping[str, Any]) -> bool:
    """In a kind's handler run by kopf (``kwargs``): if a create shortcut left an
    :class:`Answer` for this event, put its patch in kopf's and raise its error, as the handler
    did; whether there was one (then the handler is not run again)."""
    feed = feed_of(settings, kwargs.get("resource"))
    body = kwargs.get("body")
    answer = feed.answers.take(body) if feed is not None and body is not None else None
    if answer is None:
        return False
    patch = kwargs["patch"]
    for key, value in answer.patch.items():
        if isinstance(value, Mapping) and isinstance(patch.get(key), Mapping):
            patch[key].update(value)
        else:
            patch[key] = value
    if answer.error is not None:
        raise answer.error
    return True


def newest_of(settings: Any) -> Newest | None:
    """The events' bookkeeping kopf's ``settings`` carry (none unless :class:`FedSettings`)."""
    return settings.newest if isinstance(settings, FedSettings) else None


def strip_managed_fields(event: Any) -> Any:
    """``event`` (a raw watch event, or one of kopf's bookmarks) without its object's
    ``metadata.managedFields``; the event's dicts are changed in place."""
    if isinstance(event, dict):
        body = event.get("object")
        if isinstance(body, dict):
            metadata = body.get("metadata")
            if isinstance(metadata, dict):
                metadata.pop("managedFields", None)
    return event


Pending = Callable[[str], bool]
"""Whether kopf has an event of an object (by uid) queued or being processed."""


def never(_: str) -> bool:
    return False


async def fed(
    events: AsyncIterator[Any],
    feed: Feed,
    stream: str | None,
    pending: Pending = never,
    settled: Settled | None = None,
) -> AsyncIterator[Any]:
    """``events`` (one listing, ``Bookmark.LISTED``, then watch events) as kopf should see
    them: the listing indexed whole before it is handed over, then replayed through the gate;
    each watch event indexed before it is passed on. An object of the stream missing from a
    new listing (deleted while the watch was down) is forgotten by ``settled`` too."""
    listed: dict[str, tuple[Entries, bytes]] = {}
    async for event in events:
        if event is watching.Bookmark.LISTED:
            break
        body = strip_managed_fields(event).get("object") if isinstance(event, dict) else None
        uid = uid_of(body) if isinstance(body, dict) else None
        if uid is None or body is None:
            continue
        listed[uid] = (feed.indices.entries(body), pack(body, PACK_LEVEL))
    else:
        return  # the listing was cut short: kopf lists again, and nothing was indexed from it
    feed.indices.replace_stream(stream, {uid: entries for uid, (entries, _) in listed.items()})
    forget(settled, feed.seen.get(stream, set()) - listed.keys(), feed)
    feed.seen[stream] = set(listed)
    feed.listings += 1
    yield watching.Bookmark.LISTED
    while listed:
        uid = next(iter(listed))
        _, packed = listed.pop(uid)
        await feed.gate.admit(uid)
        yield {"type": None, "object": unpack(packed)}
    async with contextlib.aclosing(passed_on(events, feed, stream, pending)) as passed:
        async for event in passed:
            yield event


async def passed_on(
    events: AsyncIterator[Any], feed: Feed | None, stream: str | None, pending: Pending = never
) -> AsyncGenerator[Any, None]:
    """``events`` without ``managedFields``; if fed, each indexed first, and the objects kopf
    does not hold handed over as :func:`arriving` lets them in."""
    if feed is not None:
        async with contextlib.aclosing(arriving(events, feed, stream, pending)) as handed:
            async for event in handed:
                yield event
        return
    async for event in events:
        yield strip_managed_fields(event)


@dataclass
class Line:
    """Objects waiting for room in ``gate``, each as its newest event, packed; the first first."""

    gate: ReplayGate
    waiting: dict[str, bytes] = field(default_factory=dict)


async def arriving(
    events: AsyncIterator[Any], feed: Feed, stream: str | None, pending: Pending = never
) -> AsyncGenerator[Any, None]:
    """Watch events, each indexed as it comes. Those of objects kopf holds pass at once (their
    handlers' own writes come back through here); a new object is handed over when
    ``feed.arrivals`` has room, one kopf was done with when ``feed.returning`` has, and
    meanwhile each waits as its newest event, packed. Read ahead of kopf, so the events kopf
    waits for never queue behind a waiting object."""
    lines = (Line(feed.arrivals), Line(feed.returning))
    source = aiter(events)
    reading: asyncio.Future[Any] | None = None
    try:
        while True:
            for line in lines:
                while line.waiting and line.gate.has_room():
                    uid = next(iter(line.waiting))
                    handed = unpack(line.waiting.pop(uid))
                    line.gate.take(uid)
                    feed.seen.setdefault(stream, set()).add(uid)
                    feed.echoes.arrived(uid)
                    yield handed
            rooms = {asyncio.ensure_future(line.gate.room()) for line in lines if line.waiting}
            try:
                if rooms or reading is not None:
                    # The next event races a gate's room: read in a task of its own.
                    reading = reading or asyncio.ensure_future(anext(source))
                    try:
                        await asyncio.wait({reading, *rooms}, return_when=FIRST_COMPLETED)
                    finally:
                        for room in rooms:
                            room.cancel()
                    if not reading.done():
                        continue
                    read, reading = reading, None
                    event = read.result()
                else:  # nothing waits for room: no task, no wait, per event
                    event = await anext(source)
            except StopAsyncIteration:
                return
            strip_managed_fields(event)
            if isinstance(event, dict):
                feed.indices.apply(stream, event)
            event = hand_over(event, feed, stream, lines, pending)
            if event is not None:
                yield event
    finally:
        if reading is not None:
            reading.cancel()
            with contextlib.suppress(BaseException):
                await reading


def held(feed: Feed, uid: str, pending: Pending) -> bool:
    """Whether kopf holds ``uid``: in a gate, an event of it queued or being processed, or the
    echo of kopf's patch of it due."""
    return (
        uid in feed.gate
        or uid in feed.arrivals
        or uid in feed.returning
        or pending(uid)
        or feed.echoes.due(uid)
    )


def hand_over(
    event: Any, feed: Feed, stream: str | None, lines: tuple[Line, Line], pending: Pending
) -> Any | None:
    """``event`` if kopf is to see it now; ``None`` when its object, new to kopf or no longer
    held by it, waits for room in its gate (its line then holds it, in its place)."""
    body = event.get("object") if isinstance(event, dict) else None
    uid = uid_of(body) if isinstance(body, dict) else None
    if uid is None:
        return event
    seen = feed.seen.setdefault(stream, set())
    if event.get("type") == "DELETED":
        seen.discard(uid)
        feed.echoes.arrived(uid)
        for line in lines:
            line.waiting.pop(uid, None)  # only the deletion is handed over (event handlers)
        return event
    known = uid in seen
    new, back = lines
    line = back if known else new
    if uid in line.waiting:
        line.waiting[uid] = pack(event, PACK_LEVEL)
        return None
    if known and held(feed, uid, pending):
        feed.echoes.arrived(uid)
        return event
    if line.gate.has_room():
        line.gate.take(uid)
        seen.add(uid)
        feed.echoes.arrived(uid)
        return event
    line.waiting[uid] = pack(event, PACK_LEVEL)
    return None


def forget(settled: Settled | None, uids: Iterable[str], feed: Feed | None) -> None:
    """Objects that are gone (or no longer watched): nothing of them is kept."""
    for uid in uids:
        if settled is not None:
            settled.forget(uid)
        if feed is not None:
            feed.finalized_by_kopf.discard(uid)
            feed.answers.forget(uid)


@contextlib.contextmanager
def watching_stream(
    feed: Feed | None, stream: str | None, settled: Settled | None = None
) -> Iterator[None]:
    """One ``continuous_watch`` of ``stream`` runs. kopf calls it again after a watch ends or
    a 410 Gone (a return); it is cancelled or closed only when the stream stops for good (its
    namespace is no longer watched, the operator stops): then, unless another watch of the
    same stream has started meanwhile, what the stream indexed (and ``settled`` recorded of
    its objects) is dropped, or it would stay."""
    if feed is None:
        yield
        return
    feed.watchers[stream] = feed.watchers.get(stream, 0) + 1
    stopped = False
    try:
        yield
    except (GeneratorExit, asyncio.CancelledError):
        stopped = True
        raise
    finally:
        left = feed.watchers.pop(stream) - 1
        if left:
            feed.watchers[stream] = left
        elif stopped:
            feed.indices.replace_stream(stream, {})
            forget(settled, feed.seen.pop(stream, ()), feed)
            feed.stopped += 1


def slimmed(watch: Watch) -> Watch:
    """``watch`` (kopf's ``continuous_watch``) whose events carry no ``managedFields``, and
    whose listings of a fed kind are indexed whole, then replayed through the feed's gate."""

    async def continuous_watch(**kwargs: Any) -> AsyncIterator[Any]:
        source = cast(AsyncGenerator[Any, None], watch(**kwargs))
        resource = kwargs.get("resource")
        settings = kwargs.get("settings")
        feed = feed_of(settings, resource)
        streamed = getattr(getattr(settings, "watching", None), "initial_streaming", False)
        stream = kwargs.get("namespace")
        newest = newest_of(settings)
        settled = settled_of(settings)
        with watching_stream(feed, stream, settled):
            async with contextlib.aclosing(source) as events:
                pending = newest.pending if newest is not None else never
                shown = (
                    passed_on(events, feed, stream, pending)
                    if feed is None or streamed
                    else fed(events, feed, stream, pending, settled)
                )
                async with contextlib.aclosing(cast(AsyncGenerator[Any, None], shown)) as passed:
                    async for event in passed:
                        if newest is not None:
                            newest.passed(event)
                        yield event

    continuous_watch.__wrapped__ = watch  # type: ignore[attr-defined]
    return continuous_watch


def releasing(process: Process) -> Process:
    """kopf's ``process_resource_event`` that skips superseded events (:class:`Newest`), takes
    its kind's shortcuts (:class:`Shortcuts`), and lets the gates know when an object is done."""

    async def process_resource_event(*, raw_event: Any, **kwargs: Any) -> Any:
        settings = kwargs.get("settings")
        newest = newest_of(settings)
        feed = feed_of(settings, kwargs.get("resource"))
        patched: Any = None
        try:
            await indexed(kwargs)
            if newest is not None and newest.superseded(raw_event):
                if feed is not None:
                    feed.events["superseded"] += 1
                return None
            try:
                finalizer = getattr(getattr(settings, "persistence", None), "finalizer", None)
                consistent = kwargs.get("consistency_time") is None
                step = shortcut_for(raw_event, feed, settled_of(settings), finalizer, consistent)
                if feed is not None and feed.shortcuts is not None and step is not None:
                    await ready(kwargs)
                    try:
                        patched = await take_shortcut(step, raw_event, feed.shortcuts, kwargs)
                        feed.events[step] += 1
                        return patched
                    except errors.APIConflictError:
                        # The object changed since this event: its next event takes its turn.
                        feed.events["superseded"] += 1
                        return None
                    except Exception as exc:
                        # kopf's own cycle does the same work (or answers with what this did),
                        # and handles its own errors.
                        log.debug("%s: %s; handed to kopf", step, type(exc).__name__)
                        if step == FINALIZED:  # kopf may keep its finalizer as a patch to apply
                            feed.finalized_by_kopf.add(str(uid_of(raw_event["object"])))
                if feed is not None:
                    feed.events["processed"] += 1
                patched = await process(raw_event=raw_event, **kwargs)
                return patched
            finally:
                if newest is not None:
                    newest.processed(raw_event)
        finally:
            body = raw_event.get("object") if isinstance(raw_event, dict) else None
            uid = uid_of(body) if isinstance(body, dict) else None
            if uid is not None:
                feeds = feeds_of(settings)
                gone = raw_event.get("type") == "DELETED"
                if gone:
                    forget(settled_of(settings), (uid,), feed)
                if isinstance(patched, str) and not gone:
                    expect_echo(feeds, uid)
                processed = newest is None or not newest.pending(uid)
                release(feeds, uid, settled=gone, processed=processed)

    process_resource_event.__wrapped__ = process  # type: ignore[attr-defined]
    return process_resource_event


async def indexed(kwargs: Mapping[str, Any]) -> None:
    """What kopf's processing of an event does first, before the operator is ready: the object
    no longer holds its readiness back (kopf makes a toggle per new object while it is not
    ready; an event not given to kopf must drop it, or kopf's readiness never comes)."""
    operator_indexed = kwargs.get("operator_indexed")
    resource_indexed = kwargs.get("resource_indexed")
    if operator_indexed is not None and resource_indexed is not None:
        await operator_indexed.drop_toggle(resource_indexed)


async def ready(kwargs: Mapping[str, Any]) -> None:
    """As kopf does before it runs any handler: wait until every watched kind is listed and
    indexed (kopf's indices, which the shortcuts' handlers read, are then whole)."""
    operator_indexed = kwargs.get("operator_indexed")
    if operator_indexed is not None:
        await operator_indexed.wait_for(True)


def kopf_state_where_expected() -> bool:
    """Whether kopf keeps its last-handled configuration and its handlers' progress in status
    where :class:`Settled` reads them, and stores the configuration once handlers are done."""
    return (
        tuple(kopf.StatusDiffBaseStorage().field) == ("status", KOPF_STATUS, LAST_HANDLED)
        and tuple(kopf.StatusProgressStorage().field) == ("status", KOPF_STATUS, PROGRESS)
        and "diffbase_storage" in processing.process_changing_cause.__code__.co_names
    )


_PATCH_PARAMETERS = ("url", "settings", "payload", "headers", "logger")


def shortcuts_supported(process: Process) -> bool:
    """Whether kopf still offers what :func:`take_shortcut` uses of it: its API client's merge
    patch, its event queue (``kopf.event`` reads it), and resource URLs of subresources."""
    patch = inspect.signature(api.patch).parameters
    return (
        all(p in patch for p in _PATCH_PARAMETERS)
        and issubclass(errors.APINotFoundError, errors.APIError)
        and isinstance(posting.event_queue_var, contextvars.ContextVar)
        and isinstance(posting.event_queue_loop_var, contextvars.ContextVar)
        and "event_queue" in inspect.signature(process).parameters
        and "subresource" in inspect.signature(kopf.Resource.get_url).parameters
        and hasattr(kopf.OperatorSettings().persistence, "finalizer")
        and create_supported(process)
    )


_PROCESS_PARAMETERS = (
    "registry",
    "memories",
    "memobase",
    "consistency_time",
    "operator_indexed",
    "resource_indexed",
)
_ESSENCE_NAMES = ("get_extra_fields", "diffbase_storage", "build", "progress_storage", "clear")


def create_supported(process: Process) -> bool:
    """Whether kopf still builds the last-handled configuration, and remembers an object as
    handled, as :func:`create` does in its place."""
    registry = kopf.OperatorRegistry()
    memory_fields = {f.name for f in dataclasses.fields(inventory.ResourceMemory)}
    process_parameters = inspect.signature(process).parameters
    return (
        all(name in processing._detect_causes.__code__.co_names for name in _ESSENCE_NAMES)
        and all(
            hasattr(getattr(registry, part), "get_extra_fields")
            for part in ("_watching", "_changing", "_spawning")
        )
        and "fully_handled_once" in processing.process_changing_cause.__code__.co_names
        and "fully_handled_once" in memory_fields
        and "noticed_by_listing" in inspect.signature(inventory.ResourceMemories.recall).parameters
        and all(p in process_parameters for p in _PROCESS_PARAMETERS)
        and {"drop_toggle", "wait_for"} <= set(processing.process_resource_event.__code__.co_names)
    )


def installed() -> bool:
    return (
        getattr(watching.continuous_watch, "__wrapped__", None) is _ORIGINAL_CONTINUOUS_WATCH
        and getattr(processing.process_resource_event, "__wrapped__", None) is _ORIGINAL_PROCESS
    )


def install() -> bool:
    """Put :func:`slimmed` and :func:`releasing` in kopf; ``False`` (and a warning) if kopf's
    internals have changed (then kopf keeps its own functions, and the indices stay empty:
    the caller must not rely on them)."""
    if installed():
        return True
    watch, process = watching.continuous_watch, processing.process_resource_event
    parameters = inspect.signature(watch).parameters
    if (
        watch is not _ORIGINAL_CONTINUOUS_WATCH
        or process is not _ORIGINAL_PROCESS
        or not inspect.isasyncgenfunction(watch)
        or not all(p in parameters for p in _WATCH_PARAMETERS)
        or "continuous_watch" not in watching.infinite_watch.__code__.co_names
        or "raw_event" not in inspect.signature(process).parameters
        or "process_resource_event" not in running.spawn_tasks.__code__.co_names
        or not hasattr(watching.Bookmark, "LISTED")
        or not kopf_state_where_expected()
        or not shortcuts_supported(process)
    ):
        log.warning("kopf's watch stream has changed: its listings are not indexed here")
        return False
    watching.continuous_watch = slimmed(watch)
    processing.process_resource_event = releasing(process)  # type: ignore[assignment]
    return True
