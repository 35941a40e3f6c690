"""Hands memory freed after a burst back to the operating system.

A thousand users reconciled at once (a bulk apply, a restart, a policy edit) allocate far more
than the operator keeps afterwards; CPython returns most of it to the C allocator, but glibc's
malloc keeps freed pages in its heaps, so the resident size stays at the burst's peak.
``malloc_trim(0)`` releases them. Elsewhere than glibc this does nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import ctypes.util
import logging
from collections.abc import AsyncIterator, Callable

log = logging.getLogger(__name__)

TRIM_INTERVAL_SECONDS = 30.0


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
