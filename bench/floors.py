"""The floors: what a bare httpx client needs for the same work, with the operator's own payload.

Each floor builds its request bodies with the operator's planner (``prepare`` and
``plan_user`` on a LiteLLMUser and its policy), so the floor sends byte for byte the fields
the operator sends, ownership markers included, and differs only in the user id. It runs at
the operator's LiteLLM concurrency, in the same run, on the same LiteLLM.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Mapping
from typing import Any

import httpx

from litellm_operator.litellm import LiteLLMUserRecord
from litellm_operator.users.plan import CreateUser, UpdateUser, plan_user
from litellm_operator.users.reconciler import Prepared, observed_from, prepare


def prepared(user: Mapping[str, Any], policy: Mapping[str, Any], user_id: str) -> Prepared:
    found = prepare(user, policy, user_id)
    assert isinstance(found, Prepared), found
    return found


def create_body(user: Mapping[str, Any], policy: Mapping[str, Any], user_id: str) -> dict[str, Any]:
    """The ``/user/new`` body the operator sends for ``user`` under ``policy``, for ``user_id``."""
    actions = plan_user(prepared(user, policy, user_id).desired, None).actions
    create = next(a for a in actions if isinstance(a, CreateUser))
    return create.request.to_wire()


def update_body(
    user: Mapping[str, Any],
    old_policy: Mapping[str, Any],
    new_policy: Mapping[str, Any],
    user_id: str,
) -> dict[str, Any]:
    """The ``/user/update`` body the operator sends when ``old_policy`` becomes ``new_policy``."""
    held = LiteLLMUserRecord.model_validate(create_body(user, old_policy, user_id))
    desired = prepared(user, new_policy, user_id).desired
    actions = plan_user(desired, observed_from(held, None)).actions
    update = next(a for a in actions if isinstance(a, UpdateUser))
    return {"user_id": user_id, **update.request.to_wire()}


async def _run(
    url: str, key: str, concurrency: int, calls: list[list[tuple[str, str, Any]]]
) -> float:
    """Run each user's calls in order, ``concurrency`` users at a time; the wall time."""
    limit = asyncio.Semaphore(concurrency)
    headers = {"Authorization": f"Bearer {key}"}
    limits = httpx.Limits(max_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, headers=headers, timeout=60, limits=limits) as http:

        async def one(sequence: list[tuple[str, str, Any]]) -> None:
            async with limit:
                for method, path, payload in sequence:
                    if method == "GET":
                        response = await http.get(path, params=payload)
                        if response.status_code != 404:
                            response.raise_for_status()
                    else:
                        (await http.post(path, json=payload)).raise_for_status()

        started = time.perf_counter()
        await asyncio.gather(*(one(s) for s in calls))
        return time.perf_counter() - started


def floor_ids(n: int) -> list[str]:
    stem = uuid.uuid4().hex[:6]
    return [f"floor-{stem}-{i:05d}" for i in range(n)]


def create_floor(url: str, key: str, concurrency: int, bodies: list[dict[str, Any]]) -> float:
    """Per user: ``/user/info`` (404) then ``/user/new``, the least any safe create needs."""
    calls = [
        [("GET", "/user/info", {"user_id": b["user_id"]}), ("POST", "/user/new", b)] for b in bodies
    ]
    return asyncio.run(_run(url, key, concurrency, calls))


def update_floor(url: str, key: str, concurrency: int, bodies: list[dict[str, Any]]) -> float:
    """Per user: one ``/user/update``."""
    calls = [[("POST", "/user/update", b)] for b in bodies]
    return asyncio.run(_run(url, key, concurrency, calls))


def bulk_update_floor(
    url: str, key: str, flights: int, batch: int, bodies: list[dict[str, Any]]
) -> float:
    """The same updates as ``/user/bulk_update`` calls of ``batch`` users, ``flights`` at a
    time: what the operator's coalesced writes (``UserWrites``) send at best."""
    calls = [
        [("POST", "/user/bulk_update", {"users": bodies[i : i + batch]})]
        for i in range(0, len(bodies), batch)
    ]
    return asyncio.run(_run(url, key, flights, calls))
