"""Memory trimming: glibc's malloc_trim is found here (Linux), called, and stopped cleanly."""

from __future__ import annotations

import asyncio
import subprocess
import sys

import pytest

from litellm_operator.runtime import memory


def test_malloc_trim_is_found_on_glibc() -> None:
    trim = memory._malloc_trim()
    assert trim is not None
    assert trim(0) in (0, 1)


async def test_trimming_calls_trim_and_stops_with_its_block(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls: list[int] = []
    monkeypatch.setattr(memory, "_malloc_trim", lambda: calls.append)
    async with memory.trimming(interval=0.01):
        await asyncio.sleep(0.1)
    seen = len(calls)
    assert seen >= 3
    await asyncio.sleep(0.05)
    assert len(calls) == seen, "no trim after the block"


async def test_without_malloc_trim_nothing_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(memory, "_malloc_trim", lambda: None)
    async with memory.trimming(interval=0.01):
        await asyncio.sleep(0.03)


def test_the_collector_is_tuned_for_the_process_that_asks() -> None:
    script = (
        "import gc\n"
        "from litellm_operator.runtime import memory\n"
        "before = gc.get_freeze_count()\n"
        "memory.tune_collector()\n"
        "print(before, gc.get_freeze_count() > 10_000, gc.get_threshold())\n"
    )
    found = (
        subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
        .stdout.strip()
        .split(maxsplit=2)
    )
    assert found == ["0", "True", str(memory.COLLECTOR_THRESHOLDS)]
