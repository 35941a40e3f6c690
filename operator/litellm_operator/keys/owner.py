"""Whose keys these are: the owner contract the keys planner and reconciler work over.

A key belongs to one Kubernetes object (a LiteLLMUser or a LiteLLMTeam). What differs between
owners is declared here, once per kind (:data:`USER_OWNER`, :data:`TEAM_OWNER`): the label that
marks its Secrets, the LiteLLM field that binds its keys (``user_id`` or ``team_id``), the root
of its keys' aliases, and the noun messages use. :class:`KeyOwner` is one such object;
:class:`KeyBounds` is what its own settings allow a key (models, limits, budget period).

Aliases: a user's key is ``<namespace>/<user>/<key>``, a team's ``team:<namespace>/<team>/<key>``.
A namespace is a DNS label (no ``:``), so no user's alias starts like a team's, and a user and a
team of the same name never want the same alias. Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from litellm_operator.fields import KEY_FIELDS, MANAGER, Bound
from litellm_operator.models import (
    API_VERSION,
    TEAM_KIND,
    USER_KIND,
    EffectiveSettings,
    TeamSettings,
)

MANAGED_BY_LABEL = "app.kubernetes.io/managed-by"
USER_LABEL = "litellm.platform.dev/user"
TEAM_LABEL = "litellm.platform.dev/team"
KEY_LABEL = "litellm.platform.dev/key"
"""On every key Secret of the operator, whoever owns it (the Secrets' watch selects on it)."""


@dataclass(frozen=True)
class OwnerKind:
    """What a kind of owner means for its keys."""

    kind: str
    noun: str
    label: str
    """The Secret label naming the owner object."""
    litellm_field: Literal["user_id", "team_id"]
    """The key's field in LiteLLM that binds it to its owner (the other one stays unset)."""
    alias_root: str


USER_OWNER = OwnerKind(USER_KIND, "user", USER_LABEL, "user_id", "")
TEAM_OWNER = OwnerKind(TEAM_KIND, "team", TEAM_LABEL, "team_id", "team:")
OWNER_KINDS = (USER_OWNER, TEAM_OWNER)


def alias_prefix(of: OwnerKind, namespace: str, name: str) -> str:
    return f"{of.alias_root}{namespace}/{name}/"


@dataclass(frozen=True)
class KeyOwner:
    """One object whose keys these are: its identity in Kubernetes and in LiteLLM."""

    of: OwnerKind
    namespace: str
    name: str
    uid: str = ""
    litellm_id: str = ""
    """The LiteLLM user id or team id its keys are bound to."""

    @property
    def prefix(self) -> str:
        return alias_prefix(self.of, self.namespace, self.name)

    @property
    def selector(self) -> str:
        return f"{MANAGED_BY_LABEL}={MANAGER},{self.of.label}={self.name}"

    def labels(self, key_name: str) -> dict[str, str]:
        return {MANAGED_BY_LABEL: MANAGER, self.of.label: self.name, KEY_LABEL: key_name}

    def identity(self) -> dict[str, Any]:
        """The key's owner fields on ``/key/generate``."""
        return {self.of.litellm_field: self.litellm_id}

    def reference(self) -> dict[str, Any]:
        """The Secrets' controller ownerReference (deleted with the owner)."""
        return {
            "apiVersion": API_VERSION,
            "kind": self.of.kind,
            "name": self.name,
            "uid": self.uid,
            "controller": True,
        }


def owner_of_secret(labels: Mapping[str, str]) -> tuple[OwnerKind, str] | None:
    """Which kind of owner, and its name, a key Secret's labels name."""
    for of in OWNER_KINDS:
        if labels.get(of.label):
            return of, labels[of.label]
    return None


LIMITS_UP_TO_THE_OWNER = tuple(f.name for f in KEY_FIELDS if f.bound is Bound.CEILING)
"""Key limits that may not exceed the owner's own (a key is a part of its owner)."""


@dataclass(frozen=True)
class KeyBounds:
    """What the owner's own effective settings allow each of its keys."""

    models: tuple[str, ...] = ()
    """The owner's models; empty: any of the proxy's."""
    limits: Mapping[str, int | None] | None = None
    """Each of :data:`LIMITS_UP_TO_THE_OWNER`: the owner's own (``None``: no ceiling)."""
    budget_duration: str | None = None


def bounds_of(settings: EffectiveSettings | TeamSettings) -> KeyBounds:
    """The bounds of a user's or a team's effective settings (a setting the kind does not have,
    such as a team's ``max_parallel_requests``, bounds nothing)."""
    limits = {name: getattr(settings, name, None) for name in LIMITS_UP_TO_THE_OWNER}
    return KeyBounds(tuple(settings.models), limits, settings.budget_duration)
