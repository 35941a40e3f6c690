"""The team planner: a LiteLLMTeam's resolved settings + what LiteLLM holds → the actions that
make them match.

Pure: no I/O, no clock, no kopf; tested by tables (``tests/unit/test_team_plan.py``). What is
written where and how values compare comes from the team declarations
(:data:`litellm_operator.fields.TEAM_FIELDS`): the planner knows no setting by name.

Ownership is proven as for users, by the operator's markers in the team's ``metadata`` (the
same marker names, :mod:`litellm_operator.users.plan`): a team without them is changed only when
its adoption is allowed, a team whose markers name another resource never.

LiteLLM 1.108 (``tests/integration/test_litellm_teams.py``): ``/team/update`` sends only what
differs (resending ``budget_duration`` would postpone the reset); ``metadata`` is replaced whole,
so the plan writes the complete dictionary, keys others set carried over.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from litellm_operator.fields import (
    MANAGED_BY,
    MANAGER,
    MARKER_PREFIX,
    TEAM_COLUMNS,
    TEAM_FIELDS,
    TEAM_METADATA_KEYS,
    Home,
)
from litellm_operator.litellm.models import (
    NewTeamRequest,
    TeamRecord,
    UpdateTeamRequest,
    build,
)
from litellm_operator.models import TeamSettings
from litellm_operator.policies.resolve import RESERVED_USER_IDS, derived_team_id
from litellm_operator.reasons import Reason
from litellm_operator.users.indices import policy_ref_of
from litellm_operator.users.plan import (
    ADOPTED,
    MANAGED_KEYS,
    OWNER_NAME,
    OWNER_NAMESPACE,
    OWNER_UID,
    POLICY_GENERATION,
    POLICY_NAME,
    Owner,
    Ownership,
    Refuse,
    member_budget_marker,
    member_budget_of,
    named_for,
    ownership_of,
    parse_key_list,
    without_markers,
)

RESERVED_METADATA = frozenset(f.litellm for f in TEAM_METADATA_KEYS if f.name != "metadata")
"""Metadata keys that hold team settings of their own (per-model limits)."""
(MEMBER_DEFAULT,) = (f for f in TEAM_FIELDS if f.home is Home.MEMBERSHIP)
"""``memberBudget``: no team column, each member's budget; the team carries it for its members'
reconciles as a marker in its metadata (:data:`~litellm_operator.users.plan.MEMBER_BUDGET`)."""

MSG_UNMANAGED_EXISTS = (
    "a LiteLLM team with id {team_id!r} already exists and is not managed by litellm-operator; "
    "set spec.adopt: true where the policy's teams.adoptExistingTeams allows it to take it over"
)
MSG_OWNED_BY_OTHER = (
    "LiteLLM team {team_id!r} is managed by {owner}; two resources cannot own the same team id"
)


@dataclass(frozen=True)
class ObservedTeam:
    """A LiteLLM team as ``/team/list`` or ``/team/info`` reports it, in the settings' terms."""

    team_id: str
    settings: Mapping[str, Any] = field(default_factory=dict)
    """Settings by name through each declaration's ``from_litellm`` (``metadata`` aside)."""
    metadata: Mapping[str, Any] = field(default_factory=dict)
    """The team's whole ``metadata``: foreign keys and ownership markers included."""
    members: int = 0
    """People in the team: LiteLLM's own users (its admin, added at creation) not counted."""
    spend: float = 0.0


def observed_team(record: TeamRecord) -> ObservedTeam:
    """What a team record holds, read as the declarations say."""
    settings: dict[str, Any] = {
        f.name: f.from_litellm(getattr(record, f.litellm)) for f in TEAM_COLUMNS
    }
    for f in TEAM_METADATA_KEYS:
        if f.name != "metadata":
            settings[f.name] = f.from_litellm(record.metadata.get(f.litellm))
    settings[MEMBER_DEFAULT.name] = member_budget_of(record.metadata)
    people = {m for m in record.member_ids if m not in RESERVED_USER_IDS}
    return ObservedTeam(record.team_id, settings, dict(record.metadata), len(people), record.spend)


@dataclass(frozen=True)
class DesiredTeam:
    """What one LiteLLMTeam asks for, as its policy allows it."""

    team_id: str
    owner: Owner
    settings: TeamSettings
    policy_name: str
    policy_generation: int | None
    adoption_allowed: bool = False


@dataclass(frozen=True)
class CreateTeam:
    request: NewTeamRequest


@dataclass(frozen=True)
class UpdateTeam:
    request: UpdateTeamRequest
    changed: tuple[str, ...] = field(default=(), compare=False)
    """The settings (CRD names) the update changes; ``metadata`` for markers or foreign keys."""


@dataclass(frozen=True)
class DeleteTeam:
    team_id: str


TeamAction = CreateTeam | UpdateTeam | DeleteTeam | Refuse


@dataclass(frozen=True)
class TeamPlan:
    """The actions for one team, in order; none when LiteLLM already matches."""

    ownership: Ownership
    actions: tuple[TeamAction, ...]

    @property
    def in_sync(self) -> bool:
        return not self.actions

    @property
    def refusal(self) -> Refuse | None:
        return next((a for a in self.actions if isinstance(a, Refuse)), None)

    @property
    def adopting(self) -> bool:
        return self.ownership == "unmanaged" and self.refusal is None


def is_adopted(observed: ObservedTeam) -> bool:
    return observed.metadata.get(ADOPTED) == "true"


def plan_team(desired: DesiredTeam, observed: ObservedTeam | None) -> TeamPlan:
    """The changes that make LiteLLM hold exactly what ``desired`` says."""
    ownership = ownership_of(observed, desired.owner)
    if observed is None:
        return TeamPlan(ownership, (CreateTeam(build(NewTeamRequest, creation_fields(desired))),))
    if ownership == "other-resource":
        meta = observed.metadata
        owner = named_for(
            str(meta.get(OWNER_NAMESPACE, "")),
            str(meta.get(OWNER_NAME, "?")),
            desired.owner.namespace,
        ).replace("LiteLLMUser", "LiteLLMTeam")
        message = MSG_OWNED_BY_OTHER.format(team_id=desired.team_id, owner=owner)
        return TeamPlan(ownership, (Refuse(Reason.CONFLICT, message),))
    if ownership == "unmanaged" and not desired.adoption_allowed:
        message = MSG_UNMANAGED_EXISTS.format(team_id=desired.team_id)
        return TeamPlan(ownership, (Refuse(Reason.ALREADY_EXISTS, message),))
    adopted = ownership == "unmanaged" or is_adopted(observed)
    body, changed = changed_fields(desired, observed, adopted=adopted)
    if not body:
        return TeamPlan(ownership, ())
    return TeamPlan(ownership, (UpdateTeam(build(UpdateTeamRequest, body), tuple(changed)),))


def creation_fields(desired: DesiredTeam) -> dict[str, Any]:
    """Every managed column, explicitly: LiteLLM's own defaults are not the team's."""
    fields: dict[str, Any] = {"team_id": desired.team_id}
    for f in TEAM_COLUMNS:
        fields[f.litellm] = f.to_litellm(getattr(desired.settings, f.name))
    fields["metadata"] = desired_metadata(desired, {})
    return fields


def changed_fields(
    desired: DesiredTeam, observed: ObservedTeam, *, adopted: bool = False
) -> tuple[dict[str, Any], list[str]]:
    """The ``/team/update`` body (only what differs) and the settings it changes."""
    body: dict[str, Any] = {}
    changed: list[str] = []
    for f in TEAM_COLUMNS:
        wanted = getattr(desired.settings, f.name)
        if not f.same(wanted, observed.settings.get(f.name)):
            body[f.litellm] = f.to_litellm(wanted)
            changed.append(f.wire)
    metadata = desired_metadata(desired, observed.metadata, adopted=adopted)
    if metadata != dict(observed.metadata):
        body["metadata"] = metadata
        changed.extend(
            [
                f.wire
                for f in (*TEAM_METADATA_KEYS, MEMBER_DEFAULT)
                if f.name != "metadata"
                and not f.same(getattr(desired.settings, f.name), observed.settings.get(f.name))
            ]
            or ["metadata"]
        )
    return body, changed


def desired_metadata(
    desired: DesiredTeam, observed: Mapping[str, Any], *, adopted: bool = False
) -> dict[str, Any]:
    """Foreign keys kept, keys the operator wrote before dropped, the spec's metadata, the
    per-model limits and the markers added."""
    previously_managed = set(parse_key_list(observed.get(MANAGED_KEYS)))
    foreign = {
        k: v
        for k, v in observed.items()
        if k not in previously_managed
        and k not in RESERVED_METADATA
        and not k.startswith(MARKER_PREFIX)
    }
    own = dict(desired.settings.metadata)
    settings = {
        f.litellm: f.to_litellm(value)
        for f in TEAM_METADATA_KEYS
        if f.name != "metadata" and (value := getattr(desired.settings, f.name))
    }
    markers = {
        MANAGED_BY: MANAGER,
        OWNER_NAMESPACE: desired.owner.namespace,
        OWNER_NAME: desired.owner.name,
        OWNER_UID: desired.owner.uid,
        POLICY_NAME: desired.policy_name,
        POLICY_GENERATION: ""
        if desired.policy_generation is None
        else str(desired.policy_generation),
    }
    if own:
        markers[MANAGED_KEYS] = ",".join(sorted(own))
    if adopted:
        markers[ADOPTED] = "true"
    markers.update(member_budget_marker(getattr(desired.settings, MEMBER_DEFAULT.name)))
    return {**foreign, **own, **settings, **markers}


DeletionPolicy = Literal["Delete", "Retain"]


def deletion_policy_of(requested: DeletionPolicy | None, observed: ObservedTeam | None) -> str:
    """spec.deletionPolicy, else Delete, or Retain for an adopted team."""
    if requested is not None:
        return requested
    return "Retain" if observed is not None and is_adopted(observed) else "Delete"


def plan_team_deletion(
    owner: Owner, observed: ObservedTeam | None, requested: DeletionPolicy | None
) -> tuple[TeamAction, ...]:
    """What to do in LiteLLM when the LiteLLMTeam goes away; safe to plan and apply twice.

    Only a team whose markers name this very resource is touched. An adopted team is never
    deleted (it existed before the operator), only released; Delete removes the team and, in
    LiteLLM, every membership with it; Retain releases it (markers removed, settings kept).
    """
    if observed is None or ownership_of(observed, owner) != "ours":
        return ()
    if deletion_policy_of(requested, observed) == "Delete" and not is_adopted(observed):
        return (DeleteTeam(observed.team_id),)
    release = build(UpdateTeamRequest, {"metadata": without_markers(observed.metadata)})
    return (UpdateTeam(release, ("metadata",)),)


def deletion_team_ids(
    recorded: str | None, spec_team_id: str | None, namespace: str, name: str
) -> tuple[str, ...]:
    """The LiteLLM team ids a LiteLLMTeam being deleted may hold: its ``status.teamId`` once
    recorded; before that (the operator stopped between ``/team/new`` and the status write),
    every id the team may have been created under: ``spec.teamId`` (which may be set later, once)
    and ``<namespace>.<name>``. Which of them is touched is :func:`plan_team_deletion`'s to say:
    only a team whose markers name this very resource."""
    if recorded:
        return (recorded,)
    return tuple(dict.fromkeys(i for i in (spec_team_id, derived_team_id(namespace, name)) if i))


def looks_for_keys(
    owner: Owner, observed: ObservedTeam | None, *, recorded: bool, declared: bool
) -> bool:
    """Whether the deletion revokes (or retains) the keys bound to a team id: the team there is
    this resource's (keys issued before their status write included, whatever the spec says
    now), or the id was recorded and keys were declared (the team may be gone, its keys not).
    An unrecorded id held by no team of this resource has no key of it: keys follow their team."""
    return ownership_of(observed, owner) == "ours" or (recorded and declared)


def keeps_keys(requested: DeletionPolicy | None, observed: ObservedTeam | None) -> bool:
    """Whether the team's keys outlive it: Retain, or an adopted team (released, never deleted)."""
    adopted = observed is not None and is_adopted(observed)
    return deletion_policy_of(requested, observed) == "Retain" or adopted


def behind(team: Mapping[str, Any], policy: str, generation: int | None) -> bool:
    """Whether an indexed team of ``policy`` was not reconciled against this generation of it
    (``None``: the policy is gone)."""
    if policy_ref_of(team.get("spec") or {}) != policy:
        return False
    seen = team.get("policy") or {}
    return seen.get("name") != policy or seen.get("generation") != generation
