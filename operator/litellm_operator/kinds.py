"""The operator's kinds, as the runtime sees them: each one's indices to feed and its
registration. The runtime (:mod:`litellm_operator.runtime.runner`) knows kinds only through
:func:`started`; a new kind is one folder and one entry here.

The kinds depend on one another only through what is passed here: the users' indices reach
the policies' rollout (:class:`Members`) and the key Secrets' watch; the users implement what
a policy's change does to them (:class:`~litellm_operator.policies.handlers.Followers`).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field

import kopf

from litellm_operator.keys.handlers import Owners, SecretWatch
from litellm_operator.keys.owner import TEAM_OWNER, USER_OWNER
from litellm_operator.keys.reconciler import KeyReconciler
from litellm_operator.kube import Kube
from litellm_operator.litellm import LiteLLMClient
from litellm_operator.models import GROUP, USER_PLURAL
from litellm_operator.policies.handlers import PolicyHandlers
from litellm_operator.policies.rollouts import Members, Rollouts
from litellm_operator.runtime.config import OperatorConfig
from litellm_operator.runtime.handling import Handover, now_iso
from litellm_operator.runtime.indices import ObjectIndices
from litellm_operator.runtime.kopf_watch import Shortcuts
from litellm_operator.runtime.metrics import Metrics
from litellm_operator.status import awaits_team, member_of, team_budget_changed_status
from litellm_operator.teams.handlers import TeamHandlers
from litellm_operator.teams.reconciler import TeamReconciler
from litellm_operator.users import context
from litellm_operator.users.following import PolicyFollowers
from litellm_operator.users.handlers import UserHandlers

Register = Callable[[kopf.OperatorRegistry, Handover], None]


@dataclass(frozen=True)
class Kind:
    """One kind: its handlers' registration, and the operator's own indices the watch stream
    feeds, by (group, plural)."""

    name: str
    register: Register
    feeds: Mapping[tuple[str, str], ObjectIndices] = field(default_factory=dict)
    shortcuts: Mapping[tuple[str, str], Shortcuts] = field(default_factory=dict)
    """Per fed kind, its events that need less than kopf's whole cycle."""


@dataclass(frozen=True)
class Base:
    """What the runtime gives every kind."""

    config: OperatorConfig
    client: LiteLLMClient
    kube: Kube
    metrics: Metrics


@contextlib.asynccontextmanager
async def started(base: Base) -> AsyncIterator[tuple[Kind, ...]]:
    """Every kind, built over ``base`` for as long as the block runs."""
    async with context.started(base.config, base.client, base.kube, base.metrics) as users:
        views = users.users.views
        members = Members(by_policy=views["users_by_policy"], bodies=views["user_bodies"])
        rollouts = Rollouts(
            base.kube, members, litellm_version=lambda: base.client.reported_version
        )
        user_handlers = UserHandlers(users, rollouts)
        policy_handlers = PolicyHandlers(rollouts, PolicyFollowers(users, members))

        def policies(registry: kopf.OperatorRegistry, _: Handover) -> None:
            policy_handlers.register(registry, base.config.resync_seconds)

        def keys(registry: kopf.OperatorRegistry, _: Handover) -> None:
            secrets.register(registry)

        async def team_created(team_id: str) -> None:
            """The LiteLLMUsers waiting for the team (TeamNotFound) are reconciled now."""
            for (namespace, name), store in list(members.bodies.items()):
                for indexed in store:
                    if indexed.state.ready != "True" and awaits_team(indexed.body(), team_id):
                        await base.kube.nudge(namespace, name, f"team {team_id} created")

        async def team_gone(team_id: str) -> None:
            """The LiteLLMUsers in a team whose LiteLLMTeam went are reconciled now (they report
            the team gone, or stay as they are where it was only released)."""
            for (namespace, name), store in list(members.bodies.items()):
                for indexed in store:
                    if member_of(indexed.body(), team_id):
                        await base.kube.nudge(namespace, name, f"team {team_id} deleted")

        async def member_budget_changed(team_id: str) -> None:
            """The team's members whose budget is the team's turn non-Ready at once (one status
            write each); the event of that write reconciles each one, as a policy's change does
            (:meth:`~litellm_operator.users.handlers.UserHandlers.follow_policy`)."""
            now = now_iso()
            for (namespace, name), store in list(members.bodies.items()):
                for indexed in store:
                    changes = team_budget_changed_status(indexed.body(), team_id, now)
                    if changes is not None:
                        await base.kube.patch_user_status(namespace, name, changes)

        resync = base.config.resync_seconds
        team_keys = KeyReconciler(base.client, base.kube, base.config.base_url_for_workloads)
        reconciler = TeamReconciler(base.client, users.teams, team_keys)

        teams = TeamHandlers(
            reconciler,
            base.metrics,
            resync,
            team_created,
            base.kube.nudge_team,
            member_budget_changed,
            gone=team_gone,
        )
        secrets = SecretWatch(
            base.kube,
            {
                USER_OWNER: Owners(lambda key: key in members.bodies, base.kube.nudge),
                TEAM_OWNER: Owners(teams.knows, base.kube.nudge_team),
            },
        )

        users.memberships_changed = teams.members_changed
        yield (
            Kind(
                "LiteLLMUser",
                user_handlers.register,
                {(GROUP, USER_PLURAL): users.users},
                {(GROUP, USER_PLURAL): user_handlers.shortcuts()},
            ),
            Kind("LiteLLMTeam", teams.register),
            Kind("ProvisioningPolicy", policies),
            Kind("key Secrets", keys),
        )
