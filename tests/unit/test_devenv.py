"""Unit tests of the development environment's pure parts: process liveness (zombies, PID reuse),
export-line parsing, cache paths, reachability for the postgres user; and ``hack/dev.sh status``
judging a killed (zombie) operator dead."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import SecretStr

from devenv import postgres
from devenv.litellm import Installation, LiteLLMEndpoint, cache_root, fingerprint, parse_exports
from devenv.postgres import reachable_by
from devenv.process import PidFile, is_running, parse_stat, read_stat

ROOT = Path(__file__).resolve().parents[2]
STAT = "4242 (python3) S 1 4242 4242 0 -1 4194560 2961 0 0 0 9 2 0 0 20 0 1 0 987654 1 2 3\n"


# ------------------------------------------------------------------------------- process


def test_parse_stat_reads_state_and_start_time() -> None:
    stat = parse_stat(STAT)
    assert (stat.pid, stat.comm, stat.state, stat.start_ticks) == (4242, "python3", "S", 987654)
    assert not stat.zombie


def test_parse_stat_survives_parentheses_and_spaces_in_the_name() -> None:
    stat = parse_stat(STAT.replace("(python3)", "(a) Z (b)").replace(" S ", " Z ", 1))
    assert (stat.comm, stat.state, stat.start_ticks) == ("a) Z (b", "Z", 987654)
    assert stat.zombie


@pytest.mark.parametrize("text", ["", "4242 python3 S 1", "4242 (x) S 1 2 3"])
def test_parse_stat_rejects_malformed_lines(text: str) -> None:
    with pytest.raises(ValueError, match="stat"):
        parse_stat(text)


@pytest.fixture
def zombie() -> Iterator[int]:
    """A child that has exited but is not reaped yet: what PID 1 leaves behind in containers."""
    proc = subprocess.Popen(["sleep", "60"])
    try:
        os.kill(proc.pid, signal.SIGKILL)
        deadline = time.monotonic() + 5
        while (stat := read_stat(proc.pid)) is not None and not stat.zombie:
            assert time.monotonic() < deadline, "the child did not become a zombie"
            time.sleep(0.01)
        yield proc.pid
    finally:
        proc.wait()


def test_a_zombie_is_not_running_though_kill_0_succeeds(zombie: int) -> None:
    os.kill(zombie, 0)  # what `kill -0` in hack/dev.sh used to rely on: no error
    assert not is_running(zombie)


def test_pidfile_tracks_pid_and_start_time(tmp_path: Path) -> None:
    pidfile = PidFile(tmp_path / "x.pid")
    assert pidfile.pid() is None  # no file
    pidfile.record(os.getpid())
    pid, start = pidfile.read() or (0, None)
    own = parse_stat(Path("/proc/self/stat").read_text())
    assert (pid, start) == (os.getpid(), own.start_ticks)
    assert pidfile.running()
    assert pidfile.pid() == os.getpid()


def test_pidfile_rejects_a_reused_pid(tmp_path: Path) -> None:
    """Same PID, other start time: another process now has that PID."""
    stat = parse_stat(Path("/proc/self/stat").read_text())
    pidfile = PidFile(tmp_path / "x.pid")
    pidfile.path.write_text(f"{os.getpid()} {stat.start_ticks + 1}\n")
    assert not pidfile.running()


def test_pidfile_reads_a_bare_pid_and_ignores_garbage(tmp_path: Path) -> None:
    pidfile = PidFile(tmp_path / "x.pid")
    pidfile.path.write_text(f"{os.getpid()}\n")
    assert pidfile.running()
    pidfile.path.write_text("not a pid\n")
    assert pidfile.read() is None
    assert not pidfile.running()


def _dev_sh_status(dev_dir: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "LITELLM_OPERATOR_DEV_DIR": str(dev_dir), "DEV_PYTHON": sys.executable}
    return subprocess.run(
        [str(ROOT / "hack" / "dev.sh"), "status"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_dev_sh_judges_a_killed_operator_dead(tmp_path: Path, zombie: int) -> None:
    """Issue 12 item 6: `make up` must restart an operator that was killed (now a zombie)."""
    (tmp_path / "operator.pid").write_text(f"{zombie}\n")  # as the old dev.sh wrote it
    status = _dev_sh_status(tmp_path)
    assert (status.returncode, status.stdout.strip()) == (1, "operator: not running")


def test_dev_sh_judges_a_live_operator_alive(tmp_path: Path) -> None:
    with subprocess.Popen(["sleep", "60"]) as proc:
        try:
            subprocess.run(
                [sys.executable, "-m", "devenv.process", "record", str(tmp_path / "operator.pid"),
                 str(proc.pid)],
                cwd=ROOT, check=True,
            )  # fmt: skip
            status = _dev_sh_status(tmp_path)
            assert status.returncode == 0, status.stderr
            assert status.stdout.strip() == f"operator: running (pid {proc.pid})"
        finally:
            proc.kill()


# ------------------------------------------------------------------------------- litellm


def test_parse_exports_reads_quoted_and_bare_values_only() -> None:
    text = (
        "# comment\n"
        "export LITELLM_URL=http://127.0.0.1:4000\n"
        "export LITELLM_MASTER_KEY='sk-a b'  # trailing comment\n"
        'export QUOTED="x=y"\n'
        "LITELLM_OTHER=not-exported\n"
        "export 'unbalanced\n"
        "export 1BAD=x\n"
        "echo hello\n"
    )
    assert parse_exports(text) == {
        "LITELLM_URL": "http://127.0.0.1:4000",
        "LITELLM_MASTER_KEY": "sk-a b",
        "QUOTED": "x=y",
    }


def test_endpoint_exports_round_trip_and_hide_the_key() -> None:
    endpoint = LiteLLMEndpoint("http://127.0.0.1:1", SecretStr("sk-$(rm -rf /)'"), Path("/d i r"))
    assert LiteLLMEndpoint.from_env(parse_exports(endpoint.exports())) == endpoint
    assert "sk-" not in repr(endpoint)
    assert LiteLLMEndpoint.from_env({"LITELLM_URL": "http://x"}) is None


def test_cache_root_precedence(tmp_path: Path) -> None:
    home = str(Path.home())
    assert cache_root({}) == Path(home) / ".cache" / "litellm-operator" / "litellm"
    assert cache_root({"XDG_CACHE_HOME": "/x"}) == Path("/x/litellm-operator/litellm")
    both = {"XDG_CACHE_HOME": "/x", "LITELLM_OPERATOR_CACHE": "/c"}
    assert cache_root(both) == Path("/c/litellm")
    assert cache_root({**both, "LITELLM_OPERATOR_LITELLM_CACHE": "/l"}) == Path("/l")


def test_fingerprint_is_stable_and_separates_parts() -> None:
    assert fingerprint("a", b"b") == fingerprint("a", "b")
    assert fingerprint("ab") != fingerprint("a", "b")


def test_an_empty_cache_is_not_installed(tmp_path: Path) -> None:
    assert not Installation(tmp_path).installed()


# ------------------------------------------------------------------------------ postgres


def test_reachable_by_needs_search_permission_on_every_ancestor(tmp_path: Path) -> None:
    inner = tmp_path / "a" / "b"
    inner.mkdir(parents=True)
    uid, gid = os.getuid() + 12345, os.getgid() + 12345  # a stranger
    tmp_path.chmod(0o755)
    (tmp_path / "a").chmod(0o755)
    ancestors_open = all(
        p.stat().st_mode & 0o001 for p in tmp_path.parents
    )  # pytest's tmp root may be 0700
    assert reachable_by(inner, uid, [gid]) == ancestors_open
    (tmp_path / "a").chmod(0o700)
    assert not reachable_by(inner, uid, [gid])
    assert reachable_by(inner, os.getuid(), [])  # the owner
    (tmp_path / "a").chmod(0o750)
    assert reachable_by(inner, uid, [os.getgid()]) == ancestors_open  # through the group
    assert reachable_by(inner, 0, [])  # root reaches everything


def test_the_wheel_ships_the_operator_package_alone() -> None:
    """Development tooling (devenv) is beside the package, not in it: the wheel ships none of it."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert config["tool"]["setuptools"]["packages"]["find"]["where"] == ["operator"]
    shipped = [p.name for p in (ROOT / "operator").iterdir() if (p / "__init__.py").exists()]
    assert shipped == ["litellm_operator"]
    assert not list((ROOT / "operator").rglob("*devenv*"))


def test_postgres_is_installed_with_apt_when_missing_and_root(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:

    found: list[Path | None] = [None, tmp_path]
    commands: list[list[str]] = []

    def run(command: list[str], **_: object) -> subprocess.CompletedProcess[str]:
        commands.append(command)
        return subprocess.CompletedProcess(command, 0, "", "")

    monkeypatch.setattr(postgres, "find_bin", lambda: found.pop(0))
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    monkeypatch.setattr(shutil, "which", lambda name: f"/usr/bin/{name}")
    monkeypatch.setattr(subprocess, "run", run)
    assert postgres.ensure_installed() == tmp_path
    assert [c[:2] for c in commands] == [["apt-get", "update"], ["apt-get", "install"]]
    assert commands[1][-1] == "postgresql"


def test_postgres_missing_without_root_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch,
) -> None:

    monkeypatch.setattr(postgres, "find_bin", lambda: None)
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    with pytest.raises(postgres.PostgresError, match="postgresql"):
        postgres.ensure_installed()
