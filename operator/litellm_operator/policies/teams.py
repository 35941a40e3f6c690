"""What a LiteLLMTeam must be in LiteLLM, given its policy, or why it is refused.

Pure: no I/O, no clock, no Kubernetes. The team reconciler and ``litellm-operator explain`` both
call :func:`resolve_team`.

A team id is granted like a user's identity:

- ``<namespace>.<name>`` by default; an explicit ``spec.teamId`` only where a ``teamIds`` glob
  of the policy's ``spec.identities`` grants it to the namespace (TeamIdNotAllowed);
- never LiteLLM's own teams (:data:`RESERVED_TEAM_IDS`);
- never an id that any policy grants, as a LiteLLM id, to users of another namespace: in its
  ``defaults.teams``, ``overrides.allowedTeams`` or a role's ``teams`` whose namespaces are not
  exactly the team's own (TeamNotAllowed). A role that names the LiteLLMTeam itself as
  ``<namespace>/<name>`` delegates it to that namespace and does not count.

Settings are the spec bounded by the policy's ``teams`` section (absent: no team may use the
policy, TeamNotAllowed): a capped setting above its ceiling is refused (CeilingExceeded) and an
omitted one gets the ceiling; models outside ``teams.allowedModels`` are refused
(ModelNotAllowed) and omitted ones get that list; a namespace's teams beyond
``teams.maxPerNamespace``, the oldest first, are refused (TeamQuotaExceeded). Nothing is
clamped: a refused team is not written at all.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict
from pydantic.alias_generators import to_camel

from litellm_operator.fields import (
    MARKER_PREFIX,
    TEAM_ALLOW_LISTS,
    TEAM_FIELDS,
    Bound,
    Home,
)
from litellm_operator.models import (
    LiteLLMTeam,
    ProvisioningPolicy,
    TeamPolicy,
    TeamSettings,
)
from litellm_operator.policies.resolve import (
    REFERENCE_SEPARATOR,
    PolicyViolation,
    Problem,
    derived_team_id,
    in_namespaces,
)
from litellm_operator.reasons import Reason

TeamSource = Literal["builtin", "ceiling", "spec"]
"""Where an effective team setting came from."""
TEAM_BUDGET_SOURCE = "team"
"""Where a member budget comes from when it is the team's ``memberBudget``."""


@dataclass(frozen=True)
class MemberBudget:
    """The budget a user has in one team, and where it comes from (``status.teamBudgets``)."""

    max_budget_in_team: float | None
    source: str


def member_budget_for(
    own: float | None, own_source: str, team_budget: float | None
) -> MemberBudget | None:
    """A member's budget in a team: its own ``maxBudgetInTeam`` where its policy sets one (its
    source), else the team's ``memberBudget`` (source ``team``), else none."""
    if own is not None:
        return MemberBudget(own, own_source)
    if team_budget is not None:
        return MemberBudget(team_budget, TEAM_BUDGET_SOURCE)
    return None


RESERVED_TEAM_IDS = frozenset({"litellm-dashboard"})
"""Teams LiteLLM (1.108) keeps for itself: the UI's own keys belong to ``litellm-dashboard``."""
RESERVED_TEAM_METADATA = frozenset(
    f.litellm for f in TEAM_FIELDS if f.home is Home.METADATA and f.name != "metadata"
)
"""Metadata keys that hold team settings of their own (per-model limits)."""


class TeamResolution(BaseModel):
    """The outcome of :func:`resolve_team`."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, frozen=True)

    team_id: str
    policy_name: str
    policy_generation: int | None
    effective: TeamSettings
    sources: dict[str, TeamSource]
    adopt: bool
    """spec.adopt, and the policy allows adopting existing teams."""


def reference(namespace: str, name: str) -> str:
    """How a policy's team entry names a LiteLLMTeam."""
    return f"{namespace}{REFERENCE_SEPARATOR}{name}"


def team_id_of(team: LiteLLMTeam, pinned: str | None = None) -> str:
    """The pinned id (status.teamId), else spec.teamId, else ``<namespace>.<name>``."""
    if pinned is not None:
        return pinned
    if team.spec.team_id is not None:
        return team.spec.team_id
    return derived_team_id(team.metadata.namespace or "", team.metadata.name)


# --- grants ------------------------------------------------------------------------------------


def check_team_id(policy: ProvisioningPolicy, team: LiteLLMTeam, team_id: str) -> list[Problem]:
    path = "spec.teamId" if team.spec.team_id is not None else "metadata.name"
    if team_id in RESERVED_TEAM_IDS:
        message = f"team id {team_id!r} is LiteLLM's own team and cannot be declared"
        return [Problem(path, message, Reason.TEAM_ID_NOT_ALLOWED)]
    namespace = team.metadata.namespace or ""
    if team_id == derived_team_id(namespace, team.metadata.name):
        return []
    grants = [g for g in policy.spec.identities if in_namespaces(namespace, g.namespaces)]
    globs = [glob for g in grants for glob in g.team_ids]
    if any(fnmatchcase(team_id, glob) for glob in globs):
        return []
    message = (
        f"policy {policy.metadata.name!r} does not grant team id {team_id!r} to namespace "
        f"{namespace!r} (spec.identities teamIds here: {', '.join(globs) or 'none'})"
    )
    return [Problem(path, message, Reason.TEAM_ID_NOT_ALLOWED)]


def only_here(patterns: Sequence[str] | None, namespace: str) -> bool:
    """Whether namespace globs name exactly this one namespace (and so no other)."""
    return patterns is not None and len(patterns) > 0 and all(p == namespace for p in patterns)


def grants_elsewhere(policy: ProvisioningPolicy, team_id: str, namespace: str) -> list[str]:
    """Where ``policy`` names ``team_id`` (a LiteLLM id) for users beyond ``namespace``."""
    spec = policy.spec
    found: list[str] = []
    everywhere = only_here(spec.allowed_namespaces, namespace)
    if not everywhere and team_id in (spec.defaults.teams or []):
        found.append("spec.defaults.teams")
    if not everywhere and team_id in (spec.overrides.allowed_teams or []):
        found.append("spec.overrides.allowedTeams")
    for index, role in enumerate(spec.roles):
        patterns = role.namespaces if role.namespaces is not None else spec.allowed_namespaces
        if team_id in (role.teams or []) and not only_here(patterns, namespace):
            found.append(f"spec.roles[{index}].teams ({role.group})")
    return [f"policy {policy.metadata.name!r} {where}" for where in found]


def check_not_granted_elsewhere(
    policies: Sequence[ProvisioningPolicy], team_id: str, namespace: str
) -> list[Problem]:
    where = [w for p in policies for w in grants_elsewhere(p, team_id, namespace)]
    if not where:
        return []
    message = (
        f"team {team_id!r} is granted to users of other namespaces than {namespace!r} by "
        f"{'; '.join(where)}: only a role naming this LiteLLMTeam as <namespace>/<name> may "
        "delegate it"
    )
    return [Problem("metadata.name", message, Reason.TEAM_NOT_ALLOWED)]


def check_quota(
    rules: TeamPolicy, team: LiteLLMTeam, siblings: Sequence[LiteLLMTeam]
) -> list[Problem]:
    """The oldest ``maxPerNamespace`` teams of the namespace under this policy pass."""
    limit = rules.max_per_namespace
    if limit is None:
        return []

    def order(t: LiteLLMTeam) -> tuple[str, str]:
        created = (t.metadata.model_extra or {}).get("creationTimestamp")
        return (str(created) if created else "~", t.metadata.name)  # not yet stored: last

    before = [
        t
        for t in siblings
        if t.metadata.name != team.metadata.name
        and t.metadata.namespace == team.metadata.namespace
        and t.spec.policy_ref == team.spec.policy_ref
        and order(t) < order(team)
    ]
    if len(before) < limit:
        return []
    message = (
        f"namespace {team.metadata.namespace!r} has {len(before)} older LiteLLMTeam(s) under "
        f"this policy; teams.maxPerNamespace is {limit}"
    )
    return [Problem("metadata.name", message, Reason.TEAM_QUOTA_EXCEEDED)]


# --- settings ----------------------------------------------------------------------------------


def settle(
    rules: TeamPolicy, team: LiteLLMTeam
) -> tuple[dict[str, Any], dict[str, TeamSource], list[Problem]]:
    """Each setting: the spec's within its bound, else the bound's default, else built-in."""
    values: dict[str, Any] = {}
    sources: dict[str, TeamSource] = {}
    problems: list[Problem] = []
    for f in TEAM_FIELDS:
        requested = getattr(team.spec, f.name)
        path = f"spec.{f.wire}"
        bound: Any = None
        if f.bound is Bound.CEILING:
            bound = getattr(rules, f.name)
            if requested is not None and bound is not None and requested > bound:
                message = f"{f.wire} {requested:g} exceeds the policy's teams.{f.wire} {bound:g}"
                problems.append(Problem(path, message, Reason.CEILING_EXCEEDED))
        elif f.bound is Bound.ALLOW_LIST:
            bound = getattr(rules, TEAM_ALLOW_LISTS[f.name])
            problem = check_allowed(path, f.wire, requested, bound)
            if problem is not None:
                problems.append(problem)
        if requested is not None:
            values[f.name], sources[f.wire] = requested, "spec"
        elif bound is not None:
            values[f.name], sources[f.wire] = bound, "ceiling"
        else:
            values[f.name], sources[f.wire] = f.builtin, "builtin"
    problems += check_metadata(values["metadata"])
    return values, sources, problems


def check_allowed(
    path: str, wire: str, requested: list[str] | None, allowed: list[str] | None
) -> Problem | None:
    """A list within the policy's allow-list; [] (all) only where there is none."""
    if requested is None or allowed is None:
        return None
    name = f"teams.allowed{wire[0].upper()}{wire[1:]}"
    if not requested:
        message = f"[] means all {wire}, but the policy's {name} allows only {allowed}"
        return Problem(path, message, Reason.MODEL_NOT_ALLOWED)
    extra = [item for item in requested if item not in set(allowed)]
    if extra:
        return Problem(path, f"{wire} {extra} are not in {name}", Reason.MODEL_NOT_ALLOWED)
    return None


def check_metadata(metadata: dict[str, str]) -> list[Problem]:
    """A team's metadata cannot pose as its settings or as the operator's markers."""
    bad = sorted(
        key for key in metadata if key in RESERVED_TEAM_METADATA or key.startswith(MARKER_PREFIX)
    )
    if not bad:
        return []
    message = f"metadata keys {bad} are reserved (settings of their own, the operator's markers)"
    return [Problem("spec.metadata", message, Reason.INVALID_SPEC)]


# --- the engine --------------------------------------------------------------------------------


def resolve_team(
    policy: ProvisioningPolicy,
    team: LiteLLMTeam,
    *,
    policies: Sequence[ProvisioningPolicy] = (),
    siblings: Sequence[LiteLLMTeam] = (),
    pinned_team_id: str | None = None,
) -> TeamResolution:
    """The effective settings of ``team`` under ``policy``; raises PolicyViolation if refused.

    ``policies``: every policy the operator knows (the grants of all of them count; ``policy``
    is always included). ``siblings``: the LiteLLMTeams of the team's namespace (for
    ``teams.maxPerNamespace``). ``pinned_team_id``: status.teamId, once recorded.
    """
    namespace = team.metadata.namespace or ""
    team_id = team_id_of(team, pinned_team_id)
    problems: list[Problem] = []
    if team.spec.policy_ref != policy.metadata.name:
        message = f"refers to policy {team.spec.policy_ref!r}, not {policy.metadata.name!r}"
        problems.append(Problem("spec.policyRef", message, Reason.POLICY_MISMATCH))
    if not in_namespaces(namespace, policy.spec.allowed_namespaces):
        message = f"namespace {namespace!r} may not use policy {policy.metadata.name!r}"
        problems.append(Problem("metadata.namespace", message, Reason.NAMESPACE_NOT_ALLOWED))
    rules = policy.spec.teams
    if rules is None:
        message = f"policy {policy.metadata.name!r} allows no LiteLLMTeams (no spec.teams)"
        problems.append(Problem("spec.policyRef", message, Reason.TEAM_NOT_ALLOWED))
    if problems:
        raise PolicyViolation(problems)
    assert rules is not None  # for mypy: refused above
    others = [p for p in policies if p.metadata.name != policy.metadata.name]
    problems += check_team_id(policy, team, team_id)
    problems += check_not_granted_elsewhere([policy, *others], team_id, namespace)
    problems += check_quota(rules, team, siblings)
    values, sources, settled = settle(rules, team)
    problems += settled
    if problems:
        raise PolicyViolation(problems)
    return TeamResolution(
        team_id=team_id,
        policy_name=policy.metadata.name,
        policy_generation=policy.metadata.generation,
        effective=TeamSettings.model_validate(values),
        sources=sources,
        adopt=team.spec.adopt and rules.adopt_existing_teams,
    )
