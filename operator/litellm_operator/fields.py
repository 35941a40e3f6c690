"""Every managed LiteLLM user setting, declared once.

A :class:`ManagedField` says all there is to know about one setting: its name in the CRDs and in
LiteLLM, its type and built-in value, where LiteLLM keeps it (a user column, a key of the user's
``metadata``, the user's team memberships, or each membership's budget), how an explicit "none"
is written to LiteLLM (LiteLLM 1.108 cannot clear every column with ``null``), how a LiteLLMUser's
override of it is bounded, and how desired and observed values compare.

Everything else is derived from :data:`FIELDS`: the pydantic models and so the CRD schemas and
``kubectl explain`` (models.py), the merge and the override rules (policy.py), the ``/user/new``
and ``/user/update`` bodies, the diff and the parsing of what LiteLLM holds (plan.py), the status
and ``litellm-operator explain``, and the README's field table (checked by a test). Pure: no I/O.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import Field
from pydantic.alias_generators import to_camel

UserRole = Literal["proxy_admin", "proxy_admin_viewer", "internal_user", "internal_user_viewer"]
"""LiteLLM's user roles (LitellmUserRoles), without the team/customer/org roles."""
MANAGER = "litellm-operator"
"""The operator's name: in its LiteLLM metadata markers and its Kubernetes labels."""
MARKER_PREFIX = "litellm.platform.dev/"
"""The prefix of the operator's markers in LiteLLM metadata."""
MANAGED_BY = MARKER_PREFIX + "managed-by"
"""The marker naming the manager (:data:`MANAGER`) of a LiteLLM user or key."""

ROLE_RANK: dict[str, int] = {
    "internal_user_viewer": 0,
    "internal_user": 1,
    "proxy_admin_viewer": 2,
    "proxy_admin": 3,
}
"""The roles from least to most privileged; LiteLLM's other roles (org_admin, team ...) are
outside it and count as above every one of them."""

DURATION_PATTERN = r"^[1-9][0-9]*(s|m|h|d|mo)$"
DURATION_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "mo": 30 * 86400}
MAX_NAME_LENGTH = 253
MAX_LIST_ITEMS = 64
MAX_METADATA_ENTRIES = 32
MAX_METADATA_KEY_LENGTH = 128
MAX_METADATA_VALUE_LENGTH = 512

ALL_PROXY_MODELS = "all-proxy-models"
"""LiteLLM's model name for "every model": ``[]`` cannot be written by ``/user/update``."""
UNLIMITED_PARALLEL_REQUESTS = 2**31 - 1
"""LiteLLM ignores ``null`` for ``max_parallel_requests``: "no limit" is written as the largest
value its integer column holds, and read back as no limit."""


def duration_seconds(duration: str) -> int:
    """A budget period (:data:`DURATION_PATTERN`) in seconds; a month counts 30 days."""
    match = re.fullmatch(r"([0-9]+)(mo|s|m|h|d)", duration)
    if match is None:  # unreachable for validated input: the schema pattern is the same
        raise ValueError(f"not a duration: {duration!r}")
    return int(match.group(1)) * DURATION_SECONDS[match.group(2)]


Budget = Annotated[float, Field(ge=0, description="USD, never negative.")]
Limit = Annotated[int, Field(ge=0)]
Duration = Annotated[
    str,
    Field(pattern=DURATION_PATTERN, description="Budget period: 30d, 7d, 24h, 30m, 1mo ..."),
]
Name = Annotated[
    str, Field(min_length=1, max_length=MAX_NAME_LENGTH, pattern=r"^[^\x00-\x1f\x7f]+$")
]
ModelList = Annotated[list[Name], Field(max_length=MAX_LIST_ITEMS)]
TeamList = Annotated[list[Name], Field(max_length=MAX_LIST_ITEMS)]
MetadataKey = Annotated[str, Field(min_length=1, max_length=MAX_METADATA_KEY_LENGTH)]
MetadataValue = Annotated[str, Field(max_length=MAX_METADATA_VALUE_LENGTH)]
StringMap = Annotated[dict[MetadataKey, MetadataValue], Field(max_length=MAX_METADATA_ENTRIES)]
ModelKey = Annotated[str, Field(min_length=1, max_length=MAX_NAME_LENGTH)]
LimitMap = Annotated[dict[ModelKey, Limit], Field(max_length=MAX_LIST_ITEMS)]


class Home(StrEnum):
    """Where LiteLLM keeps a setting, and so which calls read and write it."""

    USER = "user"
    """A column of the user: ``/user/new``, ``/user/update``, read by ``/user/info``."""
    METADATA = "metadata"
    """A key of the user's ``metadata`` (LiteLLM reads per-model limits from there)."""
    TEAMS = "teams"
    """The user's team memberships: ``/team/member_add`` and ``/team/member_delete``."""
    MEMBERSHIP = "membership"
    """The budget of each of those memberships: ``/team/member_add``, ``/team/member_update``,
    read by ``/team/info``."""
    TEAM = "team"
    """A column of a LiteLLM team: ``/team/new``, ``/team/update``, read by ``/team/list``
    (a LiteLLMTeam's own settings, :data:`TEAM_FIELDS`)."""
    KEY = "key"
    """A setting of each of the user's virtual keys: ``/key/generate``, ``/key/update``, read
    by ``/key/info`` (a key's own fields, :data:`KEY_FIELDS`)."""


class Bound(StrEnum):
    """How a LiteLLMUser's override of the setting is bounded by its policy."""

    CEILING = "ceiling"
    """Clamped to ``overrides.<field>``; without it, to the value the user would get anyway."""
    NEVER_SHORTER = "never-shorter"
    """A budget period may only get longer (a shorter one resets the budget more often)."""
    ROLE = "role"
    """In ``overrides.allowedUserRoles``; without it, no more privileged than the policy's."""
    ALLOW_LIST = "allow-list"
    """A subset of ``overrides.allowed<Field>``; without it, of the policy's own list."""
    PER_KEY_CEILING = "per-key-ceiling"
    """A map of limits: each entry at most the policy's limit for that key (none: any)."""
    FREE = "free"
    """Any value (metadata, merged key by key over the policy's)."""


class Compare(StrEnum):
    """How a desired value and the value LiteLLM holds are judged equal."""

    EXACT = "exact"
    AMOUNT = "amount"
    """Numbers, with a tolerance for LiteLLM's floating point."""
    SET = "set"
    """Lists whose order does not matter."""
    LIMITS = "limits"
    """Maps of numbers, compared key by key as numbers."""


Merge = Literal["replace", "keys"]
"""How a layer applies to the layer below: replace the value, or merge a map key by key."""


@dataclass(frozen=True)
class ManagedField:
    """One managed setting of a LiteLLM user (:data:`FIELDS`) or of its keys
    (:data:`KEY_FIELDS`)."""

    name: str
    """Python name (snake_case); the CRD name is its camelCase (:attr:`wire`)."""
    type: Any
    """Type of the effective value (``X | None`` when "none" is a value: no cap, no limit)."""
    builtin: Any
    """The value of a user whose policy says nothing."""
    description: str
    home: Home
    litellm: str
    """LiteLLM's name: the user column, the metadata key, or the team-member field."""
    bound: Bound
    compare: Compare = Compare.EXACT
    merge: Merge = "replace"
    clearable: bool = True
    """Whether an explicit ``null`` on ``/user/update`` clears it (LiteLLM 1.108: only
    max_budget, budget_duration, tpm_limit and rpm_limit)."""
    written_as_none: Any = None
    """What is written for "none" where ``null`` does not clear (``[]``/None → this)."""

    @property
    def wire(self) -> str:
        return to_camel(self.name)

    @property
    def nullable(self) -> bool:
        """ "none" (no cap, no limit, no period) is a value of its own, not "unset"."""
        return self.builtin is None or type(None) in getattr(self.type, "__args__", ())

    def to_litellm(self, value: Any) -> Any:
        """The value as LiteLLM stores it (``/user/new`` and ``/user/update`` bodies)."""
        if self.written_as_none is not None and value in (None, []):
            return self.written_as_none
        if isinstance(value, list):
            return list(value)
        if isinstance(value, Mapping):
            return dict(value)
        return value

    def from_litellm(self, raw: Any) -> Any:
        """What LiteLLM holds, in the effective settings' terms (the inverse of to_litellm)."""
        comparable = list(raw) if isinstance(raw, list | tuple) else raw
        if self.written_as_none is not None and comparable == self.written_as_none:
            return [] if isinstance(self.builtin, list) else None
        if isinstance(self.builtin, list):
            return list(raw or [])
        if isinstance(self.builtin, dict):
            return dict(raw) if isinstance(raw, Mapping) else {}
        return raw

    def same(self, desired: Any, observed: Any) -> bool:
        """Whether LiteLLM holds the desired value (observed already through from_litellm)."""
        return COMPARATORS[self.compare](desired, observed)


def _same_amount(a: Any, b: Any) -> bool:
    if a is None or b is None:
        return a is b
    return math.isclose(float(a), float(b), rel_tol=1e-9, abs_tol=1e-9)


def _same_set(a: Any, b: Any) -> bool:
    return frozenset(a or ()) == frozenset(b or ())


def _same_limits(a: Any, b: Any) -> bool:
    a, b = dict(a or {}), dict(b or {})
    return a.keys() == b.keys() and all(_same_amount(a[k], b[k]) for k in a)


COMPARATORS: Mapping[Compare, Callable[[Any, Any], bool]] = {
    Compare.EXACT: lambda a, b: bool(a == b),
    Compare.AMOUNT: _same_amount,
    Compare.SET: _same_set,
    Compare.LIMITS: _same_limits,
}

FIELDS: tuple[ManagedField, ...] = (
    ManagedField(
        "max_budget",
        Budget | None,
        10.0,
        "USD the user may spend per budget period; null means no cap.",
        Home.USER,
        "max_budget",
        Bound.CEILING,
        Compare.AMOUNT,
    ),
    ManagedField(
        "budget_duration",
        Duration | None,
        "30d",
        "Budget period after which spend resets: 30d, 7d, 24h, 1mo; null: never resets.",
        Home.USER,
        "budget_duration",
        Bound.NEVER_SHORTER,
    ),
    ManagedField(
        "models",
        ModelList,
        [],
        "Models the user may call; [] means all models.",
        Home.USER,
        "models",
        Bound.ALLOW_LIST,
        Compare.SET,
        clearable=False,
        written_as_none=[ALL_PROXY_MODELS],
    ),
    ManagedField(
        "teams",
        TeamList,
        [],
        "LiteLLM team ids the user is a member of (memberships others added are kept).",
        Home.TEAMS,
        "teams",
        Bound.ALLOW_LIST,
        Compare.SET,
        clearable=False,
    ),
    ManagedField(
        "max_budget_in_team",
        Budget | None,
        None,
        "USD the user may spend in each of its teams (a per-membership budget); null: none.",
        Home.MEMBERSHIP,
        "max_budget_in_team",
        Bound.CEILING,
        Compare.AMOUNT,
    ),
    ManagedField(
        "tpm_limit",
        Limit | None,
        None,
        "Tokens per minute; null means no limit.",
        Home.USER,
        "tpm_limit",
        Bound.CEILING,
    ),
    ManagedField(
        "rpm_limit",
        Limit | None,
        None,
        "Requests per minute; null means no limit.",
        Home.USER,
        "rpm_limit",
        Bound.CEILING,
    ),
    ManagedField(
        "max_parallel_requests",
        Limit | None,
        None,
        "Requests in flight at once; null means no limit.",
        Home.USER,
        "max_parallel_requests",
        Bound.CEILING,
        clearable=False,
        written_as_none=UNLIMITED_PARALLEL_REQUESTS,
    ),
    ManagedField(
        "model_rpm_limit",
        LimitMap,
        {},
        "Requests per minute per model (model: limit); merged key by key over the layer below.",
        Home.METADATA,
        "model_rpm_limit",
        Bound.PER_KEY_CEILING,
        Compare.LIMITS,
        merge="keys",
    ),
    ManagedField(
        "model_tpm_limit",
        LimitMap,
        {},
        "Tokens per minute per model (model: limit); merged key by key over the layer below.",
        Home.METADATA,
        "model_tpm_limit",
        Bound.PER_KEY_CEILING,
        Compare.LIMITS,
        merge="keys",
    ),
    ManagedField(
        "user_role",
        UserRole,
        "internal_user",
        "LiteLLM role of the user.",
        Home.USER,
        "user_role",
        Bound.ROLE,
        clearable=False,
    ),
    ManagedField(
        "metadata",
        StringMap,
        {},
        "Free-form string metadata, merged key by key over the layer below.",
        Home.METADATA,
        "metadata",
        Bound.FREE,
        merge="keys",
        clearable=False,
    ),
)
"""Every managed setting, in the order status, explain and the CRDs show them."""

INFERENCE_ROUTES = ("llm_api_routes",)
"""The ``allowed_routes`` of every key the operator issues: LiteLLM's route group of its LLM API
(OpenAI/Anthropic/Google-style inference, ``/v1/models``, ``/model/info``, provider
pass-through), none of its management routes (``/key/*``, ``/user/*``, ``/team/*`` ...). Checked
for every key by LiteLLM's route checks, no Enterprise license needed (tests/integration)."""


def key_field(
    name: str, type: Any, description: str, bound: Bound, compare: Compare = Compare.EXACT
) -> ManagedField:
    """A setting of each key: LiteLLM's key calls name it as the spec does, and a key that
    does not set it has none (lists: empty)."""
    builtin: Any = [] if name == "models" else None
    return ManagedField(name, type, builtin, description, Home.KEY, name, bound, compare)


def key_limit(name: str, what: str) -> ManagedField:
    """A limit of each key, at most its owner's own (:attr:`Bound.CEILING`)."""
    return key_field(
        name, Limit | None, f"{what} of the key, at most its user's or team's.", Bound.CEILING
    )


KEY_FIELDS: tuple[ManagedField, ...] = (
    key_field(
        "models",
        ModelList | None,
        "Models the key may call, within its user's or team's. Default: all of them.",
        Bound.ALLOW_LIST,
        Compare.SET,
    ),
    key_field("max_budget", Budget | None, "USD budget of the key.", Bound.FREE, Compare.AMOUNT),
    key_field(
        "budget_duration",
        Duration | None,
        "Period after which the key's spend resets; not shorter than its user's or team's.",
        Bound.NEVER_SHORTER,
    ),
    key_limit("tpm_limit", "Tokens per minute"),
    key_limit("rpm_limit", "Requests per minute"),
    key_limit("max_parallel_requests", "Concurrent requests"),
)
"""Every setting a ``spec.keys[]`` entry (of a LiteLLMUser or a LiteLLMTeam) may give, in the order
the CRD shows them.
Unlike a user's, a key's limits are cleared by ``null`` on ``/key/update`` (LiteLLM 1.108,
``tests/integration/test_litellm_keys.py``); its models by ``[]`` (``null`` is rejected).
Bounds: ``ceiling``, at most the owner's own (a team has no ``max_parallel_requests``: none);
``never-shorter``, a budget period not shorter than the owner's; ``allow-list``, within the
owner's models; ``free``, up to the policy's
``keys.maxBudget`` only."""

KEY_ROUTES = ManagedField(
    "allowed_routes",
    list[str],
    list(INFERENCE_ROUTES),
    "Routes the key may call: the LLM API only (:data:`INFERENCE_ROUTES`).",
    Home.KEY,
    "allowed_routes",
    Bound.FREE,
    Compare.SET,
    clearable=False,
)
"""Not in the spec: every key the operator issues has it, and it is kept so."""

KEY_COLUMNS: tuple[ManagedField, ...] = (*KEY_FIELDS, KEY_ROUTES)
"""What the operator writes and compares on each of its keys."""

TeamAlias = Annotated[
    str, Field(min_length=1, max_length=MAX_NAME_LENGTH, pattern=r"^[^\x00-\x1f\x7f]+$")
]

TEAM_FIELDS: tuple[ManagedField, ...] = (
    ManagedField(
        "alias",
        TeamAlias | None,
        None,
        "Display name of the team in LiteLLM (team_alias). Default: none.",
        Home.TEAM,
        "team_alias",
        Bound.FREE,
    ),
    ManagedField(
        "models",
        ModelList,
        [],
        "Models the team may call; [] means all models (only where the policy's "
        "teams.allowedModels is absent).",
        Home.TEAM,
        "models",
        Bound.ALLOW_LIST,
        Compare.SET,
    ),
    ManagedField(
        "max_budget",
        Budget | None,
        None,
        "USD the team may spend per budget period. Default: the policy's teams.maxBudget, "
        "else no cap.",
        Home.TEAM,
        "max_budget",
        Bound.CEILING,
        Compare.AMOUNT,
    ),
    ManagedField(
        "budget_duration",
        Duration | None,
        None,
        "Budget period after which the team's spend resets: 30d, 7d, 24h, 1mo. Default: never.",
        Home.TEAM,
        "budget_duration",
        Bound.FREE,
    ),
    ManagedField(
        "tpm_limit",
        Limit | None,
        None,
        "Tokens per minute of the team. Default: the policy's teams.tpmLimit, else none.",
        Home.TEAM,
        "tpm_limit",
        Bound.CEILING,
    ),
    ManagedField(
        "rpm_limit",
        Limit | None,
        None,
        "Requests per minute of the team. Default: the policy's teams.rpmLimit, else none.",
        Home.TEAM,
        "rpm_limit",
        Bound.CEILING,
    ),
    ManagedField(
        "member_budget",
        Budget | None,
        None,
        "USD each member may spend in the team (its max_budget_in_team), unless the member's "
        "own policy sets maxBudgetInTeam. Default: the policy's teams.memberBudget, else none.",
        Home.MEMBERSHIP,
        "max_budget_in_team",
        Bound.CEILING,
        Compare.AMOUNT,
    ),
    ManagedField(
        "model_rpm_limit",
        LimitMap,
        {},
        "Requests per minute per model (model: limit) of the team.",
        Home.METADATA,
        "model_rpm_limit",
        Bound.FREE,
        Compare.LIMITS,
    ),
    ManagedField(
        "model_tpm_limit",
        LimitMap,
        {},
        "Tokens per minute per model (model: limit) of the team.",
        Home.METADATA,
        "model_tpm_limit",
        Bound.FREE,
        Compare.LIMITS,
    ),
    ManagedField(
        "metadata",
        StringMap,
        {},
        "Free-form string metadata of the team (keys others set in LiteLLM are kept).",
        Home.METADATA,
        "metadata",
        Bound.FREE,
        merge="keys",
        clearable=False,
    ),
    ManagedField(
        "blocked",
        bool,
        False,
        "Block every request of the team (and its keys) while true.",
        Home.TEAM,
        "blocked",
        Bound.FREE,
        clearable=False,
    ),
)
"""Every setting of a LiteLLMTeam, declared once, in the order the CRD, status and explain show
them: the spec, the policy's ``teams`` ceilings and allow-lists (:data:`TEAM_BOUNDS`), the
``/team/new`` and ``/team/update`` bodies and the drift comparison come from here.
LiteLLM 1.108 (tests/integration/test_litellm_teams.py): ``/team/update`` clears
``team_alias``, ``max_budget``, ``budget_duration``, ``tpm_limit`` and ``rpm_limit`` with
``null`` and ``models`` with ``[]``, and replaces ``metadata`` whole; ``/team/new`` and
``/team/update`` ignore ``max_parallel_requests`` (the team column exists, the API does not
write it), so it is not a team setting. ``member_budget`` is no team column: it is each
member's ``max_budget_in_team``, written by the members' reconciles (the team records it in its
``metadata`` for them, :data:`~litellm_operator.users.plan.MEMBER_BUDGET`). Bounds:
``ceiling``, at most the policy's ``teams.<field>`` (an omitted one defaults to it);
``allow-list``, within ``teams.allowed<Field>``; ``free``, any value."""

TEAM_BY_NAME: Mapping[str, ManagedField] = {f.name: f for f in TEAM_FIELDS}
TEAM_COLUMNS: tuple[ManagedField, ...] = tuple(f for f in TEAM_FIELDS if f.home is Home.TEAM)
"""Team settings that are LiteLLM team columns (``/team/new``, ``/team/update``)."""
TEAM_METADATA_KEYS: tuple[ManagedField, ...] = tuple(
    f for f in TEAM_FIELDS if f.home is Home.METADATA
)
"""Team settings LiteLLM keeps in the team's ``metadata`` (``metadata`` itself included)."""
TEAM_CLEARABLE = frozenset(f.litellm for f in TEAM_COLUMNS if f.clearable)
"""Team columns an explicit ``null`` (``models``: ``[]``) on ``/team/update`` clears."""
TEAM_NAMES: tuple[str, ...] = tuple(f.name for f in TEAM_FIELDS)
TEAM_CEILINGS: tuple[ManagedField, ...] = tuple(f for f in TEAM_FIELDS if f.bound is Bound.CEILING)
"""The team settings the policy's ``teams`` section caps (``teams.maxBudget`` ...)."""
TEAM_ALLOW_LISTS: Mapping[str, str] = {
    f.name: "allowed_" + f.name for f in TEAM_FIELDS if f.bound is Bound.ALLOW_LIST
}
"""Team list settings → the ``teams`` field bounding them (``allowed_models``)."""

BY_NAME: Mapping[str, ManagedField] = {f.name: f for f in FIELDS}
BY_WIRE: Mapping[str, ManagedField] = {f.wire: f for f in FIELDS}
NAMES: tuple[str, ...] = tuple(f.name for f in FIELDS)


def at_home(home: Home) -> tuple[ManagedField, ...]:
    """The fields LiteLLM keeps in ``home``."""
    return tuple(f for f in FIELDS if f.home is home)


USER_COLUMNS = at_home(Home.USER)
METADATA_KEYS = at_home(Home.METADATA)
CLEARABLE = frozenset(f.litellm for f in USER_COLUMNS if f.clearable)
"""LiteLLM user columns that an explicit ``null`` on ``/user/update`` clears."""
RESERVED_METADATA_KEYS = frozenset(f.litellm for f in METADATA_KEYS if f.name != "metadata")
"""Metadata keys that hold settings of their own: policy metadata cannot set them."""
ALLOW_LIST_NAMES: Mapping[str, str] = {
    f.name: "allowed_" + f.name for f in FIELDS if f.bound is Bound.ALLOW_LIST
}
"""List fields → the OverridePolicy field bounding their overrides (allowed_models ...)."""


OVERRIDE_BOUNDS: Mapping[Bound, str] = {
    Bound.CEILING: "at most `overrides.{wire}`, else lowers only",
    Bound.NEVER_SHORTER: "never shorter than the policy's",
    Bound.ROLE: "in `overrides.allowedUserRoles`, else no more privileged",
    Bound.ALLOW_LIST: "within `overrides.allowed{Wire}`, else the policy's list",
    Bound.PER_KEY_CEILING: "each entry at most the policy's for that model",
    Bound.FREE: "merged key by key",
}
WHERE: Mapping[Home, str] = {
    Home.TEAM: "team `{litellm}`",
    Home.KEY: "each key's `{litellm}`",
    Home.USER: "user `{litellm}`",
    Home.METADATA: "user `metadata.{litellm}`",
    Home.TEAMS: "team memberships",
    Home.MEMBERSHIP: "each membership's `{litellm}`",
}


def markdown_table() -> str:
    """The README's table of managed fields, rendered from the declarations."""
    rows = [
        "| field | in LiteLLM | built-in | override (where allowed) |",
        "| --- | --- | --- | --- |",
    ]
    for f in FIELDS:
        where = WHERE[f.home].format(litellm=f.litellm)
        if f.home is Home.METADATA and f.litellm == "metadata":
            where = "user `metadata` (keys others set are kept)"
        wire_title = f.wire[0].upper() + f.wire[1:]
        bound = OVERRIDE_BOUNDS[f.bound].format(wire=f.wire, Wire=wire_title)
        builtin = "none" if f.builtin in (None, [], {}) else f"`{f.builtin}`"
        if f.name == "models" and f.builtin == []:
            builtin = "all models"
        rows.append(f"| `{f.wire}` | {where} | {builtin} | {bound} |")
    return "\n".join(rows) + "\n"


TEAM_BOUNDS: Mapping[Bound, str] = {
    Bound.CEILING: "at most `teams.{wire}` (omitted: that ceiling)",
    Bound.ALLOW_LIST: "within `teams.allowed{Wire}`",
    Bound.FREE: "any",
}


def team_markdown_table() -> str:
    """The README's table of LiteLLMTeam settings, rendered from :data:`TEAM_FIELDS`."""
    rows = [
        "| field | in LiteLLM | built-in | policy bound |",
        "| --- | --- | --- | --- |",
    ]
    for f in TEAM_FIELDS:
        where = WHERE[f.home].format(litellm=f.litellm).replace("user ", "team ")
        if f.home is Home.MEMBERSHIP:
            where = "each member's `max_budget_in_team` (a default)"
        if f.home is Home.METADATA and f.litellm == "metadata":
            where = "team `metadata` (keys others set are kept)"
        wire_title = f.wire[0].upper() + f.wire[1:]
        bound = TEAM_BOUNDS[f.bound].format(wire=f.wire, Wire=wire_title)
        builtin = "none" if f.builtin in (None, [], {}) else f"`{f.builtin}`"
        if f.name == "models":
            builtin = "all models"
        rows.append(f"| `{f.wire}` | {where} | {builtin} | {bound} |")
    return "\n".join(rows) + "\n"
