"""The deploy tests' session: the shipped image, a real node (:mod:`devenv.node`) and the
project's LiteLLM where the node's pods reach it (on the node's bridge address).

``make test-deploy`` runs these (``-m deploy``); ``make test`` leaves them out. They need root, a
Docker daemon (Debian's docker.io; started and stopped here when none runs), containerd, runc, the
CNI plugins and debootstrap (Debian packages), and Go for the node's binaries. Where any of it is
missing they fail on CI and skip loudly elsewhere.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator

import pytest

from devenv.litellm import DevEnvError, Instance
from devenv.node import GATEWAY, Node, NodeError
from devenv.postgres import PostgresError
from tests.deploy.harness import HACK, MEASUREMENTS, NEXT_TAG_SUFFIX, DeployEnv

BUILD_TIMEOUT = 3600


def _unavailable(reason: str) -> None:
    """Skip loudly, or fail on CI, where a tier that cannot run is an error."""
    print(f"\n!!! {reason}", file=sys.stderr)
    if os.environ.get("CI"):
        pytest.fail(reason, pytrace=False)
    pytest.skip(reason)


def _script(name: str, *args: str) -> str:
    """Run hack/<name>; its stdout (progress goes to stderr)."""
    result = subprocess.run(
        [str(HACK / name), *args], stdout=subprocess.PIPE, text=True, timeout=BUILD_TIMEOUT
    )
    if result.returncode != 0:
        _unavailable(f"hack/{name} {' '.join(args)} failed (exit {result.returncode})")
    return result.stdout.strip()


@pytest.fixture(scope="session")
def deploy_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DeployEnv]:
    if os.geteuid() != 0:
        _unavailable("the deploy tests run a node: they need root")
    daemon = _script("dockerd.sh", "start")
    try:
        image = _script("image.sh").split()[0]
        next_image = image + NEXT_TAG_SUFFIX
        subprocess.run(["docker", "tag", image, next_image], check=True)
        helm = _script("helm-assets.sh")
        node = Node(exit_with_parent=True)
        try:
            node.start([image, next_image])
        except NodeError as error:
            _unavailable(f"the node did not start: {error}")
        try:
            instance = Instance(tmp_path_factory.mktemp("litellm") / "litellm")
            try:
                endpoint = instance.start(exit_with_parent=True, host=GATEWAY)
            except (DevEnvError, PostgresError) as error:
                _unavailable(f"the project's LiteLLM did not start: {error}")
            try:
                yield DeployEnv(node, endpoint, image, helm)
            finally:
                instance.stop()
        finally:
            node.stop()
    finally:
        if daemon == "started":
            _script("dockerd.sh", "stop")


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if MEASUREMENTS:
        terminalreporter.section("deploy measurements")
        for line in MEASUREMENTS:
            terminalreporter.write_line(line)
