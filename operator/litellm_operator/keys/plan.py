"""Virtual keys delivered into Secrets: what each key should be, and the next step towards it.

Pure: no I/O. :func:`desired_keys` turns an owner's ``spec.keys`` (a LiteLLMUser's or a
LiteLLMTeam's, :mod:`litellm_operator.keys.owner`) and its policy's ``spec.keys`` into
:class:`DesiredKey` values (or the :class:`KeyRefusal` that stops the whole
reconcile before LiteLLM is touched). :func:`plan_keys` compares them with what is observed (the
operator's Secrets, described by hashes only, and the owner's keys in LiteLLM, found by their
deterministic ``key_alias``) and returns at most one action per key; the actor applies them,
observes again and plans again until nothing is left.

Crash safety lives in the Secret: a new key value is written to the Secret (as ``pending``)
*before* it is registered in LiteLLM, and LiteLLM stores a key as the SHA-256 of its value, so
any retry can tell from the Secret alone whether the key exists. A key is never registered
without its Secret, and never twice.

Aliases: the current key is ``<namespace>/<user>/<key>`` (a team's: ``team:<namespace>/<team>/
<key>``); during a rotation's grace period the previous key is renamed ``<alias>/previous``
(LiteLLM aliases are unique). No part can hold a ``/`` (a namespace and a key name are DNS
labels, an owner's name a DNS subdomain), so no owner ever wants an alias of another namespace
or of another kind.

Every key is for inference only (:data:`~litellm_operator.fields.INFERENCE_ROUTES`, a managed
key field), and what a key may ask for is bounded by the policy's ``spec.keys`` and its owner's
own models and limits (:class:`~litellm_operator.keys.owner.KeyBounds`): anything beyond is a
:class:`KeyRefusal`. Rotations (scheduled or requested) come at most once per
``keys.minRotateEvery`` per key.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from pydantic.alias_generators import to_camel

from litellm_operator.fields import (
    ALL_PROXY_MODELS,
    KEY_COLUMNS,
    KEY_FIELDS,
    Compare,
    duration_seconds,
)
from litellm_operator.keys.owner import (
    LIMITS_UP_TO_THE_OWNER,
    TEAM_OWNER,
    USER_OWNER,
    KeyBounds,
    KeyOwner,
    bounds_of,
)
from litellm_operator.models import (
    DEFAULT_MIN_ROTATE_EVERY,
    EffectiveSettings,
    KeyPolicy,
    KeySpec,
    LiteLLMTeam,
    LiteLLMUser,
    ProvisioningPolicy,
    TeamSettings,
)
from litellm_operator.reasons import Reason

DEFAULT_GRACE_PERIOD = "1h"
MAX_LABEL_LENGTH = 63
PREVIOUS_SUFFIX = "/previous"

ROTATE_ANNOTATION = "litellm.platform.dev/rotate"
"""On a LiteLLMUser or a LiteLLMTeam: a new value rotates every key of it once."""

# Secret annotations: the operator's crash-safe record of what it did (hashes, never values).
TOKEN_ANNOTATION = "litellm.platform.dev/token"
PENDING_ANNOTATION = "litellm.platform.dev/pending-token"
PREVIOUS_ANNOTATION = "litellm.platform.dev/previous-token"
PREVIOUS_EXPIRES_ANNOTATION = "litellm.platform.dev/previous-expires-at"
ISSUED_ANNOTATION = "litellm.platform.dev/issued-at"
ROTATION_ANNOTATION = "litellm.platform.dev/rotation"
"""The value of :data:`ROTATE_ANNOTATION` the key was last issued under."""

API_KEY = "api_key"
BASE_URL = "base_url"
PENDING_KEY = "pending_api_key"
"""Data of a Secret whose next key is chosen but not yet confirmed registered."""

_INTERVAL = re.compile(r"([0-9]+)(s|m|h|d)")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def interval(text: str) -> timedelta:
    """``1h30m`` → 90 minutes (the models' ``Interval`` pattern is already checked)."""
    return timedelta(seconds=sum(int(n) * _UNITS[u] for n, u in _INTERVAL.findall(text)))


class KeySettings:
    """A key's managed settings (:data:`~litellm_operator.fields.KEY_COLUMNS`), in the spec's
    terms: lists as tuples, "none" as ``None``. Equal when LiteLLM would hold the same: the
    declarations' comparisons (amounts with a tolerance, lists as sets)."""

    __slots__ = ("_values",)

    def __init__(self, **values: Any) -> None:
        unknown = values.keys() - KEY_NAMES
        if unknown:
            raise TypeError(f"not a key setting: {', '.join(sorted(unknown))}")
        self._values = {f.name: _frozen(values.get(f.name, f.builtin)) for f in KEY_COLUMNS}

    def __getattr__(self, name: str) -> Any:
        try:
            return self._values[name]
        except KeyError:
            raise AttributeError(name) from None

    def __repr__(self) -> str:
        return f"KeySettings({', '.join(f'{k}={v!r}' for k, v in self._values.items())})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, KeySettings) and not self.changed(other)

    def __hash__(self) -> int:
        return hash(tuple(v for f, v in zip(KEY_COLUMNS, self._values.values(), strict=True)
                          if f.compare is Compare.EXACT))  # fmt: skip

    def wire(self) -> dict[str, Any]:
        """Every setting as LiteLLM's key calls and records name and hold it."""
        return {f.litellm: f.to_litellm(_json(self._values[f.name])) for f in KEY_COLUMNS}

    @classmethod
    def from_wire(cls, record: Mapping[str, Any]) -> KeySettings:
        """The settings of a key record (what LiteLLM holds, in the spec's terms)."""
        return cls(**{f.name: f.from_litellm(record.get(f.litellm)) for f in KEY_COLUMNS})

    def changed(self, observed: KeySettings) -> dict[str, Any]:
        """The ``/key/update`` fields that make LiteLLM hold these settings instead of
        ``observed``'s (empty when it already holds them)."""
        return {
            f.litellm: f.to_litellm(_json(self._values[f.name]))
            for f in KEY_COLUMNS
            if not f.same(self._values[f.name], observed._values[f.name])
        }


KEY_NAMES = frozenset(f.name for f in KEY_COLUMNS)


def _frozen(value: Any) -> Any:
    return tuple(value) if isinstance(value, list) else value


def _json(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


@dataclass(frozen=True)
class DesiredKey:
    name: str
    secret_name: str
    key_alias: str
    settings: KeySettings
    rotate_every: timedelta | None
    grace_period: timedelta
    min_rotate_every: timedelta = field(default_factory=lambda: interval(DEFAULT_MIN_ROTATE_EVERY))
    """No new key sooner than this after the last one (the policy's keys.minRotateEvery)."""

    @property
    def previous_alias(self) -> str:
        return self.key_alias + PREVIOUS_SUFFIX


def describe(key: DesiredKey) -> dict[str, Any]:
    """A desired key as ``explain`` shows it (camelCase, like the spec)."""
    return {
        "name": key.name,
        "secretName": key.secret_name,
        "keyAlias": key.key_alias,
        **{f.wire: _json(getattr(key.settings, f.name)) for f in KEY_COLUMNS},
        "rotateEvery": _seconds(key.rotate_every),
        "gracePeriod": _seconds(key.grace_period),
    }


def _seconds(span: timedelta | None) -> str | None:
    """``7d``, ``1h``, ``90s``: the largest unit that divides the span."""
    if span is None:
        return None
    seconds = int(span.total_seconds())
    for unit in ("d", "h", "m"):
        if seconds and seconds % _UNITS[unit] == 0:
            return f"{seconds // _UNITS[unit]}{unit}"
    return f"{seconds}s"


@dataclass(frozen=True)
class KeyRefusal:
    reason: Reason
    message: str


def keys_of(
    user: LiteLLMUser, policy: ProvisioningPolicy, effective: EffectiveSettings
) -> tuple[DesiredKey, ...] | KeyRefusal:
    """:func:`desired_keys` of a LiteLLMUser under its policy, with its effective settings."""
    owner = KeyOwner(USER_OWNER, user.metadata.namespace or "", user.metadata.name)
    return desired_keys(
        owner, user.spec.keys, bounds_of(effective), policy.metadata.name, policy.spec.keys
    )


def team_keys_of(
    team: LiteLLMTeam, policy: ProvisioningPolicy, effective: TeamSettings
) -> tuple[DesiredKey, ...] | KeyRefusal:
    """:func:`desired_keys` of a LiteLLMTeam under its policy (the same ``keys`` section bounds
    users' and teams' keys), within the team's effective settings."""
    owner = KeyOwner(TEAM_OWNER, team.metadata.namespace or "", team.metadata.name)
    keys = team.spec.keys or []
    return desired_keys(owner, keys, bounds_of(effective), policy.metadata.name, policy.spec.keys)


def desired_keys(
    owner: KeyOwner,
    keys: Sequence[KeySpec],
    bounds: KeyBounds,
    policy_name: str,
    policy: KeyPolicy,
) -> tuple[DesiredKey, ...] | KeyRefusal:
    """The keys the owner asks for, within its policy and its own effective settings."""
    if not keys:
        return ()
    noun = owner.of.noun
    owner_models = [m for m in bounds.models if m != ALL_PROXY_MODELS]
    if len(owner.name) > MAX_LABEL_LENGTH:
        message = (
            f"keys need a {owner.of.kind} name of at most {MAX_LABEL_LENGTH} characters "
            "(it labels the keys' Secrets)"
        )
        return KeyRefusal(Reason.INVALID_SPEC, message)
    if not policy.allowed:
        message = f"policy {policy_name!r} does not allow keys (keys.allowed: false)"
        return KeyRefusal(Reason.OVERRIDE_FORBIDDEN, message)
    if policy.max_per_user is not None and len(keys) > policy.max_per_user:
        message = (
            f"{len(keys)} keys asked for; policy {policy_name!r} allows at most "
            f"{policy.max_per_user} per {noun} (keys.maxPerUser)"
        )
        return KeyRefusal(Reason.OVERRIDE_FORBIDDEN, message)
    desired: list[DesiredKey] = []
    secret_names: set[str] = set()
    for key in keys:
        ceiling = policy.max_budget
        if ceiling is not None and key.max_budget is not None and key.max_budget > ceiling:
            message = (
                f"key {key.name!r}: maxBudget {key.max_budget:g} is above the policy's "
                f"keys.maxBudget {ceiling:g}"
            )
            return KeyRefusal(Reason.OVERRIDE_FORBIDDEN, message)
        outside = sorted(set(key.models or ()) - set(owner_models)) if owner_models else []
        if outside:
            message = (
                f"key {key.name!r}: model(s) {', '.join(outside)} are not among the {noun}'s "
                f"models ({', '.join(owner_models)})"
            )
            return KeyRefusal(Reason.MODEL_NOT_ALLOWED, message)
        refusal = beyond_the_owner(key, bounds, noun) or beyond_the_policy(key, policy_name, policy)
        if refusal is not None:
            return refusal
        secret_name = key.secret_name or f"{owner.name}-{key.name}"
        if secret_name in secret_names:
            message = f"key {key.name!r}: Secret {secret_name!r} is used by another key"
            return KeyRefusal(Reason.INVALID_SPEC, message)
        secret_names.add(secret_name)
        rotate_every = key.rotate_every or policy.rotate_every
        grace = key.grace_period or policy.grace_period or DEFAULT_GRACE_PERIOD
        models = tuple(key.models) if key.models is not None else tuple(owner_models)
        asked = {f.name: getattr(key, f.name) for f in KEY_FIELDS}
        budget = key.max_budget if key.max_budget is not None else ceiling
        settings = KeySettings(**{**asked, "models": models, "max_budget": budget})
        desired.append(
            DesiredKey(
                name=key.name,
                secret_name=secret_name,
                key_alias=owner.prefix + key.name,
                settings=settings,
                rotate_every=interval(rotate_every) if rotate_every else None,
                grace_period=interval(grace),
                min_rotate_every=interval(policy.min_rotate_every),
            )
        )
    return tuple(desired)


def beyond_the_owner(key: KeySpec, bounds: KeyBounds, noun: str = "user") -> KeyRefusal | None:
    """A limit above the owner's own, or a budget period shorter than the owner's."""
    for name in LIMITS_UP_TO_THE_OWNER:
        asked, ceiling = getattr(key, name), (bounds.limits or {}).get(name)
        if asked is not None and ceiling is not None and asked > ceiling:
            message = (
                f"key {key.name!r}: {to_camel(name)} {asked} is above the {noun}'s own {ceiling}"
            )
            return KeyRefusal(Reason.OVERRIDE_FORBIDDEN, message)
    period, floor = key.budget_duration, bounds.budget_duration
    if period is None:
        return None
    if floor is None:
        message = (
            f"key {key.name!r}: budgetDuration {period}: the {noun}'s budget never resets, so a "
            "key's may not either"
        )
        return KeyRefusal(Reason.OVERRIDE_FORBIDDEN, message)
    if duration_seconds(period) < duration_seconds(floor):
        message = (
            f"key {key.name!r}: budgetDuration {period} is shorter than the {noun}'s {floor} "
            "(a shorter period resets the key's budget more often)"
        )
        return KeyRefusal(Reason.OVERRIDE_FORBIDDEN, message)
    return None


def beyond_the_policy(key: KeySpec, policy_name: str, policy: KeyPolicy) -> KeyRefusal | None:
    """A rotation more frequent than ``keys.minRotateEvery``, a grace period longer than
    ``keys.maxGracePeriod`` (the key's own or the policy's default)."""
    rotate_every = key.rotate_every or policy.rotate_every
    floor = policy.min_rotate_every
    if rotate_every is not None and interval(rotate_every) < interval(floor):
        message = (
            f"key {key.name!r}: rotateEvery {rotate_every} is shorter than policy "
            f"{policy_name!r}'s keys.minRotateEvery {floor}"
        )
        return KeyRefusal(Reason.OVERRIDE_FORBIDDEN, message)
    grace = key.grace_period or policy.grace_period or DEFAULT_GRACE_PERIOD
    ceiling = policy.max_grace_period
    if interval(grace) > interval(ceiling):
        message = (
            f"key {key.name!r}: gracePeriod {grace} is longer than policy {policy_name!r}'s "
            f"keys.maxGracePeriod {ceiling}"
        )
        return KeyRefusal(Reason.OVERRIDE_FORBIDDEN, message)
    return None


# --- observed ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class ObservedSecret:
    """One of the operator's Secrets, as hashes and timestamps (the values stay in kube.py)."""

    name: str
    key_name: str
    value_token: str | None
    """SHA-256 of ``data.api_key`` as it is now (``None``: absent)."""
    token: str | None = None
    """The hash the operator wrote (annotation): differs from ``value_token`` after an edit."""
    pending_token: str | None = None
    """Set (with ``data.pending_api_key``) from the moment a new value is chosen until it is
    registered and promoted."""
    previous_token: str | None = None
    previous_expires_at: datetime | None = None
    issued_at: datetime | None = None
    rotation: str | None = None
    base_url_ok: bool = True


@dataclass(frozen=True)
class ObservedKey:
    """One of the owner's keys in LiteLLM (found by alias)."""

    token: str
    alias: str
    blocked: bool = False
    settings: KeySettings = field(default_factory=KeySettings)
    created_at: datetime | None = None
    """When LiteLLM created it: unlike the Secret's annotations, nothing a tenant can edit."""


@dataclass(frozen=True)
class KeysObserved:
    secrets: Mapping[str, ObservedSecret]
    """By Secret name: every Secret labelled as this owner's."""
    litellm: Mapping[str, ObservedKey]
    """By alias: the owner's keys whose alias starts with its prefix."""


# --- actions -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class IssueKey:
    """Choose a new value and write it to the Secret as pending (creating the Secret if needed),
    after revoking ``revoke`` (keys whose value is lost); :class:`CompleteKey` follows."""

    key: DesiredKey
    why: str
    revoke: tuple[str, ...] = ()


@dataclass(frozen=True)
class CompleteKey:
    """Register the Secret's pending value unless LiteLLM has it, then promote it to
    ``api_key``. First ``drop`` is revoked (a key that holds the alias but is lost, or an older
    previous key) and ``keep``, the key being rotated out, is renamed to the previous alias
    (revoked at once when the grace period is 0s). ``previous`` is the key in its grace period
    once promoted."""

    key: DesiredKey
    keep: str | None = None
    drop: str | None = None
    previous: str | None = None


@dataclass(frozen=True)
class UpdateKey:
    key: DesiredKey
    token: str
    fields: Mapping[str, Any]


@dataclass(frozen=True)
class UnblockKey:
    key: DesiredKey
    token: str


@dataclass(frozen=True)
class RevokePrevious:
    """The grace period is over (or the previous key is no longer wanted)."""

    key: DesiredKey
    token: str | None


@dataclass(frozen=True)
class RefreshSecret:
    """The Secret's other data (base_url) no longer matches: rewrite it, value unchanged."""

    key: DesiredKey


@dataclass(frozen=True)
class RevokeKeys:
    """Keys of a key name no longer in the spec."""

    name: str
    tokens: tuple[str, ...]


@dataclass(frozen=True)
class DeleteSecret:
    name: str


KeyAction = (
    IssueKey
    | CompleteKey
    | UpdateKey
    | UnblockKey
    | RevokePrevious
    | RefreshSecret
    | RevokeKeys
    | DeleteSecret
)


@dataclass(frozen=True)
class KeysPlan:
    actions: tuple[KeyAction, ...]
    next_check: datetime | None = None
    """When a rotation or the end of a grace period is due (the reconciler requeues then)."""


def plan_keys(
    desired: Sequence[DesiredKey],
    observed: KeysObserved,
    *,
    now: datetime,
    prefix: str,
    suspended: bool = False,
    blocked_by_suspension: frozenset[str] = frozenset(),
    rotation: str | None = None,
) -> KeysPlan:
    """At most one action per key (and per unwanted Secret or key name): the next step."""
    actions: list[KeyAction] = []
    due: list[datetime] = []
    for key in desired:
        action, when = plan_key(
            key,
            observed.secrets.get(key.secret_name),
            observed.litellm.get(key.key_alias),
            observed.litellm.get(key.previous_alias),
            now=now,
            suspended=suspended,
            blocked_by_suspension=blocked_by_suspension,
            rotation=rotation,
        )
        if action is not None:
            actions.append(action)
        if when is not None:
            due.append(when)
    wanted_names = {k.name for k in desired}
    unwanted: dict[str, list[str]] = {}
    for alias, record in sorted(observed.litellm.items()):
        if not alias.startswith(prefix):
            continue
        name = alias[len(prefix) :].removesuffix(PREVIOUS_SUFFIX)
        if name not in wanted_names:
            unwanted.setdefault(name, []).append(record.token)
    actions.extend(RevokeKeys(name, tuple(tokens)) for name, tokens in sorted(unwanted.items()))
    wanted_secrets = {k.secret_name for k in desired}
    actions.extend(
        DeleteSecret(name) for name in sorted(observed.secrets) if name not in wanted_secrets
    )
    return KeysPlan(tuple(actions), min(due) if due else None)


def plan_key(
    key: DesiredKey,
    secret: ObservedSecret | None,
    current: ObservedKey | None,
    previous: ObservedKey | None,
    *,
    now: datetime,
    suspended: bool,
    blocked_by_suspension: frozenset[str],
    rotation: str | None,
) -> tuple[KeyAction | None, datetime | None]:
    """The next step for one key, and when it next needs a look if nothing is to be done."""
    ours = tuple(r.token for r in (current, previous) if r is not None)
    if secret is None:
        if suspended:
            return None, None  # re-issued on resume: a new key must not bypass the suspension
        return IssueKey(key, "SecretMissing", revoke=ours), None
    if secret.pending_token is not None:
        return complete(key, secret, current, previous), None
    if secret.value_token is None or secret.value_token != secret.token:
        if suspended:
            return None, None
        return IssueKey(key, "SecretEdited", revoke=ours), None
    if current is None or current.token != secret.token:
        if suspended:
            return None, None
        return IssueKey(key, "KeyMissing", revoke=ours), None
    rotate_at: datetime | None = None
    if not suspended:
        issued = last_issued(secret, current)
        earliest = issued + key.min_rotate_every if issued is not None else now
        if key.rotate_every is not None and issued is not None:
            rotate_at = max(issued + key.rotate_every, earliest)
        if rotation is not None and rotation != secret.rotation:
            if now >= earliest:
                return IssueKey(key, "RotationRequested"), None
            rotate_at = earliest if rotate_at is None else min(rotate_at, earliest)
        if rotate_at is not None and now >= rotate_at:
            return IssueKey(key, "RotationDue"), None
        if current.blocked and current.token not in blocked_by_suspension:
            return UnblockKey(key, current.token), None
    if current.settings != key.settings:
        return UpdateKey(key, current.token, key.settings.changed(current.settings)), None
    if not secret.base_url_ok:
        return RefreshSecret(key), None
    expires = secret.previous_expires_at
    has_previous = previous is not None or secret.previous_token is not None
    if has_previous and (expires is None or now >= expires):
        return RevokePrevious(key, previous.token if previous else None), None
    when = [t for t in (rotate_at, expires) if t is not None]
    return None, min(when) if when else None


def last_issued(secret: ObservedSecret, current: ObservedKey) -> datetime | None:
    """When the current key was issued: the later of the Secret's record and LiteLLM's, so an
    edited annotation cannot bring a rotation forward."""
    known = [t for t in (secret.issued_at, current.created_at) if t is not None]
    return max(known) if known else None


def complete(
    key: DesiredKey,
    secret: ObservedSecret,
    current: ObservedKey | None,
    previous: ObservedKey | None,
) -> CompleteKey:
    """The pending key's registration, from wherever an earlier attempt stopped."""
    in_grace = previous.token if previous is not None else None
    if current is None:
        return CompleteKey(key, previous=in_grace if key.grace_period else None)
    if current.token == secret.pending_token:  # registered; the promotion was interrupted
        return CompleteKey(key, previous=in_grace if key.grace_period else None)
    if current.token == secret.token == secret.value_token:  # a rotation: keep the current key
        if not key.grace_period:
            return CompleteKey(key, drop=current.token)
        return CompleteKey(key, keep=current.token, drop=in_grace, previous=current.token)
    return CompleteKey(key, drop=current.token, previous=in_grace if key.grace_period else None)
