"""`make demo` as a newcomer runs it: its own control plane, its own LiteLLM, examples/ Ready."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from devenv.controlplane import ControlPlaneError, find_assets

pytestmark = [pytest.mark.e2e, pytest.mark.integration]

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE_USERS = ("alice", "bob", "carol", "svc-ci")


@pytest.fixture
def dev_dir() -> Iterator[Path]:
    """Outside pytest's private tmp tree: PostgreSQL runs as its own user and must reach it."""
    path = Path(tempfile.mkdtemp(prefix="litellm-demo-"))
    path.chmod(0o755)
    yield path / "dev"
    shutil.rmtree(path, ignore_errors=True)


def test_make_demo_from_scratch(dev_dir: Path) -> None:
    try:
        assets = find_assets(build=False)
    except ControlPlaneError as exc:
        pytest.skip(f"no envtest binaries for the demo: {exc}")
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in {"KUBECONFIG", "LITELLM_URL", "LITELLM_MASTER_KEY"}
    }
    env |= {"LITELLM_OPERATOR_DEV_DIR": str(dev_dir), "KUBEBUILDER_ASSETS": str(assets)}
    try:
        demo = subprocess.run(
            [str(ROOT / "hack" / "dev.sh"), "demo"],
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        assert demo.returncode == 0, demo.stderr[-3000:]
        kube_rows = [line.split() for line in demo.stdout.splitlines()]
        ready = {row[1]: row[4] for row in kube_rows if len(row) >= 5 and row[1] in EXAMPLE_USERS}
        assert ready == dict.fromkeys(EXAMPLE_USERS, "True"), demo.stdout
        assert "alice@example.com" in demo.stdout
        assert "power-users" in demo.stdout, "LiteLLM's side shows alice's team"
        log = (dev_dir / "operator.log").read_text()
        secret = (dev_dir / "litellm.env").read_text().split("LITELLM_MASTER_KEY=")[1]
        assert secret.split()[0].strip("'") not in log
    finally:
        subprocess.run(
            [str(ROOT / "hack" / "dev.sh"), "down"], env=env, capture_output=True, timeout=120
        )
    assert not (dev_dir / "operator.pid").exists()
