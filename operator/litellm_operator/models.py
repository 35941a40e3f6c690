"""The API of litellm-operator: pydantic models of the three custom resources and their parts.

These models are the one source of truth for the resources. The CRD schemas under deploy/crds are
generated from them (see crdgen), the reconciler reads kopf bodies with `.model_validate(body)`,
and `litellm-operator explain` validates manifests with them before resolving anything.

Conventions:
- Python fields are snake_case, the wire format is camelCase (`model_dump(by_alias=True)`).
- Validation is strict, like the kube-apiserver: "10" is not a number and "true" is not a bool.
- Spec models forbid unknown fields so typos are reported; full-object models and metadata
  tolerate the extra fields Kubernetes and kopf add.
- Model docstrings and field descriptions are user-facing: they become `kubectl explain` text.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Annotated, Any, Literal, get_args

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, create_model, field_validator
from pydantic.alias_generators import to_camel

from litellm_operator.fields import (
    ALLOW_LIST_NAMES,
    FIELDS,
    KEY_FIELDS,
    MAX_LIST_ITEMS,
    MAX_NAME_LENGTH,
    TEAM_ALLOW_LISTS,
    TEAM_CEILINGS,
    TEAM_FIELDS,
    Bound,
    Budget,
    Name,
    UserRole,
)

GROUP = "litellm.platform.dev"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"
POLICY_KIND = "ProvisioningPolicy"
USER_KIND = "LiteLLMUser"
POLICY_PLURAL = "provisioningpolicies"
USER_PLURAL = "litellmusers"
TEAM_KIND = "LiteLLMTeam"
TEAM_PLURAL = "litellmteams"

USER_ROLES: tuple[str, ...] = get_args(UserRole)

Source = Literal["builtin", "default", "role", "override"]
BudgetSource = Literal["builtin", "default", "role", "override", "team"]
"""Where a member budget comes from: the user's own maxBudgetInTeam (its source), or the team."""
"""Where an effective setting came from, lowest to highest precedence."""
SOURCES: tuple[str, ...] = get_args(Source)

DeletionPolicy = Literal["Delete", "Retain"]
OVERRIDABLE: tuple[str, ...] = ("userId", "ssoUserId", *(f.wire for f in FIELDS))
"""What overrides.allowedFields may name: userId (an explicit spec.userId), ssoUserId and every
setting."""
if TYPE_CHECKING:
    OverridableField = str
else:
    OverridableField = Literal[OVERRIDABLE]
ConditionStatus = Literal["True", "False", "Unknown"]
FieldOwner = Literal["Operator", "Provider"]
"""Who owns a user field after creation: the operator (it keeps correcting it) or the identity
provider (LiteLLM's SSO rewrites it at each sign-in; the operator sets it on create only)."""

# Size limits keep a whole LiteLLMUser far below what kopf and kubectl store in annotations
# (256 KiB for all of them): the largest spec these limits allow is about 60 KB.
MAX_ID_LENGTH = 254

PRINTABLE_PATTERN = r"^[^\x00-\x1f\x7f]*$"
"""No control characters (newlines, tabs, NUL ...)."""
USER_ID_PATTERN = r"^[^\x00-\x20\x7f]+$"
"""No control characters and no spaces; LiteLLM user ids are otherwise free-form."""
EMAIL_PATTERN = r"^[^@\x00-\x20\x7f]+@[^@.\x00-\x20\x7f]+(\.[^@.\x00-\x20\x7f]+)+$"
"""local@domain.tld: one @, a dotted domain, no spaces or control characters."""
NAMESPACE_GLOB_PATTERN = r"^[a-z0-9*?\[\]!-]+$"

UserId = Annotated[
    str,
    Field(
        min_length=1,
        max_length=MAX_ID_LENGTH,
        pattern=USER_ID_PATTERN,
        description="LiteLLM user id: case-sensitive, no spaces or control characters.",
    ),
]
Email = Annotated[
    str,
    Field(
        max_length=MAX_ID_LENGTH,
        pattern=EMAIL_PATTERN,
        description="E-mail address; compared case-insensitively and sent to LiteLLM lower-cased.",
    ),
]
IDENTITY_GLOB_PATTERN = USER_ID_PATTERN
IdentityGlob = Annotated[
    str,
    Field(
        min_length=1,
        max_length=MAX_ID_LENGTH,
        pattern=IDENTITY_GLOB_PATTERN,
        description="User id or e-mail glob, case-insensitive (*, ?, [a-z]): *@team-a.example.",
    ),
]
NamespaceGlob = Annotated[
    str,
    Field(
        min_length=1,
        max_length=MAX_NAME_LENGTH,
        pattern=NAMESPACE_GLOB_PATTERN,
        description="Namespace name or glob (*, ?, [a-z]): team-* matches team-a.",
    ),
]


class _Wire(BaseModel):
    """Base of every model: camelCase on the wire, strict types."""

    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, strict=True, extra="forbid"
    )


class _Tolerant(_Wire):
    """Base of objects other writers (Kubernetes, kopf) add fields to."""

    model_config = ConfigDict(extra="allow")


class _Settings(_Wire):
    """Base of the models whose fields are the managed settings, built from fields.FIELDS."""

    if TYPE_CHECKING:

        def __getattr__(self, name: str) -> Any: ...


def _patch_fields() -> dict[str, Any]:
    """Every managed setting, optional: a layer of the merge sets only some."""
    return {f.name: (f.type | None, Field(default=None, description=f.description)) for f in FIELDS}


def _effective_fields() -> dict[str, Any]:
    """Every managed setting with its value; "none" is a value (no cap, no limit)."""
    fields: dict[str, Any] = {}
    for f in FIELDS:
        if f.nullable:
            fields[f.name] = (f.type, Field(default=None, description=f.description))
        elif isinstance(f.builtin, list | dict):
            factory = (lambda v: lambda: type(v)())(f.builtin)
            fields[f.name] = (f.type, Field(default_factory=factory, description=f.description))
        else:
            fields[f.name] = (f.type, Field(description=f.description))
    return fields


class _RoleBase(_Settings):
    group: Name = Field(
        description="Backstage group ref: name, group:name or group:namespace/name.",
    )
    namespaces: list[NamespaceGlob] | None = Field(
        default=None,
        min_length=1,
        max_length=MAX_LIST_ITEMS,
        description="Namespaces (globs, as allowedNamespaces) where this role may be claimed. "
        "Default: wherever the policy applies.",
    )


class _OverrideBase(_Wire):
    allowed_fields: list[OverridableField] = Field(
        default_factory=list,
        description="Fields a LiteLLMUser may set in spec.overrides; userId allows spec.userId.",
    )
    allowed_user_roles: list[UserRole] | None = Field(
        default=None, description="Roles a userRole override may choose."
    )
    user_id_pattern: str | None = Field(
        default=None,
        max_length=MAX_NAME_LENGTH,
        description="Regular expression an explicit spec.userId must match as a whole "
        "(e.g. ^svc-.*$); only with userId in allowedFields.",
    )
    sso_user_id_pattern: str | None = Field(
        default=None,
        max_length=MAX_NAME_LENGTH,
        description="Regular expression spec.ssoUserId must match as a whole; only with "
        "ssoUserId in allowedFields.",
    )

    if TYPE_CHECKING:

        def __getattr__(self, name: str) -> Any: ...

    @field_validator("user_id_pattern", "sso_user_id_pattern")
    @classmethod
    def _compiles(cls, pattern: str | None) -> str | None:
        if pattern is not None:
            try:
                re.compile(pattern)
            except re.error as exc:
                raise ValueError(f"not a regular expression: {exc}") from None
        return pattern


def _override_fields() -> dict[str, Any]:
    """The bound of each overridable setting: a ceiling or an allow-list (roles: the base)."""
    fields: dict[str, Any] = {}
    for f in FIELDS:
        if f.bound is Bound.CEILING:
            fields[f.name] = (
                f.type | None,
                Field(default=None, description=f"Ceiling of a {f.wire} override."),
            )
        elif f.bound is Bound.ALLOW_LIST:
            fields[ALLOW_LIST_NAMES[f.name]] = (
                list[Name] | None,
                Field(default=None, description=f"What a {f.wire} override may name."),
            )
    return fields


SETTINGS_DOC = """A partial set of LiteLLM user settings: a layer of the merge.

An omitted field (or null) leaves the layer below in force, except in spec.defaults of a
policy, where an explicit null maxBudget means "no cap" (and likewise for the other
nullable settings: no duration, no limit).
"""
ROLE_DOC = """Settings for the members of one group; the first role whose group matches wins.

Groups are whatever a LiteLLMUser claims, so a role is a grant to namespaces: with
`namespaces`, the role matches only LiteLLMUsers in those namespaces; a group claimed
elsewhere is ignored there (the user falls to the next matching role or the defaults).
"""
OVERRIDES_DOC = """What a LiteLLMUser may override for itself, and the bounds of those overrides.

Overriding a field not listed in allowedFields is an error. An override can never grant
more than the policy allows:

- numbers above their ceiling are clamped to it; without a ceiling, the value the user would
  get without the override is the ceiling (overrides only lower);
- models must be a subset of allowedModels (when absent: of the models the user would get
  without the override); teams likewise with allowedTeams;
- per-model limits may only lower the policy's limit for each model;
- userRole must be in allowedUserRoles (when absent: no more privileged than the role the
  user would get without the override);
- budgetDuration may not be shorter than the one the user would get without the override
  (a shorter period resets the budget more often).
"""
EFFECTIVE_DOC = "The settings the user must have in LiteLLM: the result of the merge."

if TYPE_CHECKING:
    SettingsPatch = _Settings
    RoleSpec = _RoleBase
    OverridePolicy = _OverrideBase
    EffectiveSettings = _Settings
else:
    SettingsPatch = create_model(
        "SettingsPatch", __base__=_Settings, __doc__=SETTINGS_DOC, **_patch_fields()
    )
    RoleSpec = create_model("RoleSpec", __base__=_RoleBase, __doc__=ROLE_DOC, **_patch_fields())
    OverridePolicy = create_model(
        "OverridePolicy", __base__=_OverrideBase, __doc__=OVERRIDES_DOC, **_override_fields()
    )
    EffectiveSettings = create_model(
        "EffectiveSettings", __base__=_Settings, __doc__=EFFECTIVE_DOC, **_effective_fields()
    )


class SsoOwnership(_Wire):
    """Who owns each field LiteLLM's SSO rewrites at every sign-in, once the user exists.

    Operator: the operator sets the field and keeps correcting it (each resync, after each
    sign-in). Provider: the operator sets it when it creates the user and never again, nor
    counts it as drift; the identity provider's value (via LiteLLM's SSO) stands. With
    userRole: Operator, leave LiteLLM's SSO role mappings and role claim unset.
    """

    user_role: FieldOwner = Field(default="Operator", description="Owner of user_role.")
    email: FieldOwner = Field(default="Operator", description="Owner of user_email.")
    alias: FieldOwner = Field(default="Operator", description="Owner of user_alias.")


MAX_KEYS = 16
"""Keys one LiteLLMUser or LiteLLMTeam may ask for (each is a Secret and a LiteLLM key)."""
DNS_LABEL_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
DNS_SUBDOMAIN_PATTERN = r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$"
INTERVAL_PATTERN = r"^([0-9]+(s|m|h|d))+$"
"""A Go-like interval: 0s, 90s, 30m, 1h, 12h30m, 7d."""
Interval = Annotated[
    str,
    Field(pattern=INTERVAL_PATTERN, max_length=32, description="An interval: 0s, 30m, 1h, 7d."),
]
A_MINUTE_OR_MORE = r"(^|[a-z])(0*[1-9][0-9]*[mhd]|0*([6-9][0-9]|[1-9][0-9][0-9]+)s)"
"""An interval of at least a minute: some m/h/d part is not zero, or some s part is 60 or more
(found anywhere in the interval; RE2 and Python alike)."""


def _a_minute_or_more(value: str) -> str:
    if re.search(A_MINUTE_OR_MORE, value) is None:
        raise ValueError("must be at least 1m (a new key at most once a minute)")
    return value


RotationInterval = Annotated[
    str,
    Field(
        pattern=INTERVAL_PATTERN,
        max_length=32,
        description="An interval of at least 1m: 30m, 1h, 7d.",
        json_schema_extra={
            "x-kubernetes-validations": [
                {
                    "rule": f"self.matches('{A_MINUTE_OR_MORE}')",
                    "message": "must be at least 1m (a new key at most once a minute)",
                }
            ]
        },
    ),
    AfterValidator(_a_minute_or_more),
]
DEFAULT_MIN_ROTATE_EVERY = "1h"
DEFAULT_MAX_GRACE_PERIOD = "24h"


class KeyPolicy(_Wire):
    """Whether the policy's users and teams may have virtual keys (spec.keys), and within what:
    one section bounds the keys of LiteLLMUsers and of LiteLLMTeams alike."""

    allowed: bool = Field(
        default=True,
        description="Whether LiteLLMUsers and LiteLLMTeams of this policy may ask for keys.",
    )
    max_per_user: int | None = Field(
        default=None,
        ge=0,
        le=MAX_KEYS,
        description="At most this many keys per LiteLLMUser, and per LiteLLMTeam.",
    )
    max_budget: Budget | None = Field(
        default=None,
        description="Ceiling of a key's maxBudget; with it, a key without maxBudget gets it.",
    )
    rotate_every: RotationInterval | None = Field(
        default=None, description="Default rotation schedule of keys that set none."
    )
    grace_period: Interval | None = Field(
        default=None,
        description="Default gracePeriod of keys that set none (built-in: 1h).",
    )
    min_rotate_every: RotationInterval = Field(
        default=DEFAULT_MIN_ROTATE_EVERY,
        description="At most one new key per key in this interval: the floor of rotateEvery, "
        "and a litellm.platform.dev/rotate annotation waits until it has passed.",
    )
    max_grace_period: Interval = Field(
        default=DEFAULT_MAX_GRACE_PERIOD, description="Ceiling of a key's gracePeriod."
    )


class _KeyBase(_Wire):
    name: str = Field(
        min_length=1,
        max_length=63,
        pattern=DNS_LABEL_PATTERN,
        description="The key's name: a DNS label, unique within its user or team.",
    )
    secret_name: str | None = Field(
        default=None,
        min_length=1,
        max_length=MAX_NAME_LENGTH,
        pattern=DNS_SUBDOMAIN_PATTERN,
        description="The Secret holding the key. Default: <LiteLLMUser or LiteLLMTeam "
        "name>-<key name>.",
    )

    if TYPE_CHECKING:

        def __getattr__(self, name: str) -> Any: ...


def _key_fields() -> dict[str, Any]:
    """The key's own settings (fields.KEY_FIELDS), each optional, then its rotation."""
    fields: dict[str, Any] = {
        f.name: (f.type, Field(default=None, description=f.description)) for f in KEY_FIELDS
    }
    fields["rotate_every"] = (
        RotationInterval | None,
        Field(
            default=None,
            description="Rotate the key on this schedule, at least 1m and not below the policy's "
            "keys.minRotateEvery. Default: the policy's keys.rotateEvery.",
        ),
    )
    fields["grace_period"] = (
        Interval | None,
        Field(
            default=None,
            description="How long the previous key keeps working after a rotation (0s revokes "
            "it at once), at most the policy's keys.maxGracePeriod. Default: the policy's "
            "keys.gracePeriod, else 1h.",
        ),
    )
    return fields


KEY_DOC = (
    "A LiteLLM virtual key of its LiteLLMUser or LiteLLMTeam, delivered into a Secret in its "
    "namespace."
)

if TYPE_CHECKING:
    KeySpec = _KeyBase
else:
    KeySpec = create_model("KeySpec", __base__=_KeyBase, __doc__=KEY_DOC, **_key_fields())


class IdentityGrant(_Wire):
    """Identities the LiteLLMUsers of some namespaces may provision.

    LiteLLM's SSO lands a sign-in on the user whose id, sso_user_id or e-mail matches the
    person's, so an identity is a grant like a role: a namespace that could name anyone's
    e-mail could receive their sign-in. An e-mail-shaped user id (derived or explicit) and
    spec.email are matched against emails, any other user id and spec.ssoUserId against
    userIds; globs compare case-insensitively.
    """

    namespaces: list[NamespaceGlob] = Field(
        min_length=1,
        max_length=MAX_LIST_ITEMS,
        description="Namespaces (globs, as allowedNamespaces) this grant applies to.",
    )
    emails: list[IdentityGlob] = Field(
        default_factory=list,
        max_length=MAX_LIST_ITEMS,
        description="E-mail globs (*@team-a.example); an e-mail-shaped user id counts as one.",
    )
    user_ids: list[IdentityGlob] = Field(
        default_factory=list,
        max_length=MAX_LIST_ITEMS,
        description="Globs of the user ids (and ssoUserIds) that are not e-mail addresses.",
    )
    team_ids: list[IdentityGlob] = Field(
        default_factory=list,
        max_length=MAX_LIST_ITEMS,
        description="Globs of the explicit LiteLLM team ids (spec.teamId) the LiteLLMTeams of "
        "these namespaces may declare or adopt. Without one, a LiteLLMTeam's id is "
        "<namespace>.<name>.",
    )


class _TeamPolicyBase(_Wire):
    max_per_namespace: int | None = Field(
        default=None,
        ge=0,
        le=1000,
        description="At most this many LiteLLMTeams of this policy per namespace (the oldest "
        "count first; the others are refused). Default: no limit.",
    )
    adopt_existing_teams: bool = Field(
        default=False,
        description="Adopt LiteLLM teams that exist without the operator's markers, for "
        "LiteLLMTeams with spec.adopt (never a team a role of a policy grants to users of "
        "another namespace). Without it: AdoptionRefused.",
    )

    if TYPE_CHECKING:

        def __getattr__(self, name: str) -> Any: ...


def _team_policy_fields() -> dict[str, Any]:
    """The ceiling of each capped team setting and the allow-list of each list setting."""
    fields: dict[str, Any] = {
        f.name: (
            f.type | None,
            Field(
                default=None,
                description=f"Ceiling of a LiteLLMTeam's {f.wire}, and its default.",
            ),
        )
        for f in TEAM_CEILINGS
    }
    for name, allowed in TEAM_ALLOW_LISTS.items():
        fields[allowed] = (
            list[Name] | None,
            Field(
                default=None,
                max_length=MAX_LIST_ITEMS,
                description=f"What a LiteLLMTeam's {to_camel(name)} may name (absent: anything; "
                "then [] means all).",
            ),
        )
    return fields


TEAM_POLICY_DOC = """Whether the namespaces of the policy may declare LiteLLMTeams, and within what.

Absent: no LiteLLMTeam may use this policy. A team beyond a ceiling or an allow-list is refused
(nothing is written to LiteLLM); an omitted capped setting gets the ceiling.
"""

if TYPE_CHECKING:
    TeamPolicy = _TeamPolicyBase
else:
    TeamPolicy = create_model(
        "TeamPolicy", __base__=_TeamPolicyBase, __doc__=TEAM_POLICY_DOC, **_team_policy_fields()
    )


class PolicySpec(_Wire):
    """How LiteLLM users are provisioned: defaults, per-group roles, allowed overrides."""

    user_id_domain: str | None = Field(
        default=None,
        pattern=r"^[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?$",
        description="Appended as @domain to user ids derived from metadata.name.",
    )
    defaults: SettingsPatch = Field(
        default_factory=SettingsPatch,
        description="Settings of every user of this policy, unless a role or an override "
        "says otherwise.",
    )
    roles: list[RoleSpec] = Field(
        default_factory=list,
        max_length=MAX_LIST_ITEMS,
        description="Per-group settings, in order: the first role whose group the user is in wins.",
    )
    overrides: OverridePolicy = Field(
        default_factory=OverridePolicy,
        description="What a LiteLLMUser may override for itself, and up to what.",
    )
    allowed_namespaces: list[NamespaceGlob] = Field(
        min_length=1,
        max_length=MAX_LIST_ITEMS,
        description='Namespaces (globs) whose LiteLLMUsers may use this policy; ["*"] = every '
        "namespace. Required: no policy applies everywhere by omission.",
    )
    identities: list[IdentityGrant] = Field(
        min_length=1,
        max_length=MAX_LIST_ITEMS,
        description="Which user ids and e-mails each namespace may provision; "
        '[{namespaces: ["*"], emails: ["*"], userIds: ["*"]}] = any. Required: no namespace '
        "may claim another's identity (and so its SSO sign-in) by omission.",
    )
    adopt_existing_users: bool = Field(
        default=False,
        description="Adopt LiteLLM users that exist without the operator's markers (never "
        "LiteLLM's own users, never a user whose role is above the one the policy gives: "
        "AdoptionRefused). Without it, spec.adopt of a LiteLLMUser has no effect.",
    )
    delete_adopted_users: bool = Field(
        default=False,
        description="Let deletionPolicy: Delete delete the users adopted under this policy. "
        "Recorded at adoption: a later change of the policy or of policyRef does not change "
        "it. Default: adopted users are always retained when their LiteLLMUser is deleted.",
    )
    sso: SsoOwnership = Field(
        default_factory=SsoOwnership,
        description="Who owns userRole, email and alias after creation: the operator or the "
        "identity provider (LiteLLM's SSO). Default: the operator owns all three.",
    )
    keys: KeyPolicy = Field(
        default_factory=KeyPolicy,
        description="What LiteLLMUsers may ask for in spec.keys (virtual keys in Secrets).",
    )
    teams: TeamPolicy | None = Field(
        default=None,
        description="What LiteLLMTeams of this policy may be. Absent: none may use it.",
    )


USER_ID_IMMUTABLE_RULE = (
    "!has(oldSelf.userId) || (has(self.userId) && self.userId == oldSelf.userId)"
)
SSO_USER_ID_IMMUTABLE_RULE = (
    "!has(oldSelf.ssoUserId) || (has(self.ssoUserId) && self.ssoUserId == oldSelf.ssoUserId)"
)
"""LiteLLM 1.108's /user/update ignores sso_user_id: only /user/new sets it."""
USER_ID_PINNED_RULE = (
    "!has(oldSelf.status) || !has(oldSelf.status.userId) || !has(self.spec) "
    "|| !has(self.spec.userId) || self.spec.userId == oldSelf.status.userId"
)
"""On the whole object: once the operator pinned a user id, spec.userId can only name it."""


class UserSpec(_Wire):
    """One LiteLLM user (a person or a service), provisioned from a ProvisioningPolicy."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                {"rule": USER_ID_IMMUTABLE_RULE, "message": "spec.userId is immutable once set"},
                {
                    "rule": SSO_USER_ID_IMMUTABLE_RULE,
                    "message": "spec.ssoUserId is immutable once set",
                },
            ]
        }
    )

    policy_ref: Name = Field(default="default", description="Name of the ProvisioningPolicy.")
    user_id: UserId | None = Field(
        default=None,
        description="LiteLLM user id, used verbatim (case-sensitive); an override that the "
        "policy must allow (overrides.allowedFields: [userId]). Default: "
        "metadata.name[@userIdDomain]. Immutable once set or once the operator pinned an id.",
    )
    sso_user_id: UserId | None = Field(
        default=None,
        description="The user's id at the identity provider (LiteLLM's sso_user_id, the claim "
        "GENERIC_USER_ID_ATTRIBUTE names), for people whose user id is not that claim; an "
        "override the policy must allow (overrides.allowedFields: [ssoUserId]). Set when the "
        "LiteLLM user is created (LiteLLM cannot change it later); immutable once set.",
    )
    email: Email | None = Field(
        default=None,
        description="The user's e-mail in LiteLLM (user_email), lower-cased; it must not "
        "belong to another LiteLLM user.",
    )
    alias: str | None = Field(
        default=None,
        max_length=MAX_NAME_LENGTH,
        pattern=PRINTABLE_PATTERN,
        description="Display name in LiteLLM (user_alias).",
    )
    groups: list[Name] = Field(
        default_factory=list,
        max_length=MAX_LIST_ITEMS,
        description="Backstage group refs. A group selects a policy role only where the "
        "policy grants that role to this namespace.",
    )
    overrides: SettingsPatch = Field(
        default_factory=SettingsPatch,
        description="Settings this user asks for itself; only the policy's "
        "overrides.allowedFields, clamped to its ceilings.",
    )
    deletion_policy: DeletionPolicy | None = Field(
        default=None,
        description="On delete: Delete the LiteLLM user or Retain it. Default: Delete, "
        "Retain for adopted users.",
    )
    suspend: bool = Field(default=False, description="Block the user's keys while true.")
    adopt: bool = Field(
        default=False,
        description="Adopt an existing LiteLLM user of this id; only where the policy sets "
        "adoptExistingUsers.",
    )
    keys: list[KeySpec] = Field(
        default_factory=list,
        max_length=MAX_KEYS,
        description="Virtual keys of the user, each delivered into a Secret in this namespace "
        "(api_key, base_url, OPENAI_API_KEY, OPENAI_BASE_URL). Annotate the LiteLLMUser with "
        "litellm.platform.dev/rotate: <new value> to rotate them all once.",
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"]},
    )


TEAM_ID_IMMUTABLE_RULE = (
    "!has(oldSelf.teamId) || (has(self.teamId) && self.teamId == oldSelf.teamId)"
)
TEAM_ID_PATTERN = r"^[^\x00-\x20\x7f/]+$"
"""As a user id, without "/": a policy's team entry <namespace>/<name> names a LiteLLMTeam."""
TeamId = Annotated[
    str,
    Field(
        min_length=1,
        max_length=MAX_ID_LENGTH,
        pattern=TEAM_ID_PATTERN,
        description="LiteLLM team id: case-sensitive, no spaces, slashes or control characters.",
    ),
]


class _TeamSpecBase(_Wire):
    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                {"rule": TEAM_ID_IMMUTABLE_RULE, "message": "spec.teamId is immutable once set"}
            ]
        }
    )

    policy_ref: Name = Field(default="default", description="Name of the ProvisioningPolicy.")
    team_id: TeamId | None = Field(
        default=None,
        description="LiteLLM team id, used verbatim; only one the policy's spec.identities "
        "teamIds grant to this namespace. Default: <namespace>.<name>. Immutable once set.",
    )
    deletion_policy: DeletionPolicy | None = Field(
        default=None,
        description="On delete: Delete the LiteLLM team (its memberships go with it) or Retain "
        "it. Default: Delete, Retain for adopted teams.",
    )
    adopt: bool = Field(
        default=False,
        description="Adopt an existing LiteLLM team of this id; only where the policy sets "
        "teams.adoptExistingTeams.",
    )
    keys: list[KeySpec] = Field(
        default_factory=list,
        max_length=MAX_KEYS,
        description="Virtual keys of the team (team_id set, no user), each delivered into a "
        "Secret in this namespace owned by the LiteLLMTeam (api_key, base_url, OPENAI_API_KEY, "
        "OPENAI_BASE_URL), bounded by the policy's keys section and the team's own models and "
        "limits. Annotate the LiteLLMTeam with litellm.platform.dev/rotate: <new value> to "
        "rotate them all once.",
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"]},
    )

    if TYPE_CHECKING:

        def __getattr__(self, name: str) -> Any: ...


def _team_spec_fields() -> dict[str, Any]:
    """Every team setting (fields.TEAM_FIELDS), optional: omitted means its default."""
    return {
        f.name: (f.type | None, Field(default=None, description=f.description)) for f in TEAM_FIELDS
    }


def _team_settings_fields() -> dict[str, Any]:
    """Every team setting with its value; "none" is a value (no cap, no limit)."""
    fields: dict[str, Any] = {}
    for f in TEAM_FIELDS:
        if f.nullable:
            fields[f.name] = (f.type, Field(default=None, description=f.description))
        elif isinstance(f.builtin, list | dict):
            factory = (lambda v: lambda: type(v)())(f.builtin)
            fields[f.name] = (f.type, Field(default_factory=factory, description=f.description))
        else:
            fields[f.name] = (f.type, Field(description=f.description))
    return fields


TEAM_SPEC_DOC = """One LiteLLM team, its settings bounded by a ProvisioningPolicy's teams section.

Its members come from the policy: a role's teams name it by its LiteLLM team id.
"""
TEAM_SETTINGS_DOC = "The settings the team must have in LiteLLM: its spec within the policy."

if TYPE_CHECKING:
    TeamSpec = _TeamSpecBase
    TeamSettings = _Settings
else:
    TeamSpec = create_model(
        "TeamSpec", __base__=_TeamSpecBase, __doc__=TEAM_SPEC_DOC, **_team_spec_fields()
    )
    TeamSettings = create_model(
        "TeamSettings", __base__=_Settings, __doc__=TEAM_SETTINGS_DOC, **_team_settings_fields()
    )


class Condition(_Wire):
    """A standard Kubernetes condition (metav1.Condition)."""

    type: Name = Field(description="Ready, Reconciling or Stalled (kstatus).")
    status: ConditionStatus = Field(description="True, False or Unknown.")
    reason: str | None = Field(default=None, description="Why, in one CamelCase word.")
    message: str | None = Field(default=None, description="Why, for people.")
    last_transition_time: str | None = Field(
        default=None,
        description="When status last changed.",
        json_schema_extra={"format": "date-time"},
    )
    observed_generation: int | None = Field(
        default=None, description="metadata.generation the condition was computed for."
    )


class PolicyRef(_Wire):
    """The policy (and its generation) the status was computed from."""

    name: str = Field(description="Name of the ProvisioningPolicy.")
    generation: int | None = Field(
        default=None, description="Its metadata.generation the status was computed against."
    )


class _Status(_Tolerant):
    """Status written by the operator; kopf's own fields (status.kopf) are preserved."""

    observed_generation: int | None = Field(
        default=None,
        description="metadata.generation the status is about; 0 until the operator acted.",
    )
    conditions: list[Condition] | None = Field(
        default=None, description="kstatus conditions: Ready, Reconciling, Stalled."
    )
    kopf: dict[str, Any] | None = Field(default=None, description="kopf's own bookkeeping.")


class UserStatus(_Status):
    """What the operator last did for this user."""

    user_id: str | None = Field(default=None, description="The LiteLLM user id.")
    effective: EffectiveSettings | None = Field(
        default=None, description="The settings the user must have (the merge); desired."
    )
    sources: dict[str, Source] | None = Field(
        default=None, description="Where each effective setting came from."
    )
    matched_role: str | None = Field(default=None, description="Group of the role that matched.")
    policy: PolicyRef | None = None
    last_synced_at: str | None = Field(
        default=None,
        description="When the operator last wrote to LiteLLM for this user.",
        json_schema_extra={"format": "date-time"},
    )
    spend: float | None = Field(default=None, description="USD spent, as LiteLLM last said.")
    max_budget: float | None = Field(
        default=None,
        description="USD budget LiteLLM holds, as last read after a successful reconcile "
        "(absent: no cap, or never synced).",
    )
    budget_reset_at: str | None = Field(
        default=None, description="When LiteLLM resets the spend, as LiteLLM last said."
    )
    managed_teams: list[str] | None = Field(
        default=None, description="Team memberships the operator added."
    )
    team_budgets: dict[str, TeamBudget] | None = Field(
        default=None,
        description="Per team id: the member budget (max_budget_in_team) the user has there, "
        "and where it comes from: the user's own maxBudgetInTeam, or the team's memberBudget.",
    )
    adopted: bool | None = Field(
        default=None, description="The operator adopted a LiteLLM user it had not created."
    )
    blocked_keys: list[str] | None = Field(
        default=None, description="Hashes of the keys the operator blocked for a suspension."
    )
    keys: list[KeyStatus] | None = Field(
        default=None, description="The virtual keys delivered into Secrets (spec.keys)."
    )


class TeamBudget(_Wire):
    """The member budget of a user in one team."""

    max_budget_in_team: float = Field(description="USD the user may spend in the team.")
    source: BudgetSource = Field(
        description="builtin, default, role or override: the user's own maxBudgetInTeam; "
        "team: the team's memberBudget."
    )


class KeyStatus(_Wire):
    """One key as the operator last delivered it; never the key itself."""

    name: str = Field(description="The key's name (spec.keys[].name).")
    secret_name: str = Field(description="The Secret that holds it.")
    key_alias: str = Field(description="Its key_alias in LiteLLM.")
    issued_at: str | None = Field(
        default=None,
        description="When the current key was issued (or last rotated).",
        json_schema_extra={"format": "date-time"},
    )
    previous_expires_at: str | None = Field(
        default=None,
        description="When the previous key, still valid after a rotation, is revoked.",
        json_schema_extra={"format": "date-time"},
    )
    ready: bool = Field(description="The Secret holds a key LiteLLM accepts.")
    rotation: str | None = Field(
        default=None,
        description="The litellm.platform.dev/rotate annotation the key was last issued under.",
    )


class TeamStatus(_Status):
    """What the operator last did for this team."""

    team_id: str | None = Field(default=None, description="The LiteLLM team id.")
    effective: TeamSettings | None = Field(
        default=None, description="The settings the team must have (spec within policy)."
    )
    policy: PolicyRef | None = None
    last_synced_at: str | None = Field(
        default=None,
        description="When the operator last wrote to LiteLLM for this team.",
        json_schema_extra={"format": "date-time"},
    )
    spend: float | None = Field(default=None, description="USD spent, as LiteLLM last said.")
    max_budget: float | None = Field(
        default=None,
        description="USD budget LiteLLM holds, as last read after a successful reconcile.",
    )
    members: int | None = Field(
        default=None,
        description="Members of the team in LiteLLM (added by the operator or by others); a "
        "count only, never who.",
    )
    adopted: bool | None = Field(
        default=None, description="The operator adopted a LiteLLM team it had not created."
    )
    keys: list[KeyStatus] | None = Field(
        default=None, description="The virtual keys delivered into Secrets (spec.keys)."
    )


class PolicyStatus(_Status):
    """The policy's rollout: its users, how many are reconciled against it, how many Ready."""

    users: int | None = Field(default=None, description="LiteLLMUsers that reference the policy.")
    updated_users: int | None = Field(
        default=None,
        description="Of those, how many were reconciled against this generation of the policy "
        "(and their own).",
    )
    ready_users: int | None = Field(default=None, description="Of those, how many are Ready.")
    litellm_version: str | None = Field(
        default=None,
        description="The version LiteLLM reported when the operator last read it (at start-up, "
        "after an outage, at each resync).",
    )


class ObjectMeta(_Tolerant):
    """The part of metav1.ObjectMeta the operator reads; other fields are kept."""

    model_config = ConfigDict(strict=False)

    name: str
    namespace: str | None = None
    uid: str | None = None
    generation: int | None = None
    resource_version: str | None = None
    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)


class _Object(BaseModel):
    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, strict=True, extra="ignore"
    )

    api_version: Literal["litellm.platform.dev/v1alpha1"] = "litellm.platform.dev/v1alpha1"
    metadata: ObjectMeta


class ProvisioningPolicy(_Object):
    """A cluster-scoped ProvisioningPolicy object."""

    kind: Literal["ProvisioningPolicy"] = "ProvisioningPolicy"
    spec: PolicySpec
    status: PolicyStatus | None = None


class LiteLLMUser(_Object):
    """A namespaced LiteLLMUser object."""

    kind: Literal["LiteLLMUser"] = "LiteLLMUser"
    spec: UserSpec = Field(default_factory=UserSpec)
    status: UserStatus | None = None


class LiteLLMTeam(_Object):
    """A namespaced LiteLLMTeam object."""

    kind: Literal["LiteLLMTeam"] = "LiteLLMTeam"
    spec: TeamSpec = Field(default_factory=TeamSpec)
    status: TeamStatus | None = None
