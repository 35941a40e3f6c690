"""The reconcile planner: desired settings + what LiteLLM holds → the actions that make them match.

Pure: no I/O, no clock, no kopf. The handlers observe LiteLLM, call :func:`plan_user` or
:func:`plan_deletion`, and hand the actions to the applier. Every decision about *what* to
change in LiteLLM lives here, so it is tested by tables (``tests/unit/test_plan.py``).

Ownership is proven by markers the operator writes into the LiteLLM user's ``metadata``
(:data:`MARKER_PREFIX`). A user without them is never changed unless adoption is allowed; a
user whose markers name another resource is never changed at all.

LiteLLM quirks that shape the plan (observed on the real proxy, see docs/litellm-api.md):

* ``/user/update`` sends only what differs: resending ``budget_duration`` postpones the reset.
* ``null`` clears only ``max_budget``, ``budget_duration``, ``tpm_limit`` and ``rpm_limit``;
  ``[]`` for ``models`` is ignored, so "all models" is written as :data:`ALL_PROXY_MODELS`.
* ``metadata`` is replaced as a whole, so the plan writes the complete dictionary: keys the
  operator does not own are carried over unchanged.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from litellm_operator.models import EffectiveSettings

MARKER_PREFIX = "litellm.platform.dev/"
MANAGED_BY = MARKER_PREFIX + "managed-by"
OWNER_NAMESPACE = MARKER_PREFIX + "owner-namespace"
OWNER_NAME = MARKER_PREFIX + "owner-name"
OWNER_UID = MARKER_PREFIX + "owner-uid"
POLICY_NAME = MARKER_PREFIX + "policy"
POLICY_GENERATION = MARKER_PREFIX + "policy-generation"
MANAGED_KEYS = MARKER_PREFIX + "managed-metadata-keys"
MANAGER = "litellm-operator"

ALL_PROXY_MODELS = "all-proxy-models"
"""LiteLLM's special model name for "every model"; an empty list cannot be written by update."""

MSG_UNMANAGED_EXISTS = (
    "a LiteLLM user with id {user_id!r} already exists and is not managed by litellm-operator; "
    "set spec.adopt: true (or the policy's adoptExistingUsers) to take it over"
)
MSG_OWNED_BY_OTHER = (
    "LiteLLM user {user_id!r} is managed by LiteLLMUser {owner}; "
    "two resources cannot own the same user id"
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
    """The owned fields of a LiteLLM user record, as read from ``/user/info`` or ``/user/list``."""

    user_id: str
    email: str | None = None
    alias: str | None = None
    role: str | None = None
    max_budget: float | None = None
    budget_duration: str | None = None
    models: tuple[str, ...] = ()
    tpm_limit: int | None = None
    rpm_limit: int | None = None
    metadata: Mapping[str, Any] = field(default_factory=dict)
    teams: tuple[str, ...] = ()
    keys: tuple[ObservedKey, ...] | None = None
    """``None`` when the read did not include keys (``/user/list``)."""


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
    suspend: bool = False
    adoption_allowed: bool = False
    managed_teams: frozenset[str] = frozenset()
    """Team memberships the operator added itself (from status); the only ones it may remove."""
    blocked_keys: frozenset[str] = frozenset()
    """Keys the operator blocked for a suspension (from status); the only ones it unblocks."""


@dataclass(frozen=True)
class CreateUser:
    fields: Mapping[str, Any]


@dataclass(frozen=True)
class UpdateUser:
    fields: Mapping[str, Any]

    @property
    def changed(self) -> tuple[str, ...]:
        return tuple(sorted(self.fields))


@dataclass(frozen=True)
class AddToTeam:
    team_id: str


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

    reason: str
    message: str


Action = (
    CreateUser
    | UpdateUser
    | AddToTeam
    | RemoveFromTeam
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


def ownership_of(observed: ObservedUser | None, owner: Owner) -> Ownership:
    """Who owns an observed LiteLLM user, judged by the markers in its metadata."""
    if observed is None:
        return "absent"
    if observed.metadata.get(MANAGED_BY) != MANAGER:
        return "unmanaged"
    if observed.metadata.get(OWNER_UID) == owner.uid:
        return "ours"
    return "other-resource"


def owner_named_by(observed: ObservedUser) -> str:
    meta = observed.metadata
    return f"{meta.get(OWNER_NAMESPACE, '?')}/{meta.get(OWNER_NAME, '?')}"


def plan_user(desired: Desired, observed: ObservedUser | None) -> Plan:
    """Plan the changes that make LiteLLM hold exactly what ``desired`` says."""
    ownership = ownership_of(observed, desired.owner)
    if observed is None:
        return Plan(ownership, (CreateUser(creation_fields(desired)), *team_actions(desired, None)))
    if ownership == "other-resource":
        message = MSG_OWNED_BY_OTHER.format(user_id=desired.user_id, owner=owner_named_by(observed))
        return Plan(ownership, (Refuse("Conflict", message),))
    if ownership == "unmanaged" and not desired.adoption_allowed:
        message = MSG_UNMANAGED_EXISTS.format(user_id=desired.user_id)
        return Plan(ownership, (Refuse("AlreadyExists", message),))
    actions: list[Action] = []
    fields = changed_fields(desired, observed)
    if fields:
        actions.append(UpdateUser(fields))
    actions.extend(team_actions(desired, observed))
    actions.extend(key_actions(desired, observed))
    return Plan(ownership, tuple(actions))


def creation_fields(desired: Desired) -> dict[str, Any]:
    """Every managed field, explicitly: LiteLLM fills omitted ones from its own defaults."""
    s = desired.settings
    fields: dict[str, Any] = {
        "user_id": desired.user_id,
        "user_role": s.user_role,
        "max_budget": s.max_budget,
        "budget_duration": s.budget_duration,
        "models": list(s.models),
        "tpm_limit": s.tpm_limit,
        "rpm_limit": s.rpm_limit,
        "metadata": desired_metadata(desired, {}),
        "auto_create_key": False,
    }
    if desired.email is not None:
        fields["user_email"] = desired.email
    if desired.alias is not None:
        fields["user_alias"] = desired.alias
    return fields


def changed_fields(desired: Desired, observed: ObservedUser) -> dict[str, Any]:
    """The ``/user/update`` body: only the owned fields whose value differs."""
    s = desired.settings
    fields: dict[str, Any] = {}
    if not same_amount(s.max_budget, observed.max_budget):
        fields["max_budget"] = s.max_budget
    if s.budget_duration != observed.budget_duration:
        fields["budget_duration"] = s.budget_duration
    if s.tpm_limit != observed.tpm_limit:
        fields["tpm_limit"] = s.tpm_limit
    if s.rpm_limit != observed.rpm_limit:
        fields["rpm_limit"] = s.rpm_limit
    if s.user_role != observed.role:
        fields["user_role"] = s.user_role
    if model_set(s.models) != model_set(observed.models):
        fields["models"] = list(s.models) or [ALL_PROXY_MODELS]
    if desired.email is not None and desired.email != observed.email:
        fields["user_email"] = desired.email
    if desired.alias is not None and desired.alias != observed.alias:
        fields["user_alias"] = desired.alias
    metadata = desired_metadata(desired, observed.metadata)
    if metadata != dict(observed.metadata):
        fields["metadata"] = metadata
    return fields


def same_amount(a: float | None, b: float | None) -> bool:
    if a is None or b is None:
        return a is b
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9)


def model_set(models: Sequence[str]) -> frozenset[str]:
    """Models as an access set: order is irrelevant and "all models" has two spellings."""
    chosen = frozenset(models)
    return frozenset() if chosen == {ALL_PROXY_MODELS} else chosen


def desired_metadata(desired: Desired, observed: Mapping[str, Any]) -> dict[str, Any]:
    """Foreign keys kept, keys the operator wrote before dropped, policy metadata and markers added.

    The keys the operator owns are listed in the :data:`MANAGED_KEYS` marker, so a key removed
    from the policy is removed from LiteLLM while keys someone else set survive.
    """
    previously_managed = set(parse_key_list(observed.get(MANAGED_KEYS)))
    foreign = {
        k: v
        for k, v in observed.items()
        if k not in previously_managed and not k.startswith(MARKER_PREFIX)
    }
    policy_metadata = {
        k: v for k, v in desired.settings.metadata.items() if not k.startswith(MARKER_PREFIX)
    }
    return {**foreign, **policy_metadata, **ownership_markers(desired, policy_metadata)}


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


def team_actions(desired: Desired, observed: ObservedUser | None) -> list[Action]:
    """Join the desired teams; leave only the teams the operator joined itself."""
    current = set(observed.teams) if observed is not None else set()
    wanted = set(desired.settings.teams)
    adds: list[Action] = [AddToTeam(t) for t in sorted(wanted - current)]
    removes: list[Action] = [
        RemoveFromTeam(t) for t in sorted((desired.managed_teams & current) - wanted)
    ]
    return adds + removes


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
    gone, and a user owned by someone else (or by no one) is left exactly as it is.
    """
    if ownership_of(observed, owner) != "ours" or observed is None:
        return ()
    if deletion_policy == "Delete":
        return (DeleteUser(observed.user_id),)
    return (UpdateUser({"metadata": without_markers(observed.metadata)}),)
