"""A real Kubernetes control plane (etcd + kube-apiserver) on loopback, run the way envtest does.

No controllers, scheduler or kubelet run: objects are stored, validated, admitted and served, but
nothing reconciles them (no garbage collection, no namespace finalization, no token controller).
:mod:`devenv.node` adds them, with a :class:`PodNetwork`: then the apiserver serves on the pod
network's gateway address (not loopback), ServiceAccount admission is on, the ``kubernetes``
Service's endpoints are reconciled and the serving certificate names its cluster IP.
TokenRequest works, so ``kubectl create token`` yields tokens that authenticate, and RBAC is
enforced. The admin credential is a client certificate in ``system:masters``.

Everything lives in one state directory: ``pki/`` (CA, serving and admin certificates,
service-account key pair), ``etcd/`` (data), ``*.log``, ``*.pid``, ``state.json`` (ports) and
``kubeconfig``. Processes run in their own session and are stopped by the PIDs recorded there.

CLI::

    python -m devenv.controlplane up --dir DIR [--assets DIR]
    python -m devenv.controlplane status --dir DIR
    python -m devenv.controlplane down --dir DIR
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import http.client
import ipaddress
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

import yaml

from devenv.process import exit_with_parent as die_with_parent
from devenv.process import is_running

ASSETS_ENV = "KUBEBUILDER_ASSETS"
LOOPBACK = "127.0.0.1"
ETCD = "etcd"
APISERVER = "kube-apiserver"
COMPONENTS = (ETCD, APISERVER)
REPO_ROOT = Path(__file__).resolve().parents[1]
ASSETS_SCRIPT = REPO_ROOT / "hack" / "envtest-assets.sh"
GO_FALLBACK_DIRS = (Path("/usr/local/go/bin"), Path("/usr/lib/go/bin"))

# Only the processes this module started are children of this interpreter; keep their Popen
# objects so they are reaped (no zombies, no "still running" ResourceWarning).
_CHILDREN: dict[int, tuple[str, subprocess.Popen[bytes]]] = {}


class ControlPlaneError(RuntimeError):
    """The control plane could not be found, started or stopped."""


# --------------------------------------------------------------------------------- assets


def go_available() -> bool:
    """Whether a Go toolchain exists (on PATH or in the usual install locations)."""
    return shutil.which("go") is not None or any((d / "go").exists() for d in GO_FALLBACK_DIRS)


def _valid_assets(path: Path) -> bool:
    return all(os.access(path / name, os.X_OK) for name in COMPONENTS)


def find_assets(explicit: str | os.PathLike[str] | None = None, *, build: bool = True) -> Path:
    """Locate the directory holding kube-apiserver and etcd.

    Order: ``explicit``, then ``$KUBEBUILDER_ASSETS``, then (when ``build`` is true, the repo's
    ``hack/envtest-assets.sh`` exists and a Go toolchain is available) the script's cached or
    freshly built directory. Raises ControlPlaneError when none applies.
    """
    given = explicit or os.environ.get(ASSETS_ENV)
    if given:
        path = Path(given)
        if not _valid_assets(path):
            raise ControlPlaneError(f"{path} does not hold executable kube-apiserver and etcd")
        return path
    if not build or not ASSETS_SCRIPT.exists() or not go_available():
        raise ControlPlaneError(
            f"no envtest binaries: set {ASSETS_ENV} or install Go (for {ASSETS_SCRIPT})"
        )
    result = subprocess.run(
        [str(ASSETS_SCRIPT)], stdout=subprocess.PIPE, text=True, check=False, env=os.environ
    )
    if result.returncode != 0:
        raise ControlPlaneError(f"{ASSETS_SCRIPT} failed (exit {result.returncode})")
    return Path(result.stdout.strip())


def find_kubectl(assets: Path | None = None) -> str:
    """The kubectl to use: the one in the assets directory, else the one on PATH."""
    if assets is not None and os.access(assets / "kubectl", os.X_OK):
        return str(assets / "kubectl")
    found = shutil.which("kubectl")
    if found is None:
        raise ControlPlaneError("kubectl not found (neither in the assets directory nor on PATH)")
    return found


# ------------------------------------------------------------------------------------ PKI


@dataclass(frozen=True)
class Pki:
    """Paths of the certificates and keys in a state directory's ``pki/``."""

    root: Path

    @property
    def ca_crt(self) -> Path:
        return self.root / "ca.crt"

    @property
    def ca_key(self) -> Path:
        return self.root / "ca.key"

    @property
    def serving_crt(self) -> Path:
        return self.root / "serving.crt"

    @property
    def serving_key(self) -> Path:
        return self.root / "serving.key"

    @property
    def admin_crt(self) -> Path:
        return self.root / "admin.crt"

    @property
    def admin_key(self) -> Path:
        return self.root / "admin.key"

    @property
    def sa_key(self) -> Path:
        return self.root / "sa.key"

    @property
    def sa_pub(self) -> Path:
        return self.root / "sa.pub"

    @property
    def complete(self) -> bool:
        names = ("ca.crt", "ca.key", "serving.crt", "serving.key", "admin.crt", "admin.key")
        return all((self.root / name).exists() for name in (*names, "sa.key", "sa.pub"))


def _openssl(*args: str) -> None:
    openssl = shutil.which("openssl")
    if openssl is None:
        raise ControlPlaneError("the openssl CLI is needed to generate the control plane's PKI")
    result = subprocess.run([openssl, *args], capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise ControlPlaneError(f"openssl {args[0]} failed: {result.stderr.strip()}")


def _ec_key(path: Path) -> None:
    _openssl(
        "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", str(path)
    )


def _signed_cert(pki: Pki, name: str, subject: str, extensions: str) -> None:
    """Create ``name.key`` and ``name.crt`` signed by the CA, with the given v3 extensions."""
    key, csr, crt, ext = (pki.root / f"{name}.{e}" for e in ("key", "csr", "crt", "ext"))
    _ec_key(key)
    _openssl("req", "-new", "-key", str(key), "-subj", subject, "-out", str(csr))
    ext.write_text(extensions)
    _openssl(
        "x509", "-req", "-in", str(csr), "-CA", str(pki.ca_crt), "-CAkey", str(pki.ca_key),
        "-CAcreateserial", "-days", "3650", "-sha256", "-extfile", str(ext), "-out", str(crt),
    )  # fmt: skip
    csr.unlink()
    ext.unlink()


def generate_pki(
    root: Path, serving_names: Sequence[str] = ("IP:127.0.0.1", "DNS:localhost")
) -> Pki:
    """Generate (once) a CA, the apiserver's serving cert (for ``serving_names``, subjectAltName
    entries), an admin client cert and SA keys."""
    pki = Pki(root)
    if pki.complete:
        return pki
    root.mkdir(parents=True, exist_ok=True)
    _ec_key(pki.ca_key)
    _openssl(
        "req", "-x509", "-new", "-key", str(pki.ca_key), "-subj", "/CN=litellm-operator-envtest-ca",
        "-days", "3650", "-sha256", "-out", str(pki.ca_crt),
    )  # fmt: skip
    _signed_cert(
        pki, "serving", "/CN=kube-apiserver",
        f"subjectAltName={','.join(serving_names)}\nextendedKeyUsage=serverAuth\n",
    )  # fmt: skip
    _signed_cert(
        pki, "admin", "/O=system:masters/CN=envtest-admin", "extendedKeyUsage=clientAuth\n"
    )
    _openssl(
        "genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", str(pki.sa_key)
    )
    _openssl("pkey", "-in", str(pki.sa_key), "-pubout", "-out", str(pki.sa_pub))
    for key in root.glob("*.key"):
        key.chmod(0o600)
    return pki


# ------------------------------------------------------------------------------ processes


def free_port() -> int:
    """A TCP port on loopback that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        port: int = sock.getsockname()[1]
        return port


def _is_component(pid: int, component: str) -> bool:
    """Whether ``pid`` is a live (non-zombie) process running ``component``.

    A child of ours is judged by its Popen: right after exec, /proc/PID/cmdline can still be empty.
    """
    if pid in _CHILDREN:
        name, child = _CHILDREN[pid]
        return name == component and child.poll() is None
    try:
        argv0 = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0", 1)[0]
    except OSError:
        return False
    return is_running(pid) and os.path.basename(argv0.decode(errors="replace")) == component


def _reap(pid: int) -> None:
    """Collect the exit status of ``pid`` if it is a child of ours that has exited."""
    if pid in _CHILDREN and _CHILDREN[pid][1].poll() is not None:
        del _CHILDREN[pid]


def _signal(pid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        if os.getpgid(pid) == pid:
            os.killpg(pid, sig)
        else:
            os.kill(pid, sig)


def _gone(pid: int, component: str, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while _is_component(pid, component):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    _reap(pid)
    return True


def terminate(pid: int, component: str, timeout: float = 15.0) -> None:
    """Stop the process group led by ``pid`` (TERM, then KILL) if it still runs ``component``."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        if _gone(pid, component, 0):
            return
        _signal(pid, sig)
        if _gone(pid, component, timeout):
            return
    raise ControlPlaneError(f"{component} (pid {pid}) did not stop")


def _spawn(args: Sequence[str], log: Path, *, exit_with_parent: bool = False) -> int:
    """Start ``args`` in a session of its own, output to ``log``; return its PID.

    ``exit_with_parent``: SIGKILL (not SIGTERM: the apiserver's graceful shutdown hangs when etcd
    goes down at the same time) when this process dies.
    """
    with log.open("ab") as out:
        proc = subprocess.Popen(
            args, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True, preexec_fn=die_with_parent if exit_with_parent else None,
        )  # fmt: skip
    _CHILDREN[proc.pid] = (Path(args[0]).name, proc)
    return proc.pid


def _log_tail(log: Path, lines: int = 25) -> str:
    try:
        return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


# ---------------------------------------------------------------------------- the plane


@dataclass(frozen=True)
class PodNetwork:
    """Where pods live, for a control plane that serves them (:mod:`devenv.node`): the apiserver
    serves on ``gateway`` (the node's address on the pods' bridge) and the ``kubernetes``
    Service gets the first address of ``service_cidr``."""

    gateway: str
    service_cidr: str

    @property
    def kubernetes_service_ip(self) -> str:
        return str(ipaddress.ip_network(self.service_cidr)[1])

    @property
    def serving_names(self) -> tuple[str, ...]:
        service = "kubernetes.default.svc"
        names = ("kubernetes", "kubernetes.default", service, f"{service}.cluster.local")
        ips = (self.gateway, self.kubernetes_service_ip)
        return (*(f"IP:{ip}" for ip in ips), *(f"DNS:{name}" for name in names))


DEFAULT_SERVICE_CIDR = "10.0.0.0/24"


@dataclass(frozen=True)
class Endpoints:
    """Ports (and the apiserver's address) chosen for one run, persisted in ``state.json``."""

    etcd_client: int
    etcd_peer: int
    apiserver: int
    host: str = LOOPBACK

    @property
    def server(self) -> str:
        return f"https://{self.host}:{self.apiserver}"

    @property
    def etcd(self) -> str:
        return f"http://{LOOPBACK}:{self.etcd_client}"


class ControlPlane:
    """etcd + kube-apiserver for one state directory.

    ``start()`` is idempotent (reuses a healthy running plane), ``stop()`` stops by recorded PID.
    Usable as a context manager that starts on entry and stops on exit.
    """

    def __init__(
        self,
        state_dir: str | os.PathLike[str],
        assets: Path | None = None,
        *,
        exit_with_parent: bool = False,
        pod_network: PodNetwork | None = None,
        apiserver_flags: Sequence[str] = (),
        resume: bool = False,
    ) -> None:
        """``exit_with_parent``: the processes are killed when this process dies (for tests).
        ``pod_network``: serve pods there (see the module's docstring). ``apiserver_flags``:
        added to kube-apiserver's (the soak's short watch lifetimes and frequent compaction).
        ``resume``: :meth:`start` resumes a half-dead or stopped plane (``make up``) rather
        than starting afresh (tests, benchmarks: each run from an empty store)."""
        self.state_dir = Path(state_dir).resolve()
        self._assets = assets
        self._exit_with_parent = exit_with_parent
        self.pod_network = pod_network
        self.apiserver_flags = tuple(apiserver_flags)
        self.resume = resume

    # -- paths
    @property
    def kubeconfig(self) -> Path:
        return self.state_dir / "kubeconfig"

    @property
    def pki(self) -> Pki:
        return Pki(self.state_dir / "pki")

    def _pid_file(self, component: str) -> Path:
        return self.state_dir / f"{component}.pid"

    def _log(self, component: str) -> Path:
        return self.state_dir / f"{component}.log"

    @property
    def _state_file(self) -> Path:
        return self.state_dir / "state.json"

    @property
    def assets(self) -> Path:
        if self._assets is None:
            self._assets = find_assets()
        return self._assets

    # -- inspection
    def pid(self, component: str) -> int | None:
        """The recorded PID of ``component`` if that process is still running it."""
        try:
            pid = int(self._pid_file(component).read_text().strip())
        except (OSError, ValueError):
            return None
        return pid if _is_component(pid, component) else None

    def endpoints(self) -> Endpoints | None:
        try:
            return Endpoints(**json.loads(self._state_file.read_text()))
        except (OSError, ValueError, TypeError):
            return None

    def running(self) -> bool:
        """Both processes alive and the apiserver answers /readyz."""
        if any(self.pid(c) is None for c in COMPONENTS):
            return False
        endpoints = self.endpoints()
        return endpoints is not None and self._ready(endpoints)

    def status(self) -> dict[str, object]:
        endpoints = self.endpoints()
        return {
            "running": self.running(),
            "server": endpoints.server if endpoints else None,
            "kubeconfig": str(self.kubeconfig),
            "pids": {c: self.pid(c) for c in COMPONENTS},
        }

    # -- lifecycle
    def start(self, timeout: float = 90.0) -> None:
        """Start etcd and kube-apiserver (or reuse healthy running ones); write the kubeconfig.

        With ``resume``, a plane of which a component died is resumed, not replaced: the dead
        component starts again on the same ports (and etcd on its store), so clients such as a
        running operator keep their address and every object survives. Otherwise, or when
        nothing can be resumed, the plane starts afresh, with an empty store."""
        if self.running():
            return
        if self.resume and self.resumable():
            try:
                self._resume(time.monotonic() + timeout)
                return
            except ControlPlaneError as error:
                print(f"control plane not resumed ({error}): starting afresh", file=sys.stderr)
        self.stop()  # remnants of a half-dead run
        self.forget()
        self.state_dir.mkdir(parents=True, exist_ok=True)
        network = self.pod_network
        if network is None:
            pki = generate_pki(self.pki.root)
            endpoints = Endpoints(free_port(), free_port(), free_port())
        else:
            pki = generate_pki(self.pki.root, network.serving_names)
            endpoints = Endpoints(free_port(), free_port(), free_port(), network.gateway)
        self._state_file.write_text(json.dumps(endpoints.__dict__))
        deadline = time.monotonic() + timeout
        try:
            self._start_etcd(endpoints, deadline)
            self._start_apiserver(endpoints, pki, deadline)
        except BaseException:
            self.stop()
            raise
        self._write_kubeconfig(endpoints, pki)

    def stop(self) -> None:
        """Stop both processes (apiserver first) by their recorded PIDs."""
        for component in reversed(COMPONENTS):
            pid_file = self._pid_file(component)
            with contextlib.suppress(OSError, ValueError):
                terminate(int(pid_file.read_text().strip()), component)
            pid_file.unlink(missing_ok=True)

    def forget(self) -> None:
        """Drop the recorded ports and the store (after :meth:`stop`): the next start is fresh."""
        self._state_file.unlink(missing_ok=True)
        shutil.rmtree(self.state_dir / "etcd", ignore_errors=True)

    def resumable(self) -> bool:
        """Whether a stopped or half-dead plane left what resuming it needs: ports, store, PKI."""
        return (
            self.endpoints() is not None
            and (self.state_dir / "etcd").is_dir()
            and self.pki.complete
        )

    def _resume(self, deadline: float) -> None:
        """Start whichever component is not running, on the recorded ports and store."""
        endpoints = self.endpoints()
        assert endpoints is not None
        if self.pid(ETCD) is None:
            self._launch(ETCD, etcd_args(endpoints, self.state_dir / "etcd"))
            self._wait(ETCD, ETCD, deadline)
        if self.pid(APISERVER) is None:
            self._start_apiserver(endpoints, self.pki, deadline)
        else:
            self._wait(APISERVER, APISERVER, deadline)
        self._write_kubeconfig(endpoints, self.pki)

    def restart_apiserver(self, *, down_for: float = 0.0, timeout: float = 90.0) -> None:
        """Stop kube-apiserver, wait ``down_for`` seconds, start it again on the same port with
        the same etcd: what a control-plane upgrade or a crashed apiserver looks like to clients."""
        endpoints = self.endpoints()
        if endpoints is None:
            raise ControlPlaneError("the control plane is not running")
        pid = self.pid(APISERVER)
        if pid is not None:
            terminate(pid, APISERVER)
        time.sleep(down_for)
        self._start_apiserver(endpoints, self.pki, time.monotonic() + timeout)

    def __enter__(self) -> ControlPlane:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- internals
    def _launch(self, component: str, args: list[str]) -> int:
        command = [str(self.assets / component), *args]
        pid = _spawn(command, self._log(component), exit_with_parent=self._exit_with_parent)
        self._pid_file(component).write_text(f"{pid}\n")
        return pid

    def _wait(self, component: str, probe: str, deadline: float) -> None:
        while time.monotonic() < deadline:
            if self.pid(component) is None:
                tail = _log_tail(self._log(component))
                raise ControlPlaneError(f"{component} exited during startup; log tail:\n{tail}")
            if self._probe(probe):
                return
            time.sleep(0.2)
        raise ControlPlaneError(
            f"{component} not ready in time; log tail:\n{_log_tail(self._log(component))}"
        )

    def _probe(self, what: str) -> bool:
        endpoints = self.endpoints()
        if endpoints is None:
            return False
        if what == ETCD:
            return _http_ok(LOOPBACK, endpoints.etcd_client, "/health", None)
        return self._ready(endpoints)

    def _ready(self, endpoints: Endpoints) -> bool:
        return _http_ok(endpoints.host, endpoints.apiserver, "/readyz", self._tls_context())

    def _tls_context(self) -> ssl.SSLContext:
        pki = self.pki
        context = ssl.create_default_context(cafile=str(pki.ca_crt))
        context.load_cert_chain(str(pki.admin_crt), str(pki.admin_key))
        return context

    def _start_etcd(self, endpoints: Endpoints, deadline: float) -> None:
        data = self.state_dir / "etcd"
        shutil.rmtree(data, ignore_errors=True)  # a fresh plane starts from an empty store
        self._launch(ETCD, etcd_args(endpoints, data))
        self._wait(ETCD, ETCD, deadline)

    def _start_apiserver(self, endpoints: Endpoints, pki: Pki, deadline: float) -> None:
        cert_dir = self.state_dir / "apiserver-certs"
        cert_dir.mkdir(exist_ok=True)
        args = apiserver_args(endpoints, pki, cert_dir, self.pod_network)
        self._launch(APISERVER, [*args, *self.apiserver_flags])
        self._wait(APISERVER, APISERVER, deadline)

    def _write_kubeconfig(self, endpoints: Endpoints, pki: Pki) -> None:
        config = kubeconfig_document(endpoints.server, pki)
        tmp = self.kubeconfig.with_suffix(".tmp")
        tmp.write_text(yaml.safe_dump(config, sort_keys=False))
        tmp.chmod(0o600)
        tmp.replace(self.kubeconfig)


def _http_ok(host: str, port: int, path: str, context: ssl.SSLContext | None) -> bool:
    conn: http.client.HTTPConnection
    if context is None:
        conn = http.client.HTTPConnection(host, port, timeout=2)
    else:
        conn = http.client.HTTPSConnection(host, port, timeout=2, context=context)
    try:
        conn.request("GET", path)
        return conn.getresponse().status == 200
    except (OSError, http.client.HTTPException):
        return False
    finally:
        conn.close()


def etcd_args(endpoints: Endpoints, data_dir: Path) -> list[str]:
    """etcd's flags, as envtest passes them (single member, loopback only, no fsync)."""
    peer = f"http://{LOOPBACK}:{endpoints.etcd_peer}"
    return [
        f"--data-dir={data_dir}",
        f"--listen-client-urls={endpoints.etcd}",
        f"--advertise-client-urls={endpoints.etcd}",
        f"--listen-peer-urls={peer}",
        f"--initial-advertise-peer-urls={peer}",
        f"--initial-cluster=default={peer}",
        "--unsafe-no-fsync=true",
        "--log-level=warn",
    ]


def apiserver_args(
    endpoints: Endpoints, pki: Pki, cert_dir: Path, pod_network: PodNetwork | None = None
) -> list[str]:
    """kube-apiserver's flags, as envtest passes them, with RBAC and TokenRequest enabled; with
    a ``pod_network``, as a cluster with pods needs them (see the module's docstring)."""
    if pod_network is None:
        service_cidr = DEFAULT_SERVICE_CIDR
        pod_flags = [
            "--endpoint-reconciler-type=none",
            "--disable-admission-plugins=ServiceAccount",
        ]
    else:
        service_cidr = pod_network.service_cidr
        # `kubectl logs` and friends reach the kubelet by address: node names need no DNS.
        pod_flags = ["--kubelet-preferred-address-types=InternalIP"]
    return [
        f"--etcd-servers={endpoints.etcd}",
        f"--secure-port={endpoints.apiserver}",
        f"--bind-address={endpoints.host}",
        f"--advertise-address={endpoints.host}",
        f"--cert-dir={cert_dir}",
        f"--tls-cert-file={pki.serving_crt}",
        f"--tls-private-key-file={pki.serving_key}",
        f"--client-ca-file={pki.ca_crt}",
        f"--service-account-issuer={endpoints.server}",
        f"--service-account-key-file={pki.sa_pub}",
        f"--service-account-signing-key-file={pki.sa_key}",
        f"--service-cluster-ip-range={service_cidr}",
        "--authorization-mode=RBAC",
        *pod_flags,
        "--allow-privileged=true",
    ]


def _b64(path: Path) -> str:
    return base64.b64encode(path.read_bytes()).decode()


def kubeconfig_document(server: str, pki: Pki) -> dict[str, object]:
    """A kubeconfig (as a dict) for the admin client certificate, with the PKI embedded."""
    name = "envtest"
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": name,
                "cluster": {"server": server, "certificate-authority-data": _b64(pki.ca_crt)},
            }
        ],
        "users": [
            {
                "name": f"{name}-admin",
                "user": {
                    "client-certificate-data": _b64(pki.admin_crt),
                    "client-key-data": _b64(pki.admin_key),
                },
            }
        ],
        "contexts": [{"name": name, "context": {"cluster": name, "user": f"{name}-admin"}}],
        "current-context": name,
    }


# ------------------------------------------------------------------------------------ CLI


def _cmd_up(plane: ControlPlane) -> int:
    reused, resumed = plane.running(), plane.resume and plane.resumable()
    plane.start()
    verb = "reusing" if reused else "resumed" if resumed else "started"
    print(f"control plane {verb}: {plane.status()['server']}", file=sys.stderr)
    print(f"export KUBECONFIG={plane.kubeconfig}")
    return 0


def _cmd_down(plane: ControlPlane) -> int:
    plane.stop()
    plane.forget()
    print(f"control plane in {plane.state_dir} stopped", file=sys.stderr)
    return 0


def _cmd_status(plane: ControlPlane) -> int:
    status = plane.status()
    print(json.dumps(status, indent=2))
    return 0 if status["running"] else 1


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m devenv.controlplane", description=__doc__.splitlines()[0]
    )
    parser.add_argument("command", choices=("up", "down", "status"))
    parser.add_argument("--dir", required=True, type=Path, help="state directory")
    parser.add_argument("--assets", type=Path, help=f"envtest binaries (default: ${ASSETS_ENV})")
    args = parser.parse_args(argv)
    plane = ControlPlane(args.dir, assets=args.assets, resume=True)
    commands = {"up": _cmd_up, "down": _cmd_down, "status": _cmd_status}
    try:
        return commands[args.command](plane)
    except ControlPlaneError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
