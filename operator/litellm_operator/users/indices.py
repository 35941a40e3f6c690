"""The operator's own indices of LiteLLMUsers, fed from the watch stream.

The functions of :data:`USER_INDICES` map one LiteLLMUser body to its entries;
:mod:`litellm_operator.runtime.kopf_watch` calls them as the stream passes, and every handler
receives the indices as kwargs by these names, as it would receive kopf's own (the policies'
index is kopf's: :func:`litellm_operator.policies.handlers.index_policy_bodies`).
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from dataclasses import dataclass
from typing import Any

from litellm_operator.keys.plan import ROTATE_ANNOTATION
from litellm_operator.models import UserSpec
from litellm_operator.runtime.indices import IndexFunction, ObjectIndices, pack, unpack
from litellm_operator.status import UserState


@dataclass(frozen=True, order=True, slots=True)
class Claim:
    """A LiteLLMUser that recorded a user id in its status; the oldest claim wins."""

    created: str
    namespace: str
    name: str
    uid: str


def policy_ref_of(spec: Mapping[str, Any]) -> str:
    """The policy a LiteLLMUser names: spec.policyRef, ``default`` when omitted (the schema's)."""
    return str(spec.get("policyRef") or DEFAULT_POLICY_REF)


DEFAULT_POLICY_REF: str = UserSpec.model_fields["policy_ref"].default


def users_by_policy(body: Mapping[str, Any]) -> dict[Hashable, Any]:
    return {policy_ref_of(body.get("spec") or {}): key_of(body)}


def user_bodies(body: Mapping[str, Any]) -> dict[Hashable, Any]:
    return {key_of(body): IndexedUser.of(body)}


def user_id_claims(body: Mapping[str, Any]) -> dict[Hashable, Any] | None:
    user_id = (body.get("status") or {}).get("userId")
    if not user_id:
        return None
    meta = body.get("metadata") or {}
    namespace, name = key_of(body)
    return {user_id: Claim(str(meta.get("creationTimestamp", "")), namespace, name, meta["uid"])}


USER_INDICES: Mapping[str, IndexFunction] = {
    "users_by_policy": users_by_policy,
    "user_bodies": user_bodies,
    "user_id_claims": user_id_claims,
}
"""The operator's indices of LiteLLMUsers (:mod:`litellm_operator.indices`), fed from the watch
stream by :mod:`litellm_operator.kopf_watch`; every handler receives them as kwargs by these
names, as it would receive kopf's own."""


def user_indices() -> ObjectIndices:
    return ObjectIndices(USER_INDICES)


def key_of(body: Mapping[str, Any]) -> tuple[str, str]:
    meta = body.get("metadata") or {}
    return (str(meta.get("namespace") or ""), str(meta.get("name") or ""))


COMPACT_LEVEL = 6
"""zlib's default: barely slower than its fastest level on a user's JSON, and a little smaller."""

KEPT_METADATA = ("name", "namespace", "uid", "generation", "creationTimestamp")


def slim(body: Mapping[str, Any]) -> dict[str, Any]:
    """What the resync needs of a user: no managedFields, no kopf bookkeeping, and of the
    annotations only the key rotation's (the resync compares keys against it)."""
    meta = body.get("metadata") or {}
    kept = {k: meta[k] for k in KEPT_METADATA if k in meta}
    rotation = (meta.get("annotations") or {}).get(ROTATE_ANNOTATION)
    if rotation is not None:
        kept["annotations"] = {ROTATE_ANNOTATION: rotation}
    status = {k: v for k, v in (body.get("status") or {}).items() if k != "kopf"}
    return {
        "apiVersion": body.get("apiVersion"),
        "kind": body.get("kind"),
        "metadata": kept,
        "spec": dict(body.get("spec") or {}),
        "status": status,
    }


@dataclass(frozen=True, slots=True)
class IndexedUser:
    """A LiteLLMUser as the operator's index keeps it: the few fields the rollout counts read
    on every user event, and the rest of :func:`slim` as compressed compact JSON, for the resync
    and the policy propagation, which read it once per run (what it saves, and costs per watch
    event, is in the README's Performance section)."""

    state: UserState
    compact: bytes

    @classmethod
    def of(cls, body: Mapping[str, Any]) -> IndexedUser:
        return cls(UserState.of(body), pack(slim(body), COMPACT_LEVEL))

    def body(self) -> dict[str, Any]:
        return unpack(self.compact)
