"""What must hold before the operator campaigns for the Lease: a kopf it was tested with, whose
internals its two patches (:mod:`litellm_operator.runtime.kopf_watch`,
:mod:`litellm_operator.runtime.kopf_toggles`) recognise, a Kubernetes no older than the oldest
one tested (the LiteLLM versions are declared in :mod:`litellm_operator.litellm.versions`).

The tested range of kopf is declared once, as the package's own requirement in
``pyproject.toml``; it is read back here from the installed distribution's metadata. The
patches are imported here and nowhere above :mod:`litellm_operator.runtime.runner`, so a kopf whose
private modules moved breaks ``run`` with one line, never ``explain`` or ``crds``.

:func:`problems` says what is wrong (nothing when all is well); :func:`install_patches` puts
both patches in place or raises :class:`Unsupported` with one line. Both are idempotent.
"""

from __future__ import annotations

import importlib
import importlib.metadata
from types import ModuleType

from packaging.requirements import Requirement
from packaging.version import InvalidVersion, Version

from litellm_operator.runtime.config import (
    ALLOW_SLOW_TOGGLES,
    ALLOW_UNTESTED_KOPF,
)

DISTRIBUTION = "litellm-operator"
MIN_KUBERNETES = (1, 31)
"""The oldest Kubernetes minor the tests run on (``make test-matrix``); the CRDs' CEL rules and
the shipped ValidatingAdmissionPolicy (admissionregistration.k8s.io/v1) need at least 1.30."""


class Unsupported(Exception):
    """The operator cannot run on what is installed; the message is one line for the user."""


def kopf_requirement() -> Requirement:
    """The kopf versions this operator was tested with, as its distribution declares them."""
    for line in importlib.metadata.requires(DISTRIBUTION) or ():
        requirement = Requirement(line)
        if requirement.name == "kopf" and requirement.marker is None:
            return requirement
    raise Unsupported(f"{DISTRIBUTION} declares no requirement on kopf: reinstall it")


def kopf_version() -> str:
    return importlib.metadata.version("kopf")


def version_problem(version: str, requirement: Requirement) -> str | None:
    """Why ``version`` of kopf is outside the tested ``requirement`` (``None`` when inside)."""
    try:
        inside = Version(version) in requirement.specifier
    except InvalidVersion:
        inside = False
    if inside:
        return None
    return (
        f"kopf {version} is not a version this operator was tested with ({requirement}); "
        f"install the pinned one, or set {ALLOW_UNTESTED_KOPF}=true to try it"
    )


def _patch(name: str) -> ModuleType:
    """Import one of the patch modules; a kopf whose private modules moved is Unsupported."""
    try:
        return importlib.import_module(f"litellm_operator.runtime.{name}")
    except ImportError as exc:
        raise Unsupported(
            f"kopf {kopf_version()}: litellm_operator.runtime.{name} cannot load ({exc})"
        ) from None


def install_patches(*, allow_slow_toggles: bool = False) -> None:
    """Put both patches in kopf, or raise :class:`Unsupported` naming the one refused.

    The toggles patch may be done without only when ``allow_slow_toggles`` says so: kopf's own
    toggles cost O(N²) wake-ups at a restart (10,000 users never started).
    """
    if not _patch("kopf_watch").install():
        raise Unsupported(
            f"kopf {kopf_version()}: its watch stream is not the one the LiteLLMUser indices "
            "are fed from (litellm_operator.runtime.kopf_watch)"
        )
    if not _patch("kopf_toggles").install() and not allow_slow_toggles:
        raise Unsupported(
            f"kopf {kopf_version()}: its readiness toggles are not the ones "
            f"litellm_operator.runtime.kopf_toggles replaces; set {ALLOW_SLOW_TOGGLES}=true to run "
            "with kopf's own (a restart costs O(N²) in the number of users)"
        )


def problems(*, allow_untested_kopf: bool = False, allow_slow_toggles: bool = False) -> list[str]:
    """Everything that keeps the operator from running here, one line each (empty: none).

    The patches are installed as a side effect when they can be.
    """
    found: list[str] = []
    try:
        outside = version_problem(kopf_version(), kopf_requirement())
        if outside and not allow_untested_kopf:
            found.append(outside)
        install_patches(allow_slow_toggles=allow_slow_toggles)
    except Unsupported as exc:
        found.append(str(exc))
    return found


def kubernetes_problem(version: tuple[int, int]) -> str | None:
    """Why an API server of ``version`` (major, minor) is not supported (``None``: it is)."""
    if version >= MIN_KUBERNETES:
        return None
    oldest = ".".join(map(str, MIN_KUBERNETES))
    return f"Kubernetes {version[0]}.{version[1]} is older than the oldest supported, {oldest}"
