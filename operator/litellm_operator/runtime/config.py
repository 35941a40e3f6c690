"""Operator configuration: read once from the environment at start-up and validated.

Every problem is reported at once, each naming the variable and what it expects, so a bad
ConfigMap or a missing Secret is fixed in one round. The master key is a ``SecretStr``: it is
never printed, not even in the configuration summary logged at start-up.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, cast
from urllib.parse import urlparse

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

DEFAULT_RESYNC_SECONDS = 600.0
DEFAULT_CONCURRENCY = 8
DEFAULT_TIMEOUT_SECONDS = 10.0
DEFAULT_METRICS_PORT = 8080
DEFAULT_LEASE_NAMESPACE = "default"
ALLOW_UNTESTED_KOPF = "LITELLM_OPERATOR_ALLOW_UNTESTED_KOPF"
ALLOW_SLOW_TOGGLES = "LITELLM_OPERATOR_ALLOW_SLOW_TOGGLES"
ALLOW_UNTESTED_LITELLM = "LITELLM_OPERATOR_ALLOW_UNTESTED_LITELLM"
SERVICE_ACCOUNT_NAMESPACE = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")


class ConfigError(Exception):
    """The configuration is invalid; ``problems`` has one line per variable."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("invalid configuration:\n  " + "\n  ".join(problems))
        self.problems = problems


class OperatorConfig(BaseSettings):
    """The operator's settings, one field per environment variable (its alias).

    Read through pydantic-settings from the mapping :func:`load_config` gives it (the process
    environment by default), never from files or other sources: the Deployment's ConfigMap and
    Secret are the whole configuration.
    """

    model_config = SettingsConfigDict(frozen=True, extra="ignore", str_strip_whitespace=True)

    litellm_url: str = Field(
        validation_alias="LITELLM_URL", description="the base URL of the LiteLLM proxy"
    )
    public_url: str | None = Field(
        default=None,
        validation_alias="LITELLM_PUBLIC_URL",
        description="the LiteLLM URL workloads use (default: LITELLM_URL)",
    )
    master_key: SecretStr = Field(
        repr=False,
        validation_alias="LITELLM_MASTER_KEY",
        description="LiteLLM's master key, from a Secret (or LITELLM_MASTER_KEY_FILE)",
    )
    namespace_list: str = Field(
        default="",
        validation_alias="LITELLM_OPERATOR_NAMESPACES",
        description="comma-separated namespaces (globs, !exclusions) to watch; empty: all",
    )
    resync_seconds: float = Field(
        default=DEFAULT_RESYNC_SECONDS, ge=1.0, validation_alias="LITELLM_OPERATOR_RESYNC_SECONDS"
    )
    concurrency: int = Field(
        default=DEFAULT_CONCURRENCY, ge=1, validation_alias="LITELLM_OPERATOR_CONCURRENCY"
    )
    timeout_seconds: float = Field(
        default=DEFAULT_TIMEOUT_SECONDS, ge=0.1, validation_alias="LITELLM_OPERATOR_TIMEOUT_SECONDS"
    )
    metrics_port: int = Field(
        default=DEFAULT_METRICS_PORT,
        ge=0,
        le=65535,
        validation_alias="LITELLM_OPERATOR_METRICS_PORT",
        description="port of /metrics; 0 turns the endpoint off",
    )
    leader_election: bool = Field(
        default=False,
        validation_alias="LITELLM_OPERATOR_LEADER_ELECTION",
        description="run only while holding the Lease (on in the shipped manifests)",
    )
    lease_namespace: str = Field(
        default=DEFAULT_LEASE_NAMESPACE,
        validation_alias="POD_NAMESPACE",
        description="where the Lease lives: the operator's own namespace",
    )
    pod_name: str = Field(
        default="",
        validation_alias="POD_NAME",
        description="the stem of the holder identity (downward API); the host name without it",
    )

    allow_untested_kopf: bool = Field(
        default=False,
        validation_alias=ALLOW_UNTESTED_KOPF,
        description="run on a kopf outside the tested range if its internals pass the checks",
    )
    allow_slow_toggles: bool = Field(
        default=False,
        validation_alias=ALLOW_SLOW_TOGGLES,
        description="run with kopf's own O(N) readiness toggles if the O(1) patch is refused",
    )

    allow_untested_litellm: bool = Field(
        default=False,
        validation_alias=ALLOW_UNTESTED_LITELLM,
        description="run on a LiteLLM older than the oldest supported (see the README's matrix)",
    )

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings,)

    @field_validator("litellm_url", "public_url")
    @classmethod
    def _http_url(cls, url: str | None) -> str | None:
        if url is None:
            return None
        url = url.rstrip("/")
        parsed = urlparse(url)
        if parsed.scheme not in ("http", "https") or not parsed.netloc:
            raise ValueError("is not an http(s) URL")
        return url

    @property
    def base_url_for_workloads(self) -> str:
        return self.public_url or self.litellm_url

    @property
    def namespaces(self) -> tuple[str, ...]:
        """Namespaces to watch; empty means all (cluster-wide)."""
        return tuple(ns.strip() for ns in self.namespace_list.split(",") if ns.strip())

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


ALIASES = frozenset(
    str(f.validation_alias) for f in OperatorConfig.model_fields.values() if f.validation_alias
)
KEY_FILE = "LITELLM_MASTER_KEY_FILE"


def load_config(environ: Mapping[str, str] | None = None) -> OperatorConfig:
    """Build the configuration from ``environ`` (default: the process environment).

    Every problem is reported at once (:class:`ConfigError`), one line per variable; a value is
    quoted, except the master key's, which is never shown.
    """
    env = os.environ if environ is None else environ
    values = {name: env[name].strip() for name in ALIASES if env.get(name, "").strip()}
    problems: list[str] = []
    key = read_master_key(env, problems)
    if key:
        values["LITELLM_MASTER_KEY"] = key
    if "POD_NAMESPACE" not in values:
        values["POD_NAMESPACE"] = own_namespace(env)
    try:
        config = OperatorConfig(**cast(dict[str, Any], values))
    except ValidationError as exc:
        problems += [described(error, key_problem=bool(problems)) for error in exc.errors()]
        problems = [p for p in problems if p]
        raise ConfigError(problems) from None
    if problems:
        raise ConfigError(problems)
    return config


def described(error: Any, *, key_problem: bool) -> str:
    """One line per problem: the variable, its value (never the key's) and what is wrong."""
    name = str(error["loc"][0]) if error["loc"] else "?"
    field = next(
        (f for f in OperatorConfig.model_fields.values() if f.validation_alias == name), None
    )
    if error["type"] == "missing":
        if name == "LITELLM_MASTER_KEY":
            return "" if key_problem else MISSING_KEY
        return f"{name} is not set: {field.description if field else ''}"
    message = str(error["msg"]).removeprefix("Value error, ")
    if name == "LITELLM_MASTER_KEY":
        return f"{name}: {message}"
    if error["type"] in ("float_parsing", "int_parsing", "int_from_float"):
        message = "is not a number"
    elif name == "LITELLM_OPERATOR_METRICS_PORT":
        message = "is not a port number (0 to 65535)"
    elif error["type"] == "greater_than_equal":
        message = f"must be at least {error['ctx']['ge']:g}"
    elif error["type"] == "bool_parsing":
        message = "is not a boolean (true or false)"
    return f"{name}={error['input']!r} {message}"


MISSING_KEY = (
    "LITELLM_MASTER_KEY (or LITELLM_MASTER_KEY_FILE) is not set: LiteLLM's master key, "
    "from a Secret"
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
    path = env.get(KEY_FILE, "").strip()
    if path:
        try:
            key = Path(path).read_text(encoding="utf-8").strip()
        except OSError as exc:
            problems.append(f"LITELLM_MASTER_KEY_FILE={path!r} cannot be read: {exc.strerror}")
            return ""
    else:
        key = env.get("LITELLM_MASTER_KEY", "").strip()
    return key
