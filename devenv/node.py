"""A real one-node Kubernetes cluster on this machine, for the deploy tests (the shipped image in
real pods): what kind would give, made of its parts, since container registries are out of reach.

This module owns the node: a Linux bridge for the pods (:data:`BRIDGE`, :data:`GATEWAY`), a
control plane serving pods (:class:`devenv.controlplane.ControlPlane` with a
:class:`~devenv.controlplane.PodNetwork`), containerd with its CRI plugin (its own socket, root
and state in the state directory), kubelet, kube-controller-manager, kube-scheduler and kube-proxy
(built by ``hack/node-assets.sh`` from the Kubernetes Go modules, beside a static ``pause``), the
bridge CNI plugin from Debian's containernetworking-plugins, and images loaded from the Docker
daemon (``docker save | ctr import``): nothing is pulled.

Facts of the machines it runs on, each handled once here: cgroup v1 with the cgroupfs driver
(kubelet ``failCgroupV1: false``); a VM that refuses a negative ``oom_score_adj`` (containerd
``restrict_oom_score_adj``). Addresses: only loopback and the bridge's. The apiserver and the
kubelet listen on :data:`GATEWAY`; the controller manager and the scheduler serve nothing; pods
get addresses in :data:`POD_CIDR` and reach the apiserver through the ``kubernetes`` Service
(kube-proxy, iptables) and the host's services (LiteLLM) on :data:`GATEWAY`. No masquerading,
no forwarding: pods reach nothing beyond this machine.

One node per machine at a time (a lock on the state directory, :data:`STATE_DIR`). ``stop()``
(also run first by ``start()``, for the remnants of a killed run) leaves nothing behind: pods
deleted and their sandboxes torn down, every process stopped by PID (containerd's shims too),
kube-proxy's rules removed, cgroups, mounts and network namespaces gone, the bridge deleted and
the state directory removed.

CLI::

    python -m devenv.node up --image litellm-operator:dev   # prints export KUBECONFIG=...
    python -m devenv.node down
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from types import TracebackType
from typing import IO

import yaml

from devenv.controlplane import (
    ControlPlane,
    ControlPlaneError,
    PodNetwork,
    _spawn,
    free_port,
    terminate,
)

BRIDGE = "litellmop0"
POD_CIDR = "10.244.77.0/24"
GATEWAY = "10.244.77.1"
SERVICE_CIDR = "10.96.77.0/24"
NODE_NAME = "deploy-node"
PAUSE_IMAGE = "litellm-operator.local/pause:1"
CNI_BIN_DIR = Path("/usr/lib/cni")
STATE_DIR = Path(os.environ.get("LITELLM_OPERATOR_NODE_DIR", "/var/tmp/litellm-operator-node"))
REPO_ROOT = Path(__file__).resolve().parents[1]
ASSETS_SCRIPT = REPO_ROOT / "hack" / "node-assets.sh"
CONTAINER_LOGS = Path("/var/log/containers")
CGROUP_ROOT = Path("/sys/fs/cgroup")
K8S_NAMESPACE = "k8s.io"
SERVICES = ("kube-controller-manager", "kube-scheduler", "kube-proxy", "kubelet", "containerd")
"""Started in the reverse of this order, stopped in it."""


class NodeError(RuntimeError):
    """The node could not be built, started or stopped."""


def log(message: str) -> None:
    print(f"node: {message}", file=sys.stderr, flush=True)


def find_assets() -> Path:
    """The node's binaries (and the envtest ones), built once by ``hack/node-assets.sh``."""
    result = subprocess.run([str(ASSETS_SCRIPT)], stdout=subprocess.PIPE, text=True, check=False)
    if result.returncode != 0:
        raise NodeError(f"{ASSETS_SCRIPT} failed (exit {result.returncode})")
    return Path(result.stdout.strip())


def _run(*args: str, check: bool = True, stdin: IO[bytes] | None = None) -> str:
    result = subprocess.run(args, stdin=stdin, capture_output=True, check=False)
    if check and result.returncode != 0:
        raise NodeError(f"{' '.join(args)} failed: {result.stderr.decode(errors='replace')}")
    return result.stdout.decode(errors="replace")


# ------------------------------------------------------------------------------ configs


def containerd_config(state: Path) -> str:
    """containerd's configuration: everything under ``state``, CRI with the bridge network."""
    cri = 'plugins."io.containerd.grpc.v1.cri"'
    return f"""version = 2
root = "{state}/root"
state = "{state}/state"
[grpc]
  address = "{state}/containerd.sock"
[ttrpc]
  address = "{state}/containerd.sock.ttrpc"
[plugins."io.containerd.internal.v1.opt"]
  path = "{state}/opt"
[{cri}]
  sandbox_image = "{PAUSE_IMAGE}"
  restrict_oom_score_adj = true
  stream_server_address = "127.0.0.1"
  [{cri}.containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [{cri}.containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [{cri}.containerd.runtimes.runc.options]
        SystemdCgroup = false
  [{cri}.cni]
    bin_dir = "{CNI_BIN_DIR}"
    conf_dir = "{state}/net.d"
"""


def cni_config(ipam_dir: Path) -> dict[str, object]:
    """The pods' network: the bridge, host-local addresses, no masquerading."""
    return {
        "cniVersion": "0.4.0",
        "name": "litellm-operator-deploy",
        "plugins": [
            {
                "type": "bridge",
                "bridge": BRIDGE,
                "isGateway": True,
                "ipMasq": False,
                "hairpinMode": True,
                "ipam": {
                    "type": "host-local",
                    "ranges": [[{"subnet": POD_CIDR, "gateway": GATEWAY}]],
                    # Beyond the bridge's subnet, only Services: no default route.
                    "routes": [{"dst": SERVICE_CIDR}],
                    "dataDir": str(ipam_dir),
                },
            }
        ],
    }


def kubelet_config(state: Path, ca: Path, socket: Path, port: int) -> dict[str, object]:
    """kubelet on cgroup v1 + cgroupfs, serving on the bridge only, evicting nothing."""
    return {
        "apiVersion": "kubelet.config.k8s.io/v1beta1",
        "kind": "KubeletConfiguration",
        "address": GATEWAY,
        "port": port,
        "readOnlyPort": 0,
        "healthzPort": 0,
        "authentication": {
            "anonymous": {"enabled": False},
            "webhook": {"enabled": False},
            "x509": {"clientCAFile": str(ca)},
        },
        "authorization": {"mode": "AlwaysAllow"},
        "cgroupDriver": "cgroupfs",
        "failCgroupV1": False,
        "failSwapOn": False,
        "containerRuntimeEndpoint": f"unix://{socket}",
        "podLogsDir": str(state / "pod-logs"),
        "imageGCHighThresholdPercent": 100,
        "imageGCLowThresholdPercent": 99,
        "evictionHard": {
            "memory.available": "50Mi",
            "nodefs.available": "1%",
            "imagefs.available": "1%",
            "nodefs.inodesFree": "1%",
        },
        "syncFrequency": "10s",
        "fileCheckFrequency": "10s",
        "serializeImagePulls": False,
    }


def kube_proxy_config(kubeconfig: Path) -> dict[str, object]:
    """kube-proxy in iptables mode, touching no sysctl, listening on loopback only."""
    return {
        "apiVersion": "kubeproxy.config.k8s.io/v1alpha1",
        "kind": "KubeProxyConfiguration",
        "clientConnection": {"kubeconfig": str(kubeconfig)},
        "mode": "iptables",
        "hostnameOverride": NODE_NAME,
        "bindAddress": GATEWAY,
        "clusterCIDR": POD_CIDR,
        "healthzBindAddress": f"127.0.0.1:{free_port()}",
        "metricsBindAddress": f"127.0.0.1:{free_port()}",
        "nodePortAddresses": [f"{GATEWAY}/32"],
        "conntrack": {"maxPerCore": 0, "min": 0},
        "iptables": {"localhostNodePorts": False},
    }


# --------------------------------------------------------------------------------- node


class Node:
    """The one-node cluster: ``start()`` / ``stop()``, or a context manager."""

    def __init__(
        self,
        assets: Path | None = None,
        state_dir: Path = STATE_DIR,
        *,
        exit_with_parent: bool = True,
    ) -> None:
        """``exit_with_parent``: the node's processes are killed when this process dies."""
        self.state_dir = state_dir
        self._assets = assets
        self._exit_with_parent = exit_with_parent
        self.plane = ControlPlane(
            state_dir / "controlplane",
            assets,
            exit_with_parent=exit_with_parent,
            pod_network=PodNetwork(GATEWAY, SERVICE_CIDR),
        )
        self._lock: IO[str] | None = None
        self._pids: dict[str, int] = {}

    # -- paths
    @property
    def assets(self) -> Path:
        if self._assets is None:
            self._assets = find_assets()
        return self._assets

    @property
    def kubeconfig(self) -> Path:
        return self.plane.kubeconfig

    @property
    def containerd_dir(self) -> Path:
        return self.state_dir / "containerd"

    @property
    def containerd_socket(self) -> Path:
        return self.containerd_dir / "containerd.sock"

    @property
    def kubelet_dir(self) -> Path:
        return self.state_dir / "kubelet"

    def _log(self, name: str) -> Path:
        return self.state_dir / f"{name}.log"

    def _pid_file(self, name: str) -> Path:
        return self.state_dir / f"{name}.pid"

    def kubectl(self, *args: str, check: bool = True, timeout: float = 120) -> str:
        """Run the envtest kubectl against the node; return its stdout."""
        command = [str(self.assets / "kubectl"), f"--kubeconfig={self.kubeconfig}", *args]
        result = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
        if check and result.returncode != 0:
            raise NodeError(f"kubectl {' '.join(args)} failed: {result.stderr.strip()}")
        return result.stdout

    # -- lifecycle
    def start(self, images: Sequence[str] = (), timeout: float = 180) -> None:
        """Start everything (after cleaning up a previous run's remnants), load ``images`` from
        the Docker daemon, and wait until the node is Ready and pods can be admitted."""
        self._take_lock()
        self._cleanup()
        self.state_dir.mkdir(parents=True, exist_ok=True)
        deadline = time.monotonic() + timeout
        try:
            self._create_bridge()
            self.plane.start()
            self._start_containerd(deadline)
            self.load_images([self._pause_image(), *images])
            self._start_kubelet()
            self._start_controllers()
            self._wait_ready(deadline)
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        """Stop everything and remove every trace (see the module's docstring)."""
        try:
            self._cleanup()
        finally:
            if self._lock is not None:
                self._lock.close()
                self._lock = None

    def __enter__(self) -> Node:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def load_images(self, images: Sequence[str]) -> None:
        """Copy ``images`` from the Docker daemon into the node's containerd."""
        saver = subprocess.Popen(["docker", "save", *images], stdout=subprocess.PIPE)
        assert saver.stdout is not None
        try:
            self._ctr("images", "import", "-", stdin=saver.stdout)
        finally:
            saver.stdout.close()
            if saver.wait() != 0:
                raise NodeError(f"docker save {' '.join(images)} failed")

    # -- start-up steps
    def _take_lock(self) -> None:
        if self._lock is not None:
            return
        self.state_dir.parent.mkdir(parents=True, exist_ok=True)
        self._lock = open(f"{self.state_dir}.lock", "w")  # noqa: SIM115 (held until stop)
        try:
            fcntl.flock(self._lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            log(f"another node runs on this machine ({self.state_dir}); waiting for it")
            fcntl.flock(self._lock, fcntl.LOCK_EX)

    def _create_bridge(self) -> None:
        _run("ip", "link", "add", BRIDGE, "type", "bridge")
        _run("ip", "addr", "add", f"{GATEWAY}/{POD_CIDR.split('/')[1]}", "dev", BRIDGE)
        _run("ip", "link", "set", BRIDGE, "up")
        # The host's own connections to Service IPs (tests reading /metrics) leave from the
        # bridge's address, not from whatever the default route would pick.
        _run("ip", "route", "add", SERVICE_CIDR, "dev", BRIDGE, "src", GATEWAY)

    def _launch(self, name: str, args: list[str]) -> None:
        pid = _spawn(args, self._log(name), exit_with_parent=self._exit_with_parent)
        self._pids[name] = pid
        self._pid_file(name).write_text(f"{pid}\n")

    def _start_containerd(self, deadline: float) -> None:
        state = self.containerd_dir
        (state / "net.d").mkdir(parents=True)
        config = state / "config.toml"
        config.write_text(containerd_config(state))
        network = cni_config(self.state_dir / "cni-ipam")
        (state / "net.d" / "10-bridge.conflist").write_text(json.dumps(network, indent=2))
        self._launch("containerd", [_which("containerd"), "--config", str(config)])
        while not self._ctr("version", check=False):
            self._check_alive("containerd", deadline)
            time.sleep(0.2)

    def _pause_image(self) -> str:
        """Import the static pause binary into the Docker daemon as :data:`PAUSE_IMAGE`."""
        if _run("docker", "image", "ls", "-q", PAUSE_IMAGE).strip():
            return PAUSE_IMAGE
        build = self.state_dir / "pause-image"
        build.mkdir()
        shutil.copy(self.assets / "pause", build / "pause")
        tar = subprocess.Popen(["tar", "-C", str(build), "-c", "pause"], stdout=subprocess.PIPE)
        assert tar.stdout is not None
        _run(
            "docker", "import", "--change", 'ENTRYPOINT ["/pause"]', "-", PAUSE_IMAGE,
            stdin=tar.stdout,
        )  # fmt: skip
        tar.stdout.close()
        tar.wait()
        return PAUSE_IMAGE

    def _ctr(self, *args: str, check: bool = True, stdin: IO[bytes] | None = None) -> str:
        address = f"--address={self.containerd_socket}"
        return _run(
            _which("ctr"), address, f"--namespace={K8S_NAMESPACE}", *args, check=check, stdin=stdin
        )

    def _start_kubelet(self) -> None:
        self.kubelet_dir.mkdir(parents=True)
        config = self.state_dir / "kubelet.yaml"
        settings = kubelet_config(
            self.state_dir, self.plane.pki.ca_crt, self.containerd_socket, free_port()
        )
        config.write_text(yaml.safe_dump(settings))
        self._launch(
            "kubelet",
            [
                str(self.assets / "kubelet"),
                f"--config={config}",
                f"--kubeconfig={self.kubeconfig}",
                f"--root-dir={self.kubelet_dir}",
                f"--cert-dir={self.state_dir / 'kubelet-pki'}",
                f"--hostname-override={NODE_NAME}",
                f"--node-ip={GATEWAY}",
                "--v=1",
            ],
        )

    def _start_controllers(self) -> None:
        pki = self.plane.pki
        common = [f"--kubeconfig={self.kubeconfig}", "--leader-elect=false", "--secure-port=0"]
        self._launch(
            "kube-controller-manager",
            [
                str(self.assets / "kube-controller-manager"),
                *common,
                f"--service-account-private-key-file={pki.sa_key}",
                f"--root-ca-file={pki.ca_crt}",
                f"--service-cluster-ip-range={SERVICE_CIDR}",
                "--use-service-account-credentials=false",
            ],
        )
        self._launch("kube-scheduler", [str(self.assets / "kube-scheduler"), *common])
        config = self.state_dir / "kube-proxy.yaml"
        config.write_text(yaml.safe_dump(kube_proxy_config(self.kubeconfig)))
        self._launch("kube-proxy", [str(self.assets / "kube-proxy"), f"--config={config}"])

    def _check_alive(self, name: str, deadline: float) -> None:
        pid = self._pids.get(name)
        if pid is not None and not _alive(pid):
            raise NodeError(f"{name} exited; log tail:\n{_tail(self._log(name))}")
        if time.monotonic() > deadline:
            raise NodeError(
                f"the node was not ready in time; {name} log:\n{_tail(self._log(name))}"
            )

    def _wait_ready(self, deadline: float) -> None:
        """The node Ready, the default ServiceAccount and the root CA ConfigMap published."""
        while True:
            for name in SERVICES:
                self._check_alive(name, deadline)
            ready = self.kubectl(
                "get", "node", NODE_NAME, "--ignore-not-found",
                "-o", "jsonpath={.status.conditions[?(@.type=='Ready')].status}",
                check=False,
            )  # fmt: skip
            account = self.kubectl(
                "get", "serviceaccount", "default", "--ignore-not-found", check=False
            )
            ca = self.kubectl(
                "get", "configmap", "kube-root-ca.crt", "--ignore-not-found", check=False
            )
            if ready == "True" and account and ca:
                log(f"node {NODE_NAME} Ready; kubeconfig {self.kubeconfig}")
                return
            time.sleep(1)

    # -- clean-up
    def _cleanup(self) -> None:
        """Everything a run (this one, or a killed earlier one) may have left behind."""
        if (self.state_dir / "controlplane" / "kubeconfig").exists() and self.plane.running():
            self._delete_pods()
        for name in SERVICES:
            self._stop_process(name)
        self._stop_shims()
        self.plane.stop()
        if (self.assets / "kube-proxy").exists():
            _run(str(self.assets / "kube-proxy"), "--cleanup", check=False)
        _remove_kube_chains()  # kubelet's own (KUBE-FIREWALL, canaries): no --cleanup for those
        self._kill_pod_cgroups()
        self._unmount_all()
        self._remove_network()
        for link in CONTAINER_LOGS.glob("*.log") if CONTAINER_LOGS.is_dir() else ():
            if link.is_symlink() and os.readlink(link).startswith(str(self.state_dir)):
                link.unlink()
        with contextlib.suppress(OSError):
            CONTAINER_LOGS.rmdir()  # kubelet made it; only if empty
        shutil.rmtree(self.state_dir, ignore_errors=True)

    def _delete_pods(self) -> None:
        """Let kubelet tear the pods' sandboxes (and their network) down while it still runs."""
        with contextlib.suppress(NodeError, subprocess.TimeoutExpired):
            self.kubectl(
                "delete", "pods", "--all", "--all-namespaces", "--grace-period=0", "--force",
                "--wait=false", timeout=30,
            )  # fmt: skip
            deadline = time.monotonic() + 30
            while (
                time.monotonic() < deadline and self._ctr("tasks", "ls", "-q", check=False).strip()
            ):
                time.sleep(0.5)

    def _stop_process(self, name: str) -> None:
        pid_file = self._pid_file(name)
        with contextlib.suppress(OSError, ValueError, ControlPlaneError):
            terminate(int(pid_file.read_text().strip()), Path(name).name)
        pid_file.unlink(missing_ok=True)
        self._pids.pop(name, None)

    def _stop_shims(self) -> None:
        """containerd's shims outlive it by design; ours name our socket on their command line."""
        marker = str(self.containerd_socket).encode()
        for pid in _pids_whose_cmdline_has(marker):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)

    def _kill_pod_cgroups(self) -> None:
        """kubelet's cgroups (cgroupfs driver): kill what is left in them, then remove them."""
        for controller in _cgroup_controllers():
            root = controller / "kubepods"
            if not root.is_dir():
                continue
            for procs in root.rglob("cgroup.procs"):
                for pid in _read_pids(procs):
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGKILL)
            for directory in sorted(
                (p for p in root.rglob("*") if p.is_dir()), key=lambda p: len(p.parts), reverse=True
            ):
                _rmdir_retrying(directory)
            _rmdir_retrying(root)

    def _unmount_all(self) -> None:
        """Mounts under the state directory (overlay rootfs, volumes) and the pods' netns."""
        prefixes = (str(self.state_dir), "/run/netns/cni-", "/var/run/netns/cni-")
        for target in reversed(_mount_targets()):
            if target.startswith(prefixes):
                _run("umount", "-l", target, check=False)
        for netns_dir in (Path("/run/netns"), Path("/var/run/netns")):
            for netns in netns_dir.glob("cni-*") if netns_dir.is_dir() else ():
                with contextlib.suppress(OSError):
                    netns.unlink()

    def _remove_network(self) -> None:
        if Path(f"/sys/class/net/{BRIDGE}").exists():
            _run("ip", "link", "delete", BRIDGE, check=False)


# -------------------------------------------------------------------------------- helpers


def _which(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        raise NodeError(f"{name} not found: apt-get install containerd runc (as root)")
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def _tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def _pids_whose_cmdline_has(marker: bytes) -> Iterator[int]:
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                if marker in (entry / "cmdline").read_bytes():
                    yield int(entry.name)


def _cgroup_controllers() -> list[Path]:
    if not CGROUP_ROOT.is_dir():
        return []
    return [p for p in CGROUP_ROOT.iterdir() if p.is_dir() and not p.is_symlink()]


def _read_pids(procs: Path) -> list[int]:
    try:
        return [int(line) for line in procs.read_text().split()]
    except (OSError, ValueError):
        return []


def _rmdir_retrying(directory: Path) -> None:
    for _ in range(20):
        try:
            directory.rmdir()
            return
        except FileNotFoundError:
            return
        except OSError:
            time.sleep(0.1)


def _remove_kube_chains() -> None:
    """Delete every ``KUBE-*`` iptables chain and the rules that jump to one (IPv4 and IPv6).

    Only this node's kubelet and kube-proxy make them on these machines (it runs alone)."""
    for binary in ("iptables", "ip6tables"):
        if shutil.which(binary) is None:
            continue
        for table in ("filter", "nat", "mangle"):
            rules = _run(binary, "-t", table, "-S", check=False).splitlines()
            chains = [r.split()[1] for r in rules if r.startswith("-N KUBE-")]
            for rule in rules:
                words = shlex.split(rule)
                if words[:1] == ["-A"] and not words[1].startswith("KUBE-") and "KUBE-" in rule:
                    _run(binary, "-t", table, "-D", *words[1:], check=False)
            for flag in ("-F", "-X"):
                for chain in chains:
                    _run(binary, "-t", table, flag, chain, check=False)


def _mount_targets() -> list[str]:
    targets = []
    for line in Path("/proc/self/mounts").read_text().splitlines():
        fields = line.split()
        if len(fields) > 1:
            targets.append(fields[1].encode().decode("unicode_escape"))
    return targets


# ------------------------------------------------------------------------------------ CLI


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m devenv.node", description=__doc__.splitlines()[0]
    )
    parser.add_argument("command", choices=("up", "down"))
    parser.add_argument("--image", action="append", default=[], help="a Docker image to load")
    args = parser.parse_args(argv)
    node = Node(exit_with_parent=False)
    try:
        if args.command == "up":
            node.start(args.image)
            print(f"export KUBECONFIG={node.kubeconfig}")
        else:
            node.stop()
    except (NodeError, ControlPlaneError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
