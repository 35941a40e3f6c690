"""The key Secrets' watch: a Secret deleted or changed by someone else nudges its owner.

Keys are part of a LiteLLMUser or a LiteLLMTeam (``spec.keys``) and reconciled with it; this is
the one trigger of their own.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

import kopf

from litellm_operator.keys.owner import OwnerKind, owner_of_secret
from litellm_operator.keys.reconciler import SECRET_SELECTOR, secret_drifted
from litellm_operator.kube import KeySecret, Kube
from litellm_operator.runtime.handling import now_iso

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Owners:
    """One kind of key owner, as the watch reaches it."""

    known: Callable[[tuple[str, str]], bool]
    """Whether an object (namespace, name) of the kind is one of this operator's."""
    nudge: Callable[[str, str, str], Awaitable[None]]
    """Ask kopf to reconcile it (namespace, name, why)."""


class SecretWatch:
    """Watches the operator's key Secrets (label selector, server-side) in a daemon thread and
    nudges the owner of a Secret that was deleted or whose key was changed by someone else.
    Owners outside the operator's namespaces (``known`` says no) are left alone."""

    def __init__(self, kube: Kube, owners: Mapping[OwnerKind, Owners]) -> None:
        self.kube = kube
        self.owners = owners
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    async def start(self, **_: Any) -> None:
        loop = asyncio.get_running_loop()

        def deliver(kind: str, secret: KeySecret) -> None:
            owner = owner_of_secret(secret.labels)
            if owner is not None and secret_drifted(kind, secret):
                of, name = owner
                asyncio.run_coroutine_threadsafe(self.nudge(of, secret.namespace, name, kind), loop)

        self._thread = threading.Thread(
            target=self.kube.watch_secrets,
            args=(SECRET_SELECTOR, deliver, self._stop),
            name="key-secrets-watch",
            daemon=True,
        )
        self._thread.start()

    async def nudge(self, of: OwnerKind, namespace: str, name: str, kind: str) -> None:
        owners = self.owners.get(of)
        if owners is None or not owners.known((namespace, name)):
            return
        try:
            await owners.nudge(namespace, name, f"key Secret {kind} at {now_iso()}")
        except Exception as exc:  # the next resync or restart reconciles it anyway
            log.warning(
                "%s %s/%s not nudged after a Secret change: %s", of.kind, namespace, name, exc
            )

    def stop(self, **_: Any) -> None:
        self._stop.set()

    def register(self, registry: kopf.OperatorRegistry) -> None:
        kopf.on.startup(registry=registry, id="watch-key-secrets")(self.start)
        kopf.on.cleanup(registry=registry, id="key-secrets")(self.stop)
