"""devenv.oidc without Node: what is pinned, where it is installed, what LiteLLM is told."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from devenv import oidc


def test_the_lockfile_pins_every_package_by_integrity_and_names_no_registry() -> None:
    manifest = json.loads((oidc.SOURCE / "package.json").read_text())
    lock = json.loads((oidc.SOURCE / "package-lock.json").read_text())
    version = manifest["dependencies"]["oidc-provider"]
    assert version[0].isdigit(), "an exact version, not a range"
    packages = lock["packages"]
    assert packages["node_modules/oidc-provider"]["version"] == version
    for name, package in packages.items():
        if name:
            assert package["integrity"].startswith("sha512-"), name
            assert "resolved" not in package, name


def test_the_install_dir_is_keyed_by_the_sources(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LITELLM_OPERATOR_LITELLM_CACHE", str(tmp_path / "litellm"))
    first = oidc.cache_dir()
    assert first.parent == tmp_path / "oidc"
    source = tmp_path / "src"
    source.mkdir()
    for name in oidc.FILES:
        (source / name).write_bytes((oidc.SOURCE / name).read_bytes())
    (source / "provider.mjs").write_text("// changed\n")
    monkeypatch.setattr(oidc, "SOURCE", source)
    assert oidc.cache_dir() != first


def test_litellm_is_pointed_at_the_providers_endpoints() -> None:
    provider = oidc.OidcProvider(port=4567, redirect_uri="http://x/sso/callback", accounts={})
    env = provider.litellm_env(id_claim="email")
    assert env["GENERIC_AUTHORIZATION_ENDPOINT"] == "http://127.0.0.1:4567/auth"
    assert env["GENERIC_TOKEN_ENDPOINT"] == "http://127.0.0.1:4567/token"
    assert env["GENERIC_USERINFO_ENDPOINT"] == "http://127.0.0.1:4567/me"
    assert env["GENERIC_USER_ID_ATTRIBUTE"] == "email"
    assert (env["GENERIC_CLIENT_ID"], env["GENERIC_CLIENT_SECRET"]) == (
        provider.client_id,
        provider.client_secret,
    )
    assert provider.client_secret not in repr(provider)


def test_the_cli_only_installs(capsys: pytest.CaptureFixture[str]) -> None:
    assert oidc.main(["up"]) == 2
    assert "usage" in capsys.readouterr().err
