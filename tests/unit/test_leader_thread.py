"""leader: the Lease's calls run on the elector's own thread, so a loop whose shared executor is
busy (handlers' Secret and Event calls under load) cannot hold a renewal past its deadline."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import kubernetes

from litellm_operator.runtime.leader import LeaderElector

SATURATING = 40


async def test_a_lease_call_does_not_queue_behind_the_shared_executor() -> None:
    loop = asyncio.get_running_loop()
    blocked = threading.Event()
    # More than the loop's default executor has workers (at most 32): every one is held.
    busy = [loop.run_in_executor(None, blocked.wait) for _ in range(SATURATING)]
    elector = LeaderElector(kubernetes.client.ApiClient(), "ns", "me")

    def read(*args: Any, _request_timeout: Any) -> tuple[Any, ...]:
        return (*args, _request_timeout, threading.current_thread().name)

    try:
        answer = await asyncio.wait_for(elector._call(read, "lease", "ns"), timeout=2)
    finally:
        blocked.set()
        await asyncio.gather(*busy)
        elector.close()
    assert answer[:2] == ("lease", "ns")
    assert answer[3].startswith("lease")
