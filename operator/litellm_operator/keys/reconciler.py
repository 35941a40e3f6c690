"""An owner's virtual keys (a LiteLLMUser's or a LiteLLMTeam's, :mod:`keys.owner`): observe
(Secrets + LiteLLM) → plan (:mod:`keys.plan`, pure) → act.

The only module that holds key values: it chooses them (``secrets.token_urlsafe``), writes them
into Secrets and registers them with LiteLLM, always in that order, so a crash at any point
leaves either a Secret whose pending value is not registered yet (the next pass registers it)
or a registered key whose Secret already holds it. Values travel as ``SecretStr``; what is
logged, returned or put into events and status is names, aliases and times only.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import logging
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import kubernetes
from pydantic import SecretStr

from litellm_operator.fields import MANAGED_BY, MANAGER
from litellm_operator.keys.owner import (
    KEY_LABEL,
    MANAGED_BY_LABEL,
    TEAM_OWNER,
    KeyOwner,
)
from litellm_operator.keys.plan import (
    API_KEY,
    BASE_URL,
    ISSUED_ANNOTATION,
    PENDING_ANNOTATION,
    PENDING_KEY,
    PREVIOUS_ANNOTATION,
    PREVIOUS_EXPIRES_ANNOTATION,
    ROTATION_ANNOTATION,
    TOKEN_ANNOTATION,
    CompleteKey,
    DeleteSecret,
    DesiredKey,
    IssueKey,
    KeyAction,
    KeySettings,
    KeysObserved,
    KeysPlan,
    ObservedKey,
    ObservedSecret,
    RefreshSecret,
    RevokeKeys,
    RevokePrevious,
    UnblockKey,
    UpdateKey,
    plan_keys,
)
from litellm_operator.kube import KeySecret, Kube
from litellm_operator.litellm import (
    GenerateKeyRequest,
    KeyAliasInUse,
    KeyRecord,
    LiteLLMClient,
    LiteLLMUserRecord,
    NotFound,
    build,
)
from litellm_operator.reasons import Event, Reason

log = logging.getLogger(__name__)

MAX_PASSES = 6
"""Observe → plan → act passes per reconcile; a key needs at most three (issue, complete,
settle), the rest is slack for concurrent edits."""
OPENAI_API_KEY = "OPENAI_API_KEY"
OPENAI_BASE_URL = "OPENAI_BASE_URL"


class SecretsUnavailable(Exception):
    """The Kubernetes API refused or failed a Secret call (status and reason only: the body of
    an answer about a Secret may echo its data)."""


class SecretTaken(Exception):
    """A Secret of the wanted name exists and is not the operator's: nothing is overwritten."""


class AliasTaken(Exception):
    """A key the operator does not own, made by hand or in LiteLLM's UI, holds the alias: it is
    left alone and not named (it may belong to anyone)."""


def kube_errors(method: Any) -> Any:
    @functools.wraps(method)
    async def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return await method(*args, **kwargs)
        except kubernetes.client.ApiException as exc:
            raise SecretsUnavailable(
                f"Kubernetes API answered {exc.status} ({exc.reason}) for a key Secret"
            ) from None

    return wrapper


@dataclass
class KeysOutcome:
    statuses: list[dict[str, Any]] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)
    wrote: bool = False
    next_check: datetime | None = None
    settled: bool = True
    """False when :data:`MAX_PASSES` passes still left steps to take (others kept writing)."""


@dataclass
class _Observation:
    observed: KeysObserved
    secrets: Mapping[str, KeySecret]


def digest(value: SecretStr) -> str:
    """The token LiteLLM stores for a key value: its SHA-256 hex."""
    return hashlib.sha256(value.get_secret_value().encode()).hexdigest()


def new_value() -> SecretStr:
    return SecretStr("sk-" + secrets.token_urlsafe(32))


def stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        return as_utc(datetime.fromisoformat(text.replace("Z", "+00:00")))
    except ValueError:
        return None


def as_utc(moment: datetime | None) -> datetime | None:
    """A time without an offset (an annotation anyone with Secret access may edit) read as UTC:
    comparing it with an aware time would raise."""
    if moment is None or moment.tzinfo is not None:
        return moment
    return moment.replace(tzinfo=UTC)


class KeyReconciler:
    def __init__(self, client: LiteLLMClient, kube: Kube, base_url: str) -> None:
        self.client = client
        self.kube = kube
        self.base_url = base_url

    @kube_errors
    async def converge(
        self,
        owner: KeyOwner,
        desired: Sequence[DesiredKey],
        *,
        suspended: bool,
        blocked_by_suspension: frozenset[str],
        rotation: str | None,
    ) -> KeysOutcome:
        """Make the owner's Secrets and LiteLLM keys match ``desired``; raises on I/O errors."""
        outcome = KeysOutcome()
        for _ in range(MAX_PASSES):
            seen = await self.observe(owner)
            plan = self.plan(owner, desired, seen, suspended, blocked_by_suspension, rotation)
            outcome.next_check = plan.next_check
            outcome.settled = not plan.actions
            if outcome.settled:
                break
            for action in plan.actions:
                await self.act(owner, action, seen, rotation, outcome)
        outcome.statuses = statuses(desired, seen.observed)
        return outcome

    @kube_errors
    async def drifted(
        self,
        owner: KeyOwner,
        desired: Sequence[DesiredKey],
        *,
        suspended: bool,
        blocked_by_suspension: frozenset[str],
        rotation: str | None,
    ) -> bool:
        """Whether the keys need a reconcile (the resync's check); no writes."""
        seen = await self.observe(owner)
        plan = self.plan(owner, desired, seen, suspended, blocked_by_suspension, rotation)
        return bool(plan.actions)

    @staticmethod
    def plan(
        owner: KeyOwner,
        desired: Sequence[DesiredKey],
        seen: _Observation,
        suspended: bool,
        blocked_by_suspension: frozenset[str],
        rotation: str | None,
    ) -> KeysPlan:
        """The pure planner on what was just observed, at the current time."""
        return plan_keys(
            desired,
            seen.observed,
            now=datetime.now(UTC),
            prefix=owner.prefix,
            suspended=suspended,
            blocked_by_suspension=blocked_by_suspension,
            rotation=rotation,
        )

    async def observe(self, owner: KeyOwner) -> _Observation:
        labelled = await self.kube.list_secrets(owner.namespace, owner.selector)
        found = [s for s in labelled if s.controller_uid == owner.uid]
        by_name = {s.name: s for s in found}
        observed_secrets = {s.name: self.observed_secret(s) for s in found}
        try:
            records = await self.owned_keys(owner)
        except NotFound:
            records = []
        keys = {
            r.key_alias: ObservedKey(
                token=r.token,
                alias=r.key_alias,
                blocked=r.blocked,
                settings=KeySettings.from_wire(r.model_dump()),
                created_at=as_utc(r.created_at),
            )
            for r in records
            if r.token and r.key_alias and r.key_alias.startswith(owner.prefix)
        }
        return _Observation(KeysObserved(observed_secrets, keys), by_name)

    async def owned_keys(self, owner: KeyOwner) -> list[KeyRecord]:
        """The LiteLLM keys bound to the owner (by ``user_id`` or by ``team_id``)."""
        if owner.of is TEAM_OWNER:
            return await self.client.list_team_keys(owner.litellm_id)
        return await self.client.list_user_keys(owner.litellm_id)

    def observed_secret(self, secret: KeySecret) -> ObservedSecret:
        notes = secret.annotations
        value = secret.data.get(API_KEY)
        base_url = secret.data.get(BASE_URL)
        return ObservedSecret(
            name=secret.name,
            key_name=secret.labels.get(KEY_LABEL, ""),
            value_token=digest(value) if value is not None else None,
            token=notes.get(TOKEN_ANNOTATION),
            pending_token=notes.get(PENDING_ANNOTATION) if PENDING_KEY in secret.data else None,
            previous_token=notes.get(PREVIOUS_ANNOTATION),
            previous_expires_at=parse_time(notes.get(PREVIOUS_EXPIRES_ANNOTATION)),
            issued_at=parse_time(notes.get(ISSUED_ANNOTATION)),
            rotation=notes.get(ROTATION_ANNOTATION),
            base_url_ok=base_url is not None and base_url.get_secret_value() == self.base_url,
        )

    async def act(
        self,
        owner: KeyOwner,
        action: KeyAction,
        seen: _Observation,
        rotation: str | None,
        outcome: KeysOutcome,
    ) -> None:
        namespace = owner.namespace
        outcome.wrote = True
        match action:
            case IssueKey(key=key, revoke=revoke):
                await self.revoke(revoke)
                value = new_value()
                pending = {PENDING_ANNOTATION: digest(value)}
                if key.secret_name in seen.secrets:
                    await self.kube.patch_secret(
                        namespace, key.secret_name, annotations=pending, data={PENDING_KEY: value}
                    )
                else:
                    try:
                        await self.kube.create_secret(
                            namespace,
                            key.secret_name,
                            labels=owner.labels(key.name),
                            annotations=pending,
                            data={PENDING_KEY: value, **self.urls()},
                            owner=owner.reference(),
                        )
                    except kubernetes.client.ApiException as exc:
                        if exc.status != 409:
                            raise
                        raise SecretTaken(
                            f"key {key.name!r}: Secret {key.secret_name!r} already exists and is "
                            "not the operator's; name another with secretName"
                        ) from None
                log.info(
                    "key %s of %s/%s: new value chosen (%s)",
                    key.name,
                    namespace,
                    owner.name,
                    action.why,
                )
            case CompleteKey(key=key, keep=keep, drop=drop, previous=previous):
                await self.revoke((drop,) if drop else ())
                if keep is not None:
                    await self.client.update_key(keep, {"key_alias": key.previous_alias})
                value = seen.secrets[key.secret_name].data[PENDING_KEY]
                identity = {**owner.identity(), "key_alias": key.key_alias}
                settings = {k: v for k, v in key.settings.wire().items() if v is not None}
                request = build(
                    GenerateKeyRequest, {**identity, "metadata": {MANAGED_BY: MANAGER}, **settings}
                )
                try:
                    await self.client.register_key(value, request)
                except KeyAliasInUse:
                    await self.reclaim_alias(owner, key, outcome)
                    await self.client.register_key(value, request)
                now = datetime.now(UTC)
                expires = stamp(now + key.grace_period) if previous else None
                await self.kube.patch_secret(
                    namespace,
                    key.secret_name,
                    annotations={
                        TOKEN_ANNOTATION: digest(value),
                        PENDING_ANNOTATION: None,
                        ISSUED_ANNOTATION: stamp(now),
                        ROTATION_ANNOTATION: rotation,
                        PREVIOUS_ANNOTATION: previous,
                        PREVIOUS_EXPIRES_ANNOTATION: expires,
                    },
                    data={
                        API_KEY: value,
                        OPENAI_API_KEY: value,
                        PENDING_KEY: None,
                        **self.urls(),
                    },
                )
                rotated = seen.observed.secrets[key.secret_name].token is not None
                reason = Reason.KEY_ROTATED if rotated else Reason.KEY_ISSUED
                verb = "rotated" if rotated else "issued"
                grace = f"; the previous key works until {expires}" if expires else ""
                message = f"{verb} key {key.name!r} into Secret {key.secret_name!r}{grace}"
                outcome.events.append(Event("Normal", reason, message))
            case UpdateKey(key=key, token=token, fields=fields):
                await self.client.update_key(token, fields)
                message = f"updated key {key.name!r}: {', '.join(sorted(fields))}"
                outcome.events.append(Event("Normal", Reason.UPDATED, message))
            case UnblockKey(token=token):
                await self.client.unblock_key(token)
            case RevokePrevious(key=key, token=token):
                await self.revoke((token,) if token else ())
                await self.kube.patch_secret(
                    namespace,
                    key.secret_name,
                    annotations={PREVIOUS_ANNOTATION: None, PREVIOUS_EXPIRES_ANNOTATION: None},
                )
                if token:
                    message = f"revoked the previous key of {key.name!r}: grace period over"
                    outcome.events.append(Event("Normal", Reason.KEY_REVOKED, message))
            case RefreshSecret(key=key):
                await self.kube.patch_secret(namespace, key.secret_name, data=self.urls())
            case RevokeKeys(name=name, tokens=tokens):
                await self.revoke(tokens)
                message = f"revoked key {name!r}: no longer in spec.keys"
                outcome.events.append(Event("Normal", Reason.KEY_REVOKED, message))
            case DeleteSecret(name=name):
                await self.kube.delete_secret(namespace, name)

    async def reclaim_alias(self, owner: KeyOwner, key: DesiredKey, outcome: KeysOutcome) -> None:
        """The alias is held by a key that is not this owner's. A key of another of the
        operator's users squats it (a tenant minted it with a key of its own): it is revoked,
        so no tenant blocks another namespace's key. Any other holder: :class:`AliasTaken`."""
        holder = await self.client.find_key_by_alias(key.key_alias)
        if holder is None or holder.token is None:
            return  # freed meanwhile
        holder_user = await self.client.get_user(holder.user_id) if holder.user_id else None
        own_user = owner.litellm_id if owner.of.litellm_field == "user_id" else None
        if not squatter(holder_user, own_user):
            raise AliasTaken(
                f"key {key.name!r}: its alias {key.key_alias!r} is held by a LiteLLM key the "
                "operator did not issue (made by hand or in the UI); a LiteLLM admin must "
                "delete or rename that key"
            )
        await self.revoke((holder.token,))
        message = f"revoked a key of a user that held the alias of key {key.name!r}"
        log.warning("%s/%s: %s", owner.namespace, owner.name, message)
        outcome.events.append(Event("Warning", Reason.KEY_REVOKED, message))

    async def revoke(self, tokens: Sequence[str]) -> None:
        for token in tokens:
            with contextlib.suppress(NotFound):  # already gone: the goal is reached
                await self.client.delete_keys([token])

    @kube_errors
    async def remove_all(self, owner: KeyOwner, *, retain: bool) -> list[Event]:
        """The owner is being deleted: revoke its keys and delete its Secrets, or (``retain``)
        keep both and drop the Secrets' ownerReference so no garbage collector takes them."""
        seen = await self.observe(owner)
        if retain:
            for name in sorted(seen.secrets):
                await self.kube.patch_secret(owner.namespace, name, drop_owners=True)
            return []
        tokens = [k.token for k in seen.observed.litellm.values()]
        await self.revoke(tokens)
        for name in sorted(seen.secrets):
            await self.kube.delete_secret(owner.namespace, name)
        if not tokens and not seen.secrets:
            return []
        message = f"revoked {len(tokens)} key(s) and deleted {len(seen.secrets)} Secret(s)"
        return [Event("Normal", Reason.KEY_REVOKED, message)]

    def urls(self) -> dict[str, SecretStr]:
        url = SecretStr(self.base_url)
        return {BASE_URL: url, OPENAI_BASE_URL: url}


SECRET_SELECTOR = f"{MANAGED_BY_LABEL}={MANAGER},{KEY_LABEL}"
"""Every key Secret of the operator, a user's or a team's (the watch's label selector)."""


def squatter(holder: LiteLLMUserRecord | None, user_id: str | None) -> bool:
    """Whether a key of ``holder`` that holds an alias of ``user_id`` (``None``: of a team) may
    be revoked: it belongs to another user the operator manages, which has no business in this
    alias (only LiteLLM admins can edit the markers)."""
    return (
        holder is not None
        and holder.user_id != user_id
        and holder.metadata.get(MANAGED_BY) == MANAGER
    )


def secret_drifted(kind: str, secret: KeySecret) -> bool:
    """Whether a watched Secret event means its owner must be reconciled: the Secret is gone, or
    its key is not the one the operator wrote (and no new key is being written)."""
    if kind == "DELETED":
        return True
    if PENDING_ANNOTATION in secret.annotations:
        return False
    value = secret.data.get(API_KEY)
    written = secret.annotations.get(TOKEN_ANNOTATION)
    return written is not None and (value is None or digest(value) != written)


def statuses(desired: Sequence[DesiredKey], observed: KeysObserved) -> list[dict[str, Any]]:
    """``status.keys``: names, aliases and times; never a value or a hash."""
    result: list[dict[str, Any]] = []
    for key in desired:
        secret = observed.secrets.get(key.secret_name)
        current = observed.litellm.get(key.key_alias)
        ready = (
            secret is not None
            and secret.pending_token is None
            and current is not None
            and secret.token == current.token == secret.value_token
            and not current.blocked
        )
        result.append(
            {
                "name": key.name,
                "secretName": key.secret_name,
                "keyAlias": key.key_alias,
                "issuedAt": stamp(secret.issued_at) if secret and secret.issued_at else None,
                "previousExpiresAt": (
                    stamp(secret.previous_expires_at)
                    if secret and secret.previous_expires_at
                    else None
                ),
                "ready": ready,
                "rotation": secret.rotation if secret else None,
            }
        )
    return result


def next_check_in(next_check: datetime | None) -> float | None:
    """Seconds until ``next_check`` (at least one), or ``None``."""
    if next_check is None:
        return None
    return max((next_check - datetime.now(UTC)) / timedelta(seconds=1), 1.0)
