"""A real LiteLLM proxy for development and tests: pinned, cached, offline, one instance per dir.

This module owns the project's LiteLLM: the proxy ``litellm[proxy]`` at :data:`LITELLM_VERSION`
from PyPI, on a throw-away PostgreSQL cluster (:mod:`devenv.postgres`) with LiteLLM's own SQL
migrations applied. Nothing in LiteLLM is patched or mocked.

**Offline Prisma.** LiteLLM's database layer is prisma-client-py, which normally downloads
Prisma's native query engine, a download these machines cannot reach. Instead, Prisma's *same*
query engine compiled to WebAssembly (npm ``@prisma/query-engine-wasm``) runs in Node.js behind
``devenv/query-engine/query-engine.mjs``, a small server that speaks the native engine's HTTP
protocol; ``PRISMA_QUERY_ENGINE_BINARY`` points prisma-client-py at it. The schema engine (only
needed for ``prisma migrate``/``db push``) is replaced by a stub, and schema updates at proxy
start are off: the migrations are applied with ``psql`` instead, once, into a template.

**Install** (once per machine, into :func:`cache_root`/``<version>``, about two minutes; a lock
lets concurrent callers wait for one installer): Debian's PostgreSQL and Node.js if missing
(apt-get, as root), a venv with LiteLLM and prisma-client-py, the engine's npm packages, the
generated Prisma client, and a stopped, migrated PostgreSQL data directory (the template). Each
step records what it was built from and is redone only when that changes.

**Instances** (:class:`Instance`, about 20 s to start): a copy of the template (so every instance
starts empty), its own PostgreSQL and proxy on free loopback ports, a random master key, and
``env.sh`` with ``export`` lines for ``LITELLM_URL``, ``LITELLM_MASTER_KEY`` and
``LITELLM_DEVENV_DIR``.
The default config defines three models pointing at a dead endpoint: admin calls work,
completions do not. Several instances can run side by side.

CLI::

    python -m devenv.litellm install                    # install (or check) the cache
    python -m devenv.litellm up --dir DIR [--config F]  # start; prints export lines
    python -m devenv.litellm status --dir DIR           # exit 0 if it answers
    python -m devenv.litellm down --dir DIR [--keep]    # stop (and remove DIR unless --keep)

Environment: ``LITELLM_OPERATOR_LITELLM_CACHE`` (the cache root; default
``${LITELLM_OPERATOR_CACHE:-${XDG_CACHE_HOME:-~/.cache}/litellm-operator}/litellm``),
``LITELLM_OPERATOR_PG_BIN`` (PostgreSQL's ``bin/``, see :mod:`devenv.postgres`),
``LITELLM_OPERATOR_LITELLM_VERSION`` (another LiteLLM than the default, for the version matrix).
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import hashlib
import json
import os
import secrets
import shlex
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import SecretStr

from devenv import postgres
from devenv.postgres import PostgresError, log
from devenv.process import PidFile, exit_with_parent, stop

DEFAULT_LITELLM_VERSION = "1.108.7"
VERSION_ENV = "LITELLM_OPERATOR_LITELLM_VERSION"
LITELLM_VERSION = os.environ.get(VERSION_ENV, "").strip() or DEFAULT_LITELLM_VERSION
"""The version tests run against; ``make test-litellm LITELLM_VERSION=x.y.z`` sets another."""
PRISMA_CLIENT_VERSION = "0.11.0"  # what litellm pins from 1.74 to 1.110 at least
SCHEMA_ENGINE_COMMIT = "ac9d7041ed77bcc8a8dbd2ab6616b39013829574"  # what prisma-client-py expects
ENGINE_SOURCE = Path(__file__).resolve().parent / "query-engine"
CACHE_ENV = "LITELLM_OPERATOR_LITELLM_CACHE"
START_TIMEOUT = 300.0
MIN_NODE_MAJOR = 18
DATABASE = "litellm"
PG_OUTSIDE_PREFIX = "litellm-operator-pg-"  # data dirs placed outside an unreachable instance dir

HOW_TO_GET_LITELLM = """\
Or use a LiteLLM of your own: set LITELLM_URL and LITELLM_MASTER_KEY to a LiteLLM proxy with a
database, e.g. (Linux, host network; the operator is tested against 1.108.x):
  docker run -d --network host -e POSTGRES_PASSWORD=pw postgres:16
  docker run -d --network host -e LITELLM_MASTER_KEY=sk-dev \\
    -e DATABASE_URL=postgresql://postgres:pw@127.0.0.1:5432/postgres \\
    ghcr.io/berriai/litellm:main-stable --port 4000
  export LITELLM_URL=http://127.0.0.1:4000 LITELLM_MASTER_KEY=sk-dev"""

DEFAULT_CONFIG = """\
# Written by devenv.litellm: models whose upstream is a closed port, so admin calls work and
# completions fail fast.
model_list:
  - model_name: gpt-4o-mini
    litellm_params: {model: openai/gpt-4o-mini, api_key: sk-none, api_base: "http://127.0.0.1:9/v1"}
  - model_name: gpt-4o
    litellm_params: {model: openai/gpt-4o, api_key: sk-none, api_base: "http://127.0.0.1:9/v1"}
  - model_name: claude-sonnet
    litellm_params: {model: anthropic/claude-sonnet, api_key: sk-none, api_base: "http://127.0.0.1:9"}
litellm_settings:
  telemetry: false
"""

SCHEMA_ENGINE_STUB = f"""\
#!/bin/sh
# Stand-in for Prisma's schema engine: answers the version probe; migrations run through psql.
[ "$1" = "--version" ] && {{ echo "schema-engine-cli {SCHEMA_ENGINE_COMMIT}"; exit 0; }}
echo "schema-engine: not available offline (devenv applies LiteLLM's migrations with psql)" >&2
exit 1
"""


class DevEnvError(RuntimeError):
    """The LiteLLM development environment could not be installed, started or stopped."""


# ------------------------------------------------------------------------------ endpoint


@dataclass(frozen=True)
class LiteLLMEndpoint:
    """Where a LiteLLM proxy answers, and its master key (never shown in reprs)."""

    url: str
    master_key: SecretStr = field(repr=False)
    devenv_dir: Path | None = None

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> LiteLLMEndpoint | None:
        """The endpoint from ``LITELLM_URL`` + ``LITELLM_MASTER_KEY``, or ``None`` if unset."""
        env = os.environ if env is None else env
        url, key = env.get("LITELLM_URL"), env.get("LITELLM_MASTER_KEY")
        if not url or not key:
            return None
        directory = env.get("LITELLM_DEVENV_DIR")
        return cls(url, SecretStr(key), Path(directory) if directory else None)

    def exports(self) -> str:
        """``export`` lines (shell-quoted) that :func:`parse_exports` reads back."""
        lines = {
            "LITELLM_URL": self.url,
            "LITELLM_MASTER_KEY": self.master_key.get_secret_value(),
        }
        if self.devenv_dir is not None:
            lines["LITELLM_DEVENV_DIR"] = str(self.devenv_dir)
        return "".join(f"export {k}={shlex.quote(v)}\n" for k, v in lines.items())


def parse_exports(text: str) -> dict[str, str]:
    """``export NAME=value`` lines (shell-quoted or not; comments and other lines ignored)."""
    exports: dict[str, str] = {}
    for line in text.splitlines():
        try:
            words = shlex.split(line, comments=True)
        except ValueError:  # unbalanced quotes: not an export line of ours
            continue
        if len(words) == 2 and words[0] == "export" and "=" in words[1]:
            name, _, value = words[1].partition("=")
            if name.isidentifier():
                exports[name] = value
    return exports


# --------------------------------------------------------------------------------- cache


def cache_root(env: Mapping[str, str] | None = None) -> Path:
    """Where installations live (one subdirectory per LiteLLM version)."""
    env = os.environ if env is None else env
    if env.get(CACHE_ENV):
        return Path(env[CACHE_ENV]).expanduser()
    base = env.get("LITELLM_OPERATOR_CACHE")
    if not base:
        xdg = env.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
        base = str(Path(xdg) / "litellm-operator")
    return Path(base).expanduser() / "litellm"


def fingerprint(*parts: str | bytes) -> str:
    """A short, stable digest of a step's inputs (what its stamp records)."""
    digest = hashlib.sha256()
    for part in parts:
        digest.update(part.encode() if isinstance(part, str) else part)
        digest.update(b"\0")
    return digest.hexdigest()[:16]


def free_port() -> int:
    """A TCP port on loopback that was free a moment ago."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _run(
    args: Sequence[str], what: str, *, env: Mapping[str, str] | None = None, cwd: Path | None = None
) -> str:
    """Run a step's command; on failure raise with the tail of its output."""
    with tempfile.TemporaryFile("w+") as out:  # a file, not a pipe: no deadlock on big output
        code = subprocess.run(
            list(args), stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
            env=None if env is None else dict(env), cwd=cwd, check=False,
        ).returncode  # fmt: skip
        out.seek(0)
        output = out.read()
    if code != 0:
        tail = "\n".join(output.splitlines()[-30:])
        raise DevEnvError(f"{what} failed (exit {code}):\n{tail}")
    return output


def _node_major(node: str) -> int:
    version = _run([node, "--version"], "node --version").strip().lstrip("v")
    return int(version.split(".")[0])


def ensure_node() -> str:
    """A Node.js (>= 18) on PATH, installing Debian's nodejs + npm first if there is none."""
    node = shutil.which("node")
    if node is None and os.geteuid() == 0 and shutil.which("apt-get"):
        log("installing Node.js (apt-get install nodejs npm)")
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        _run(["apt-get", "update", "-q"], "apt-get update", env=env)
        _run(["apt-get", "install", "-y", "-q", "nodejs", "npm"], "apt-get install nodejs", env=env)
        node = shutil.which("node")
    if node is None or shutil.which("npm") is None:
        raise DevEnvError("Node.js and npm are needed (Node 20 recommended)")
    if _node_major(node) < MIN_NODE_MAJOR:
        raise DevEnvError(f"Node.js >= {MIN_NODE_MAJOR} is needed ({node} is older)")
    return node


@dataclass(frozen=True)
class Installation:
    """LiteLLM :data:`LITELLM_VERSION` and everything it needs to run offline, in ``root``."""

    root: Path

    @classmethod
    def default(cls) -> Installation:
        return cls(cache_root() / LITELLM_VERSION)

    # -- layout
    @property
    def venv(self) -> Path:
        return self.root / "venv"

    @property
    def python(self) -> Path:
        return self.venv / "bin" / "python"

    @property
    def engine_dir(self) -> Path:
        return self.root / "query-engine"

    @property
    def template(self) -> Path:
        """The stopped, migrated PostgreSQL data directory each instance copies."""
        return self.root / "pgdata"

    def _stamp(self, step: str) -> Path:
        return self.root / ".steps" / step

    def site_packages(self) -> Path:
        found = sorted(self.venv.glob("lib/python3*/site-packages"))
        if not found:
            raise DevEnvError(f"no site-packages in {self.venv}")
        return found[-1]

    def env(self, base: Mapping[str, str] | None = None) -> dict[str, str]:
        """The environment the proxy, and prisma's CLI, run with."""
        env = dict(os.environ if base is None else base)
        env.update(
            PATH=f"{self.venv / 'bin'}{os.pathsep}{env.get('PATH', os.defpath)}",
            VIRTUAL_ENV=str(self.venv),
            PRISMA_HOME_DIR=str(self.root),
            PRISMA_BINARY_CACHE_DIR=str(self.root / "prisma-cache"),
            PRISMA_NODEENV_CACHE_DIR=str(self.root / "nodeenv"),
            PRISMA_QUERY_ENGINE_BINARY=str(self.engine_dir / "query-engine.mjs"),
            PRISMA_SCHEMA_ENGINE_BINARY=str(self.engine_dir / "schema-engine"),
            PRISMA_ENGINES_CHECKSUM_IGNORE_MISSING="1",
            PRISMA_HIDE_UPDATE_MESSAGE="1",
            DISABLE_SCHEMA_UPDATE="true",
            LITELLM_LOCAL_MODEL_COST_MAP="True",
            LITELLM_TELEMETRY="False",
        )
        env.pop("PYTHONPATH", None)
        env.pop("PYTHONHOME", None)
        return env

    # -- steps: (name, inputs, action); later steps include earlier inputs in theirs
    def _steps(self) -> list[tuple[str, str, Callable[[], None]]]:
        python = f"{sys.version_info.major}.{sys.version_info.minor}"
        venv_key = fingerprint("venv", LITELLM_VERSION, PRISMA_CLIENT_VERSION, python)
        engine_key = fingerprint(
            "engine", *(p.read_bytes() for p in sorted(ENGINE_SOURCE.iterdir()) if p.is_file())
        )
        return [
            ("venv", venv_key, self._install_venv),
            ("query-engine", engine_key, self._install_engine),
            ("prisma-client", fingerprint("client", venv_key, engine_key), self._generate_client),
            ("template", fingerprint("template", venv_key), self._build_template),
        ]

    def installed(self) -> bool:
        """Whether every step is done for the current inputs (a cheap check)."""
        return postgres.find_bin() is not None and all(
            self._done(name, key) for name, key, _ in self._steps()
        )

    def _done(self, step: str, key: str) -> bool:
        try:
            return self._stamp(step).read_text().strip() == key
        except OSError:
            return False

    def install(self) -> None:
        """Install whatever is missing or stale; concurrent callers wait for one another."""
        if self.installed():
            return
        self.root.mkdir(parents=True, exist_ok=True)
        with _locked(self.root / ".lock"):
            started = time.monotonic()
            postgres.ensure_installed()
            ensure_node()
            steps = self._steps()
            todo = [(n, k, a) for n, k, a in steps if not self._done(n, k)]
            if not todo:
                return
            log(f"installing LiteLLM {LITELLM_VERSION} into {self.root} (once; a few minutes)")
            for index, (name, key, action) in enumerate(steps, 1):
                if self._done(name, key):  # keys include the keys of the steps they build on
                    continue
                log(f"[{index}/{len(steps)}] {name}")
                step_started = time.monotonic()
                self._stamp(name).unlink(missing_ok=True)
                action()
                self._stamp(name).parent.mkdir(exist_ok=True)
                self._stamp(name).write_text(key + "\n")
                log(f"[{index}/{len(steps)}] {name} done in {time.monotonic() - step_started:.0f}s")
            log(f"LiteLLM {LITELLM_VERSION} installed in {time.monotonic() - started:.0f}s")

    def _install_venv(self) -> None:
        shutil.rmtree(self.venv, ignore_errors=True)
        _run([sys.executable, "-m", "venv", str(self.venv)], "python -m venv")
        pip = [str(self.python), "-m", "pip", "--disable-pip-version-check", "--no-input"]
        packages = [f"litellm[proxy]=={LITELLM_VERSION}", f"prisma=={PRISMA_CLIENT_VERSION}"]
        log(f"pip install {' '.join(packages)}")
        _run([*pip, "install", "-q", *packages], "pip install")
        env = self.env()
        _run(
            [str(self.python), "-c", "import litellm.proxy.proxy_server, prisma"], "import", env=env
        )

    def _install_engine(self) -> None:
        shutil.rmtree(self.engine_dir, ignore_errors=True)
        self.engine_dir.mkdir(parents=True)
        for source in ENGINE_SOURCE.iterdir():
            if source.is_file():
                shutil.copy2(source, self.engine_dir / source.name)
        (self.engine_dir / "query-engine.mjs").chmod(0o755)
        stub = self.engine_dir / "schema-engine"
        stub.write_text(SCHEMA_ENGINE_STUB)
        stub.chmod(0o755)
        log("npm ci (Prisma's query engine as WebAssembly, the pg driver adapter)")
        # package-lock.json pins every package with its integrity hash (and names no registry)
        npm = ["npm", "ci", "--no-audit", "--no-fund", "--omit=dev", "--loglevel=error"]
        _run(npm, "npm ci", cwd=self.engine_dir)
        version = _run([str(self.engine_dir / "query-engine.mjs"), "--version"], "engine --version")
        if SCHEMA_ENGINE_COMMIT not in version:
            raise DevEnvError(f"the query engine stand-in reports {version.strip()!r}")

    def _generate_client(self) -> None:
        schema = self.site_packages() / "litellm" / "proxy" / "schema.prisma"
        log("prisma generate (the Python client for LiteLLM's schema)")
        _run(
            [str(self.venv / "bin" / "prisma"), "generate", f"--schema={schema}"],
            "prisma generate", env=self.env(), cwd=self.root,
        )  # fmt: skip

    def migrations(self) -> list[Path]:
        """LiteLLM's SQL migrations (from ``litellm_proxy_extras``), in the order Prisma applies."""
        root = self.site_packages() / "litellm_proxy_extras" / "migrations"
        found = sorted(
            p / "migration.sql" for p in root.iterdir() if (p / "migration.sql").exists()
        )
        if not found:
            raise DevEnvError(f"no migrations under {root}")
        return found

    def _build_template(self) -> None:
        bin_dir = postgres.ensure_installed()
        migrations = self.migrations()
        work = Path(tempfile.mkdtemp(prefix="litellm-operator-template-"))
        work.chmod(0o755)  # reachable by the postgres user
        cluster = postgres.Cluster(bin_dir, work / "data", free_port())
        try:
            cluster.init()
            cluster.start()
            try:
                _check(cluster.psql("postgres", "-c", f"CREATE DATABASE {DATABASE}"), "createdb")
                log(f"applying {len(migrations)} LiteLLM migrations")
                files = [arg for m in migrations for arg in ("-f", str(m))]
                _check(cluster.psql(DATABASE, *files), "LiteLLM's migrations")
            finally:
                cluster.stop()
            shutil.rmtree(self.template, ignore_errors=True)
            shutil.move(str(cluster.data_dir), self.template)
        finally:
            shutil.rmtree(work, ignore_errors=True)


def _check(result: subprocess.CompletedProcess[str], what: str) -> None:
    if result.returncode != 0:
        raise DevEnvError(f"{what} failed:\n{result.stderr[-2000:]}")


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    with path.open("w") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            log(f"another install holds {path}; waiting for it")
            fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


# ------------------------------------------------------------------------------ instance


@dataclass(frozen=True)
class InstanceState:
    """What ``state.json`` records about a started instance."""

    port: int
    pg_port: int
    pg_data: str

    @classmethod
    def load(cls, path: Path) -> InstanceState | None:
        try:
            data = json.loads(path.read_text())
            return cls(int(data["port"]), int(data["pg_port"]), str(data["pg_data"]))
        except (OSError, ValueError, KeyError, TypeError):
            return None


class Instance:
    """One LiteLLM proxy and its PostgreSQL, with all state in ``directory``.

    Layout: ``env.sh`` (export lines), ``state.json`` (ports, data directory), ``proxy.pid``,
    ``proxy.log``, ``config.yaml``, ``pg/`` (data directory and ``postgres.log``; elsewhere when
    the ``postgres`` user cannot reach ``directory``, see ``state.json``).
    """

    def __init__(self, directory: str | os.PathLike[str], install: Installation | None = None):
        self.directory = Path(directory).absolute()
        self.install = install or Installation.default()

    @property
    def env_file(self) -> Path:
        return self.directory / "env.sh"

    @property
    def log_file(self) -> Path:
        return self.directory / "proxy.log"

    @property
    def _state_file(self) -> Path:
        return self.directory / "state.json"

    @property
    def _pidfile(self) -> PidFile:
        return PidFile(self.directory / "proxy.pid")

    def endpoint(self) -> LiteLLMEndpoint | None:
        """The endpoint ``env.sh`` records, if any (it may not be running)."""
        try:
            return LiteLLMEndpoint.from_env(parse_exports(self.env_file.read_text()))
        except OSError:
            return None

    def running(self) -> bool:
        """Whether the proxy process runs and answers its readiness probe."""
        endpoint = self.endpoint()
        return endpoint is not None and self._pidfile.running() and _ready(endpoint.url)

    def start(
        self,
        *,
        config: Path | None = None,
        timeout: float = START_TIMEOUT,
        exit_with_parent: bool = False,
        host: str = "127.0.0.1",
    ) -> LiteLLMEndpoint:
        """Start PostgreSQL and the proxy (installing first if needed); return the endpoint.

        Reuses an instance that already runs in ``directory``. ``exit_with_parent``: the proxy
        is killed when this process dies (for test sessions). ``host``: the address the proxy
        listens on (the deploy tests' pods reach it on their node's bridge address).
        """
        if self.running():
            endpoint = self.endpoint()
            assert endpoint is not None
            return endpoint
        self.stop(remove=False)  # remnants of a half-dead run
        self.install.install()
        bin_dir = postgres.ensure_installed()
        self.directory.mkdir(parents=True, exist_ok=True)
        started = time.monotonic()
        cluster = self._new_cluster(bin_dir)
        state = InstanceState(free_port(), cluster.port, str(cluster.data_dir))
        self._state_file.write_text(json.dumps(state.__dict__))
        try:
            cluster.start()
            endpoint = self._start_proxy(state, cluster, config, exit_with_parent, host)
            self._wait_ready(endpoint, started + timeout)
        except BaseException:
            self.stop(remove=False)
            raise
        log(
            f"LiteLLM {LITELLM_VERSION} ready at {endpoint.url} "
            f"in {time.monotonic() - started:.0f}s"
        )
        return endpoint

    def _new_cluster(self, bin_dir: Path) -> postgres.Cluster:
        """A fresh copy of the template, where the server's account can reach it."""
        home = self.directory / "pg"
        shutil.rmtree(home, ignore_errors=True)
        if postgres.reachable_by_server(self.directory):
            home.mkdir()
        else:
            home = Path(tempfile.mkdtemp(prefix=PG_OUTSIDE_PREFIX))
        home.chmod(0o755)
        shutil.copytree(self.install.template, home / "data", symlinks=True)
        (home / "data").chmod(0o700)
        postgres.give_to_server(home)
        return postgres.Cluster(bin_dir, home / "data", free_port())

    def _start_proxy(
        self,
        state: InstanceState,
        cluster: postgres.Cluster,
        config: Path | None,
        die_with_parent: bool,
        host: str,
    ) -> LiteLLMEndpoint:
        if config is None:
            config = self.directory / "config.yaml"
            config.write_text(DEFAULT_CONFIG)
        key = SecretStr(f"sk-devenv-{secrets.token_hex(16)}")
        endpoint = LiteLLMEndpoint(f"http://{host}:{state.port}", key, self.directory)
        env = self.install.env()
        env.update(
            DATABASE_URL=cluster.url(DATABASE),
            LITELLM_MASTER_KEY=key.get_secret_value(),
            LITELLM_SALT_KEY=f"sk-salt-{secrets.token_hex(16)}",
        )
        command = [
            str(self.install.venv / "bin" / "litellm"), "--config", str(config),
            "--host", host, "--port", str(state.port),
        ]  # fmt: skip
        with self.log_file.open("ab") as out:
            proc = subprocess.Popen(
                command, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                env=env, cwd=self.directory, start_new_session=True,
                preexec_fn=exit_with_parent if die_with_parent else None,
            )  # fmt: skip
        _CHILDREN[proc.pid] = proc
        self._pidfile.record(proc.pid)
        tmp = self.env_file.with_suffix(".tmp")
        tmp.write_text(endpoint.exports())
        tmp.chmod(0o600)
        tmp.replace(self.env_file)
        return endpoint

    def _wait_ready(self, endpoint: LiteLLMEndpoint, deadline: float) -> None:
        while time.monotonic() < deadline:
            if not self._pidfile.running():
                raise DevEnvError(f"the LiteLLM proxy exited; log tail:\n{_tail(self.log_file)}")
            if _ready(endpoint.url):
                return
            time.sleep(0.5)
        raise DevEnvError(
            f"the LiteLLM proxy was not ready in time; log tail:\n{_tail(self.log_file)}"
        )

    def stop(self, *, remove: bool = True) -> None:
        """Stop the proxy and PostgreSQL; remove ``directory`` (and the data) if ``remove``."""
        recorded = self._pidfile.read()
        stop(self._pidfile)
        if recorded is not None and recorded[0] in _CHILDREN:  # ours: collect its exit status
            with contextlib.suppress(subprocess.TimeoutExpired):
                _CHILDREN[recorded[0]].wait(timeout=10)
        for pid in [p for p, proc in _CHILDREN.items() if proc.poll() is not None]:
            del _CHILDREN[pid]
        state = InstanceState.load(self._state_file)
        if state is not None:
            bin_dir = postgres.find_bin()
            data = Path(state.pg_data)
            if bin_dir is not None:
                postgres.Cluster(bin_dir, data, state.pg_port).stop()
            if data.parent.name.startswith(PG_OUTSIDE_PREFIX):  # made by _new_cluster
                shutil.rmtree(data.parent, ignore_errors=True)
        self._state_file.unlink(missing_ok=True)
        self.env_file.unlink(missing_ok=True)
        if remove:
            shutil.rmtree(self.directory, ignore_errors=True)


# Popen objects of proxies this interpreter started, so their exit status is collected.
_CHILDREN: dict[int, subprocess.Popen[bytes]] = {}


def _ready(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/health/readiness", timeout=3) as response:
            return bool(response.status == 200)
    except (OSError, urllib.error.URLError, ValueError):
        return False


def _tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


# ----------------------------------------------------------------------------------- CLI


def main(argv: Sequence[str] | None = None) -> int:
    """CLI entry point (see the module docstring)."""
    parser = argparse.ArgumentParser(
        prog="python -m devenv.litellm", description=__doc__.split("\n")[0]
    )
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("install", help="install (or check) the cached LiteLLM")
    up = commands.add_parser("up", help="start an instance; print export lines")
    up.add_argument("--dir", required=True, type=Path)
    up.add_argument("--config", type=Path, help="LiteLLM config (default: three dead models)")
    status = commands.add_parser("status", help="exit 0 if the instance answers")
    status.add_argument("--dir", required=True, type=Path)
    down = commands.add_parser("down", help="stop an instance")
    down.add_argument("--dir", required=True, type=Path)
    down.add_argument("--keep", action="store_true", help="keep the directory (logs)")
    args = parser.parse_args(argv)
    try:
        if args.command == "install":
            Installation.default().install()
            log(f"LiteLLM {LITELLM_VERSION} is installed in {Installation.default().root}")
        elif args.command == "up":
            print(Instance(args.dir).start(config=args.config).exports(), end="")
        elif args.command == "status":
            running = Instance(args.dir).running()
            print("running" if running else "not running")
            return 0 if running else 1
        else:
            Instance(args.dir).stop(remove=not args.keep)
    except (DevEnvError, PostgresError) as exc:
        print(f"devenv: error: {exc}\n{HOW_TO_GET_LITELLM}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
