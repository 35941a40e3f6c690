"""The key Secrets as kube.py reads them: plain JSON from the core API, values kept secret."""

from __future__ import annotations

import base64
import subprocess
import sys
from typing import Any

import kubernetes
import pytest

from litellm_operator import kube


def encoded(value: str) -> str:
    return base64.b64encode(value.encode()).decode()


SECRET = {
    "apiVersion": "v1",
    "kind": "Secret",
    "metadata": {
        "name": "alice-key",
        "namespace": "team-a",
        "labels": {"app": "x"},
        "annotations": {"note": "y"},
        "ownerReferences": [
            {"kind": "LiteLLMUser", "name": "other", "uid": "not-controller"},
            {"kind": "LiteLLMUser", "name": "alice", "uid": "u-1", "controller": True},
        ],
    },
    "data": {"key": encoded("sk-very-secret")},
}


@pytest.mark.parametrize(
    ("item", "name", "controller"),
    [
        pytest.param(SECRET, "alice-key", "u-1", id="controller-owner"),
        pytest.param(
            {**SECRET, "metadata": {**SECRET["metadata"], "ownerReferences": None}},  # type: ignore[dict-item]
            "alice-key",
            None,
            id="no-owners",
        ),
        pytest.param({"metadata": {"name": "bare"}}, "bare", None, id="no-data-no-labels"),
    ],
)
def test_a_secret_read_as_json(item: dict[str, Any], name: str, controller: str | None) -> None:
    secret = kube.key_secret(item)
    assert (secret.name, secret.controller_uid) == (name, controller)
    if "data" in item:
        assert secret.data["key"].get_secret_value() == "sk-very-secret"
        assert "sk-very-secret" not in repr(secret)
        assert (secret.namespace, dict(secret.labels)) == ("team-a", {"app": "x"})
    else:
        assert (secret.namespace, dict(secret.data)) == ("", {})


class Response:
    """An error answer of the kubernetes client's transport (only error paths are faked)."""

    def __init__(self, status: int, data: bytes) -> None:
        self.status, self.data, self.reason = status, data, "Nope"
        self.headers: dict[str, str] = {}
        self.response = self

    def read(self) -> bytes:
        return self.data


class Client:
    def __init__(self, response: Response) -> None:
        self.response = response
        self.requests: list[dict[str, Any]] = []

    def param_serialize(self, **request: Any) -> tuple[Any, ...]:
        self.requests.append(request)
        return (request["method"], request["resource_path"])

    def call_api(self, *_: Any) -> Response:
        return self.response


@pytest.mark.parametrize("preload", [True, False], ids=["read", "watch"])
def test_an_error_answer_raises_the_client_s_exception_with_its_status(preload: bool) -> None:
    client = Client(Response(403, b'{"kind":"Status","code":403}'))
    api = kube.Kube(client)  # type: ignore[arg-type]
    with pytest.raises(kubernetes.client.ApiException) as raised:
        api._core("GET", kube.SECRETS, {"namespace": "a"}, preload=preload)
    assert raised.value.status == 403
    assert client.requests[0]["auth_settings"] == ["BearerToken"]


def test_the_operator_never_imports_the_typed_core_client() -> None:
    """Its models are a fifth of the operator's memory at rest (README, Performance)."""
    probe = (
        "import sys, kubernetes\n"
        "import litellm_operator.cli, litellm_operator.runtime.runner, litellm_operator.kinds\n"
        "from litellm_operator.kube import Kube\n"
        "Kube(kubernetes.client.ApiClient(kubernetes.client.Configuration()))\n"
        "print('kubernetes.client.api.core_v1_api' in sys.modules)\n"
    )
    found = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60
    )
    assert found.stdout.strip() == "False"
