"""The API of litellm-operator: pydantic models of the two custom resources and their parts.

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

from typing import Annotated, Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

GROUP = "litellm.platform.dev"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"
POLICY_KIND = "ProvisioningPolicy"
USER_KIND = "LiteLLMUser"
POLICY_PLURAL = "provisioningpolicies"
USER_PLURAL = "litellmusers"

UserRole = Literal["proxy_admin", "proxy_admin_viewer", "internal_user", "internal_user_viewer"]
"""LiteLLM's user roles (LitellmUserRoles), without the team/customer/org roles."""
USER_ROLES: tuple[str, ...] = get_args(UserRole)

Source = Literal["builtin", "default", "role", "override"]
"""Where an effective setting came from, lowest to highest precedence."""
SOURCES: tuple[str, ...] = get_args(Source)

DeletionPolicy = Literal["Delete", "Retain"]
OverridableField = Literal[
    "maxBudget",
    "budgetDuration",
    "models",
    "teams",
    "tpmLimit",
    "rpmLimit",
    "userRole",
    "metadata",
]
ConditionStatus = Literal["True", "False", "Unknown"]

DURATION_PATTERN = r"^[1-9][0-9]*(s|m|h|d|mo)$"

Budget = Annotated[float, Field(ge=0, description="USD, never negative.")]
Limit = Annotated[int, Field(ge=0)]
Duration = Annotated[
    str,
    Field(pattern=DURATION_PATTERN, description="Budget period: 30d, 7d, 24h, 30m, 1mo ..."),
]
Name = Annotated[str, Field(min_length=1)]
ModelList = Annotated[list[Name], Field(description="Model names; [] means all models.")]
TeamList = Annotated[list[Name], Field(description="LiteLLM team ids the user is a member of.")]
StringMap = dict[str, str]


class _Wire(BaseModel):
    """Base of every model: camelCase on the wire, strict types."""

    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, strict=True, extra="forbid"
    )


class _Tolerant(_Wire):
    """Base of objects other writers (Kubernetes, kopf) add fields to."""

    model_config = ConfigDict(extra="allow")


class SettingsPatch(_Wire):
    """A partial set of LiteLLM user settings: a layer of the merge.

    An omitted field (or null) leaves the layer below in force, except in spec.defaults of a
    policy, where an explicit null maxBudget means "no cap" (and likewise for the other
    nullable scalars: no duration, no TPM/RPM limit).
    """

    max_budget: Budget | None = None
    budget_duration: Duration | None = None
    models: ModelList | None = None
    teams: TeamList | None = None
    tpm_limit: Limit | None = Field(default=None, description="Tokens per minute.")
    rpm_limit: Limit | None = Field(default=None, description="Requests per minute.")
    user_role: UserRole | None = Field(
        default=None,
        description="LiteLLM role: proxy_admin, proxy_admin_viewer, internal_user or "
        "internal_user_viewer.",
    )
    metadata: StringMap | None = Field(
        default=None, description="Merged over the layer below, key by key."
    )


class RoleSpec(SettingsPatch):
    """Settings for the members of one group; the first role whose group matches wins."""

    group: str = Field(
        min_length=1,
        description="Backstage group ref: name, group:name or group:namespace/name.",
    )


class OverridePolicy(_Wire):
    """What a LiteLLMUser may override for itself, and the ceilings of those overrides.

    Overriding a field not listed in allowedFields is an error. An override can never grant
    more than the policy allows:

    - maxBudget, tpmLimit, rpmLimit above their ceiling are clamped to it; without a ceiling,
      the value the user would get without the override is the ceiling (overrides only lower);
    - models must be a subset of allowedModels (when absent: of the models the user would get
      without the override); teams likewise with allowedTeams;
    - userRole must be in allowedUserRoles (when absent: no more privileged than the role the
      user would get without the override);
    - budgetDuration may not be shorter than the one the user would get without the override
      (a shorter period resets the budget more often).
    """

    allowed_fields: list[OverridableField] = Field(
        default_factory=list,
        description="Fields a LiteLLMUser may set in spec.overrides; [] = none.",
    )
    max_budget: Budget | None = Field(default=None, description="Ceiling of a maxBudget override.")
    tpm_limit: Limit | None = Field(default=None, description="Ceiling of a tpmLimit override.")
    rpm_limit: Limit | None = Field(default=None, description="Ceiling of an rpmLimit override.")
    allowed_models: list[Name] | None = Field(
        default=None, description="Models a models override may name."
    )
    allowed_teams: list[Name] | None = Field(
        default=None, description="Teams a teams override may name."
    )
    allowed_user_roles: list[UserRole] | None = Field(
        default=None, description="Roles a userRole override may choose."
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
        description="Per-group settings, in order: the first role whose group the user is in wins.",
    )
    overrides: OverridePolicy = Field(
        default_factory=OverridePolicy,
        description="What a LiteLLMUser may override for itself, and up to what.",
    )
    allowed_namespaces: list[Name] = Field(
        default_factory=list,
        description="Namespaces (glob patterns) whose users may use this policy; [] = all.",
    )
    adopt_existing_users: bool = Field(
        default=False,
        description="Adopt LiteLLM users that exist without the operator's markers.",
    )


USER_ID_IMMUTABLE_RULE = (
    "!has(oldSelf.userId) || (has(self.userId) && self.userId == oldSelf.userId)"
)


class UserSpec(_Wire):
    """One LiteLLM user (a person or a service), provisioned from a ProvisioningPolicy."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                {"rule": USER_ID_IMMUTABLE_RULE, "message": "spec.userId is immutable once set"}
            ]
        }
    )

    policy_ref: Name = Field(default="default", description="Name of the ProvisioningPolicy.")
    user_id: Name | None = Field(
        default=None,
        description="LiteLLM user id, used verbatim. Default: metadata.name[@userIdDomain].",
    )
    email: str | None = Field(
        default=None, description="The user's e-mail in LiteLLM (user_email)."
    )
    alias: str | None = Field(
        default=None, description="A display name for the user in LiteLLM (user_alias)."
    )
    groups: list[Name] = Field(default_factory=list, description="Backstage group refs.")
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
    adopt: bool = Field(default=False, description="Adopt an existing LiteLLM user of this id.")


class EffectiveSettings(_Wire):
    """The settings the user must have in LiteLLM: the result of the merge."""

    # Nullable settings default to None so a status without them (nulls are pruned by merge
    # patches) is still valid against the generated schema.
    max_budget: Budget | None = Field(default=None, description="USD; null means no cap.")
    budget_duration: Duration | None = None
    models: ModelList
    teams: TeamList
    tpm_limit: Limit | None = Field(default=None, description="Tokens per minute; null: none.")
    rpm_limit: Limit | None = Field(default=None, description="Requests per minute; null: none.")
    user_role: UserRole = Field(description="LiteLLM role of the user.")
    metadata: StringMap = Field(description="Keys the policy puts in the user's LiteLLM metadata.")


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
    adopted: bool | None = Field(
        default=None, description="The operator adopted a LiteLLM user it had not created."
    )
    blocked_keys: list[str] | None = Field(
        default=None, description="Hashes of the keys the operator blocked for a suspension."
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
    spec: PolicySpec = Field(default_factory=PolicySpec)
    status: PolicyStatus | None = None


class LiteLLMUser(_Object):
    """A namespaced LiteLLMUser object."""

    kind: Literal["LiteLLMUser"] = "LiteLLMUser"
    spec: UserSpec = Field(default_factory=UserSpec)
    status: UserStatus | None = None
