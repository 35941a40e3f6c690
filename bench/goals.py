"""The benchmark's goals, one declaration each, and how a result is judged against them.

Each :class:`Goal` names the figure it reads from one size's result, its limit, and the
smallest N it applies from. ``bench_operator.py`` checks every goal on every size it measures;
``report.py`` lists them above the README's table.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

Result = dict[str, Any]

LITELLM_WRITES = (
    "/user/new",
    "/user/update",
    "/user/bulk_update",
    "/user/delete",
    "/team/member_add",
)


@dataclass(frozen=True)
class Goal:
    name: str
    text: str
    limit: float
    figure: Callable[[Result], float]
    from_users: int = 0

    def applies(self, result: Result) -> bool:
        return bool(result["users"] >= self.from_users)

    def met(self, result: Result) -> bool:
        return self.figure(result) <= self.limit


def per_1000(result: Result, scenario: str) -> float:
    """The operator's CPU seconds in ``scenario`` per 1,000 users."""
    cpu: float = result[scenario]["cpu_seconds"].get("operator", 0.0)
    return cpu * 1000 / int(result["users"])


def litellm_writes(calls: dict[str, int]) -> int:
    return sum(n for endpoint, n in calls.items() if endpoint in LITELLM_WRITES)


GOALS = (
    Goal(
        "create_cpu",
        "operator CPU ≤ 6 s per 1,000 users created (from 1,000 users)",
        6.0,
        lambda r: per_1000(r, "create"),
        from_users=1000,
    ),
    Goal(
        "policy_edit_cpu",
        "operator CPU ≤ 3 s per 1,000 users in a policy edit (from 1,000 users)",
        3.0,
        lambda r: per_1000(r, "policy_edit"),
        from_users=1000,
    ),
    Goal(
        "create_ratio",
        "create → all Ready ≤ 1.5 times its floor",
        1.5,
        lambda r: float(r["create"]["ratio"]),
    ),
    Goal(
        "policy_edit_ratio",
        "policy edit → all Ready ≤ 1.5 times its floor",
        1.5,
        lambda r: float(r["policy_edit"]["ratio"]),
    ),
    Goal(
        "memory_create_peak",
        "≤ 25 KiB per user at the create's peak (from 10,000 users)",
        25.0,
        lambda r: float(r["memory"]["kib_per_user_create_peak"]),
        from_users=10_000,
    ),
    Goal(
        "memory_after_create",
        "≤ 16 KiB held per user right after the create (from 1,000 users)",
        16.0,
        lambda r: float(r["memory"]["kib_per_user_after_create"]),
        from_users=1000,
    ),
    Goal(
        "memory_at_rest",
        "≤ 16 KiB held per user at rest, without a restart (from 1,000 users)",
        16.0,
        lambda r: float(r["memory"]["kib_per_user_settled"]),
        from_users=1000,
    ),
    Goal(
        "resync_litellm_writes",
        "no LiteLLM write in steady state",
        0,
        lambda r: litellm_writes(r["resync"]["litellm_calls"]),
    ),
    Goal(
        "resync_k8s_writes",
        "no Kubernetes write in steady state",
        0,
        lambda r: float(r["resync"]["users_written"]),
    ),
    Goal(
        "restart_calls",
        "a restart reads LiteLLM in ≤ N/50 calls",
        1 / 50,
        lambda r: sum(r["restart"]["litellm_calls"].values()) / max(r["users"], 50),
    ),
    Goal(
        "restart_k8s_writes",
        "no Kubernetes write after a restart",
        0,
        lambda r: float(r["restart"]["users_written"]),
    ),
)


def missed(result: Result) -> list[str]:
    """The goals ``result`` (one size, one round) misses, as ``name (N=…)``."""
    n = result["users"]
    return [f"{g.name} (N={n})" for g in GOALS if g.applies(result) and not g.met(result)]
