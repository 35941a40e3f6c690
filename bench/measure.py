"""What the benchmark measures beside wall time, each without loading what it measures.

* :class:`CpuMeter`: CPU seconds per component (operator, kube-apiserver, etcd, LiteLLM,
  PostgreSQL) of the benchmark's own processes, from ``/proc``, so a profile says which process
  a scenario kept busy.
* :func:`apiserver_requests`: the API server's own request counters (verb, resource,
  subresource), so Kubernetes writes per user are counted by the server that served them.
* :class:`UserWatch`: one watch on the LiteLLMUsers of a namespace (readiness without polling
  lists, which would load the API server during the measurement).
* :func:`rss_kib`: a process's resident memory; :class:`RssPeak`, its highest while a block runs.
"""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kubernetes import client, config, watch

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class Proc:
    pid: int
    ppid: int
    pgid: int
    comm: str
    cpu: float


def processes() -> list[Proc]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            raw = (entry / "stat").read_text()
        except OSError:
            continue
        comm = raw[raw.index("(") + 1 : raw.rindex(")")]
        fields = raw[raw.rindex(")") + 2 :].split()
        # fields[0] is state (field 3); ppid, pgrp are fields 4, 5; utime/stime 14, 15
        cpu = (int(fields[11]) + int(fields[12])) / CLOCK_TICKS
        found.append(Proc(int(entry.name), int(fields[1]), int(fields[2]), comm, cpu))
    return found


def descendants(procs: list[Proc], roots: set[int]) -> set[int]:
    """The pids of ``roots`` and of every process below them."""
    children: dict[int, list[int]] = {}
    for p in procs:
        children.setdefault(p.ppid, []).append(p.pid)
    found, todo = set(), [r for r in roots if r]
    while todo:
        pid = todo.pop()
        if pid not in found:
            found.add(pid)
            todo.extend(children.get(pid, ()))
    return found


class CpuMeter:
    """CPU seconds used per component between :meth:`start` and :meth:`stop`.

    Only the processes below ``roots()`` count (the bench's own process, and the PostgreSQL
    server it started, which ``pg_ctl`` detaches): other users of a shared machine run
    kube-apiservers, etcds and PostgreSQLs of their own, which must not be counted here.
    """

    def __init__(
        self, operator_pgid: Callable[[], int | None], roots: Callable[[], set[int]]
    ) -> None:
        self.operator_pgid = operator_pgid
        self.roots = roots
        self._start: dict[int, tuple[str, float]] = {}

    def classify(self, procs: list[Proc]) -> dict[int, str]:
        ours = descendants(procs, self.roots())
        leaders = {p.pid: p.comm for p in procs}
        operator = self.operator_pgid()
        kinds: dict[int, str] = {}
        for p in procs:
            if p.pid not in ours:
                continue
            if operator is not None and p.pgid == operator:
                kinds[p.pid] = "operator"
            elif p.comm in ("kube-apiserver", "etcd", "postgres"):
                kinds[p.pid] = p.comm
            elif leaders.get(p.pgid) == "litellm":
                kinds[p.pid] = "litellm"
        return kinds

    def start(self) -> None:
        procs = processes()
        kinds = self.classify(procs)
        self._start = {p.pid: (kinds[p.pid], p.cpu) for p in procs if p.pid in kinds}

    def stop(self) -> dict[str, float]:
        procs = processes()
        kinds = self.classify(procs)
        used: dict[str, float] = {}
        for p in procs:
            kind = kinds.get(p.pid)
            if kind is None:
                continue
            before = self._start.get(p.pid, (kind, 0.0))[1]
            used[kind] = used.get(kind, 0.0) + p.cpu - before
        return {k: round(v, 2) for k, v in sorted(used.items())}


def postmaster_pid(data_dir: Path) -> int | None:
    """The pid of the PostgreSQL server running on ``data_dir`` (its ``postmaster.pid``)."""
    try:
        return int((data_dir / "postmaster.pid").read_text().split("\n", 1)[0])
    except (OSError, ValueError):
        return None


SAMPLE = re.compile(r"^apiserver_request_total\{(?P<labels>[^}]*)\} (?P<value>\S+)$")
LABEL = re.compile(r'(\w+)="([^"]*)"')


def apiserver_requests(kubeconfig: Path, group: str) -> Counter[str]:
    """Requests the API server served for ``group`` (and events), keyed ``VERB resource[/sub]``."""
    text = subprocess.run(
        ["kubectl", f"--kubeconfig={kubeconfig}", "get", "--raw", "/metrics"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    counts: Counter[str] = Counter()
    for line in text.splitlines():
        match = SAMPLE.match(line)
        if match is None:
            continue
        labels = dict(LABEL.findall(match["labels"]))
        if labels.get("group") != group and labels.get("resource") != "events":
            continue
        resource = labels.get("resource", "")
        if labels.get("subresource"):
            resource += "/" + labels["subresource"]
        counts[f"{labels.get('verb', '')} {resource}"] += int(float(match["value"]))
    return counts


def difference(after: Counter[str], before: Counter[str]) -> dict[str, int]:
    return {k: after[k] - before[k] for k in sorted(after) if after[k] - before[k] > 0}


WRITE_VERBS = ("POST", "PUT", "PATCH", "DELETE", "APPLY", "CREATE", "UPDATE")


def writes(counts: Mapping[str, int], resource_prefix: str) -> int:
    return sum(
        n
        for key, n in counts.items()
        if key.split(" ")[0] in WRITE_VERBS and key.split(" ")[1].startswith(resource_prefix)
    )


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


class RssPeak:
    """The highest resident memory of a process while the block runs, sampled every 50 ms."""

    def __init__(self, pid: Callable[[], int | None], every: float = 0.05) -> None:
        self.pid = pid
        self.every = every
        self.kib = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="bench-rss")

    def _run(self) -> None:
        while not self._stop.is_set():
            pid = self.pid()
            if pid is not None:
                with contextlib.suppress(OSError):  # not started yet, or gone
                    self.kib = max(self.kib, rss_kib(pid))
            self._stop.wait(self.every)

    def __enter__(self) -> RssPeak:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()


def ready_at(obj: Mapping[str, Any]) -> tuple[bool, int | None]:
    """Whether a LiteLLMUser is Ready for its current generation, and its policy generation."""
    status = obj.get("status") or {}
    meta = obj.get("metadata") or {}
    ready = any(
        c.get("type") == "Ready" and c.get("status") == "True"
        for c in status.get("conditions") or []
    )
    fresh = status.get("observedGeneration") == meta.get("generation")
    return ready and fresh, (status.get("policy") or {}).get("generation")


@dataclass
class UserWatch:
    """Ready users of one namespace, kept current by a single watch (readiness, resourceVersion)."""

    kubeconfig: Path
    group: str
    version: str
    plural: str
    namespace: str
    state: dict[str, tuple[bool, int | None, str]] = field(default_factory=dict)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def start(self) -> None:  # the kubernetes client is untyped
        api_client = config.new_client_from_config(config_file=str(self.kubeconfig))  # type: ignore[no-untyped-call]
        self._api = client.CustomObjectsApi(api_client)
        self._thread = threading.Thread(target=self._run, daemon=True, name="bench-watch")
        self._thread.start()

    def _run(self) -> None:
        version = ""
        while not self._stop.is_set():
            stream = watch.Watch()  # type: ignore[no-untyped-call]
            try:
                for event in stream.stream(  # type: ignore[no-untyped-call]
                    self._api.list_namespaced_custom_object,
                    self.group,
                    self.version,
                    self.namespace,
                    self.plural,
                    resource_version=version or None,
                    timeout_seconds=30,
                    allow_watch_bookmarks=True,
                ):
                    obj = event["object"]
                    meta = obj.get("metadata") or {}
                    version = meta.get("resourceVersion", version)
                    if event["type"] == "BOOKMARK":
                        continue
                    with self._lock:
                        if event["type"] == "DELETED":
                            self.state.pop(meta["name"], None)
                        else:
                            ready, policy_generation = ready_at(obj)
                            self.state[meta["name"]] = (ready, policy_generation, version)
                    if self._stop.is_set():
                        stream.stop()  # type: ignore[no-untyped-call]
            except Exception:  # expired resourceVersion, timeouts: list again
                version = ""
                time.sleep(0.2)

    def ready(self, policy_generation: int | None = None) -> int:
        with self._lock:
            return sum(
                ready and (policy_generation is None or gen == policy_generation)
                for ready, gen, _ in self.state.values()
            )

    def versions(self) -> dict[str, str]:
        with self._lock:
            return {name: rv for name, (_, _, rv) in self.state.items()}

    def wait(self, condition: Callable[[], bool], timeout: float, what: str) -> float:
        started = time.perf_counter()
        while not condition():
            if time.perf_counter() - started > timeout:
                raise TimeoutError(f"{what}: not reached in {timeout:.0f} s")
            time.sleep(0.05)
        return time.perf_counter() - started

    def stop(self) -> None:
        self._stop.set()
