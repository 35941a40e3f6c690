"""Unit tests of the control plane runner's parts that need no Kubernetes binaries."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from devenv import controlplane as cp

needs_openssl = pytest.mark.skipif(shutil.which("openssl") is None, reason="no openssl CLI")


def _openssl(*args: str) -> str:
    return subprocess.run(["openssl", *args], capture_output=True, text=True, check=True).stdout


@needs_openssl
def test_pki_is_signed_by_the_ca_and_admin_is_a_master(tmp_path: Path) -> None:
    pki = cp.generate_pki(tmp_path / "pki")

    assert pki.complete
    for cert in (pki.serving_crt, pki.admin_crt):
        assert ": OK" in _openssl("verify", "-CAfile", str(pki.ca_crt), str(cert))
    assert "system:masters" in _openssl("x509", "-noout", "-subject", "-in", str(pki.admin_crt))
    serving = _openssl("x509", "-noout", "-ext", "subjectAltName", "-in", str(pki.serving_crt))
    assert "IP Address:127.0.0.1" in serving
    assert (pki.sa_key.stat().st_mode & 0o777) == 0o600


@needs_openssl
def test_pki_is_generated_once(tmp_path: Path) -> None:
    first = cp.generate_pki(tmp_path).ca_crt.read_bytes()
    assert cp.generate_pki(tmp_path).ca_crt.read_bytes() == first


def test_apiserver_flags_follow_envtest() -> None:
    endpoints = cp.Endpoints(etcd_client=2379, etcd_peer=2380, apiserver=6443)
    args = cp.apiserver_args(endpoints, cp.Pki(Path("/p")), Path("/certs"))

    assert "--etcd-servers=http://127.0.0.1:2379" in args
    assert "--secure-port=6443" in args
    assert "--authorization-mode=RBAC" in args
    assert "--service-account-signing-key-file=/p/sa.key" in args
    assert "--disable-admission-plugins=ServiceAccount" in args
    assert "--endpoint-reconciler-type=none" in args


def test_kubeconfig_embeds_the_admin_credential(tmp_path: Path) -> None:
    pki = cp.Pki(tmp_path)
    for path in (pki.ca_crt, pki.admin_crt, pki.admin_key):
        path.write_text(path.name)

    config = cp.kubeconfig_document("https://127.0.0.1:6443", pki)

    assert config["current-context"] == "envtest"
    assert "clusters" in config
    assert "users" in config


def test_explicit_assets_without_binaries_are_rejected(tmp_path: Path) -> None:
    with pytest.raises(cp.ControlPlaneError, match="kube-apiserver and etcd"):
        cp.find_assets(tmp_path)


def test_terminate_stops_only_the_named_component(tmp_path: Path) -> None:
    sleep = shutil.which("sleep")
    assert sleep is not None
    fake_etcd = tmp_path / "etcd"
    shutil.copy(sleep, fake_etcd)
    pid = cp._spawn([str(fake_etcd), "60"], tmp_path / "etcd.log")

    cp.terminate(pid, "kube-apiserver")  # wrong name: left alone
    assert cp._is_component(pid, "etcd")
    cp.terminate(pid, "etcd")
    assert not cp._is_component(pid, "etcd")


def test_status_of_an_empty_directory_is_stopped(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cp.main(["status", "--dir", str(tmp_path)]) == 1
    assert '"running": false' in capsys.readouterr().out
    assert cp.main(["down", "--dir", str(tmp_path)]) == 0


def test_without_assets_or_builder_find_assets_explains(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(cp.ASSETS_ENV, raising=False)
    monkeypatch.setattr(cp, "ASSETS_SCRIPT", tmp_path / "missing.sh")
    with pytest.raises(cp.ControlPlaneError, match=cp.ASSETS_ENV):
        cp.find_assets()
