"""Drops ``metadata.managedFields`` from every object kopf watches, before kopf queues it.

The API server sends each object with its server-side-apply bookkeeping: one
``managedFields`` entry per manager and subresource, a nested ``fieldsV1`` map of every field
it owns. For a LiteLLMUser that is 1.7 KB of the 6.9 KB of JSON, and many small dicts once
parsed. Neither kopf nor the operator reads it (kopf's patches are merge patches; its
last-handled configuration is the object's essence, which leaves ``managedFields`` out; the
operator's indices keep chosen fields).

It matters at a restart: kopf lists every object and holds each one's event, with the parsed
body, until all index handlers have seen every object (:mod:`litellm_operator.kopf_toggles`).
What the burst allocates stays resident after it (CPython's allocator cannot return an arena
that one long-lived object still uses), so the whole list's ``managedFields`` cost about
8.5 KiB per user for the life of the process (measured at 1,000 users: 49.2 KiB per user at
rest with it, 40.7 without).

:func:`install` wraps kopf's ``infinite_watch`` (the one source of the events its watcher
queues) with a generator that removes the field from each event's object; it refuses (and
kopf keeps its own function) when kopf's internals no longer look as this module expects.
This is a change to a library's internals, written here because kopf has no setting for it.
"""

from __future__ import annotations

import contextlib
import inspect
import logging
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from typing import Any, cast

from kopf._cogs.clients import watching
from kopf._core.reactor import queueing

log = logging.getLogger(__name__)

Watch = Callable[..., AsyncIterator[Any]]

_ORIGINAL_INFINITE_WATCH: Watch = watching.infinite_watch
_PARAMETERS = ("settings", "resource", "namespace", "operator_paused")


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


def slimmed(watch: Watch) -> Watch:
    """``watch`` whose events carry no ``managedFields``."""

    async def infinite_watch(**kwargs: Any) -> AsyncIterator[Any]:
        source = cast(AsyncGenerator[Any, None], watch(**kwargs))
        async with contextlib.aclosing(source) as events:
            async for event in events:
                yield strip_managed_fields(event)

    infinite_watch.__wrapped__ = watch  # type: ignore[attr-defined]
    return infinite_watch


def installed() -> bool:
    return getattr(watching.infinite_watch, "__wrapped__", None) is _ORIGINAL_INFINITE_WATCH


def install() -> bool:
    """Make kopf's watchers drop ``managedFields``; ``False`` (and a warning) if it cannot."""
    if installed():
        return True
    original = watching.infinite_watch
    parameters = inspect.signature(original).parameters
    if (
        original is not _ORIGINAL_INFINITE_WATCH
        or not inspect.isasyncgenfunction(original)
        or getattr(queueing, "watching", None) is not watching
        or not all(p in parameters for p in _PARAMETERS)
    ):
        log.warning("kopf's watch stream has changed: objects keep their managedFields")
        return False
    watching.infinite_watch = slimmed(original)
    return True
