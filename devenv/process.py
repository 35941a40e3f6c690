"""Liveness of the processes the development environment starts, and stopping them.

A PID alone is a weak handle: ``kill -0 PID`` also succeeds on a *zombie* (a process that has
exited but was not reaped, which happens wherever PID 1 reaps nothing, as in many containers), and
a PID can be reused by an unrelated process after a reboot or a long time. So a :class:`PidFile`
records the PID *and* the process's start time (field 22 of ``/proc/PID/stat``, in clock ticks
since boot), and a process counts as running only when it exists, is not a zombie, and still has
that start time.

CLI (used by ``hack/dev.sh``)::

    python -m devenv.process record PIDFILE PID   # write PID and its start time to PIDFILE
    python -m devenv.process alive PIDFILE        # exit 0 if that process runs, 1 otherwise
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

PR_SET_PDEATHSIG = 1


@dataclass(frozen=True)
class ProcStat:
    """The fields of ``/proc/PID/stat`` that liveness needs."""

    pid: int
    comm: str
    state: str
    start_ticks: int

    @property
    def zombie(self) -> bool:
        """Exited but not reaped (``Z``), or dead (``X``): nothing runs any more."""
        return self.state in {"Z", "X"}


def parse_stat(text: str) -> ProcStat:
    """Parse the contents of ``/proc/PID/stat``.

    The command name (field 2) is in parentheses and may itself contain spaces and ``)``, so the
    fields after it are split from the *last* ``)``. Raises ValueError on malformed text.
    """
    head, sep, tail = text.rpartition(")")
    if not sep or "(" not in head:
        raise ValueError(f"not a /proc/PID/stat line: {text[:80]!r}")
    pid_text, _, comm = head.partition("(")
    fields = tail.split()
    # tail starts at field 3 (state); starttime is field 22, i.e. index 19 of tail
    if len(fields) < 20:
        raise ValueError(f"truncated /proc/PID/stat line: {text[:80]!r}")
    return ProcStat(int(pid_text), comm, fields[0], int(fields[19]))


def read_stat(pid: int) -> ProcStat | None:
    """The process's stat, or ``None`` when there is no such process."""
    try:
        return parse_stat(Path(f"/proc/{pid}/stat").read_text())
    except (OSError, ValueError):
        return None


def is_running(pid: int, start_ticks: int | None = None) -> bool:
    """Whether ``pid`` is a live process (not a zombie), started at ``start_ticks`` if given."""
    if pid <= 0:
        return False
    stat = read_stat(pid)
    if stat is None:
        return False
    if stat.zombie:
        return False
    return start_ticks is None or stat.start_ticks == start_ticks


@dataclass(frozen=True)
class PidFile:
    """A file holding ``PID [START_TICKS]``: which process a component runs as.

    Files with a bare PID (older ``hack/dev.sh``) are still read; they are judged by PID and
    zombie state alone.
    """

    path: Path

    def record(self, pid: int) -> None:
        """Write ``pid`` and its current start time (the process must exist)."""
        stat = read_stat(pid)
        start = f" {stat.start_ticks}" if stat is not None else ""
        tmp = self.path.with_name(self.path.name + ".tmp")
        tmp.write_text(f"{pid}{start}\n")
        tmp.replace(self.path)

    def read(self) -> tuple[int, int | None] | None:
        """``(pid, start_ticks)`` as recorded, or ``None`` when missing or malformed."""
        try:
            words = self.path.read_text().split()
            pid = int(words[0])
            start = int(words[1]) if len(words) > 1 else None
        except (OSError, ValueError, IndexError):
            return None
        return pid, start

    def pid(self) -> int | None:
        """The recorded PID if that very process still runs, else ``None``."""
        recorded = self.read()
        if recorded is None or not is_running(*recorded):
            return None
        return recorded[0]

    def running(self) -> bool:
        """Whether the recorded process still runs."""
        return self.pid() is not None

    def remove(self) -> None:
        """Delete the file (no error if it is gone)."""
        self.path.unlink(missing_ok=True)


def signal_group(pid: int, sig: signal.Signals) -> None:
    """Send ``sig`` to the process group ``pid`` leads, or to ``pid`` alone if it leads none."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        if os.getpgid(pid) == pid:
            os.killpg(pid, sig)
        else:
            os.kill(pid, sig)


def stop(pidfile: PidFile, timeout: float = 20.0) -> bool:
    """Stop the recorded process and its group: TERM, then KILL after ``timeout`` seconds.

    Returns whether it had been running. The pidfile is removed.
    """
    recorded = pidfile.read()
    was_running = recorded is not None and is_running(*recorded)
    if recorded is not None and was_running:
        pid, start = recorded
        try:
            leads_group = os.getpgid(pid) == pid
        except ProcessLookupError:
            leads_group = False
        for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 5.0)):
            signal_group(pid, sig)
            deadline = time.monotonic() + wait
            while is_running(pid, start) and time.monotonic() < deadline:
                _reap(pid)
                time.sleep(0.1)
            _reap(pid)
            if not is_running(pid, start):
                break
        if leads_group:  # the group may hold children that outlived their leader
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pid, signal.SIGKILL)
    pidfile.remove()
    return was_running


def _reap(pid: int) -> None:
    """Collect ``pid``'s exit status if it is an exited child of ours (no zombie left behind)."""
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)


def exit_with_parent() -> None:
    """In a child before exec: get SIGKILL when the parent dies (Linux), so nothing leaks."""
    if sys.platform == "linux":
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


def main(argv: Sequence[str] | None = None) -> int:
    """CLI: ``record PIDFILE PID`` or ``alive PIDFILE`` (exit status 0 = running)."""
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) == 3 and args[0] == "record":
        PidFile(Path(args[1])).record(int(args[2]))
        return 0
    if len(args) == 2 and args[0] == "alive":
        return 0 if PidFile(Path(args[1])).running() else 1
    print("usage: python -m devenv.process record PIDFILE PID | alive PIDFILE", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
