"""Throw-away PostgreSQL clusters for the development environment.

Uses the machine's PostgreSQL server binaries (Debian's ``postgresql`` package, under
``/usr/lib/postgresql/<major>/bin``; installed with apt-get when missing and we are root, or
``$LITELLM_OPERATOR_PG_BIN`` pointing at any ``bin/`` with ``initdb`` and ``pg_ctl``).

PostgreSQL refuses to run as root, so when we are root every server command runs as the
``postgres`` user (which the package creates), and the data directory belongs to it. That user
must be able to *reach* the data directory: every ancestor needs search (``x``) permission for it.
:func:`reachable_by` checks that; callers put the data directory elsewhere when it fails (a
``0700`` temporary directory or ``/root`` is not reachable).

Servers listen on ``127.0.0.1`` only, on a port of the caller's choosing, with Unix sockets off
(their paths are length-limited), trust authentication and no fsync: for tests, not for data.
"""

from __future__ import annotations

import os
import pwd
import shutil
import stat
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

PG_BIN_ENV = "LITELLM_OPERATOR_PG_BIN"
DEBIAN_PG_ROOT = Path("/usr/lib/postgresql")
SERVER_USER = "postgres"
SUPERUSER = "postgres"
START_TIMEOUT = 60


class PostgresError(RuntimeError):
    """PostgreSQL could not be found, installed, started or stopped."""


def log(message: str) -> None:
    """Progress for humans, on stderr (stdout is for machine-readable output)."""
    print(f"devenv: {message}", file=sys.stderr, flush=True)


def _version_key(path: Path) -> tuple[int, ...]:
    return tuple(int(part) for part in path.parent.name.split(".") if part.isdigit())


def find_bin() -> Path | None:
    """The newest PostgreSQL server ``bin/`` directory, or ``None``."""
    explicit = os.environ.get(PG_BIN_ENV)
    if explicit:
        return Path(explicit)
    candidates = [p for p in DEBIAN_PG_ROOT.glob("*/bin") if (p / "initdb").exists()]
    return max(candidates, key=_version_key) if candidates else None


def ensure_installed() -> Path:
    """The server ``bin/`` directory, installing Debian's ``postgresql`` first if needed."""
    found = find_bin()
    if found is not None:
        return found
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        raise PostgresError(
            "no PostgreSQL server binaries: install Debian's `postgresql` package "
            f"(or set {PG_BIN_ENV} to a directory holding initdb and pg_ctl)"
        )
    log("installing PostgreSQL (apt-get install postgresql)")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for command in (
        ["apt-get", "update", "-q"],
        ["apt-get", "install", "-y", "-q", "--no-install-recommends", "postgresql"],
    ):
        result = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise PostgresError(f"{' '.join(command)} failed:\n{result.stderr[-2000:]}")
    found = find_bin()
    if found is None:
        raise PostgresError("apt-get installed postgresql but no server binaries were found")
    return found


def _server_user() -> pwd.struct_passwd | None:
    """The account servers run as: ``postgres`` when we are root, else ourselves (``None``)."""
    if os.geteuid() != 0:
        return None
    try:
        return pwd.getpwnam(SERVER_USER)
    except KeyError as exc:
        raise PostgresError(f"we are root but there is no {SERVER_USER!r} user") from exc


def reachable_by(path: Path, uid: int, gids: Sequence[int]) -> bool:
    """Whether a process with ``uid``/``gids`` can search every directory down to ``path``."""
    if uid == 0:
        return True
    for directory in (path, *path.parents):
        try:
            info = directory.stat()
        except OSError:
            return False
        if info.st_uid == uid:
            bit = stat.S_IXUSR
        elif info.st_gid in gids:
            bit = stat.S_IXGRP
        else:
            bit = stat.S_IXOTH
        if not info.st_mode & bit:
            return False
    return True


def reachable_by_server(path: Path) -> bool:
    """Whether the account the server runs as can reach ``path`` (see :func:`reachable_by`)."""
    user = _server_user()
    if user is None:
        return True
    gids = [user.pw_gid, *os.getgrouplist(user.pw_name, user.pw_gid)]
    return reachable_by(path.resolve(), user.pw_uid, gids)


def give_to_server(path: Path) -> None:
    """Hand ``path`` (recursively) to the account the server runs as."""
    user = _server_user()
    if user is None:
        return
    for root, dirs, files in os.walk(path):
        for name in (root, *(os.path.join(root, n) for n in (*dirs, *files))):
            os.lchown(name, user.pw_uid, user.pw_gid)


def _run_as_server(
    args: Sequence[str], *, stdin: int | None = None
) -> subprocess.CompletedProcess[str]:
    """Run a server command as the server's account (from ``/``, which that account can read)."""
    user = _server_user()
    return subprocess.run(
        list(args), capture_output=True, text=True, check=False, stdin=stdin,
        user=None if user is None else user.pw_uid,
        group=None if user is None else user.pw_gid,
        extra_groups=None if user is None else [],
        cwd=None if user is None else "/",
    )  # fmt: skip


@dataclass(frozen=True)
class Cluster:
    """One PostgreSQL data directory and the port its server listens on."""

    bin_dir: Path
    data_dir: Path
    port: int

    @property
    def log_file(self) -> Path:
        return self.data_dir.parent / "postgres.log"

    def url(self, database: str) -> str:
        """A libpq URL for ``database`` as the superuser (trust authentication)."""
        return f"postgresql://{SUPERUSER}@127.0.0.1:{self.port}/{database}"

    def init(self) -> None:
        """``initdb`` an empty cluster (the parent directory must exist and be reachable)."""
        give_to_server(self.data_dir.parent)
        result = _run_as_server(
            [str(self.bin_dir / "initdb"), "-D", str(self.data_dir), "-U", SUPERUSER,
             "--auth=trust", "-E", "UTF8", "--no-sync", "--locale=C"],
        )  # fmt: skip
        if result.returncode != 0:
            raise PostgresError(f"initdb failed:\n{result.stderr[-2000:]}")

    def start(self) -> None:
        """Start the server and wait until it accepts connections."""
        options = (
            f"-c listen_addresses=127.0.0.1 -p {self.port} -c unix_socket_directories='' "
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        )
        result = _run_as_server(
            [str(self.bin_dir / "pg_ctl"), "-D", str(self.data_dir), "-o", options,
             "-l", str(self.log_file), "-w", "-t", str(START_TIMEOUT), "start"],
            stdin=subprocess.DEVNULL,
        )  # fmt: skip
        if result.returncode != 0:
            raise PostgresError(
                f"PostgreSQL did not start ({result.stderr.strip()}); log tail:\n"
                + _tail(self.log_file)
            )

    def running(self) -> bool:
        """Whether a server runs on this data directory (``pg_ctl status``)."""
        if not (self.data_dir / "postmaster.pid").exists():
            return False
        status = _run_as_server([str(self.bin_dir / "pg_ctl"), "-D", str(self.data_dir), "status"])
        return status.returncode == 0

    def stop(self) -> None:
        """Stop the server (fast shutdown) if it runs."""
        if not (self.data_dir / "postmaster.pid").exists():
            return
        _run_as_server(
            [str(self.bin_dir / "pg_ctl"), "-D", str(self.data_dir), "-m", "fast", "-w", "stop"]
        )

    def psql(self, database: str, *args: str) -> subprocess.CompletedProcess[str]:
        """Run ``psql`` against ``database`` (stops at the first error)."""
        psql = self.bin_dir / "psql"
        command = [str(psql) if psql.exists() else "psql", "-X", "-q", "-v", "ON_ERROR_STOP=1"]
        return subprocess.run(
            [*command, "-h", "127.0.0.1", "-p", str(self.port), "-U", SUPERUSER, "-d", database,
             *args],
            capture_output=True, text=True, check=False, stdin=subprocess.DEVNULL,
        )  # fmt: skip


def _tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"
