"""Every reason the operator gives, in conditions and events: one StrEnum, declared once, and
the :class:`Event` that carries one.

A reason is machine-readable (Flux, Argo CD and alerting match on it), so each is spelled here
and nowhere else; policy.py, plan.py, reconciler.py and status.py use the members.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Literal


class Reason(StrEnum):
    # Ready=True
    SYNCED = "Synced"
    SUSPENDED = "Suspended"
    ROLLED_OUT = "RolledOut"
    # in progress (Reconciling=True)
    PENDING = "Pending"
    CREATING = "Creating"
    POLICY_CHANGED = "PolicyChanged"
    TEAM_BUDGET_CHANGED = "TeamBudgetChanged"
    """A team of the user changed its memberBudget: the user is reconciled against it."""
    ROLLING_OUT = "RollingOut"
    UNAVAILABLE = "LiteLLMUnavailable"
    UNAUTHORIZED = "Unauthorized"
    UNEXPECTED_RESPONSE = "UnexpectedResponse"
    # stalled until someone changes something (Stalled=True)
    INVALID_SPEC = "InvalidSpec"
    POLICY_NOT_FOUND = "PolicyNotFound"
    POLICY_MISMATCH = "PolicyMismatch"
    NAMESPACE_NOT_ALLOWED = "NamespaceNotAllowed"
    OVERRIDE_FORBIDDEN = "OverrideForbidden"
    MODEL_NOT_ALLOWED = "ModelNotAllowed"
    TEAM_NOT_ALLOWED = "TeamNotAllowed"
    TEAM_ID_NOT_ALLOWED = "TeamIdNotAllowed"
    CEILING_EXCEEDED = "CeilingExceeded"
    TEAM_QUOTA_EXCEEDED = "TeamQuotaExceeded"
    ROLE_NOT_ALLOWED = "RoleNotAllowed"
    USER_ID_NOT_ALLOWED = "UserIdNotAllowed"
    IDENTITY_NOT_ALLOWED = "IdentityNotAllowed"
    ADOPTION_REFUSED = "AdoptionRefused"
    ALREADY_EXISTS = "AlreadyExists"
    CONFLICT = "Conflict"
    EMAIL_IN_USE = "EmailInUse"
    SSO_USER_ID_MISMATCH = "SsoUserIdMismatch"
    SSO_USER_ID_IN_USE = "SsoUserIdInUse"
    REJECTED = "Rejected"
    MALFORMED_REQUEST = "MalformedRequest"
    """The operator built a request LiteLLM's API cannot take: a bug, reported, never retried."""
    LITELLM_VERSION_UNSUPPORTED = "LiteLLMVersionUnsupported"
    TEAM_NOT_FOUND = "TeamNotFound"
    POLICY_DELETED = "PolicyDeleted"
    USERS_STALLED = "UsersStalled"
    # events only
    CREATED = "Created"
    ADOPTED = "Adopted"
    UPDATED = "Updated"
    DELETED = "Deleted"
    RELEASED = "Released"
    DELETE_FAILED = "DeleteFailed"
    GROUPS_IGNORED = "GroupsIgnored"
    KEY_ISSUED = "KeyIssued"
    KEY_ROTATED = "KeyRotated"
    KEY_REVOKED = "KeyRevoked"


@dataclass(frozen=True)
class Event:
    """A Kubernetes event to post on the resource: the reconcile's and the keys' alike."""

    type: Literal["Normal", "Warning"]
    reason: str
    message: str
