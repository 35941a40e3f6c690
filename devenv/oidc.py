"""A real OpenID Connect provider for the SSO tests: npm ``oidc-provider``, run locally.

``devenv/oidc/`` holds the package (``package.json`` and a ``package-lock.json`` that pins every
package with its integrity hash) and ``provider.mjs``, a small server around the unpatched
library whose sign-in screens answer JSON, so a test can drive the browser flow with httpx (see
the script's header). :func:`install` copies them into :func:`cache_dir` (``oidc/<fingerprint>``
under the project's cache) and runs ``npm ci`` there, once per content; :class:`OidcProvider`
starts one provider on a loopback port with its client and accounts.

CLI::

    python -m devenv.oidc install    # install (or check) the provider in the cache; prints its dir
"""

from __future__ import annotations

import json
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from devenv.litellm import DevEnvError, cache_root, ensure_node, fingerprint
from devenv.process import exit_with_parent

SOURCE = Path(__file__).resolve().parent / "oidc"
FILES = ("package.json", "package-lock.json", "provider.mjs")
START_TIMEOUT = 30.0


def cache_dir() -> Path:
    """Where the provider is installed: next to the project's LiteLLM, keyed by its files."""
    key = fingerprint(*((SOURCE / name).read_bytes() for name in FILES))
    return cache_root().parent / "oidc" / key


def install() -> Path:
    """``npm ci`` the provider into :func:`cache_dir` unless done; return that directory."""
    target = cache_dir()
    if (target / ".installed").exists():
        return target
    ensure_node()
    target.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=".install-", dir=target.parent))
    try:
        for name in FILES:
            shutil.copy2(SOURCE / name, work / name)
        npm = ["npm", "ci", "--no-audit", "--no-fund", "--omit=dev", "--loglevel=error"]
        done = subprocess.run(npm, cwd=work, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise DevEnvError(f"npm ci of oidc-provider failed:\n{done.stderr[-2000:]}")
        (work / ".installed").touch()
        try:
            work.rename(target)
        except OSError:  # installed concurrently by another process: use that one
            if not (target / ".installed").exists():
                raise
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return target


@dataclass
class OidcProvider:
    """One running provider: ``issuer`` on ``port``, one confidential client, fixed accounts.

    ``accounts`` maps each subject (the ``sub`` claim) to its other claims (email, name,
    role ...). Endpoints are the library's defaults: ``/auth``, ``/token``, ``/me``.
    """

    port: int
    redirect_uri: str
    accounts: Mapping[str, Mapping[str, Any]]
    client_id: str = "litellm"
    client_secret: str = field(default_factory=lambda: secrets.token_hex(16), repr=False)
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def issuer(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def litellm_env(self, id_claim: str = "sub") -> dict[str, str]:
        """The environment of LiteLLM's generic SSO for this provider."""
        return {
            "GENERIC_CLIENT_ID": self.client_id,
            "GENERIC_CLIENT_SECRET": self.client_secret,
            "GENERIC_AUTHORIZATION_ENDPOINT": f"{self.issuer}/auth",
            "GENERIC_TOKEN_ENDPOINT": f"{self.issuer}/token",
            "GENERIC_USERINFO_ENDPOINT": f"{self.issuer}/me",
            "GENERIC_USER_ID_ATTRIBUTE": id_claim,
        }

    def start(self, directory: Path) -> None:
        """Start it (installing first), its log in ``directory/oidc.log``; wait until it listens."""
        home = install()
        config = directory / "oidc.json"
        config.write_text(
            json.dumps(
                {
                    "port": self.port,
                    "issuer": self.issuer,
                    "cookieKey": secrets.token_hex(16),
                    "client": {
                        "id": self.client_id,
                        "secret": self.client_secret,
                        "redirectUri": self.redirect_uri,
                    },
                    "accounts": self.accounts,
                }
            )
        )
        config.chmod(0o600)
        log = directory / "oidc.log"
        with log.open("ab") as out:
            self.process = subprocess.Popen(
                ["node", str(home / "provider.mjs"), str(config)],
                stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                cwd=home, preexec_fn=exit_with_parent,
            )  # fmt: skip
        deadline = time.monotonic() + START_TIMEOUT
        while f"listening {self.port}" not in log.read_text():
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise DevEnvError(f"the OIDC provider did not start:\n{log.read_text()[-2000:]}")
            time.sleep(0.1)

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
            self.process = None


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if args != ["install"]:
        print("usage: python -m devenv.oidc install", file=sys.stderr)
        return 2
    try:
        print(install())
    except DevEnvError as exc:
        print(f"devenv.oidc: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
