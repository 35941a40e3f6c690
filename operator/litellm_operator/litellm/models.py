"""Wire models of the LiteLLM admin API: the fields the operator owns, typed.

Response models ignore unknown fields (LiteLLM adds fields between releases) and turn LiteLLM's
``null`` lists/maps into empty ones. Request models are sent with ``exclude_unset`` semantics:
a field never set is omitted (LiteLLM leaves it alone), a field set to ``None`` is sent as
``null``. See :class:`UpdateUserRequest` for which fields ``null`` can clear.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from types import UnionType
from typing import (
    TYPE_CHECKING,
    Annotated,
    Any,
    Literal,
    Self,
    TypeVar,
    Union,
    get_args,
    get_origin,
)

from pydantic import (
    AliasChoices,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    create_model,
    field_validator,
    model_validator,
)

from litellm_operator.fields import (
    CLEARABLE,
    KEY_COLUMNS,
    TEAM_CLEARABLE,
    TEAM_COLUMNS,
    USER_COLUMNS,
    ManagedField,
)
from litellm_operator.litellm.versions import NO_LIMIT

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

    @classmethod
    def of(cls, **fields: Any) -> Self:
        """The request from keyword fields (the managed ones are declared in
        :mod:`litellm_operator.fields`, not in a static signature); :class:`MalformedRequest`
        when it cannot be built."""
        return build(cls, fields)

    def __eq__(self, other: object) -> bool:
        """Equal when the same body is sent (a field set to ``None`` is not one left unset)."""
        return (
            isinstance(other, _Request)
            and type(other) is type(self)
            and self.to_wire() == other.to_wire()
        )

    __hash__ = None  # type: ignore[assignment]


class MalformedRequest(ValueError):
    """A request the operator built does not fit LiteLLM's API: a bug in the operator (a field
    the wire model does not know, a value LiteLLM would ignore), never retried. The message
    names the fields and the rule, never the values."""


Request = TypeVar("Request", bound=_Request)


def build(model: type[Request], fields: Mapping[str, Any]) -> Request:
    """``model`` from ``fields``, or :class:`MalformedRequest` saying why it cannot be."""
    try:
        return model(**fields)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or 'request'}: {err['msg']}"
            for err in exc.errors(include_input=False, include_url=False)
        )
        raise MalformedRequest(f"{model.__name__}: {problems}") from None


def _none_to_empty_list(value: Any) -> Any:
    return [] if value is None else value


def _none_to_empty_dict(value: Any) -> Any:
    return {} if value is None else value


StrList = Annotated[list[str], BeforeValidator(_none_to_empty_list)]
AnyMap = Annotated[dict[str, Any], BeforeValidator(_none_to_empty_dict)]


def _loose(declared: Any, *, reading: bool = True) -> Any:
    """The wire type of a declared setting: its declaration's type without the schema's
    bounds (validating values is the CRDs' work; LiteLLM may hold what the operator would never
    write). A record (``reading``) reads a null list or map as empty, and any role as text."""
    origin = get_origin(declared)
    if origin is Annotated:
        return _loose(get_args(declared)[0], reading=reading)
    if origin is Literal:
        return str if reading else declared
    if origin in (Union, UnionType):
        args = get_args(declared)
        kept = tuple(_loose(arg, reading=reading) for arg in args if arg is not type(None))
        if reading and len(kept) == 1 and kept[0] in (StrList, AnyMap):
            return kept[0]
        return Union[(*kept, type(None))]
    if origin is list:
        return StrList if reading else list[str]
    if origin is dict:
        return AnyMap if reading else dict[str, Any]
    return declared


def _read_columns(columns: Sequence[ManagedField]) -> dict[str, Any]:
    """The record's fields for the declared ``columns``: lists default to empty, the rest to
    ``None``."""
    fields: dict[str, Any] = {}
    for column in columns:
        loose = _loose(column.type)
        if loose in (StrList, AnyMap):
            fields[column.litellm] = (loose, Field(default_factory=type(column.builtin)))
        else:
            fields[column.litellm] = (loose | None, None)
    return fields


class _Record(_Response):
    if TYPE_CHECKING:  # the declared columns (fields.py), added by create_model

        def __getattr__(self, name: str) -> Any: ...


class _UserRecord(_Record):
    user_id: str
    metadata: AnyMap = Field(default_factory=dict)
    teams: StrList = Field(default_factory=list)
    user_email: str | None = None
    user_alias: str | None = None
    sso_user_id: str | None = None
    budget_reset_at: datetime | None = None
    spend: float = 0.0

    @field_validator("tpm_limit", "rpm_limit", check_fields=False)  # columns added by create_model
    @classmethod
    def _no_limit(cls, value: int | None) -> int | None:
        """What the client writes for "no limit" where ``null`` does not clear it reads as no
        limit, whatever the release."""
        return None if value == NO_LIMIT else value


USER_RECORD_DOC = """A user as ``/user/info`` (``user_info``), ``/user/list`` or ``/user/new``
returns it: its identity and the managed columns (``fields.USER_COLUMNS``)."""

if TYPE_CHECKING:
    LiteLLMUserRecord = _UserRecord
else:
    LiteLLMUserRecord = create_model(
        "LiteLLMUserRecord",
        __base__=_UserRecord,
        __doc__=USER_RECORD_DOC,
        **_read_columns(USER_COLUMNS),
    )


def _user_columns() -> dict[str, Any]:
    """The managed user columns (:data:`litellm_operator.fields.USER_COLUMNS`), each optional:
    a field never set is not sent."""
    return {f.litellm: (_loose(f.type, reading=False) | None, None) for f in USER_COLUMNS}


_UserFields: type[_Request] = create_model(  # the managed columns, and the identity beside them
    "_UserFields",
    __base__=_Request,
    user_email=(str | None, None),
    user_alias=(str | None, None),
    metadata=(dict[str, Any] | None, None),
    **_user_columns(),
)


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


class _TeamRecord(_Record):
    team_id: str
    members: Annotated[list[TeamMember], BeforeValidator(_none_to_empty_list)] = Field(
        default_factory=list, validation_alias="members_with_roles"
    )
    metadata: AnyMap = Field(default_factory=dict)
    blocked: bool = False
    spend: float = 0.0
    budget_reset_at: datetime | None = None
    memberships: Annotated[list[TeamMembershipRecord], BeforeValidator(_none_to_empty_list)] = (
        Field(
            default_factory=list,
            validation_alias=AliasChoices("memberships", "team_memberships"),
        )
    )
    """``/team/list``'s ``team_memberships`` of each team, or ``/team/info``'s (beside
    ``team_info``): each member's budget in the team."""

    def member_budget(self, user_id: str) -> float | None:
        """The user's ``max_budget_in_team`` in this team (none: no budget of its own)."""
        return next((m.max_budget_in_team for m in self.memberships if m.user_id == user_id), None)

    def member_role(self, user_id: str) -> str:
        return next((m.role for m in self.members if m.user_id == user_id), "user")

    @property
    def member_ids(self) -> set[str]:
        """The user ids of the members (LiteLLM's ``default_user_id`` admin included)."""
        return {m.user_id for m in self.members if m.user_id}


TEAM_RECORD_DOC = """A team as ``/team/info`` (``team_info``), ``/team/list`` or ``/team/new``
returns it: its members and the managed columns (``fields.TEAM_COLUMNS``)."""

if TYPE_CHECKING:
    TeamRecord = _TeamRecord
else:
    TeamRecord = create_model(
        "TeamRecord",
        __base__=_TeamRecord,
        __doc__=TEAM_RECORD_DOC,
        **_read_columns([c for c in TEAM_COLUMNS if c.litellm not in _TeamRecord.model_fields]),
    )


def _team_columns() -> dict[str, Any]:
    """The managed team columns (:data:`litellm_operator.fields.TEAM_COLUMNS`) and the metadata,
    each optional: a field never set is not sent."""
    columns: dict[str, Any] = {"metadata": (dict[str, Any] | None, None)}
    columns.update({f.litellm: (_loose(f.type, reading=False) | None, None) for f in TEAM_COLUMNS})
    return columns


_TeamFields: type[_Request] = create_model("_TeamFields", __base__=_Request, **_team_columns())


class NewTeamRequest(_TeamFields):
    """Body of ``/team/new``: send every managed column (LiteLLM's defaults are not ours)."""

    team_id: str


class UpdateTeamRequest(_TeamFields):
    """Body of ``/team/update`` (without ``team_id``, which the client adds).

    LiteLLM 1.108: omitted fields are left alone; ``null`` clears the clearable columns
    (:data:`~litellm_operator.fields.TEAM_CLEARABLE`), ``[]`` clears ``models`` (all models);
    ``metadata`` replaces the stored metadata whole. A ``null`` ``blocked`` or ``metadata``
    would do nothing, so this model rejects it.
    """

    @model_validator(mode="after")
    def _reject_ignored_clears(self) -> UpdateTeamRequest:
        for name in self.model_fields_set - TEAM_CLEARABLE:
            if getattr(self, name) is None:
                raise ValueError(f"LiteLLM ignores a null {name!r} on /team/update")
        return self


class _KeyRecord(_Record):
    token: str | None = None
    key_name: str | None = None
    key_alias: str | None = None
    user_id: str | None = None
    team_id: str | None = None
    spend: float = 0.0
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


KEY_RECORD_DOC = """A key's stored state (``/key/info`` ``info``, ``/key/list``, ``/user/info``
``keys``): its identity and the managed settings (``fields.KEY_COLUMNS``).

``token`` is the key's hash (safe to log and store); the secret value is never part of it."""

if TYPE_CHECKING:
    KeyRecord = _KeyRecord
else:
    KeyRecord = create_model(
        "KeyRecord", __base__=_KeyRecord, __doc__=KEY_RECORD_DOC, **_read_columns(KEY_COLUMNS)
    )


class _KeyRequest(_Request):
    user_id: str | None = None
    team_id: str | None = None
    key_alias: str | None = None
    duration: str | None = None
    metadata: dict[str, Any] | None = None


def _key_columns() -> dict[str, Any]:
    """The key's managed settings (:data:`litellm_operator.fields.KEY_COLUMNS`), each optional."""
    return {f.litellm: (_loose(f.type, reading=False) | None, None) for f in KEY_COLUMNS}


_KeyFields: type[_KeyRequest] = create_model(  # the key's managed settings, beside its identity
    "_KeyFields",
    __base__=_KeyRequest,
    **_key_columns(),
)


class GenerateKeyRequest(_KeyFields):
    """Body of ``/key/generate``: the key's identity and its managed settings
    (:data:`~litellm_operator.fields.KEY_COLUMNS`). A ``key_alias`` makes the call safe to
    recover after a lost response (the client looks the alias up instead of creating a second
    key)."""


class GeneratedKey(_Response):
    """``/key/generate``'s answer. ``key`` is the secret (``sk-…``), wrapped so it never prints."""

    key: SecretStr
    token: str | None = None
    key_alias: str | None = None
    user_id: str | None = None
    team_id: str | None = None
    expires: datetime | None = None
