"""Harness for end-to-end tests: the operator as a subprocess, a switchable path to LiteLLM.

* :class:`Forwarder` relays TCP from a loopback port to LiteLLM; ``cut()`` closes the port and
  every open connection (LiteLLM unreachable, as in an outage), ``pause()`` keeps accepting
  connections but answers nothing (LiteLLM hung: every request runs into its timeout),
  ``restore()`` relays again.
* :class:`OperatorProcess` runs ``litellm-operator run`` against the test control plane, with
  its log in a file that tests can search (and that must never contain the master key).
* :class:`Cluster` wraps the kubernetes client for the custom resources the tests use.
"""

from __future__ import annotations

import contextlib
import os
import re
import select
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar, cast

from kubernetes.client import ApiClient, CoreV1Api, CustomObjectsApi
from kubernetes.client.exceptions import ApiException

from litellm_operator.models import API_VERSION, GROUP, POLICY_PLURAL, USER_PLURAL, VERSION

T = TypeVar("T")

# What a refused Kubernetes call leaves in the operator's log. The status code is matched as a
# number of its own: a random port such as 55403 in the start-up line is not a refusal.
PERMISSION_ERROR = re.compile(
    r"forbidden|(?<!\d)403(?!\d)|not enough permissions|failed to post an event", re.IGNORECASE
)


def permission_errors(log: str) -> list[str]:
    """The lines of an operator log that show a call refused for want of permission."""
    return [line for line in log.splitlines() if PERMISSION_ERROR.search(line)]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class Forwarder:
    """A loopback TCP relay to ``target`` that can be cut and restored."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.port = free_port()
        self._listener: socket.socket | None = None
        self._conns: set[socket.socket] = set()
        self._held: set[socket.socket] = set()
        self._paused = False
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def pause(self) -> None:
        """Hold new connections unanswered; drop the open ones (so clients reconnect and hang)."""
        self._paused = True
        self._close_connections()

    def restore(self) -> None:
        if self._paused:
            self._paused = False
            self._close_connections()
            return
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self._listener = listener
        self._thread = threading.Thread(target=self._accept, args=(listener,), daemon=True)
        self._thread.start()

    def cut(self) -> None:
        listener, self._listener = self._listener, None
        if listener is not None:
            with contextlib.suppress(OSError):
                listener.shutdown(socket.SHUT_RDWR)
            listener.close()
        self._paused = False
        self._close_connections()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _close_connections(self) -> None:
        with self._lock:
            for conn in self._conns | self._held:
                with contextlib.suppress(OSError):
                    conn.shutdown(socket.SHUT_RDWR)
                conn.close()
            self._conns.clear()
            self._held.clear()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            if self._paused:
                with self._lock:
                    self._held.add(client)
                continue
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._conns.update((client, upstream))
            threading.Thread(target=self._pump, args=(client, upstream), daemon=True).start()

    def _pump(self, a: socket.socket, b: socket.socket) -> None:
        try:
            while True:
                readable, _, _ = select.select([a, b], [], [], 1.0)
                for src in readable:
                    data = src.recv(65536)
                    if not data:
                        return
                    (b if src is a else a).sendall(data)
        except OSError:
            return
        finally:
            with self._lock:
                self._conns.discard(a)
                self._conns.discard(b)
            a.close()
            b.close()


class OperatorProcess:
    """``litellm-operator run`` as a child process, logging to ``log_path``."""

    def __init__(self, env: dict[str, str], log_path: Path) -> None:
        self.env = env
        self.log_path = log_path
        self.metrics_port = int(env["LITELLM_OPERATOR_METRICS_PORT"])
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        exe = Path(sys.executable).with_name("litellm-operator")
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                [str(exe), "run", "--log-format", "plain", "--health-port", "0"],
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        eventually(lambda: self.metrics() != "", timeout=30, what="operator metrics endpoint")

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)

    def kill(self) -> None:
        """SIGKILL: no shutdown, no last status write (a crash, a node gone)."""
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)

    def metrics(self) -> str:
        try:
            url = f"http://127.0.0.1:{self.metrics_port}/metrics"
            with urllib.request.urlopen(url, timeout=2) as response:
                text: str = response.read().decode()
                return text
        except OSError:
            return ""

    def counter(self, name: str, **labels: str) -> float:
        """Sum of a counter's samples whose labels include ``labels``."""
        total = 0.0
        for line in self.metrics().splitlines():
            if not line.startswith(name + "{"):
                continue
            spec, value = line.rsplit(" ", 1)
            if all(f'{k}="{v}"' in spec for k, v in labels.items()):
                total += float(value)
        return total

    def gauge(self, name: str) -> float | None:
        """The value of an unlabelled gauge (``None`` while the endpoint does not answer)."""
        for line in self.metrics().splitlines():
            if line.startswith(name + " "):
                return float(line.rsplit(" ", 1)[1])
        return None

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace")


class Cluster:
    """The custom resources of the tests, through the real API server."""

    def __init__(self, api_client: ApiClient) -> None:
        self.custom = CustomObjectsApi(api_client)
        self.core = CoreV1Api(api_client)

    def create_policy(self, name: str, spec: dict[str, Any]) -> dict[str, Any]:
        body = {
            "apiVersion": API_VERSION,
            "kind": "ProvisioningPolicy",
            "metadata": {"name": name},
            "spec": spec,
        }
        created = self.custom.create_cluster_custom_object(GROUP, VERSION, POLICY_PLURAL, body)
        return cast(dict[str, Any], created)

    def patch_policy(self, name: str, spec: dict[str, Any]) -> None:
        self.custom.patch_cluster_custom_object(GROUP, VERSION, POLICY_PLURAL, name, {"spec": spec})

    def delete_policy(self, name: str) -> None:
        with contextlib.suppress(ApiException):
            self.custom.delete_cluster_custom_object(GROUP, VERSION, POLICY_PLURAL, name)

    def create_user(self, namespace: str, name: str, spec: dict[str, Any]) -> dict[str, Any]:
        body = {
            "apiVersion": API_VERSION,
            "kind": "LiteLLMUser",
            "metadata": {"name": name, "namespace": namespace},
            "spec": spec,
        }
        return cast(
            dict[str, Any],
            self.custom.create_namespaced_custom_object(
                GROUP, VERSION, namespace, USER_PLURAL, body
            ),
        )

    def patch_user(self, namespace: str, name: str, spec: dict[str, Any]) -> None:
        self.custom.patch_namespaced_custom_object(
            GROUP, VERSION, namespace, USER_PLURAL, name, {"spec": spec}
        )

    def get_user(self, namespace: str, name: str) -> dict[str, Any] | None:
        try:
            result = self.custom.get_namespaced_custom_object(
                GROUP, VERSION, namespace, USER_PLURAL, name
            )
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise
        return cast(dict[str, Any], result)

    def delete_user(self, namespace: str, name: str) -> None:
        self.custom.delete_namespaced_custom_object(GROUP, VERSION, namespace, USER_PLURAL, name)

    def condition(self, namespace: str, name: str, kind: str = "Ready") -> dict[str, Any]:
        return condition_of(self.get_user(namespace, name) or {}, kind)

    def wait_ready(self, namespace: str, name: str, timeout: float = 30) -> dict[str, Any]:
        def ready() -> dict[str, Any] | None:
            user = self.get_user(namespace, name) or {}  # one read: condition and fields agree
            status = user.get("status") or {}
            fresh = status.get("observedGeneration") == user.get("metadata", {}).get("generation")
            return user if condition_of(user).get("status") == "True" and fresh else None

        return eventually(ready, timeout=timeout, what=f"{namespace}/{name} Ready")

    def wait_reason(
        self, namespace: str, name: str, reason: str, timeout: float = 30
    ) -> dict[str, Any]:
        def matches() -> dict[str, Any] | None:
            cond = self.condition(namespace, name)
            return cond if cond.get("reason") == reason else None

        return eventually(matches, timeout=timeout, what=f"{namespace}/{name} reason {reason}")

    def events(self, namespace: str, name: str) -> list[tuple[str, str, str]]:
        items = self.core.list_namespaced_event(
            namespace, field_selector=f"involvedObject.name={name}"
        ).items
        return [(e.type or "", e.reason or "", e.message or "") for e in items]


def condition_of(obj: dict[str, Any], kind: str = "Ready") -> dict[str, Any]:
    for cond in (obj.get("status") or {}).get("conditions") or []:
        if cond.get("type") == kind:
            return dict(cond)
    return {}


def eventually(
    probe: Callable[[], T | None], *, timeout: float, what: str, every: float = 0.25
) -> T:
    """Poll ``probe`` until it returns something truthy; fail with ``what`` after ``timeout``."""
    deadline = time.monotonic() + timeout
    last: T | None = None
    while time.monotonic() < deadline:
        last = probe()
        if last:
            return last
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout:g}s waiting for {what} (last: {last!r})")
