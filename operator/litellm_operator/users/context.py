"""What the LiteLLMUsers' handlers share, built once the operator leads (:class:`Runtime`)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field

from litellm_operator.keys.reconciler import KeyReconciler
from litellm_operator.kube import Kube
from litellm_operator.litellm import (
    Directory,
    LiteLLMClient,
    TeamSnapshot,
    UserReads,
    UserWrites,
)
from litellm_operator.policies.validated import PolicyModels
from litellm_operator.runtime.config import OperatorConfig
from litellm_operator.runtime.indices import ObjectIndices
from litellm_operator.runtime.metrics import Metrics
from litellm_operator.users.indices import user_indices
from litellm_operator.users.reconciler import Reconciler


@dataclass
class Runtime:
    """The users' services, built at start-up from the validated configuration."""

    config: OperatorConfig
    client: LiteLLMClient
    reconciler: Reconciler
    kube: Kube
    metrics: Metrics
    directory: Directory
    teams: TeamSnapshot
    """The shared ``/team/list`` snapshot: the teams' resync and the users' member budgets."""
    reads: UserReads | None = None
    """The batched reads the reconciler uses, so a policy edit can prefetch its users."""
    memberships_changed: Callable[[Sequence[str]], Awaitable[None]] | None = None
    """Told the teams a reconcile added users to or removed users from (their LiteLLMTeams
    recount their members), once the teams' kind is built."""
    policies: PolicyModels = field(default_factory=PolicyModels)
    users: ObjectIndices = field(default_factory=user_indices)
    """The LiteLLMUser indices, fed by the watch stream (see :data:`USER_INDICES`)."""


RECONCILES_PER_LITELLM_SLOT = 4
"""Reconciles in progress at once, per LiteLLM request allowed in flight."""
SNAPSHOT_MAX_AGE_FRACTION = 0.5
"""A /user/list snapshot is reused for at most half a resync interval."""


@contextlib.asynccontextmanager
async def started(
    config: OperatorConfig, client: LiteLLMClient, kube: Kube, metrics: Metrics
) -> AsyncIterator[Runtime]:
    """The users' services over ``client``, for as long as the block runs."""
    teams = TeamSnapshot(client, max_age=config.resync_seconds * SNAPSHOT_MAX_AGE_FRACTION)
    async with UserReads(client) as reads, UserWrites(client) as writes:
        yield Runtime(
            config=config,
            client=client,
            reconciler=Reconciler(
                client,
                KeyReconciler(client, kube, config.base_url_for_workloads),
                reads.get,
                max_in_progress=RECONCILES_PER_LITELLM_SLOT * config.concurrency,
                update_user=writes.update,
                teams=teams,
            ),
            kube=kube,
            metrics=metrics,
            directory=Directory(client, config.resync_seconds * SNAPSHOT_MAX_AGE_FRACTION),
            teams=teams,
            reads=reads,
        )
