"""Wire models of the LiteLLM admin API: the fields the operator owns, typed.

Response models ignore unknown fields (LiteLLM adds fields between releases) and turn LiteLLM's
``null`` lists/maps into empty ones. Request models are sent with ``exclude_unset`` semantics:
a field never set is omitted (LiteLLM leaves it alone), a field set to ``None`` is sent as
``null``. See :class:`UpdateUserRequest` for which fields ``null`` can clear.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SecretStr,
    field_validator,
    model_validator,
)

from litellm_operator.fields import CLEARABLE
from litellm_operator.litellm.versions import NO_LIMIT

UserRole = Literal["proxy_admin", "proxy_admin_viewer", "internal_user", "internal_user_viewer"]
TeamRole = Literal["user", "admin"]

#: Fields of ``/user/update`` that an explicit ``null`` clears (declared in fields.FIELDS).
#: ``null``, ``[]`` or ``{}`` for any other field is silently ignored by LiteLLM 1.108, so
#: :class:`UpdateUserRequest` rejects it.
CLEARABLE_USER_FIELDS = CLEARABLE


class _Response(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid")

    def to_wire(self) -> dict[str, Any]:
        """The JSON body: set fields only, explicit ``None`` kept as ``null``."""
        return self.model_dump(mode="json", exclude_unset=True)


def _none_to_empty_list(value: Any) -> Any:
    return [] if value is None else value


def _none_to_empty_dict(value: Any) -> Any:
    return {} if value is None else value


StrList = Annotated[list[str], BeforeValidator(_none_to_empty_list)]
AnyMap = Annotated[dict[str, Any], BeforeValidator(_none_to_empty_dict)]


class LiteLLMUserRecord(_Response):
    """A user as ``/user/info`` (``user_info``), ``/user/list`` or ``/user/new`` returns it."""

    user_id: str
    user_email: str | None = None
    user_alias: str | None = None
    user_role: str | None = None
    sso_user_id: str | None = None
    max_budget: float | None = None
    budget_duration: str | None = None
    budget_reset_at: datetime | None = None
    spend: float = 0.0
    models: StrList = Field(default_factory=list)
    tpm_limit: int | None = None
    rpm_limit: int | None = None
    max_parallel_requests: int | None = None
    metadata: AnyMap = Field(default_factory=dict)
    teams: StrList = Field(default_factory=list)

    @field_validator("tpm_limit", "rpm_limit")
    @classmethod
    def _no_limit(cls, value: int | None) -> int | None:
        """What the client writes for "no limit" where ``null`` does not clear it reads as no
        limit, whatever the release."""
        return None if value == NO_LIMIT else value


class _UserFields(_Request):
    user_email: str | None = None
    user_alias: str | None = None
    user_role: UserRole | None = None
    max_budget: float | None = None
    budget_duration: str | None = None
    models: list[str] | None = None
    tpm_limit: int | None = None
    rpm_limit: int | None = None
    max_parallel_requests: int | None = None
    metadata: dict[str, Any] | None = None


class NewUserRequest(_UserFields):
    """Body of ``/user/new``.

    LiteLLM fills omitted fields from the proxy's ``default_internal_user_params``, so send every
    managed field. ``auto_create_key`` defaults to ``False`` here (LiteLLM's default mints a key).
    """

    user_id: str
    sso_user_id: str | None = None
    """Only ``/user/new`` sets it: LiteLLM 1.108's ``/user/update`` ignores it."""
    auto_create_key: bool = False

    def to_wire(self) -> dict[str, Any]:
        body = super().to_wire()
        body["auto_create_key"] = self.auto_create_key
        return body


class UpdateUserRequest(_UserFields):
    """Body of ``/user/update`` (without ``user_id``, which the client adds).

    LiteLLM quirks (1.108), which the reconciler must respect:

    * ``/user/update`` on an unknown id creates the user: never use it to probe.
    * Omitted fields are left alone; explicit ``null`` clears only ``max_budget``,
      ``budget_duration``, ``tpm_limit`` and ``rpm_limit``. ``null``/``[]``/``{}`` for any other
      field is ignored, so this model rejects it (it would silently do nothing).
    * ``metadata`` replaces the stored metadata as a whole: send the full desired map.
    * Sending ``budget_duration`` recomputes ``budget_reset_at`` (calendar aligned), so resending
      an unchanged duration postpones the user's budget reset: send it only when it changed.
    """

    @model_validator(mode="after")
    def _reject_ignored_clears(self) -> UpdateUserRequest:
        for name in self.model_fields_set - CLEARABLE_USER_FIELDS:
            if getattr(self, name) in (None, [], {}):
                raise ValueError(
                    f"LiteLLM ignores an empty/null {name!r} on /user/update; "
                    f"only {sorted(CLEARABLE_USER_FIELDS)} can be cleared"
                )
        return self


class TeamMember(_Response):
    """One entry of a team's ``members_with_roles``."""

    user_id: str | None = None
    user_email: str | None = None
    role: str = "user"


class TeamMembershipRecord(_Response):
    """One entry of ``/team/info``'s ``team_memberships``: a member's budget in the team."""

    user_id: str
    budget: AnyMap = Field(default_factory=dict, validation_alias="litellm_budget_table")

    @property
    def max_budget_in_team(self) -> float | None:
        value = self.budget.get("max_budget")
        return None if value is None else float(value)


class TeamRecord(_Response):
    """A team as ``/team/info`` (``team_info``) or ``/team/new`` returns it."""

    team_id: str
    team_alias: str | None = None
    members: Annotated[list[TeamMember], BeforeValidator(_none_to_empty_list)] = Field(
        default_factory=list, validation_alias="members_with_roles"
    )
    max_budget: float | None = None
    models: StrList = Field(default_factory=list)
    metadata: AnyMap = Field(default_factory=dict)
    blocked: bool = False
    memberships: Annotated[list[TeamMembershipRecord], BeforeValidator(_none_to_empty_list)] = (
        Field(default_factory=list)
    )
    """From ``/team/info``'s ``team_memberships`` (beside ``team_info``)."""

    @property
    def member_ids(self) -> set[str]:
        """The user ids of the members (LiteLLM's ``default_user_id`` admin included)."""
        return {m.user_id for m in self.members if m.user_id}


class KeyRecord(_Response):
    """A key's stored state (``/key/info`` ``info``, ``/key/list``, ``/user/info`` ``keys``).

    ``token`` is the key's hash (safe to log and store); the secret value is never part of it.
    """

    token: str | None = None
    key_name: str | None = None
    key_alias: str | None = None
    user_id: str | None = None
    team_id: str | None = None
    models: StrList = Field(default_factory=list)
    max_budget: float | None = None
    budget_duration: str | None = None
    spend: float = 0.0
    tpm_limit: int | None = None
    rpm_limit: int | None = None
    max_parallel_requests: int | None = None
    allowed_routes: StrList = Field(default_factory=list)
    metadata: AnyMap = Field(default_factory=dict)
    blocked: bool = False
    expires: datetime | None = None
    created_at: datetime | None = None
    status: str | None = None  # /key/info only: "active" | "expired" | "revoked" | "deleted"

    @property
    def deleted(self) -> bool:
        """Whether this record comes from LiteLLM's archive of deleted keys."""
        return self.status == "deleted"

    @field_validator("blocked", mode="before")
    @classmethod
    def _null_is_unblocked(cls, value: Any) -> Any:
        return False if value is None else value


class GenerateKeyRequest(_Request):
    """Body of ``/key/generate``. A ``key_alias`` makes the call safe to recover after a lost
    response (the client looks the alias up instead of creating a second key)."""

    user_id: str | None = None
    team_id: str | None = None
    key_alias: str | None = None
    models: list[str] | None = None
    max_budget: float | None = None
    budget_duration: str | None = None
    tpm_limit: int | None = None
    rpm_limit: int | None = None
    max_parallel_requests: int | None = None
    allowed_routes: list[str] | None = None
    """Route groups (``llm_api_routes``) or routes the key may call; only an admin may set it."""
    duration: str | None = None
    metadata: dict[str, Any] | None = None


class GeneratedKey(_Response):
    """``/key/generate``'s answer. ``key`` is the secret (``sk-…``), wrapped so it never prints."""

    key: SecretStr
    token: str | None = None
    key_alias: str | None = None
    user_id: str | None = None
    team_id: str | None = None
    expires: datetime | None = None
