"""The project's own LiteLLM (devenv.litellm) as the tests, ``make up`` and the bench use it: a
second instance starts empty from the template, answers the admin API, and stops without leaving
a process or its data behind."""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from devenv import postgres
from devenv.litellm import Instance, LiteLLMEndpoint, parse_exports
from devenv.process import PidFile, is_running

pytestmark = pytest.mark.integration


@pytest.fixture
def private_dir() -> Iterator[Path]:
    """A 0700 directory, as ``tempfile`` makes them: the postgres user cannot reach into it."""
    path = Path(tempfile.mkdtemp(prefix="litellm-operator-devenv-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


def _headers(endpoint: LiteLLMEndpoint) -> dict[str, str]:
    return {"Authorization": f"Bearer {endpoint.master_key.get_secret_value()}"}


def test_an_instance_starts_empty_and_stops_clean(
    litellm_env: LiteLLMEndpoint, private_dir: Path, unique_id: str
) -> None:
    if LiteLLMEndpoint.from_env() is not None:
        pytest.skip("LITELLM_URL names a LiteLLM of one's own: the project's is not in use")
    # a user in the session's instance ...
    with httpx.Client(base_url=litellm_env.url, headers=_headers(litellm_env)) as session:
        body = {"user_id": unique_id, "auto_create_key": False, "metadata": {"k": [1, "x"]}}
        session.post("/user/new", json=body).raise_for_status()

    instance = Instance(private_dir / "litellm")
    endpoint = instance.start(exit_with_parent=True)
    try:
        assert instance.running()
        assert LiteLLMEndpoint.from_env(parse_exports(instance.env_file.read_text())) == endpoint
        state = json.loads((instance.directory / "state.json").read_text())
        if not postgres.reachable_by_server(private_dir):  # root: PostgreSQL runs elsewhere
            assert not Path(state["pg_data"]).is_relative_to(private_dir)
        with httpx.Client(base_url=endpoint.url, headers=_headers(endpoint)) as client:
            # ... is not in this one: every instance starts from the empty template
            assert client.get("/user/info", params={"user_id": unique_id}).status_code == 404
            client.post("/user/new", json=body).raise_for_status()
            info = client.get("/user/info", params={"user_id": unique_id}).json()
            assert info["user_info"]["metadata"] == {"k": [1, "x"]}  # Json through the engine
        proxy = PidFile(instance.directory / "proxy.pid").read()
        assert proxy is not None
    finally:
        instance.stop()
    assert not PidFile(instance.directory / "proxy.pid").running()
    assert not is_running(*proxy)
    assert not instance.directory.exists()
    assert not Path(state["pg_data"]).exists()
