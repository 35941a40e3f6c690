"""The reconcile planner: desired settings + what LiteLLM holds → the actions that make them match.

Pure: no I/O, no clock, no kopf. The handlers observe LiteLLM, call :func:`plan_user` or
:func:`plan_deletion`, and hand the actions to the applier. The writes are typed LiteLLM
requests, built here: one the wire model cannot hold raises
:class:`~litellm_operator.litellm.models.MalformedRequest` at plan time, an operator bug.
Every decision about *what* to change in LiteLLM lives here, so it is tested by tables
(``tests/unit/test_plan.py``).

Ownership is proven by markers the operator writes into the LiteLLM user's ``metadata``
(:data:`MARKER_PREFIX`). A user without them is never changed unless adoption is allowed; a
user whose markers name another resource is never changed at all.

What is written where, and how values compare, comes from the field declarations
(:data:`litellm_operator.fields.FIELDS`): the planner loops over them and knows no field by name.

LiteLLM quirks that shape the plan (observed on the real proxy, see docs/litellm-api.md):

* ``/user/update`` sends only what differs: resending ``budget_duration`` postpones the reset.
* ``null`` clears only some columns; the others are written with the value their declaration
  gives for "none" (``all-proxy-models`` for all models, the largest integer for no
  parallel-request limit).
* ``metadata`` is replaced as a whole, so the plan writes the complete dictionary: keys the
  operator does not own are carried over unchanged, and the per-model limits LiteLLM keeps
  there are written with it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from litellm_operator.fields import (
    BY_NAME,
    MANAGED_BY,
    MANAGER,
    MARKER_PREFIX,
    METADATA_KEYS,
    RESERVED_METADATA_KEYS,
    ROLE_RANK,
    USER_COLUMNS,
    Home,
    at_home,
)
from litellm_operator.litellm.models import NewUserRequest, UpdateUserRequest, build
from litellm_operator.models import EffectiveSettings
from litellm_operator.policies.teams import MemberBudget, member_budget_for
from litellm_operator.reasons import Reason

OWNER_NAMESPACE = MARKER_PREFIX + "owner-namespace"
OWNER_NAME = MARKER_PREFIX + "owner-name"
OWNER_UID = MARKER_PREFIX + "owner-uid"
POLICY_NAME = MARKER_PREFIX + "policy"
POLICY_GENERATION = MARKER_PREFIX + "policy-generation"
MANAGED_KEYS = MARKER_PREFIX + "managed-metadata-keys"
ADOPTED = MARKER_PREFIX + "adopted"
"""Set on a user the operator adopted rather than created: it is retained on delete."""
DELETE_ADOPTED = MARKER_PREFIX + "delete-adopted"
"""Set at adoption when the adopting policy said deleteAdoptedUsers: the one thing that lets
``deletionPolicy: Delete`` delete an adopted user, whatever policy the resource names later."""
MEMBER_BUDGET = MARKER_PREFIX + "member-budget"
"""In a LiteLLM team's ``metadata``: its LiteLLMTeam's ``memberBudget``, the budget of each of
its members whose own policy sets no ``maxBudgetInTeam``. Written by the team's reconcile (only
to a team the operator manages, within its policy's ceiling), read by the members' reconciles
and their resync from the same LiteLLM team: one source, so both plan the same budget."""


MSG_UNMANAGED_EXISTS = (
    "a LiteLLM user with id {user_id!r} already exists and is not managed by litellm-operator; "
    "set spec.adopt: true (or the policy's adoptExistingUsers) to take it over"
)
MSG_OWNED_BY_OTHER = (
    "LiteLLM user {user_id!r} is managed by {owner}; two resources cannot own the same user id"
)
MSG_ADOPTION_REFUSED = (
    "LiteLLM user {user_id!r} holds a role above {role!r}, the one the policy gives this user; "
    "adopting it would keep more than the policy grants, so it is not adopted and nothing was "
    "changed in LiteLLM"
)
MSG_EMAIL_IN_USE = "e-mail {email!r} belongs to another LiteLLM user; no change was made in LiteLLM"

MSG_SSO_USER_ID_IN_USE = (
    "sso user id {sso_user_id!r} belongs to another LiteLLM user; no change was made in LiteLLM"
)
MSG_SSO_USER_ID_FIXED = (
    "LiteLLM user {user_id!r} has sso_user_id {held!r}, not {wanted!r}, and LiteLLM cannot change "
    "it after creation (/user/update ignores it); no change was made in LiteLLM"
)

Ownership = Literal["absent", "ours", "other-resource", "unmanaged"]


@dataclass(frozen=True)
class Owner:
    """The LiteLLMUser resource that claims a LiteLLM user."""

    namespace: str
    name: str
    uid: str

    def __str__(self) -> str:
        return f"{self.namespace}/{self.name}"


@dataclass(frozen=True)
class ObservedKey:
    """A virtual key as LiteLLM reports it: the hashed token (not a secret) and its state."""

    token: str
    blocked: bool


@dataclass(frozen=True)
class ObservedUser:
    """A LiteLLM user as read from ``/user/info`` or ``/user/list``, in the settings' terms."""

    user_id: str
    settings: Mapping[str, Any] = field(default_factory=dict)
    """Managed settings by name, through each declaration's ``from_litellm`` (see
    :func:`observed_settings`); the ``metadata`` setting is judged from :attr:`metadata`."""
    metadata: Mapping[str, Any] = field(default_factory=dict)
    """The user's whole ``metadata``, foreign keys and ownership markers included."""
    email: str | None = None
    alias: str | None = None
    sso_user_id: str | None = None
    memberships: Mapping[str, TeamMembership] | None = None
    """Per team the user is in: its role and budget (``/team/info``); ``None`` when not read."""
    keys: tuple[ObservedKey, ...] | None = None
    """``None`` when the read did not include keys (``/user/list``)."""
    team_budgets: Mapping[str, float | None] = field(default_factory=dict)
    """The ``memberBudget`` of each of the user's teams that was read (:func:`member_budget_of`);
    a team not read, or without one, contributes none."""
    email_in_use: bool = False
    """The desired e-mail belongs to another LiteLLM user (looked up only when it must change)."""

    @property
    def teams(self) -> tuple[str, ...]:
        return tuple(self.settings.get("teams") or ())


@dataclass(frozen=True)
class TeamMembership:
    role: str = "user"
    max_budget_in_team: float | None = None


def member_budget_of(team_metadata: Mapping[str, Any]) -> float | None:
    """The ``memberBudget`` a LiteLLM team gives its members: its :data:`MEMBER_BUDGET` marker,
    only in a team the operator manages (anyone may write a foreign team's metadata)."""
    if team_metadata.get(MANAGED_BY) != MANAGER:
        return None
    raw = team_metadata.get(MEMBER_BUDGET)
    if not isinstance(raw, str | int | float) or isinstance(raw, bool) or raw == "":
        return None
    try:
        value = float(raw)
    except ValueError:
        return None
    return value if math.isfinite(value) and value >= 0 else None


def member_budget_marker(value: float | None) -> dict[str, str]:
    """The :data:`MEMBER_BUDGET` marker for a team's ``memberBudget`` (none: no marker)."""
    return {} if value is None else {MEMBER_BUDGET: repr(float(value))}


def observed_settings(
    columns: Mapping[str, Any], metadata: Mapping[str, Any], teams: Sequence[str]
) -> dict[str, Any]:
    """What LiteLLM holds, by setting name: user ``columns`` (a ``/user/info`` record),
    its ``metadata`` and its ``teams``, each read as its declaration says."""
    settings: dict[str, Any] = {}
    for managed in at_home(Home.USER):
        settings[managed.name] = managed.from_litellm(columns.get(managed.litellm))
    for managed in METADATA_KEYS:
        if managed.name != "metadata":
            settings[managed.name] = managed.from_litellm(metadata.get(managed.litellm))
    for managed in at_home(Home.TEAMS):
        settings[managed.name] = list(teams)
    return settings


@dataclass(frozen=True)
class Desired:
    """What one LiteLLMUser asks for, plus what the operator remembers in its status."""

    user_id: str
    owner: Owner
    settings: EffectiveSettings
    policy_name: str
    policy_generation: int | None
    email: str | None = None
    alias: str | None = None
    sso_user_id: str | None = None
    """LiteLLM's ``sso_user_id``: written by ``/user/new`` only (``/user/update`` ignores it)."""
    provider_owned: frozenset[str] = frozenset()
    """Of ``userRole``, ``email`` and ``alias``, those the identity provider owns (the policy's
    ``spec.sso``): set on create, then never written back nor counted as drift."""
    suspend: bool = False
    adoption_allowed: bool = False
    delete_adopted: bool = False
    """The policy's deleteAdoptedUsers: recorded in LiteLLM (:data:`DELETE_ADOPTED`) when the
    user is adopted, and only then."""
    managed_teams: frozenset[str] = frozenset()
    """Team memberships the operator added itself (from status); the only ones it may remove."""
    blocked_keys: frozenset[str] = frozenset()
    """Keys the operator blocked for a suspension (from status); the only ones it unblocks."""
    had_team_budget: bool = False
    """The last applied settings had a maxBudgetInTeam (from status): budgets may need removing."""
    budget_source: str = "builtin"
    """Where the user's own ``maxBudgetInTeam`` comes from (``status.sources``)."""
    budgeted_teams: frozenset[str] = frozenset()
    """The teams whose member budget the operator set last time (``status.teamBudgets``): a
    budget gone from both the user and the team is removed from these memberships only."""

    def reads_memberships(self, team_budgets: Mapping[str, float | None]) -> bool:
        """Whether the membership budgets must be read (``/team/info``) to plan this user."""
        return bool(member_budgets(self, team_budgets)) or self.had_team_budget


def member_budgets(
    desired: Desired, team_budgets: Mapping[str, float | None]
) -> dict[str, MemberBudget]:
    """The member budget of each of the user's teams whose budget the operator manages: the
    user's own ``maxBudgetInTeam`` where its policy sets one, else the team's ``memberBudget``
    (``team_budgets``), else none where one was set before (to remove it). Teams that had and
    get none are left out: their memberships' budgets are not the operator's."""
    own = desired.settings.max_budget_in_team
    budgets: dict[str, MemberBudget] = {}
    for team in sorted(desired.settings.teams):
        budget = member_budget_for(own, desired.budget_source, team_budgets.get(team))
        if budget is not None:
            budgets[team] = budget
        elif desired.had_team_budget or team in desired.budgeted_teams:
            budgets[team] = MemberBudget(None, "builtin")
    return budgets


@dataclass(frozen=True)
class CreateUser:
    request: NewUserRequest

    @property
    def fields(self) -> dict[str, Any]:
        """The ``/user/new`` body."""
        return self.request.to_wire()


@dataclass(frozen=True)
class UpdateUser:
    request: UpdateUserRequest
    changed: tuple[str, ...] = field(default=(), compare=False)
    """The settings (CRD names: maxBudget, metadata ...) the update changes."""

    @property
    def fields(self) -> dict[str, Any]:
        """The ``/user/update`` body (without the user id)."""
        return self.request.to_wire()


@dataclass(frozen=True)
class AddToTeam:
    team_id: str
    max_budget_in_team: float | None = None


@dataclass(frozen=True)
class UpdateTeamMembership:
    """Set the budget of an existing membership (keeping the member's role)."""

    team_id: str
    max_budget_in_team: float | None
    role: str = "user"


@dataclass(frozen=True)
class RemoveFromTeam:
    team_id: str


@dataclass(frozen=True)
class BlockKey:
    token: str


@dataclass(frozen=True)
class UnblockKey:
    token: str


@dataclass(frozen=True)
class DeleteUser:
    user_id: str


@dataclass(frozen=True)
class Refuse:
    """The plan will not touch LiteLLM; ``reason`` becomes the Ready condition's reason."""

    reason: Reason
    message: str


Action = (
    CreateUser
    | UpdateUser
    | AddToTeam
    | RemoveFromTeam
    | UpdateTeamMembership
    | BlockKey
    | UnblockKey
    | DeleteUser
    | Refuse
)


@dataclass(frozen=True)
class Plan:
    """The actions for one user, in the order they must be applied."""

    ownership: Ownership
    actions: tuple[Action, ...]

    @property
    def in_sync(self) -> bool:
        return not self.actions

    @property
    def refusal(self) -> Refuse | None:
        return next((a for a in self.actions if isinstance(a, Refuse)), None)

    @property
    def adopting(self) -> bool:
        return self.ownership == "unmanaged" and self.refusal is None


class Marked(Protocol):
    """A LiteLLM object whose ``metadata`` carries the operator's markers (a user, a team)."""

    @property
    def metadata(self) -> Mapping[str, Any]: ...


def ownership_of(observed: Marked | None, owner: Owner) -> Ownership:
    """Who owns an observed LiteLLM user or team, judged by the markers in its metadata."""
    if observed is None:
        return "absent"
    if observed.metadata.get(MANAGED_BY) != MANAGER:
        return "unmanaged"
    if observed.metadata.get(OWNER_UID) == owner.uid:
        return "ours"
    return "other-resource"


def named_for(namespace: str, name: str, viewer_namespace: str) -> str:
    """Another LiteLLMUser as a message may name it: only to a viewer in its own namespace
    (tenancy: nothing outside the tenant's namespace is revealed)."""
    if namespace != viewer_namespace:
        return "a LiteLLMUser in another namespace"
    return f"LiteLLMUser {namespace}/{name}"


def owner_named_by(observed: ObservedUser, viewer: Owner) -> str:
    """The resource the user's markers name as its owner, as ``viewer`` may see it."""
    meta = observed.metadata
    namespace, name = str(meta.get(OWNER_NAMESPACE, "")), str(meta.get(OWNER_NAME, "?"))
    return named_for(namespace, name, viewer.namespace)


def is_adopted(observed: ObservedUser) -> bool:
    return observed.metadata.get(ADOPTED) == "true"


def deletes_adopted(observed: ObservedUser) -> bool:
    """Whether the policy that adopted the user let ``deletionPolicy: Delete`` delete it."""
    return observed.metadata.get(DELETE_ADOPTED) == "true"


def desired_email(desired: Desired) -> str | None:
    """E-mails are case-insensitive (LiteLLM's SSO matches them so): written lower-cased."""
    return desired.email.lower() if desired.email is not None else None


def same_email(desired: str | None, observed: str | None) -> bool:
    return desired is None or (observed is not None and observed.lower() == desired)


def plan_user(
    desired: Desired,
    observed: ObservedUser | None,
    team_budgets: Mapping[str, float | None] | None = None,
) -> Plan:
    """Plan the changes that make LiteLLM hold exactly what ``desired`` says; ``team_budgets``:
    the ``memberBudget`` of the user's teams (else what ``observed`` read of them)."""
    if team_budgets is None:
        team_budgets = observed.team_budgets if observed is not None else {}
    ownership = ownership_of(observed, desired.owner)
    if observed is None:
        create = CreateUser(build(NewUserRequest, creation_fields(desired)))
        return Plan(ownership, (create, *team_actions(desired, None, team_budgets)))
    if ownership == "other-resource":
        owner = owner_named_by(observed, desired.owner)
        message = MSG_OWNED_BY_OTHER.format(user_id=desired.user_id, owner=owner)
        return Plan(ownership, (Refuse(Reason.CONFLICT, message),))
    if ownership == "unmanaged" and not desired.adoption_allowed:
        message = MSG_UNMANAGED_EXISTS.format(user_id=desired.user_id)
        return Plan(ownership, (Refuse(Reason.ALREADY_EXISTS, message),))
    if ownership == "unmanaged" and above_grant(observed, desired):
        role = desired.settings.user_role
        message = MSG_ADOPTION_REFUSED.format(user_id=desired.user_id, role=role)
        return Plan(ownership, (Refuse(Reason.ADOPTION_REFUSED, message),))
    if desired.sso_user_id is not None and desired.sso_user_id != observed.sso_user_id:
        message = MSG_SSO_USER_ID_FIXED.format(
            user_id=desired.user_id, wanted=desired.sso_user_id, held=observed.sso_user_id
        )
        return Plan(ownership, (Refuse(Reason.SSO_USER_ID_MISMATCH, message),))
    actions: list[Action] = []
    fields, changed = changed_fields(desired, observed, adopting=ownership == "unmanaged")
    if "user_email" in fields and observed.email_in_use:
        message = MSG_EMAIL_IN_USE.format(email=fields["user_email"])
        return Plan(ownership, (Refuse(Reason.EMAIL_IN_USE, message),))
    if fields:
        actions.append(UpdateUser(build(UpdateUserRequest, fields), tuple(changed)))
    actions.extend(team_actions(desired, observed, team_budgets))
    actions.extend(key_actions(desired, observed))
    return Plan(ownership, tuple(actions))


def above_grant(observed: ObservedUser, desired: Desired) -> bool:
    """Whether the user's role in LiteLLM is above the one the policy gives: adopting it would
    keep that role wherever the identity provider owns it, and hand it to the keys the operator
    issues. A user without a role is LiteLLM's default, an internal_user; a role outside
    :data:`ROLE_RANK` (org_admin ...) counts as above."""
    held = observed.settings.get("user_role") or "internal_user"
    granted = ROLE_RANK[desired.settings.user_role]
    return ROLE_RANK.get(held, len(ROLE_RANK)) > granted


def creation_fields(desired: Desired) -> dict[str, Any]:
    """Every managed column, explicitly: LiteLLM fills omitted ones from its own defaults."""
    settings = desired.settings
    fields: dict[str, Any] = {"user_id": desired.user_id}
    for managed in USER_COLUMNS:
        fields[managed.litellm] = managed.to_litellm(getattr(settings, managed.name))
    fields["metadata"] = desired_metadata(desired, {})
    fields["auto_create_key"] = False
    if desired.email is not None:
        fields["user_email"] = desired_email(desired)
    if desired.alias is not None:
        fields["user_alias"] = desired.alias
    if desired.sso_user_id is not None:
        fields["sso_user_id"] = desired.sso_user_id
    return fields


def changed_fields(
    desired: Desired, observed: ObservedUser, *, adopting: bool = False
) -> tuple[dict[str, Any], list[str]]:
    """The ``/user/update`` body (only the columns that differ) and the settings it changes.

    Fields the identity provider owns (``desired.provider_owned``) are left as LiteLLM holds them.
    """
    settings = desired.settings
    body: dict[str, Any] = {}
    changed: list[str] = []
    owned = desired.provider_owned
    for managed in USER_COLUMNS:
        if managed.wire in owned:
            continue
        wanted = getattr(settings, managed.name)
        if not managed.same(wanted, observed.settings.get(managed.name)):
            body[managed.litellm] = managed.to_litellm(wanted)
            changed.append(managed.wire)
    email = desired_email(desired)
    if "email" not in owned and not same_email(email, observed.email):
        body["user_email"] = email
        changed.append("email")
    if "alias" not in owned and desired.alias is not None and desired.alias != observed.alias:
        body["user_alias"] = desired.alias
        changed.append("alias")
    metadata = desired_metadata(
        desired,
        observed.metadata,
        adopted=adopting or is_adopted(observed),
        delete_adopted=desired.delete_adopted if adopting else deletes_adopted(observed),
    )
    if metadata != dict(observed.metadata):
        body["metadata"] = metadata
        changed.extend(metadata_changes(desired, observed))
    return body, changed


def metadata_changes(desired: Desired, observed: ObservedUser) -> list[str]:
    """The settings kept in metadata that differ; ``metadata`` for everything else there."""
    changed = [
        managed.wire
        for managed in METADATA_KEYS
        if managed.name != "metadata"
        and not managed.same(
            getattr(desired.settings, managed.name), observed.settings.get(managed.name)
        )
    ]
    return changed or ["metadata"]


def desired_metadata(
    desired: Desired,
    observed: Mapping[str, Any],
    *,
    adopted: bool = False,
    delete_adopted: bool = False,
) -> dict[str, Any]:
    """Foreign keys kept, keys the operator wrote before dropped, policy metadata and markers added.

    The keys the operator owns are listed in the :data:`MANAGED_KEYS` marker, so a key removed
    from the policy is removed from LiteLLM while keys someone else set survive.
    """
    previously_managed = set(parse_key_list(observed.get(MANAGED_KEYS)))
    foreign = {
        k: v
        for k, v in observed.items()
        if k not in previously_managed
        and k not in RESERVED_METADATA_KEYS
        and not k.startswith(MARKER_PREFIX)
    }
    policy_metadata = {
        k: v for k, v in desired.settings.metadata.items() if not k.startswith(MARKER_PREFIX)
    }
    settings = {
        managed.litellm: managed.to_litellm(value)
        for managed in METADATA_KEYS
        if managed.name != "metadata" and (value := getattr(desired.settings, managed.name))
    }
    markers = ownership_markers(desired, policy_metadata)
    if adopted:
        markers[ADOPTED] = "true"
    if adopted and delete_adopted:
        markers[DELETE_ADOPTED] = "true"
    return {**foreign, **policy_metadata, **settings, **markers}


def ownership_markers(desired: Desired, policy_metadata: Mapping[str, str]) -> dict[str, str]:
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
    if policy_metadata:
        markers[MANAGED_KEYS] = ",".join(sorted(policy_metadata))
    return markers


def parse_key_list(value: object) -> list[str]:
    if not isinstance(value, str) or not value:
        return []
    return [k for k in value.split(",") if k]


RELEASED = MARKER_PREFIX + "released"


def without_markers(metadata: Mapping[str, Any]) -> dict[str, Any]:
    """Metadata with the ownership markers removed, for deletion with ``Retain``.

    The policy's keys stay: they are part of the user's settings, which Retain leaves alone.
    LiteLLM ignores ``{}``, so an otherwise empty result keeps a :data:`RELEASED` tombstone;
    it carries no :data:`MANAGED_BY`, so the user counts as unmanaged from then on.
    """
    kept = {k: v for k, v in metadata.items() if not k.startswith(MARKER_PREFIX)}
    return kept or {RELEASED: "true"}


def team_actions(
    desired: Desired, observed: ObservedUser | None, team_budgets: Mapping[str, float | None]
) -> list[Action]:
    """Join the desired teams with their member budget (:func:`member_budgets`); leave only the
    teams the operator joined itself; set the budget of memberships whose budget was read, is
    the operator's and differs."""
    budget_field = BY_NAME["max_budget_in_team"]
    budgets = member_budgets(desired, team_budgets)
    current = set(observed.teams) if observed is not None else set()
    wanted = set(desired.settings.teams)
    adds: list[Action] = [
        AddToTeam(t, budgets[t].max_budget_in_team if t in budgets else None)
        for t in sorted(wanted - current)
    ]
    removes: list[Action] = [
        RemoveFromTeam(t) for t in sorted((desired.managed_teams & current) - wanted)
    ]
    memberships = observed.memberships if observed is not None else None
    updates: list[Action] = [
        UpdateTeamMembership(team, budgets[team].max_budget_in_team, membership.role)
        for team, membership in sorted((memberships or {}).items())
        if team in wanted
        and team in budgets
        and not budget_field.same(budgets[team].max_budget_in_team, membership.max_budget_in_team)
    ]
    return adds + updates + removes


def key_actions(desired: Desired, observed: ObservedUser) -> list[Action]:
    """Suspension blocks every active key; lifting it unblocks only the keys it blocked."""
    if observed.keys is None:
        return []
    if desired.suspend:
        return [BlockKey(k.token) for k in observed.keys if not k.blocked]
    return [
        UnblockKey(k.token) for k in observed.keys if k.blocked and k.token in desired.blocked_keys
    ]


DeletionPolicy = Literal["Delete", "Retain"]


def plan_deletion(
    owner: Owner, observed: ObservedUser | None, deletion_policy: DeletionPolicy
) -> tuple[Action, ...]:
    """What to do in LiteLLM when the LiteLLMUser goes away; safe to plan and apply twice.

    Only a user whose markers name this very resource is touched: a missing user is already
    gone, and a user owned by someone else (or by no one) is left exactly as it is. An adopted
    user (the :data:`ADOPTED` marker) is only released, unless the policy that adopted it
    recorded deleteAdoptedUsers (:data:`DELETE_ADOPTED`): then ``Delete`` goes through.
    """
    if ownership_of(observed, owner) != "ours" or observed is None:
        return ()
    if deletion_policy == "Delete" and (deletes_adopted(observed) or not is_adopted(observed)):
        return (DeleteUser(observed.user_id),)
    release = build(UpdateUserRequest, {"metadata": without_markers(observed.metadata)})
    return (UpdateUser(release),)
