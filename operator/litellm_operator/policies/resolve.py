"""The effective-settings engine: what a LiteLLMUser must be in LiteLLM, given its policy.

Pure: no I/O, no clock, no Kubernetes. The reconciler and `litellm-operator explain` both call
`resolve`, so what a reviewer sees in a pull request is what the operator will do.

    effective = built-in defaults ⊕ policy.spec.defaults ⊕ first matching role ⊕ allowed overrides

Merge rules (every field records its source: builtin, default, role or override):
- policy.spec.defaults: a field that is present wins, even an explicit null for the nullable
  scalars (maxBudget, budgetDuration, tpmLimit, rpmLimit): `maxBudget: null` means "no cap".
  A null list, map or userRole is ignored (there is no "no role").
- role, override: an omitted or null field falls back to the layer below.
- lists (models, teams) replace; metadata merges key by key over the layer below.
- a team named ``<namespace>/<name>`` is the LiteLLMTeam of that name: its LiteLLM id is
  ``<namespace>.<name>`` (:func:`team_id_of_entry`); any other entry is a LiteLLM team id.
- roles match by Backstage group ref, case-insensitively; the first match wins. A role with
  `namespaces` matches only users in those namespaces: a group claimed elsewhere is ignored
  (and reported), since a tenant writes its own groups.

Identity is guarded like an override: an explicit spec.userId needs `userId` in
spec.overrides.allowedFields (and must match overrides.userIdPattern when set), spec.ssoUserId
likewise `ssoUserId` (and overrides.ssoUserIdPattern); LiteLLM's own
users (:data:`RESERVED_USER_IDS`) are never provisioned, whichever way the id was obtained.
Every identity a sign-in could land on (the user id, spec.email, spec.ssoUserId) must be granted
to the namespace by spec.identities (IdentityNotAllowed), derived ids included.

Overrides are checked, never silently dropped:
- a field not in spec.overrides.allowedFields is an error (OverrideForbidden);
- maxBudget/tpmLimit/rpmLimit above the policy's ceiling are clamped, with a note;
- a models override must be a subset of spec.overrides.allowedModels, or, when that is absent,
  of the models the user would get without the override (ModelNotAllowed); [] means "all
  models", so it is only allowed when the bound is "all models" too.
Errors are collected and raised together as PolicyViolation.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from typing import Any

from pydantic import BaseModel, ConfigDict
from pydantic.alias_generators import to_camel

from litellm_operator.fields import (
    ALLOW_LIST_NAMES,
    BY_NAME,
    FIELDS,
    NAMES,
    RESERVED_METADATA_KEYS,
    ROLE_RANK,
    Bound,
    duration_seconds,
)
from litellm_operator.models import (
    EMAIL_PATTERN,
    EffectiveSettings,
    LiteLLMUser,
    OverridePolicy,
    ProvisioningPolicy,
    RoleSpec,
    SettingsPatch,
    Source,
)
from litellm_operator.reasons import Reason

BUILTIN = EffectiveSettings.model_validate({f.name: f.builtin for f in FIELDS})
"""The settings of a user whose policy says nothing (fields.FIELDS' built-in values)."""

NULLABLE = frozenset(f.name for f in FIELDS if f.nullable)
"""Settings where null is a value of its own in policy.spec.defaults ("no cap", "no limit")."""
DEFAULT_GROUP_NAMESPACE = "default"


@dataclass(frozen=True)
class Problem:
    """One reason a user cannot be resolved; path is a dotted path into the object."""

    path: str
    message: str
    reason: Reason = Reason.INVALID_SPEC


class PolicyViolation(Exception):
    """The user (or its policy) is invalid; `problems` lists every reason found."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__("; ".join(f"{p.path}: {p.message}" for p in problems))


class Resolution(BaseModel):
    """The outcome of `resolve`; `model_dump(by_alias=True)` gives the status/explain shape."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, frozen=True)

    user_id: str
    policy_name: str
    policy_generation: int | None
    matched_role: str | None
    ignored_groups: tuple[str, ...] = ()
    """Claimed groups of roles the policy does not grant to the user's namespace."""
    effective: EffectiveSettings
    sources: dict[str, Source]
    notes: list[str]


@functools.cache
def camel(name: str) -> str:
    """The wire (camelCase) name of an effective-settings field (cached: each resolve names
    every field, and pydantic's conversion was 2 % of a policy edit's CPU)."""
    return to_camel(name)


# --- teams -------------------------------------------------------------------------------------

REFERENCE_SEPARATOR = "/"
"""A team entry ``<namespace>/<name>`` names a LiteLLMTeam; any other, a LiteLLM team id (which
cannot hold a ``/``: the LiteLLMTeam CRD refuses one in spec.teamId)."""


def derived_team_id(namespace: str, name: str) -> str:
    """The LiteLLM id of a LiteLLMTeam without spec.teamId."""
    return f"{namespace}.{name}"


def team_id_of_entry(entry: str) -> str:
    """The LiteLLM team id a policy's team entry names."""
    namespace, sep, name = entry.partition(REFERENCE_SEPARATOR)
    return derived_team_id(namespace, name) if sep else entry


def team_ids(entries: Sequence[str]) -> list[str]:
    """The LiteLLM ids of a team list, in order, each once."""
    return list(dict.fromkeys(team_id_of_entry(e) for e in entries))


# --- groups ------------------------------------------------------------------------------------


def normalize_group(ref: str) -> str:
    """Canonical Backstage entity ref `kind:namespace/name`, lower-case.

    `ai-power-users`, `group:ai-power-users` and `Group:default/AI-Power-Users` all become
    `group:default/ai-power-users`. A ref of another kind keeps its kind (`user:default/x`) so it
    never equals a group. Idempotent.
    """
    text = ref.strip().lower()
    kind, sep, rest = text.partition(":")
    if not sep:
        kind, rest = "group", text
    namespace, sep, name = rest.partition("/")
    if not sep:
        namespace, name = DEFAULT_GROUP_NAMESPACE, rest
    return f"{kind}:{namespace}/{name}"


def is_group_ref(ref: str) -> bool:
    """True when the ref names a group (and not, say, a user)."""
    return normalize_group(ref).startswith("group:")


def in_namespaces(namespace: str, patterns: Sequence[str]) -> bool:
    """True when the namespace matches one of the globs (fnmatch, case-sensitive)."""
    return any(fnmatchcase(namespace, p) for p in patterns)


def granted_here(role: RoleSpec, namespace: str) -> bool:
    """A role without namespaces applies wherever its policy does."""
    return role.namespaces is None or in_namespaces(namespace, role.namespaces)


def claimed_roles(roles: list[RoleSpec], groups: list[str]) -> list[RoleSpec]:
    """The roles whose group is one of the user's groups, in policy order."""
    member_of = {normalize_group(g) for g in groups if is_group_ref(g)}
    return [r for r in roles if is_group_ref(r.group) and normalize_group(r.group) in member_of]


def match_role(roles: list[RoleSpec], groups: list[str], namespace: str) -> RoleSpec | None:
    """The first role whose group the user claims and that is granted to its namespace."""
    return next((r for r in claimed_roles(roles, groups) if granted_here(r, namespace)), None)


def ignored_groups(roles: list[RoleSpec], groups: list[str], namespace: str) -> tuple[str, ...]:
    """The user's groups that name roles, none of them granted to its namespace."""
    ignored: list[str] = []
    for group in groups:
        claimed = claimed_roles(roles, [group])
        if claimed and not any(granted_here(r, namespace) for r in claimed):
            ignored.append(group)
    return tuple(ignored)


# --- identity ----------------------------------------------------------------------------------


RESERVED_USER_IDS = frozenset(
    {
        "default_user_id",
        "system",
        "litellm-internal-health-check",
        "litellm-cli",
        "litellm_internal_jobs",
    }
)
"""Identities the LiteLLM proxy (1.108) creates or acts as itself: ``default_user_id`` is the
proxy admin (the master key and the UI admin), the others are its internal jobs, health check
and CLI. Provisioning, adopting or deleting them would hand a tenant the proxy."""


def derive_user_id(policy: ProvisioningPolicy, user: LiteLLMUser) -> str:
    """spec.userId verbatim if set, else metadata.name + `@userIdDomain`."""
    if user.spec.user_id is not None:
        return user.spec.user_id
    domain = policy.spec.user_id_domain
    return f"{user.metadata.name}@{domain}" if domain else user.metadata.name


def email_for(user: LiteLLMUser, user_id: str) -> str | None:
    """The user's e-mail: spec.email, else the user id when it is an e-mail address.

    LiteLLM's SSO finds a person by e-mail when the provider's id claim is not the user id, so
    every person provisioned with an e-mail-shaped id gets it as ``user_email`` too. Lower-cased
    (e-mails are case-insensitive; LiteLLM's SSO compares them so).
    """
    email = user.spec.email
    if email is None and re.fullmatch(EMAIL_PATTERN, user_id):
        email = user_id
    return email.lower() if email is not None else None


def check_user_id(policy: ProvisioningPolicy, user: LiteLLMUser, user_id: str) -> list[Problem]:
    """An explicit spec.userId is an override; LiteLLM's own users are never anyone's."""
    if user_id in RESERVED_USER_IDS:
        message = f"user id {user_id!r} is LiteLLM's own user and cannot be provisioned"
        return [Problem("spec.userId", message, Reason.USER_ID_NOT_ALLOWED)]
    if user.spec.user_id is None:
        return []
    rules = policy.spec.overrides
    if "userId" not in rules.allowed_fields:
        return [forbidden("spec.userId", "user_id", rules, policy.metadata.name)]
    pattern = rules.user_id_pattern
    if pattern is not None and re.fullmatch(pattern, user_id) is None:
        message = f"user id {user_id!r} does not match the policy's userIdPattern {pattern!r}"
        return [Problem("spec.userId", message, Reason.USER_ID_NOT_ALLOWED)]
    return []


def check_sso_user_id(policy: ProvisioningPolicy, user: LiteLLMUser) -> list[Problem]:
    """spec.ssoUserId is an override like spec.userId: allowed, and matching the pattern."""
    sso_user_id = user.spec.sso_user_id
    if sso_user_id is None:
        return []
    rules = policy.spec.overrides
    if "ssoUserId" not in rules.allowed_fields:
        return [forbidden("spec.ssoUserId", "sso_user_id", rules, policy.metadata.name)]
    pattern = rules.sso_user_id_pattern
    if pattern is not None and re.fullmatch(pattern, sso_user_id) is None:
        message = (
            f"sso user id {sso_user_id!r} does not match the policy's ssoUserIdPattern {pattern!r}"
        )
        return [Problem("spec.ssoUserId", message, Reason.USER_ID_NOT_ALLOWED)]
    return []


def claimed_identities(user: LiteLLMUser, user_id: str) -> list[tuple[str, str]]:
    """Every identity LiteLLM's SSO could match a sign-in on, with the field that names it."""
    id_path = "spec.userId" if user.spec.user_id is not None else "metadata.name"
    claimed = [(id_path, user_id)]
    if user.spec.email is not None:
        claimed.append(("spec.email", user.spec.email))
    if user.spec.sso_user_id is not None:
        claimed.append(("spec.ssoUserId", user.spec.sso_user_id))
    return claimed


def check_identities(policy: ProvisioningPolicy, user: LiteLLMUser, user_id: str) -> list[Problem]:
    """Each identity must be covered by a grant of spec.identities for the user's namespace:
    e-mail-shaped ones by its emails, the others by its userIds (globs, case-insensitive)."""
    namespace = user.metadata.namespace or ""
    grants = [g for g in policy.spec.identities if in_namespaces(namespace, g.namespaces)]
    problems: list[Problem] = []
    for path, identity in claimed_identities(user, user_id):
        is_email = re.fullmatch(EMAIL_PATTERN, identity) is not None
        kind = "emails" if is_email else "userIds"
        globs = [glob for g in grants for glob in (g.emails if is_email else g.user_ids)]
        if any(fnmatchcase(identity.lower(), glob.lower()) for glob in globs):
            continue
        message = (
            f"policy {policy.metadata.name!r} does not grant {identity!r} to namespace "
            f"{namespace!r} (spec.identities {kind} here: {', '.join(globs) or 'none'})"
        )
        problems.append(Problem(path, message, Reason.IDENTITY_NOT_ALLOWED))
    return problems


# --- merge -------------------------------------------------------------------------------------


class _Layers:
    """The values and sources being merged, field by field."""

    def __init__(self) -> None:
        self.values: dict[str, Any] = BUILTIN.model_dump()
        self.sources: dict[str, Source] = dict.fromkeys(NAMES, "builtin")

    def put(self, name: str, value: Any, source: Source) -> None:
        if BY_NAME[name].merge == "keys":
            value = {**self.values[name], **value}
        self.values[name] = value
        self.sources[name] = source

    def effective(self) -> EffectiveSettings:
        return EffectiveSettings.model_validate(self.values)


def defaults_layer(defaults: SettingsPatch) -> dict[str, Any]:
    """The fields policy.spec.defaults sets, explicit nulls of the nullable settings included."""
    return {
        name: getattr(defaults, name)
        for name in NAMES
        if name in defaults.model_fields_set
        and (getattr(defaults, name) is not None or name in NULLABLE)
    }


def patch_layer(patch: SettingsPatch) -> dict[str, Any]:
    """The non-null settings fields of a role or override patch."""
    return {name: getattr(patch, name) for name in NAMES if getattr(patch, name) is not None}


def apply(layers: _Layers, fields: dict[str, Any], source: Source) -> None:
    for name, value in fields.items():
        layers.put(name, value, source)


# --- overrides ---------------------------------------------------------------------------------


@dataclass
class _OverrideCheck:
    accepted: dict[str, Any] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def check_overrides(
    rules: OverridePolicy, requested: dict[str, Any], current: dict[str, Any], policy_name: str
) -> _OverrideCheck:
    """Accept, clamp or reject each requested override against the policy's rules.

    ``current`` holds the values the user would get without overrides: where the policy sets
    no explicit bound, they are the bound, so an override can only narrow.
    """
    check = _OverrideCheck()
    allowed = set(rules.allowed_fields)
    for name, value in requested.items():
        managed = BY_NAME[name]
        path = f"spec.overrides.{managed.wire}"
        problem: Problem | None = None
        if managed.wire not in allowed:
            problem = forbidden(path, name, rules, policy_name)
        elif managed.bound is Bound.ALLOW_LIST:
            allow_list = getattr(rules, ALLOW_LIST_NAMES[name])
            problem = check_subset(path, managed.wire, value, allow_list, current[name])
        elif managed.bound is Bound.ROLE:
            problem = check_role(path, value, rules.allowed_user_roles, current[name])
        elif managed.bound is Bound.NEVER_SHORTER:
            problem = check_duration(path, value, current[name])
        elif managed.bound is Bound.PER_KEY_CEILING:
            value = clamp_per_key(managed.wire, value, current[name], check.notes)
        elif managed.bound is Bound.CEILING:
            value = clamp(name, value, rules, current[name], check.notes)
        if problem:
            check.problems.append(problem)
        else:
            check.accepted[name] = value
    return check


def check_role(
    path: str, requested: str, allow_list: Sequence[str] | None, current: str
) -> Problem | None:
    if allow_list is not None:
        if requested in allow_list:
            return None
        allowed = ", ".join(allow_list) or "none"
        message = f"role {requested!r} is not in spec.overrides.allowedUserRoles ({allowed})"
        return Problem(path, message, Reason.ROLE_NOT_ALLOWED)
    if ROLE_RANK[requested] <= ROLE_RANK[current]:
        return None
    message = (
        f"role {requested!r} is more privileged than {current!r}, which the policy gives; "
        "list it in spec.overrides.allowedUserRoles to allow it"
    )
    return Problem(path, message, Reason.ROLE_NOT_ALLOWED)


def check_duration(path: str, requested: str, current: str | None) -> Problem | None:
    """A shorter budget period resets the budget more often: more spend, so not allowed."""
    if current is None:
        message = "the policy sets no budget period (the budget never resets); it cannot be added"
        return Problem(path, message, Reason.OVERRIDE_FORBIDDEN)
    if duration_seconds(requested) >= duration_seconds(current):
        return None
    message = f"budget period {requested} is shorter than the policy's {current}"
    return Problem(path, message, Reason.OVERRIDE_FORBIDDEN)


def forbidden(path: str, name: str, rules: OverridePolicy, policy_name: str) -> Problem:
    allowed = ", ".join(rules.allowed_fields) or "none"
    return Problem(
        path,
        f"policy {policy_name!r} does not allow overriding {camel(name)} (allowed: {allowed})",
        Reason.OVERRIDE_FORBIDDEN,
    )


def without_reserved_keys(layer: dict[str, Any]) -> dict[str, Any]:
    """Policy metadata never sets the metadata keys that hold settings of their own."""
    metadata = layer.get("metadata")
    if metadata:
        layer["metadata"] = {k: v for k, v in metadata.items() if k not in RESERVED_METADATA_KEYS}
    return layer


def clamp(name: str, value: Any, rules: OverridePolicy, current: Any, notes: list[str]) -> Any:
    """The override value, lowered to the policy's ceiling for it.

    Without an explicit ceiling the value the user would get anyway is the ceiling (``None``
    there means unlimited), so an override can only lower it.
    """
    explicit = getattr(rules, name)
    ceiling = explicit if explicit is not None else current
    if ceiling is None or value <= ceiling:
        return value
    what = "the policy ceiling" if explicit is not None else "the policy's own value"
    notes.append(
        f"spec.overrides.{camel(name)}: {value:g} exceeds {what} {ceiling:g}; "
        f"clamped to {ceiling:g}"
    )
    return ceiling


OUTSIDE_ALLOW_LIST = {"models": Reason.MODEL_NOT_ALLOWED, "teams": Reason.TEAM_NOT_ALLOWED}
"""The reason a list override outside its bound is refused with, by the list's CRD name."""


def check_subset(
    path: str, wire: str, requested: list[str], allow_list: list[str] | None, current: list[str]
) -> Problem | None:
    """None if a list override stays within its bound.

    The bound is ``allow_list`` (overrides.allowed<Field>), else what the user would get anyway.
    For models, [] means all models on both sides, so it is only allowed where the bound is
    all models too.
    """
    bound = current if allow_list is None else allow_list
    if allow_list is None:
        bound_name = "the policy"
    else:
        bound_name = f"spec.overrides.allowed{wire[0].upper()}{wire[1:]}"
    if wire == "models" and not bound:
        return None
    reason = OUTSIDE_ALLOW_LIST[wire]
    if wire == "models" and not requested and bound:
        message = f"[] means all models, but {bound_name} allows only {bound}"
        return Problem(path, message, reason)
    extra = [item for item in requested if item not in set(bound)]
    if extra:
        return Problem(path, f"{wire} {extra} are not allowed by {bound_name}", reason)
    return None


def clamp_per_key(
    wire: str, value: dict[str, int], current: dict[str, int], notes: list[str]
) -> dict[str, int]:
    """Each limit lowered to the policy's limit for the same key (a key without one: any)."""
    clamped = dict(value)
    for key, limit in value.items():
        ceiling = current.get(key)
        if ceiling is not None and limit > ceiling:
            clamped[key] = ceiling
            notes.append(
                f"spec.overrides.{wire}.{key}: {limit} exceeds the policy's own value "
                f"{ceiling}; clamped to {ceiling}"
            )
    return clamped


# --- checks on the pair ------------------------------------------------------------------------


def check_namespace(policy: ProvisioningPolicy, user: LiteLLMUser) -> list[Problem]:
    patterns = policy.spec.allowed_namespaces
    namespace = user.metadata.namespace or ""
    if in_namespaces(namespace, patterns):
        return []
    return [
        Problem(
            "metadata.namespace",
            f"namespace {namespace!r} may not use policy {policy.metadata.name!r} "
            f"(allowed: {', '.join(patterns)})",
            Reason.NAMESPACE_NOT_ALLOWED,
        )
    ]


def check_policy_ref(policy: ProvisioningPolicy, user: LiteLLMUser) -> list[Problem]:
    if user.spec.policy_ref == policy.metadata.name:
        return []
    return [
        Problem(
            "spec.policyRef",
            f"refers to policy {user.spec.policy_ref!r}, not {policy.metadata.name!r}",
            Reason.POLICY_MISMATCH,
        )
    ]


# --- the engine --------------------------------------------------------------------------------


def resolve(
    policy: ProvisioningPolicy, user: LiteLLMUser, pinned_user_id: str | None = None
) -> Resolution:
    """The effective settings of `user` under `policy`; raises PolicyViolation if invalid.

    ``pinned_user_id`` is the id the operator already recorded for the user (status.userId):
    it stays the user's id whatever the policy's domain says now.
    """
    user_id = pinned_user_id or derive_user_id(policy, user)
    namespace = user.metadata.namespace or ""
    outside = check_namespace(policy, user)
    problems = check_policy_ref(policy, user) + outside
    problems += check_user_id(policy, user, user_id) + check_sso_user_id(policy, user)
    if not outside:  # a namespace the policy does not allow has no identity either
        problems += check_identities(policy, user, user_id)
    layers = _Layers()
    apply(layers, without_reserved_keys(defaults_layer(policy.spec.defaults)), "default")
    role = match_role(policy.spec.roles, user.spec.groups, namespace)
    ignored = ignored_groups(policy.spec.roles, user.spec.groups, namespace)
    if role is not None:
        apply(layers, without_reserved_keys(patch_layer(role)), "role")
    overrides = check_overrides(
        policy.spec.overrides,
        without_reserved_keys(patch_layer(user.spec.overrides)),
        dict(layers.values),
        policy.metadata.name,
    )
    problems += overrides.problems
    if problems:
        raise PolicyViolation(problems)
    apply(layers, overrides.accepted, "override")
    layers.values["teams"] = team_ids(layers.values["teams"])
    notes = list(overrides.notes)
    if ignored:
        notes.append(
            f"group(s) {', '.join(ignored)} ignored: policy {policy.metadata.name!r} does not "
            f"grant their role(s) to namespace {namespace!r}"
        )
    return Resolution(
        user_id=user_id,
        policy_name=policy.metadata.name,
        policy_generation=policy.metadata.generation,
        matched_role=role.group if role else None,
        ignored_groups=ignored,
        effective=layers.effective(),
        sources={camel(name): layers.sources[name] for name in NAMES},
        notes=notes,
    )
