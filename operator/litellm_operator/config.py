"""Operator configuration: read once from the environment at start-up and validated.

Every problem is reported at once, each naming the variable and what it expects, so a bad
ConfigMap or a missing Secret is fixed in one round. The master key is a ``SecretStr``: it is
never printed, not even in the configuration summary logged at start-up.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse

from pydantic import SecretStr

DEFAULT_RESYNC_SECONDS = 600.0
DEFAULT_CONCURRENCY = 8
DEFAULT_TIMEOUT_SECONDS = 10.0
DEFAULT_METRICS_PORT = 8080
DEFAULT_LEASE_NAMESPACE = "default"
SERVICE_ACCOUNT_NAMESPACE = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")
TRUE = frozenset({"1", "true", "yes", "on"})
FALSE = frozenset({"", "0", "false", "no", "off"})


class ConfigError(Exception):
    """The configuration is invalid; ``problems`` has one line per variable."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("invalid configuration:\n  " + "\n  ".join(problems))
        self.problems = problems


@dataclass(frozen=True)
class OperatorConfig:
    litellm_url: str
    master_key: SecretStr = field(repr=False)
    namespaces: tuple[str, ...] = ()
    """Namespaces to watch; empty means all (cluster-wide)."""
    resync_seconds: float = DEFAULT_RESYNC_SECONDS
    concurrency: int = DEFAULT_CONCURRENCY
    timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS
    metrics_port: int = DEFAULT_METRICS_PORT
    """Port of ``/metrics``; 0 turns the endpoint off."""
    leader_election: bool = False
    """Run only while holding the Lease (on in the shipped manifests, off for local runs)."""
    lease_namespace: str = DEFAULT_LEASE_NAMESPACE
    """Where the Lease lives: the operator's own namespace (``POD_NAMESPACE``)."""
    pod_name: str = ""
    """``POD_NAME`` (downward API): the stem of the holder identity; the host name without it."""

    @property
    def kopf_namespaces(self) -> list[str]:
        """The namespace patterns as kopf takes them.

        A plain list (``team-a,team-b``) is one glob per namespace, any of which matches. With
        an exclusion (``!rbac-*,!fault-*``) the list is one kopf pattern read left to right:
        split, each ``!glob`` would be a pattern of its own matching everything else, so
        ``rbac-x`` would match ``!fault-*`` and be watched after all.
        """
        if any(part.startswith("!") for part in self.namespaces):
            return [", ".join(self.namespaces)]
        return list(self.namespaces)

    def summary(self) -> str:
        scope = ",".join(self.namespaces) or "all namespaces"
        election = f"lease {self.lease_namespace}" if self.leader_election else "off"
        return (
            f"litellm={self.litellm_url} scope={scope} resync={self.resync_seconds:g}s "
            f"concurrency={self.concurrency} timeout={self.timeout_seconds:g}s "
            f"metrics_port={self.metrics_port} leader_election={election}"
        )


def load_config(environ: Mapping[str, str] | None = None) -> OperatorConfig:
    """Build the configuration from ``environ`` (default: the process environment)."""
    env = os.environ if environ is None else environ
    problems: list[str] = []
    url = env.get("LITELLM_URL", "").strip().rstrip("/")
    if not url:
        problems.append("LITELLM_URL is not set: the base URL of the LiteLLM proxy")
    elif urlparse(url).scheme not in ("http", "https") or not urlparse(url).netloc:
        problems.append(f"LITELLM_URL={url!r} is not an http(s) URL")
    key = read_master_key(env, problems)
    resync = number(env, "LITELLM_OPERATOR_RESYNC_SECONDS", DEFAULT_RESYNC_SECONDS, 1.0, problems)
    concurrency = int(number(env, "LITELLM_OPERATOR_CONCURRENCY", DEFAULT_CONCURRENCY, 1, problems))
    timeout = number(
        env, "LITELLM_OPERATOR_TIMEOUT_SECONDS", DEFAULT_TIMEOUT_SECONDS, 0.1, problems
    )
    port = int(number(env, "LITELLM_OPERATOR_METRICS_PORT", DEFAULT_METRICS_PORT, 0, problems))
    if port > 65535:
        problems.append(f"LITELLM_OPERATOR_METRICS_PORT={port} is not a port number")
    namespaces = tuple(
        ns.strip() for ns in env.get("LITELLM_OPERATOR_NAMESPACES", "").split(",") if ns.strip()
    )
    election = env.get("LITELLM_OPERATOR_LEADER_ELECTION", "").strip().lower()
    if election not in TRUE | FALSE:
        problems.append(
            f"LITELLM_OPERATOR_LEADER_ELECTION={election!r} is not a boolean (true or false)"
        )
    if problems:
        raise ConfigError(problems)
    return OperatorConfig(
        litellm_url=url,
        master_key=SecretStr(key),
        namespaces=namespaces,
        resync_seconds=resync,
        concurrency=concurrency,
        timeout_seconds=timeout,
        metrics_port=port,
        leader_election=election in TRUE,
        lease_namespace=own_namespace(env),
        pod_name=env.get("POD_NAME", "").strip(),
    )


def own_namespace(env: Mapping[str, str]) -> str:
    """``POD_NAMESPACE``, else the service account's namespace in a pod, else ``default``."""
    given = env.get("POD_NAMESPACE", "").strip()
    if given:
        return given
    try:
        return SERVICE_ACCOUNT_NAMESPACE.read_text(encoding="utf-8").strip() or "default"
    except OSError:
        return DEFAULT_LEASE_NAMESPACE


def read_master_key(env: Mapping[str, str], problems: list[str]) -> str:
    """``LITELLM_MASTER_KEY``, or the file named by ``LITELLM_MASTER_KEY_FILE`` (a Secret mount)."""
    path = env.get("LITELLM_MASTER_KEY_FILE", "").strip()
    if path:
        try:
            key = Path(path).read_text(encoding="utf-8").strip()
        except OSError as exc:
            problems.append(f"LITELLM_MASTER_KEY_FILE={path!r} cannot be read: {exc.strerror}")
            return ""
    else:
        key = env.get("LITELLM_MASTER_KEY", "").strip()
    if not key:
        problems.append(
            "LITELLM_MASTER_KEY (or LITELLM_MASTER_KEY_FILE) is not set: LiteLLM's master key, "
            "from a Secret"
        )
    return key


def number(
    env: Mapping[str, str], name: str, default: float, minimum: float, problems: list[str]
) -> float:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        problems.append(f"{name}={raw!r} is not a number")
        return default
    if value < minimum:
        problems.append(f"{name}={raw!r} must be at least {minimum:g}")
        return default
    return value
