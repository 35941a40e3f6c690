"""Hands memory freed after a burst back to the operating system, and keeps CPython's cycle
collector from rescanning what lives for the whole run.

A thousand users reconciled at once (a bulk apply, a restart, a policy edit) allocate far more
than the operator keeps afterwards; CPython returns most of it to the C allocator, but glibc's
malloc keeps freed pages in its heaps, so the resident size stays at the burst's peak.
``malloc_trim(0)`` releases them. Elsewhere than glibc this does nothing.

The cycle collector costs the operator much of its CPU under load (measured in the README's
Performance section): by default a collection every 700 allocations, and the oldest
generation's ones walk everything the operator holds. :func:`tune_collector` moves what exists
once the operator has started (modules, kopf's registry, pydantic's validators) out of its
reach (``gc.freeze``) and collects less often (:data:`COLLECTOR_THRESHOLDS`); almost everything
the operator frees goes by reference counting, not by the collector.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import ctypes.util
import gc
import logging
from collections.abc import AsyncIterator, Callable

log = logging.getLogger(__name__)

TRIM_INTERVAL_SECONDS = 30.0
COLLECTOR_THRESHOLDS = (10_000, 10, 10)
"""gc thresholds: a young collection every 10,000 net allocations instead of 700."""


def tune_collector() -> None:
    """Freeze what exists now out of the cycle collector's scans; collect less often."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*COLLECTOR_THRESHOLDS)


def _malloc_trim() -> Callable[[int], int] | None:
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        trim: Callable[[int], int] = ctypes.CDLL(name).malloc_trim
    except (OSError, AttributeError):  # not glibc
        return None
    return trim


async def trim_periodically(interval: float = TRIM_INTERVAL_SECONDS) -> None:
    """Every ``interval`` seconds, release the C allocator's free pages (until cancelled)."""
    trim = _malloc_trim()
    if trim is None:
        log.debug("malloc_trim is not available: memory is not trimmed")
        return
    while True:
        await asyncio.sleep(interval)
        trim(0)


@contextlib.asynccontextmanager
async def trimming(interval: float = TRIM_INTERVAL_SECONDS) -> AsyncIterator[None]:
    """Trim memory periodically while the block runs."""
    task = asyncio.create_task(trim_periodically(interval))
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
