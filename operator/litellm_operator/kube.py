"""The few Kubernetes writes the operator makes outside kopf's own patching.

* :meth:`Kube.record_user_id` pins ``status.userId`` *before* the LiteLLM user is created, so a
  crash between the create and kopf's end-of-handler patch can never lead to a second create
  under another id.
* :meth:`Kube.patch_user_status` and :meth:`Kube.patch_policy_status` merge-patch a status
  outside a handler of that object: a policy edit turns its users' Ready to Unknown at once, and
  a policy's rollout counts follow its users' statuses.
* :meth:`Kube.nudge` sets an annotation that makes kopf re-run a LiteLLMUser's update handler:
  it is how a policy edit, or drift found by the periodic resync, reaches the users concerned,
  through the same handler (and the same retries and status) as any other change.

The kubernetes client is synchronous; calls run in a worker thread.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

import kubernetes

from litellm_operator.models import GROUP, POLICY_PLURAL, USER_PLURAL, VERSION

NUDGE_ANNOTATION = f"reconcile.{GROUP}/requested"
"""Outside the ``{GROUP}/`` prefix on purpose: kopf ignores its own storage prefix in diffs."""


class Kube:
    def __init__(self, api_client: kubernetes.client.ApiClient | None = None) -> None:
        if api_client is None:
            api_client = kubernetes.client.ApiClient(load_configuration())
        self.api_client = api_client
        self.custom = kubernetes.client.CustomObjectsApi(api_client)

    async def record_user_id(
        self, namespace: str, name: str, user_id: str, status: Mapping[str, Any]
    ) -> None:
        """Merge-patch ``status`` (which holds ``userId``) through the status subresource."""
        body = {"status": {**status, "userId": user_id}}
        await asyncio.to_thread(
            self.custom.patch_namespaced_custom_object_status,
            GROUP,
            VERSION,
            namespace,
            USER_PLURAL,
            name,
            body,
        )

    async def patch_user_status(self, namespace: str, name: str, status: Mapping[str, Any]) -> bool:
        """Merge-patch a user's ``status``; ``False`` if the user is gone."""
        return await self._ignoring_404(
            self.custom.patch_namespaced_custom_object_status,
            GROUP,
            VERSION,
            namespace,
            USER_PLURAL,
            name,
            {"status": dict(status)},
        )

    async def patch_policy_status(self, name: str, status: Mapping[str, Any]) -> bool:
        """Merge-patch a policy's ``status``; ``False`` if the policy is gone."""
        return await self._ignoring_404(
            self.custom.patch_cluster_custom_object_status,
            GROUP,
            VERSION,
            POLICY_PLURAL,
            name,
            {"status": dict(status)},
        )

    @staticmethod
    async def _ignoring_404(call: Any, *args: Any) -> bool:
        try:
            await asyncio.to_thread(call, *args)
        except kubernetes.client.ApiException as exc:
            if exc.status != 404:
                raise
            return False
        return True

    async def nudge(self, namespace: str, name: str, why: str) -> None:
        """Ask kopf to reconcile the user again; ``why`` is kept in the annotation."""
        body: dict[str, Any] = {"metadata": {"annotations": {NUDGE_ANNOTATION: why}}}
        try:
            await asyncio.to_thread(
                self.custom.patch_namespaced_custom_object,
                GROUP,
                VERSION,
                namespace,
                USER_PLURAL,
                name,
                body,
            )
        except kubernetes.client.ApiException as exc:
            if exc.status != 404:  # deleted meanwhile: nothing left to reconcile
                raise

    def close(self) -> None:
        self.api_client.close()


def load_configuration() -> kubernetes.client.Configuration:
    """In-cluster credentials when running in a pod, else the kubeconfig (``KUBECONFIG``)."""
    configuration = kubernetes.client.Configuration()
    try:
        kubernetes.config.load_incluster_config(client_configuration=configuration)
    except kubernetes.config.ConfigException:
        kubernetes.config.load_kube_config(client_configuration=configuration)
    return configuration
