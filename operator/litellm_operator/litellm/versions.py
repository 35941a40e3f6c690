"""What each LiteLLM release can do, declared once: the oldest release the operator writes to,
and each capability that arrived after it, with what the operator does on a release without it.

The facts come from the version matrix (``make test-litellm``; results in ``docs/compat`` and
the README): a capability's ``since`` is the oldest release on which the matrix saw it. The
client (:class:`litellm_operator.litellm.LiteLLMClient`) reads the proxy's version and consults
this table before it writes; ``run`` refuses a proxy :func:`unsupported` names before the leader
election campaign (:mod:`litellm_operator.runtime.runner`); the README's table of capabilities
is rendered from :data:`CAPABILITIES` (:func:`markdown_table`). Pure: no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass

from packaging.version import InvalidVersion, Version

from litellm_operator.fields import UNLIMITED_PARALLEL_REQUESTS

MINIMUM = Version("1.104.0")
"""The oldest release the operator writes to: the oldest on which the whole matrix passes
(with the fallbacks below). 1.85.1 answers key, membership and validation calls differently;
1.74.9 differs on most admin calls."""

NO_LIMIT = UNLIMITED_PARALLEL_REQUESTS
""""No limit" where ``null`` does not clear a limit: the largest value of the integer column,
read back as no limit."""


@dataclass(frozen=True)
class Capability:
    """A LiteLLM behaviour the operator relies on, and what it does on a release without it."""

    name: str
    since: Version
    """The oldest release the matrix saw it on."""
    what: str
    without: str
    """What the operator does on an older release (README)."""

    def on(self, version: Version | None) -> bool:
        """Whether a proxy of ``version`` has it (a proxy that reports none: assumed)."""
        return version is None or version >= self.since


NULL_CLEARS_RATE_LIMITS = Capability(
    "null-clears-rate-limits",
    Version("1.108.7"),
    "`/user/update` clears `tpm_limit` and `rpm_limit` with `null`",
    f"a removed `tpmLimit` or `rpmLimit` is written as {NO_LIMIT} and read back as no limit",
)

CAPABILITIES: tuple[Capability, ...] = (NULL_CLEARS_RATE_LIMITS,)
"""Every capability newer than :data:`MINIMUM`, in the README's order."""


def parse(reported: str | None) -> Version | None:
    """A reported version, or ``None`` when none was reported or it cannot be read."""
    if not reported:
        return None
    try:
        return Version(reported)
    except InvalidVersion:
        return None


def unsupported(reported: str | None) -> str | None:
    """Why nothing is written to a proxy reporting ``reported``, in one line (``None``: it is
    supported, or it reports no version, which is not second-guessed)."""
    if reported is None:
        return None
    version = parse(reported)
    if version is None:
        return f"LiteLLM reports a version this operator cannot read ({reported!r})"
    if version >= MINIMUM:
        return None
    return f"LiteLLM {reported} is older than the oldest supported, {MINIMUM}"


def markdown_table() -> str:
    """The README's table of what each capability needs, rendered from the declarations."""
    rows = [
        f"| needs LiteLLM | for | on an older release (down to {MINIMUM}) |",
        "| --- | --- | --- |",
    ]
    rows += [f"| {c.since} | {c.what} | {c.without} |" for c in CAPABILITIES]
    return "\n".join(rows) + "\n"
