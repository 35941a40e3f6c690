"""The async LiteLLM admin client: the operator's only way to talk to LiteLLM.

:class:`LiteLLMClient` is the calls on each resource (:class:`UserCalls`, :class:`TeamCalls`,
:class:`KeyCalls`, one module each) over the one :class:`Connection`, which owns the pool,
timeouts, concurrency, retries, the typed errors and redaction.
"""

from __future__ import annotations

from litellm_operator.litellm.keys import KeyCalls
from litellm_operator.litellm.teams import TeamCalls
from litellm_operator.litellm.users import UserCalls


class LiteLLMClient(UserCalls, TeamCalls, KeyCalls):
    """Async client for LiteLLM's admin API. Use as ``async with LiteLLMClient(...) as client``.

    Every call has a timeout (``timeout`` seconds), at most ``max_concurrency`` calls are in
    flight, and idempotent calls are retried up to ``max_retries`` times with jittered
    exponential backoff from ``backoff_base`` seconds. Errors are the typed
    :class:`~litellm_operator.litellm.errors.LiteLLMError` subclasses.
    """
