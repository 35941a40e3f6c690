"""The key Secrets' watch: a Secret deleted or changed by someone else nudges its user.

Keys are part of a LiteLLMUser (``spec.keys``) and reconciled with it; this is the one trigger
of their own.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable
from typing import Any

import kopf

from litellm_operator.keys.plan import USER_LABEL
from litellm_operator.keys.reconciler import SECRET_SELECTOR, secret_drifted
from litellm_operator.kube import KeySecret, Kube
from litellm_operator.runtime.handling import now_iso

log = logging.getLogger(__name__)

Known = Callable[[tuple[str, str]], bool]
"""Whether a user (namespace, name) is one of this operator's."""


class SecretWatch:
    """Watches the operator's key Secrets (label selector, server-side) in a daemon thread and
    nudges the user of a Secret that was deleted or whose key was changed by someone else.
    Users outside the operator's namespaces (``known`` says no) are left alone."""

    def __init__(self, kube: Kube, known: Known) -> None:
        self.kube = kube
        self.known = known
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    async def start(self, **_: Any) -> None:
        loop = asyncio.get_running_loop()

        def deliver(kind: str, secret: KeySecret) -> None:
            if secret_drifted(kind, secret):
                user = secret.labels.get(USER_LABEL, "")
                asyncio.run_coroutine_threadsafe(self.nudge(secret.namespace, user, kind), loop)

        self._thread = threading.Thread(
            target=self.kube.watch_secrets,
            args=(SECRET_SELECTOR, deliver, self._stop),
            name="key-secrets-watch",
            daemon=True,
        )
        self._thread.start()

    async def nudge(self, namespace: str, user: str, kind: str) -> None:
        if not self.known((namespace, user)):
            return
        try:
            await self.kube.nudge(namespace, user, f"key Secret {kind} at {now_iso()}")
        except Exception as exc:  # the next resync or restart reconciles it anyway
            log.warning("user %s/%s not nudged after a Secret change: %s", namespace, user, exc)

    def stop(self, **_: Any) -> None:
        self._stop.set()

    def register(self, registry: kopf.OperatorRegistry) -> None:
        kopf.on.startup(registry=registry, id="watch-key-secrets")(self.start)
        kopf.on.cleanup(registry=registry, id="key-secrets")(self.stop)
