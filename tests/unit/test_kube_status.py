"""Status writes of kube.py: through the patcher the running operator sets (kopf's asynchronous
client), the same paths and bodies, and a user gone meanwhile reported, not raised."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, cast

import kopf
import kubernetes
import pytest
from kopf._cogs.clients import api as kopf_api
from kopf._cogs.clients import errors as kopf_errors

from litellm_operator import kube
from litellm_operator.models import GROUP, POLICY_PLURAL, USER_PLURAL, VERSION
from litellm_operator.runtime import kopf_watch


class NoSyncClient:
    """The synchronous client must not be reached once a patcher is set."""

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"the synchronous client was called: {name}")


def patched_kube(found: bool) -> tuple[kube.Kube, list[tuple[str, Mapping[str, Any]]]]:
    writes: list[tuple[str, Mapping[str, Any]]] = []

    async def patch_status(path: str, body: Mapping[str, Any]) -> bool:
        writes.append((path, body))
        return found

    k = kube.Kube(kubernetes.client.ApiClient(kubernetes.client.Configuration()))
    k.custom = NoSyncClient()  # type: ignore[assignment]
    k.patch_status = patch_status
    return k, writes


@pytest.mark.parametrize("found", [True, False], ids=["present", "gone"])
async def test_status_writes_go_through_the_patcher(found: bool) -> None:
    k, writes = patched_kube(found)
    assert await k.patch_user_status("team-a", "alice", {"x": 1}) is found
    assert await k.patch_policy_status("default", {"y": 2}) is found
    users = kopf.Resource(GROUP, VERSION, USER_PLURAL, namespaced=True)
    policies = kopf.Resource(GROUP, VERSION, POLICY_PLURAL, namespaced=False)
    assert writes == [  # the paths kopf itself builds for these objects' status
        (
            users.get_url(namespace=cast(Any, "team-a"), name="alice", subresource="status"),
            {"status": {"x": 1}},
        ),
        (policies.get_url(name="default", subresource="status"), {"status": {"y": 2}}),
    ]


async def test_a_pin_for_a_user_gone_meanwhile_raises_resource_gone() -> None:
    k, writes = patched_kube(found=False)
    with pytest.raises(kube.ResourceGone):
        await k.record_user_id("team-a", "alice", "alice@example.com", {"managedTeams": []})
    assert writes[0][1] == {"status": {"managedTeams": [], "userId": "alice@example.com"}}


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        pytest.param({"metadata": {"resourceVersion": "7"}}, True, id="patched"),
        pytest.param(
            kopf_errors.APINotFoundError("gone", status=404, headers={}), False, id="gone"
        ),
    ],
)
async def test_kopf_s_client_as_the_patcher(
    monkeypatch: pytest.MonkeyPatch, answer: Any, expected: bool
) -> None:
    sent: list[tuple[str, Any]] = []

    async def patch(url: str, *, payload: Any, **_: Any) -> Any:
        sent.append((url, payload))
        if isinstance(answer, Exception):
            raise answer
        return answer

    monkeypatch.setattr(kopf_api, "patch", patch)
    assert await kopf_watch.patch_found("/p", {"status": {}}, kopf_watch.FedSettings()) is expected
    assert sent == [("/p", {"status": {}})]


async def test_kopf_s_client_raises_what_is_not_a_404(monkeypatch: pytest.MonkeyPatch) -> None:
    async def patch(url: str, **_: Any) -> Any:
        raise kopf_errors.APIConflictError("changed", status=409, headers={})

    monkeypatch.setattr(kopf_api, "patch", patch)
    with pytest.raises(kopf_errors.APIConflictError):
        await kopf_watch.patch_found("/p", {}, kopf_watch.FedSettings())
