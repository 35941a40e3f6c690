"""Starting and stopping the shared LiteLLM testbed (a real LiteLLM proxy on a real PostgreSQL).

The testbed is a script outside this repository, at ``<repo>/../shared/litellm-testbed/testbed``
(or ``$LITELLM_TESTBED``). ``testbed up --dir DIR`` prints ``export`` lines for ``LITELLM_URL``
and ``LITELLM_MASTER_KEY``; ``testbed down --dir DIR`` stops the instance and removes DIR.
Where there is no testbed, run LiteLLM from its image instead (see :data:`HOW_TO_GET_LITELLM`).

CLI::

    python -m litellm_operator.devenv.testbed up --dir DIR     # prints export lines
    python -m litellm_operator.devenv.testbed down --dir DIR
"""

from __future__ import annotations

import argparse
import os
import shlex
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import SecretStr

REPO_ROOT = Path(__file__).resolve().parents[3]
START_TIMEOUT = 600.0  # the first `up` on a machine installs LiteLLM (about a minute, or more)
STOP_TIMEOUT = 60.0

HOW_TO_GET_LITELLM = """\
No LiteLLM for the integration tests. Set LITELLM_URL and LITELLM_MASTER_KEY to a LiteLLM proxy
with a database, e.g. (Linux, host network; the operator is tested against 1.108.x):
  docker run -d --network host -e POSTGRES_PASSWORD=pw postgres:16
  docker run -d --network host -e LITELLM_MASTER_KEY=sk-dev \\
    -e DATABASE_URL=postgresql://postgres:pw@127.0.0.1:5432/postgres \\
    ghcr.io/berriai/litellm:main-stable --port 4000
  export LITELLM_URL=http://127.0.0.1:4000 LITELLM_MASTER_KEY=sk-dev
or put the testbed at ../shared/litellm-testbed/testbed beside the repository."""


class TestbedError(RuntimeError):
    """The testbed script failed; the message holds the tail of its stderr."""


@dataclass(frozen=True)
class LiteLLMEndpoint:
    """Where a LiteLLM proxy answers, and its master key (never shown in reprs)."""

    url: str
    master_key: SecretStr = field(repr=False)
    testbed_dir: Path | None = None

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> LiteLLMEndpoint | None:
        """The endpoint from ``LITELLM_URL`` + ``LITELLM_MASTER_KEY``, or ``None`` if unset."""
        env = dict(os.environ) if env is None else env
        url, key = env.get("LITELLM_URL"), env.get("LITELLM_MASTER_KEY")
        if not url or not key:
            return None
        testbed_dir = env.get("LITELLM_TESTBED_DIR")
        return cls(url, SecretStr(key), Path(testbed_dir) if testbed_dir else None)


def find_testbed(repo_root: Path = REPO_ROOT) -> Path | None:
    """The testbed script: ``$LITELLM_TESTBED`` or ``<repo>/../shared/litellm-testbed/testbed``."""
    candidates = [os.environ.get("LITELLM_TESTBED", "")]
    candidates.append(str(repo_root.parent / "shared" / "litellm-testbed" / "testbed"))
    for candidate in filter(None, candidates):
        path = Path(candidate)
        if path.is_file() and os.access(path, os.X_OK):
            return path
    return None


def start_testbed(
    directory: Path, *, testbed: Path | None = None, timeout: float = START_TIMEOUT
) -> LiteLLMEndpoint:
    """Run ``testbed up --dir directory`` and return the endpoint it exports.

    ``directory`` must be writable (a temp dir: the shared folder may be read-only).
    """
    script = _require_testbed(testbed)
    result = _run([str(script), "up", "--dir", str(directory)], timeout)
    endpoint = LiteLLMEndpoint.from_env(parse_exports(result.stdout))
    if endpoint is None:
        raise TestbedError(f"testbed up printed no LITELLM_URL/LITELLM_MASTER_KEY ({script})")
    return endpoint


def stop_testbed(directory: Path, *, testbed: Path | None = None) -> None:
    """Run ``testbed down --dir directory`` (stops the proxy and PostgreSQL, removes the dir)."""
    if directory.exists():
        _run([str(_require_testbed(testbed)), "down", "--dir", str(directory)], STOP_TIMEOUT)


def parse_exports(text: str) -> dict[str, str]:
    """``export NAME=value`` lines (shell-quoted or not) as a dict."""
    exports: dict[str, str] = {}
    for line in text.splitlines():
        words = shlex.split(line, comments=True)
        if len(words) == 2 and words[0] == "export" and "=" in words[1]:
            name, _, value = words[1].partition("=")
            exports[name] = value
    return exports


def _require_testbed(testbed: Path | None) -> Path:
    script = testbed or find_testbed()
    if script is None:
        raise TestbedError(HOW_TO_GET_LITELLM)
    return script


def _run(argv: Sequence[str], timeout: float) -> subprocess.CompletedProcess[str]:
    """Run the script with its output in temp files, not pipes: the daemons it starts
    (PostgreSQL) inherit its stderr, so a pipe would never reach EOF."""
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        try:
            code = subprocess.run(
                argv, stdin=subprocess.DEVNULL, stdout=out, stderr=err, timeout=timeout, check=False
            ).returncode
        except subprocess.TimeoutExpired as exc:
            raise TestbedError(f"{' '.join(argv[1:3])} timed out after {timeout:.0f}s") from exc
        out.seek(0)
        err.seek(0)
        result = subprocess.CompletedProcess(argv, code, out.read(), err.read())
    if result.returncode != 0:
        tail = "\n".join(result.stderr.splitlines()[-20:])
        raise TestbedError(f"{' '.join(argv[1:3])} failed ({result.returncode}):\n{tail}")
    return result


def main(argv: Sequence[str] | None = None) -> int:
    """CLI entry: ``up --dir DIR`` prints export lines; ``down --dir DIR`` stops it."""
    parser = argparse.ArgumentParser(prog="python -m litellm_operator.devenv.testbed")
    parser.add_argument("command", choices=["up", "down"])
    parser.add_argument("--dir", required=True, type=Path)
    args = parser.parse_args(argv)
    try:
        if args.command == "up":
            endpoint = start_testbed(args.dir)
            print(f"export LITELLM_URL={shlex.quote(endpoint.url)}")
            print(
                f"export LITELLM_MASTER_KEY={shlex.quote(endpoint.master_key.get_secret_value())}"
            )
            print(f"export LITELLM_TESTBED_DIR={shlex.quote(str(args.dir.resolve()))}")
        else:
            stop_testbed(args.dir)
    except TestbedError as exc:
        print(f"testbed: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
