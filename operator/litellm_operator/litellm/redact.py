"""Redaction of secrets (bearer tokens, LiteLLM ``sk-`` keys) from text bound for logs and errors.

LiteLLM echoes request data in some error messages, so every message the client surfaces passes
through :func:`redact` first.
"""

from __future__ import annotations

import re

_BEARER = re.compile(r"(?i)\b(bearer)\s+[^\s'\",}]+")
_SK_KEY = re.compile(r"\bsk-[A-Za-z0-9_\-.]+")
REDACTED = "[REDACTED]"


def redact(text: str, *secrets: str) -> str:
    """Return ``text`` with ``Bearer <token>``, ``sk-…`` keys and each given secret masked."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, REDACTED)
    text = _BEARER.sub(lambda m: f"{m.group(1)} {REDACTED}", text)
    return _SK_KEY.sub(f"sk-{REDACTED}", text)
