"""`make demo` as a newcomer runs it: its own control plane, its own LiteLLM, examples/ Ready."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.fixtures.dev import dev_environment

pytestmark = [pytest.mark.e2e, pytest.mark.integration]

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE_USERS = ("alice", "bob", "carol", "svc-ci")


def test_make_demo_from_scratch(dev_dir: Path) -> None:
    env = dev_environment(dev_dir)
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
        team_rows = [row for row in kube_rows if row[:2] == ["platform", "power-users"]]
        assert team_rows, demo.stdout
        assert team_rows[0][2] == "platform.power-users"  # TEAM ID, kubectl's side
        assert "True" in team_rows[0], demo.stdout
        litellm_team = [row for row in kube_rows if row[:1] == ["platform.power-users"]]
        assert litellm_team, "LiteLLM's side shows the team"
        assert "alice@example.com" in litellm_team[0][-1], "with alice as its member"
        alice = [row for row in kube_rows if row[:1] == ["alice@example.com"]]
        assert alice[0][-1] == "platform.power-users", "LiteLLM's side shows alice's team"
        log = (dev_dir / "operator.log").read_text()
        secret = (dev_dir / "litellm.env").read_text().split("LITELLM_MASTER_KEY=")[1]
        assert secret.split()[0].strip("'") not in log
    finally:
        subprocess.run(
            [str(ROOT / "hack" / "dev.sh"), "down"], env=env, capture_output=True, timeout=120
        )
    assert not (dev_dir / "operator.pid").exists()
