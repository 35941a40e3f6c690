"""The LiteLLM admin client package: the operator's only interface to a LiteLLM proxy."""

from litellm_operator.litellm.batching import UserReads
from litellm_operator.litellm.client import LiteLLMClient
from litellm_operator.litellm.connection import Connection, Observer, VersionObserver
from litellm_operator.litellm.directory import Directory, PackedUsers, TeamSnapshot
from litellm_operator.litellm.errors import (
    AlreadyMember,
    AuthError,
    BadRequest,
    Conflict,
    EmailInUse,
    KeyAliasInUse,
    KeyValueLost,
    LiteLLMError,
    NotAMember,
    NotFound,
    RateLimited,
    ServerError,
    TeamExists,
    Unavailable,
    UnsupportedVersion,
    UserExists,
)
from litellm_operator.litellm.keys import KeyCalls, key_token
from litellm_operator.litellm.models import (
    CLEARABLE_USER_FIELDS,
    GeneratedKey,
    GenerateKeyRequest,
    KeyRecord,
    LiteLLMUserRecord,
    MalformedRequest,
    NewTeamRequest,
    NewUserRequest,
    TeamMember,
    TeamMembershipRecord,
    TeamRecord,
    TeamRole,
    UpdateTeamRequest,
    UpdateUserRequest,
    build,
)
from litellm_operator.litellm.redact import redact
from litellm_operator.litellm.teams import TeamCalls
from litellm_operator.litellm.transport import may_have_been_processed
from litellm_operator.litellm.users import MAX_BULK_UPDATE, MAX_PAGE_SIZE, UserCalls
from litellm_operator.litellm.writes import UserWrites

__all__ = [
    "CLEARABLE_USER_FIELDS",
    "MAX_BULK_UPDATE",
    "MAX_PAGE_SIZE",
    "AlreadyMember",
    "AuthError",
    "BadRequest",
    "Conflict",
    "Connection",
    "Directory",
    "EmailInUse",
    "GenerateKeyRequest",
    "GeneratedKey",
    "KeyAliasInUse",
    "KeyCalls",
    "KeyRecord",
    "KeyValueLost",
    "LiteLLMClient",
    "LiteLLMError",
    "LiteLLMUserRecord",
    "MalformedRequest",
    "NewTeamRequest",
    "NewUserRequest",
    "NotAMember",
    "NotFound",
    "Observer",
    "PackedUsers",
    "RateLimited",
    "ServerError",
    "TeamCalls",
    "TeamExists",
    "TeamMember",
    "TeamMembershipRecord",
    "TeamRecord",
    "TeamRole",
    "TeamSnapshot",
    "Unavailable",
    "UnsupportedVersion",
    "UpdateTeamRequest",
    "UpdateUserRequest",
    "UserCalls",
    "UserExists",
    "UserReads",
    "UserWrites",
    "VersionObserver",
    "build",
    "key_token",
    "may_have_been_processed",
    "redact",
]
