"""The few Kubernetes writes the operator makes outside kopf's own patching.

* :meth:`Kube.record_user_id` pins ``status.userId`` *before* the LiteLLM user is created, so a
  crash between the create and kopf's end-of-handler patch can never lead to a second create
  under another id.
* :meth:`Kube.patch_user_status` and :meth:`Kube.patch_policy_status` merge-patch a status
  outside a handler of that object: a policy edit turns its users' Ready to Unknown at once, and
  a policy's rollout counts follow its users' statuses.
* The Secrets that hold the users' virtual keys (:class:`KeySecret`): listed by the operator's
  labels only, created, merge-patched and deleted. Values are decoded into ``SecretStr`` here
  and never leave as plain strings except in the body sent to the API server.
* :meth:`Kube.nudge` sets an annotation that makes kopf re-run a LiteLLMUser's update handler:
  it is how a policy edit, or drift found by the periodic resync, reaches the users concerned,
  through the same handler (and the same retries and status) as any other change.

The kubernetes client is synchronous; calls run in a worker thread. The status writes do not
once the operator runs: it sets :attr:`Kube.patch_status` to kopf's asynchronous client (a
write per user in a create and in a policy edit, otherwise each a thread hop and the client's
request building). Secrets go through the client's transport, authentication and errors
(:meth:`Kube._core`), but not through its typed ``CoreV1Api``: importing that loads a model
class for every core kind, a fifth of the operator's resident memory at rest (the README's
Performance section), for the one kind the operator reads as plain JSON anyway.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import threading
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import kubernetes
from pydantic import SecretStr

from litellm_operator.models import GROUP, POLICY_PLURAL, TEAM_PLURAL, USER_PLURAL, VERSION

log = logging.getLogger(__name__)

SECRETS = "/api/v1/namespaces/{namespace}/secrets"
SECRET = "/api/v1/namespaces/{namespace}/secrets/{name}"
ALL_SECRETS = "/api/v1/secrets"
STRATEGIC_MERGE_PATCH = "application/strategic-merge-patch+json"
"""What the typed client sent for a dict patch of a built-in kind: ``None`` deletes a key."""

NUDGE_ANNOTATION = f"reconcile.{GROUP}/requested"
"""Outside the ``{GROUP}/`` prefix on purpose: kopf ignores its own storage prefix in diffs."""


@dataclass(frozen=True)
class KeySecret:
    """A Secret of the operator's, with its data as ``SecretStr`` (never printed)."""

    name: str
    namespace: str = ""
    labels: Mapping[str, str] = field(default_factory=dict)
    annotations: Mapping[str, str] = field(default_factory=dict)
    data: Mapping[str, SecretStr] = field(default_factory=dict, repr=False)
    controller_uid: str | None = None
    """The uid its controller ownerReference names: a key Secret is the operator's only when
    that is its LiteLLMUser (labels anyone in the namespace can write)."""


def encoded(data: Mapping[str, SecretStr | None]) -> dict[str, str | None]:
    """``data`` for the API server (base64); ``None`` deletes a key in a merge patch."""
    return {
        k: None if v is None else base64.b64encode(v.get_secret_value().encode()).decode()
        for k, v in data.items()
    }


def unread(call: Callable[..., Any], *args: Any) -> None:
    """Make a write whose answer is not needed without decoding it: a policy edit patches every
    user's status, and decoding (then validating) each answer was a share of the operator's CPU
    (the README's Performance section)."""
    response = call(*args, _preload_content=False)  # non-2xx answers still raise ApiException
    try:
        response.read()
    finally:
        response.release_conn()


async def unless_gone(request: Awaitable[Any]) -> bool:
    """Await a request to one object; ``False`` if the API server answered 404 (it is gone)."""
    try:
        await request
    except kubernetes.client.ApiException as exc:
        if exc.status != 404:
            raise
        return False
    return True


PatchStatus = Callable[[str, Mapping[str, Any]], Awaitable[bool]]
"""Merge-patches the object at a path (its ``status`` subresource) with a body; ``False`` when
the object is gone. What :attr:`Kube.patch_status` holds when the operator runs."""


class WatchEnded(RuntimeError):
    """The API server ended a watch with an error event (its Status code, if any)."""


class ResourceGone(LookupError):
    """The resource a write was meant for has been deleted meanwhile."""


class Kube:
    def __init__(self, api_client: kubernetes.client.ApiClient | None = None) -> None:
        if api_client is None:
            api_client = kubernetes.client.ApiClient(load_configuration())
        self.api_client = api_client
        self.custom = kubernetes.client.CustomObjectsApi(api_client)
        self.patch_status: PatchStatus | None = None
        """Set by the running operator to kopf's asynchronous API client: a status write then
        costs no worker thread of this client, nor its request building (a share of a create's
        and of a policy edit's CPU, the README's Performance section). Unset (the command-line
        tools, tests), the writes go through this client as before."""

    def _core(
        self,
        method: str,
        path: str,
        params: Mapping[str, str],
        *,
        query: Mapping[str, str | int | bool] | None = None,
        body: Any = None,
        content_type: str = "application/json",
        preload: bool = True,
    ) -> Any:
        """Blocking: one request to the core API (``path`` under ``/api/v1``); its JSON answer
        as plain data, or with ``preload=False`` the open response (a watch). Any answer but a
        2xx raises :class:`kubernetes.client.ApiException`, as the typed client does."""
        request = self.api_client.param_serialize(
            method=method,
            resource_path=path,
            path_params=dict(params),
            query_params=list((query or {}).items()),
            header_params={"Accept": "application/json", "Content-Type": content_type},
            body=body,
            auth_settings=["BearerToken"],
        )
        response = self.api_client.call_api(*request)
        if preload or not 200 <= response.status <= 299:
            response.read()
        if not 200 <= response.status <= 299:
            text = response.data.decode("utf-8", errors="replace") if response.data else None
            raise kubernetes.client.ApiException.from_response(
                http_resp=response, body=text, data=None
            )
        if not preload:
            return response.response
        return json.loads(response.data) if response.data else None

    async def record_user_id(
        self, namespace: str, name: str, user_id: str, status: Mapping[str, Any]
    ) -> None:
        """Merge-patch ``status`` with ``userId`` before LiteLLM is written; raises
        :class:`ResourceGone` when the user no longer exists (nothing is created for it)."""
        if not await self.patch_user_status(namespace, name, {**status, "userId": user_id}):
            raise ResourceGone(f"LiteLLMUser {namespace}/{name} no longer exists")

    async def patch_user_status(self, namespace: str, name: str, status: Mapping[str, Any]) -> bool:
        """Merge-patch a user's ``status``; ``False`` if the user is gone."""
        if self.patch_status is not None:
            path = f"/apis/{GROUP}/{VERSION}/namespaces/{namespace}/{USER_PLURAL}/{name}/status"
            return await self.patch_status(path, {"status": dict(status)})
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
        if self.patch_status is not None:
            path = f"/apis/{GROUP}/{VERSION}/{POLICY_PLURAL}/{name}/status"
            return await self.patch_status(path, {"status": dict(status)})
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
        return await unless_gone(asyncio.to_thread(unread, call, *args))

    async def nudge(self, namespace: str, name: str, why: str) -> None:
        """Ask kopf to reconcile the user again; ``why`` is kept in the annotation."""
        await self._nudge(USER_PLURAL, namespace, name, why)

    async def nudge_team(self, namespace: str, name: str, why: str) -> None:
        """Ask kopf to reconcile the LiteLLMTeam again, as :meth:`nudge` does a user."""
        await self._nudge(TEAM_PLURAL, namespace, name, why)

    async def _nudge(self, plural: str, namespace: str, name: str, why: str) -> None:
        body: dict[str, Any] = {"metadata": {"annotations": {NUDGE_ANNOTATION: why}}}
        patch = self.custom.patch_namespaced_custom_object
        # Deleted meanwhile: nothing left to reconcile.
        await unless_gone(asyncio.to_thread(patch, GROUP, VERSION, namespace, plural, name, body))

    async def list_secrets(self, namespace: str, selector: str) -> list[KeySecret]:
        """The Secrets of ``namespace`` that match the label ``selector`` (the operator's)."""
        found = await asyncio.to_thread(
            self._core, "GET", SECRETS, {"namespace": namespace}, query={"labelSelector": selector}
        )
        return [key_secret(item) for item in (found or {}).get("items") or ()]

    async def create_secret(
        self,
        namespace: str,
        name: str,
        *,
        labels: Mapping[str, str],
        annotations: Mapping[str, str],
        data: Mapping[str, SecretStr],
        owner: Mapping[str, Any] | None,
    ) -> None:
        body: dict[str, Any] = {
            "apiVersion": "v1",
            "kind": "Secret",
            "type": "Opaque",
            "metadata": {
                "name": name,
                "namespace": namespace,
                "labels": dict(labels),
                "annotations": dict(annotations),
                **({"ownerReferences": [dict(owner)]} if owner else {}),
            },
            "data": encoded(data),
        }
        await asyncio.to_thread(self._core, "POST", SECRETS, {"namespace": namespace}, body=body)

    async def patch_secret(
        self,
        namespace: str,
        name: str,
        *,
        annotations: Mapping[str, str | None] | None = None,
        data: Mapping[str, SecretStr | None] | None = None,
        labels: Mapping[str, str] | None = None,
        drop_owners: bool = False,
    ) -> None:
        """Merge-patch a Secret; ``None`` values delete annotations and data keys."""
        meta: dict[str, Any] = {}
        if annotations:
            meta["annotations"] = dict(annotations)
        if labels:
            meta["labels"] = dict(labels)
        if drop_owners:
            meta["ownerReferences"] = None
        body: dict[str, Any] = {"metadata": meta}
        if data:
            body["data"] = encoded(data)
        await asyncio.to_thread(
            self._core,
            "PATCH",
            SECRET,
            {"namespace": namespace, "name": name},
            body=body,
            content_type=STRATEGIC_MERGE_PATCH,
        )

    async def delete_secret(self, namespace: str, name: str) -> bool:
        """Delete a Secret; ``False`` if it was already gone."""
        params = {"namespace": namespace, "name": name}
        return await unless_gone(asyncio.to_thread(self._core, "DELETE", SECRET, params))

    def watch_secrets(
        self,
        selector: str,
        deliver: Callable[[str, KeySecret], None],
        stop: threading.Event,
        window: int = 60,
    ) -> None:
        """Blocking: stream every namespace's Secrets that match ``selector`` (server-side: no
        other Secret is ever sent to the operator) to ``deliver(event type, secret)`` until
        ``stop`` is set; each watch lasts at most ``window`` seconds, errors restart it."""
        while not stop.is_set():
            watch = kubernetes.watch.Watch()
            try:
                for event in watch.stream(
                    self._watch_all_secrets, label_selector=selector, timeout_seconds=window
                ):
                    if stop.is_set():
                        break
                    if event["type"] == "ERROR":  # a Status, not a Secret: watch again
                        raise WatchEnded(str((event["object"] or {}).get("code", "")))
                    deliver(str(event["type"]), key_secret(event["object"]))
            except Exception as exc:  # a watch that broke is simply started again
                status = getattr(exc, "status", "")  # never the message: it may hold data
                log.warning(
                    "watch of the keys' Secrets restarted: %s %s", type(exc).__name__, status
                )
                time.sleep(1)
            finally:
                watch.stop()

    def _watch_all_secrets(self, **kwargs: Any) -> object:
        """The call ``kubernetes.watch.Watch.stream`` reads events from; with no model type to
        decode into, it hands each event's object over as it came (a dict)."""
        query = {"labelSelector": kwargs["label_selector"], "watch": True}
        if "timeout_seconds" in kwargs:
            query["timeoutSeconds"] = kwargs["timeout_seconds"]
        if kwargs.get("resource_version"):
            query["resourceVersion"] = kwargs["resource_version"]
        return self._core("GET", ALL_SECRETS, {}, query=query, preload=False)

    def server_version(self) -> tuple[int, int]:
        """The API server's (major, minor) version, as ``/version`` reports it."""
        info = kubernetes.client.VersionApi(self.api_client).get_code(_request_timeout=10)
        return int(info.major), int(str(info.minor).rstrip("+"))

    def close(self) -> None:
        self.api_client.close()


def key_secret(item: Mapping[str, Any]) -> KeySecret:
    """A Secret as the API server sends it (JSON), its values decoded into ``SecretStr``."""
    meta = item.get("metadata") or {}
    data = {
        k: SecretStr(base64.b64decode(v).decode(errors="replace"))
        for k, v in (item.get("data") or {}).items()
    }
    owners = meta.get("ownerReferences") or ()
    return KeySecret(
        name=str(meta.get("name") or ""),
        namespace=str(meta.get("namespace") or ""),
        labels=dict(meta.get("labels") or {}),
        annotations=dict(meta.get("annotations") or {}),
        data=data,
        controller_uid=next((o.get("uid") for o in owners if o.get("controller")), None),
    )


def load_configuration() -> kubernetes.client.Configuration:
    """In-cluster credentials when running in a pod, else the kubeconfig (``KUBECONFIG``)."""
    configuration = kubernetes.client.Configuration()
    try:
        kubernetes.config.load_incluster_config(client_configuration=configuration)
    except kubernetes.config.ConfigException:
        kubernetes.config.load_kube_config(client_configuration=configuration)
    return configuration
