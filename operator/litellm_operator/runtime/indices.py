"""The operator's own indices of one resource kind, fed from the watch stream, not by kopf.

kopf can index objects too, but every kopf index makes kopf hold each listed object's event, its
parsed body and its worker, until every object of the listing has been indexed: at a restart
with N users that is N bodies and N workers at once, and what that burst allocates stays
resident (CPython cannot return an arena one long-lived object still uses). These indices are
filled by :mod:`litellm_operator.runtime.kopf_watch` while the listing is read, before kopf sees any
object, so kopf can be handed the objects a few at a time.

:class:`ObjectIndices` keeps, for each named index, ``key → {object uid: value}``, as kopf's
indices do, and reads the same way (:class:`Index` is a ``Mapping`` of key to :class:`Store`),
so handlers and tests see no difference. An index function maps one object's body to the
entries it contributes (or ``None``). A listing replaces everything its stream held; a watch
event replaces (or, deleted, removes) what one object contributed. :func:`pack` and
:func:`unpack` keep bodies compactly (the listing kopf_watch holds, the index's user records).
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Callable, Collection, Hashable, Iterator, Mapping
from typing import Any

Body = Mapping[str, Any]
IndexFunction = Callable[[Body], Mapping[Hashable, Any] | None]
Entries = tuple[tuple[str, Hashable, Any], ...]
"""What one object contributes: (index name, key, value) for each entry. Kept per object for
as long as it exists, so tuples: a dict of dicts took four dicts per object."""
Stream = str | None
"""A watch stream: the namespace it watches, ``None`` cluster-wide."""


Held = tuple[str, Any] | dict[str, Any]
"""What an index holds for one key: ``(uid, value)`` when one object gave it (nearly every key
of a name or an id), ``{uid: value}`` when several did (a policy's users)."""


def held_values(held: Held) -> list[Any]:
    return [held[1]] if isinstance(held, tuple) else list(held.values())


class Store(Collection[Any]):
    """The values an index holds for one key, one per object (a read-only view)."""

    __slots__ = ("_held",)

    def __init__(self, held: Held) -> None:
        self._held = held

    def __iter__(self) -> Iterator[Any]:
        return iter(held_values(self._held))

    def __len__(self) -> int:
        return 1 if isinstance(self._held, tuple) else len(self._held)

    def __contains__(self, value: object) -> bool:
        return value in held_values(self._held)


class Index(Mapping[Hashable, Store]):
    """One named index: key → the :class:`Store` of the objects that gave that key."""

    __slots__ = ("_keys",)

    def __init__(self) -> None:
        self._keys: dict[Hashable, Held] = {}

    def __getitem__(self, key: Hashable) -> Store:
        return Store(self._keys[key])

    def __iter__(self) -> Iterator[Hashable]:
        return iter(list(self._keys))

    def __len__(self) -> int:
        return len(self._keys)

    def __contains__(self, key: object) -> bool:
        return key in self._keys

    def one(self, key: Hashable) -> Any:
        """The value one object gave ``key`` (``None`` if none did), without building a
        :class:`Store`: a policy's rollout and resync read one per user of the policy."""
        held = self._keys.get(key)
        if isinstance(held, tuple):
            return held[1]
        if held:
            for value in held.values():
                return value
        return None

    def _put(self, key: Hashable, uid: str, value: Any) -> None:
        keys = self._keys
        held = keys.get(key)
        if held is None or (isinstance(held, tuple) and held[0] == uid):
            keys[key] = (uid, value)
        elif isinstance(held, tuple):
            keys[key] = {held[0]: held[1], uid: value}
        else:
            held[uid] = value

    def _drop(self, key: Hashable, uid: str) -> None:
        keys = self._keys
        held = keys.get(key)
        if isinstance(held, tuple):
            if held[0] == uid:
                del keys[key]
        elif held is not None:
            held.pop(uid, None)
            if len(held) == 1:
                keys[key] = next(iter(held.items()))
            elif not held:
                del keys[key]


class ObjectIndices:
    """Named indices of one resource kind, with what each object contributed to them."""

    def __init__(self, functions: Mapping[str, IndexFunction]) -> None:
        self._functions = dict(functions)
        self._indices = {name: Index() for name in self._functions}
        self._objects: dict[str, tuple[Stream, Entries]] = {}

    @property
    def views(self) -> Mapping[str, Index]:
        """The indices by name, live (they change as the stream moves on)."""
        return self._indices

    def __len__(self) -> int:
        return len(self._objects)

    def entries(self, body: Body) -> Entries:
        """What ``body`` contributes to every index (pure)."""
        return tuple(
            (name, key, value)
            for name, function in self._functions.items()
            for key, value in (function(body) or {}).items()
        )

    def put(self, stream: Stream, uid: str, entries: Entries) -> None:
        """Object ``uid`` (from ``stream``) now contributes ``entries``, and nothing else."""
        self.remove(uid)
        indices = self._indices
        for name, key, value in entries:
            indices[name]._put(key, uid, value)
        self._objects[uid] = (stream, entries)

    def remove(self, uid: str) -> None:
        """Object ``uid`` is gone: drop what it contributed."""
        known = self._objects.pop(uid, None)
        if known is None:
            return
        indices = self._indices
        for name, key, _ in known[1]:
            indices[name]._drop(key, uid)

    def replace_stream(self, stream: Stream, listed: Mapping[str, Entries]) -> None:
        """A complete listing of ``stream``: its objects are exactly ``listed`` (uid → entries)."""
        gone = [uid for uid, (source, _) in self._objects.items() if source == stream]
        for uid in gone:
            if uid not in listed:
                self.remove(uid)
        for uid, entries in listed.items():
            self.put(stream, uid, entries)

    def apply(self, stream: Stream, event: Mapping[str, Any]) -> None:
        """A raw watch event: an object added, changed or deleted (anything else is ignored)."""
        body = event.get("object")
        kind = event.get("type")
        if not isinstance(body, Mapping) or kind not in ("ADDED", "MODIFIED", "DELETED"):
            return
        uid = uid_of(body)
        if uid is None:
            return
        if kind == "DELETED":
            self.remove(uid)
        else:
            self.put(stream, uid, self.entries(body))


def single(index: Mapping[Any, Any]) -> Callable[[Hashable], Any]:
    """Reads the one value an index keeps per key (``None`` when none): :meth:`Index.one` for
    the operator's indices, the first of the collection for any other mapping (kopf's)."""
    if isinstance(index, Index):
        return index.one
    return lambda key: next(iter(index.get(key) or ()), None)


def uid_of(body: Body) -> str | None:
    meta = body.get("metadata")
    uid = meta.get("uid") if isinstance(meta, Mapping) else None
    return uid if isinstance(uid, str) and uid else None


def pack(body: Body, level: int) -> bytes:
    """``body`` as zlib-compressed compact JSON, for keeping many of them (see :func:`unpack`)."""
    return zlib.compress(json.dumps(body, separators=(",", ":")).encode(), level)


def unpack(packed: bytes) -> dict[str, Any]:
    body: dict[str, Any] = json.loads(zlib.decompress(packed))
    return body
