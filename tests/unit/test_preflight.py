"""preflight and `run`'s refusal: the tested kopf range, the patches' checks, one line, exit 4.

The checks run here against the kopf actually installed (the locked one in `make test`, the
newest in `make test-deps-latest`): ``test_the_installed_kopf_passes`` is the internals check.
"""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest
import respx
from kopf._cogs.aiokits import aiotoggles
from kopf._cogs.clients import watching
from kopf._core.reactor import processing
from packaging.requirements import Requirement

from litellm_operator import cli
from litellm_operator.runtime import config, kopf_toggles, kopf_watch, preflight, runner
from litellm_operator.runtime.config import OperatorConfig, load_config
from litellm_operator.runtime.metrics import Metrics

ROOT = Path(__file__).resolve().parents[2]
ENV = {"LITELLM_URL": "http://127.0.0.1:1", "LITELLM_MASTER_KEY": "sk-unit"}


@pytest.fixture
def pristine_kopf(monkeypatch: pytest.MonkeyPatch) -> None:
    """kopf as imported, before either patch (restored after the test)."""
    monkeypatch.setattr(watching, "continuous_watch", kopf_watch._ORIGINAL_CONTINUOUS_WATCH)
    monkeypatch.setattr(processing, "process_resource_event", kopf_watch._ORIGINAL_PROCESS)
    monkeypatch.setattr(aiotoggles, "ToggleSet", kopf_toggles._ORIGINAL_TOGGLE_SET)


@pytest.mark.parametrize(
    ("version", "spec", "inside"),
    [
        pytest.param("1.45.2", ">=1.45.2,<1.46", True, id="the-tested-one"),
        pytest.param("1.45.9", ">=1.45.2,<1.46", True, id="a-later-patch-release"),
        pytest.param("1.46.0", ">=1.45.2,<1.46", False, id="the-next-minor"),
        pytest.param("1.44.6", ">=1.45.2,<1.46", False, id="an-older-minor-without-chunk-size"),
        pytest.param("1.46.0rc1", ">=1.45.2,<1.46", False, id="a-pre-release-of-the-next"),
        pytest.param("not-a-version", ">=1.45.2,<1.46", False, id="unparseable"),
    ],
)
def test_version_problem(version: str, spec: str, inside: bool) -> None:
    problem = preflight.version_problem(version, Requirement(f"kopf{spec}"))
    assert (problem is None) is inside
    if problem is not None:
        assert "\n" not in problem
        assert version in problem
        assert config.ALLOW_UNTESTED_KOPF in problem


def test_the_tested_range_is_the_one_pyproject_declares() -> None:
    declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    kopf = next(Requirement(line) for line in declared if Requirement(line).name == "kopf")
    assert preflight.kopf_requirement().specifier == kopf.specifier
    assert not kopf.specifier.contains("99.0"), "bounded above: its internals are patched"


def test_the_lock_holds_a_kopf_inside_the_range() -> None:
    for lock in ("requirements/operator.lock", "requirements/dev.lock"):
        pinned = next(
            Requirement(line.strip())
            for line in (ROOT / lock).read_text().splitlines()
            if line.startswith("kopf==")
        )
        version = next(iter(pinned.specifier)).version
        assert preflight.version_problem(version, preflight.kopf_requirement()) is None, lock


@pytest.mark.usefixtures("pristine_kopf")
def test_the_installed_kopf_passes() -> None:
    assert preflight.problems() == []
    assert kopf_watch.installed()
    assert aiotoggles.ToggleSet is kopf_toggles.CountingToggleSet


@pytest.mark.usefixtures("pristine_kopf")
def test_a_changed_watch_stream_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(kopf_watch, "install", lambda: False)
    [problem] = preflight.problems()
    assert "watch stream" in problem
    assert preflight.kopf_version() in problem


@pytest.mark.usefixtures("pristine_kopf")
def test_refused_toggles_are_fatal_unless_allowed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(kopf_toggles, "install", lambda: False)
    [problem] = preflight.problems()
    assert config.ALLOW_SLOW_TOGGLES in problem
    assert preflight.problems(allow_slow_toggles=True) == []


@pytest.mark.usefixtures("pristine_kopf")
def test_an_untested_kopf_is_refused_unless_allowed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(preflight, "kopf_version", lambda: "1.46.0")
    [problem] = preflight.problems()
    assert problem.startswith("kopf 1.46.0 is not a version this operator was tested with")
    assert preflight.problems(allow_untested_kopf=True) == []


def test_moved_private_modules_are_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    def import_module(name: str) -> Any:
        raise ModuleNotFoundError("No module named 'kopf._cogs.clients.watching'")

    monkeypatch.setattr("importlib.import_module", import_module)
    [problem] = preflight.problems()
    assert "litellm_operator.runtime.kopf_watch cannot load" in problem
    assert "kopf._cogs.clients.watching" in problem


def test_run_refuses_before_anything_connects(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name, value in ENV.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(preflight, "problems", lambda **_: ["kopf 9.9.9 is not supported"])
    assert cli.main(["run", "--leader-elect"]) == 4
    assert capsys.readouterr().err == "litellm-operator: kopf 9.9.9 is not supported\n"


def test_run_passes_the_settings_that_allow_through(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in {
        **ENV,
        config.ALLOW_UNTESTED_KOPF: "true",
        config.ALLOW_SLOW_TOGGLES: "true",
    }.items():
        monkeypatch.setenv(name, value)
    seen: dict[str, bool] = {}

    def problems(*, allow_untested_kopf: bool, allow_slow_toggles: bool) -> list[str]:
        seen.update(untested=allow_untested_kopf, slow=allow_slow_toggles)
        return ["stop here"]

    monkeypatch.setattr(preflight, "problems", problems)
    assert cli.main(["run"]) == 4
    assert seen == {"untested": True, "slow": True}


@pytest.mark.parametrize(
    "argv",
    [
        pytest.param(["crds", "--output", "{tmp}"], id="crds"),
        pytest.param(
            [
                "explain",
                "--policy",
                str(ROOT / "examples/policy.yaml"),
                "--user",
                str(ROOT / "examples/users"),
            ],
            id="explain",
        ),
        pytest.param(["--version"], id="version"),
    ],
)
def test_other_commands_never_load_the_patches(argv: list[str], tmp_path: Path) -> None:
    argv = [arg.format(tmp=tmp_path) for arg in argv]
    script = (
        "import sys\n"
        "from litellm_operator.cli import main\n"
        f"main({argv!r})\n"
        "loaded = [m for m in sys.modules if m.startswith(("
        "'litellm_operator.runtime.kopf_', 'litellm_operator.runtime.runner'))]\n"
        "assert not loaded, loaded\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT, check=False
    )
    assert done.returncode == 0, done.stderr[-2000:]


@pytest.mark.parametrize(
    ("version", "supported"),
    [
        pytest.param((1, 37), True, id="the-default"),
        pytest.param((1, 31), True, id="the-oldest-tested"),
        pytest.param((1, 30), False, id="admission-policy-ga-but-untested"),
        pytest.param((1, 26), False, id="no-admissionregistration-v1-policies"),
        pytest.param((2, 0), True, id="a-next-major"),
    ],
)
def test_kubernetes_problem(version: tuple[int, int], supported: bool) -> None:
    problem = preflight.kubernetes_problem(version)
    assert (problem is None) is supported
    if problem:
        assert (
            problem
            == f"Kubernetes {version[0]}.{version[1]} is older than the oldest supported, 1.31"
        )


class VersionedKube:
    def __init__(self, answer: tuple[int, int] | Exception) -> None:
        self.answer = answer

    def server_version(self) -> tuple[int, int]:
        if isinstance(self.answer, Exception):
            raise self.answer
        return self.answer


async def test_serve_refuses_an_old_api_server_before_the_campaign() -> None:
    with pytest.raises(preflight.Unsupported, match=r"^Kubernetes 1\.29 is older"):
        await runner.check_kubernetes(VersionedKube((1, 29)))  # type: ignore[arg-type]
    await runner.check_kubernetes(VersionedKube((1, 31)))  # type: ignore[arg-type]


async def test_an_unreadable_version_is_not_checked(caplog: pytest.LogCaptureFixture) -> None:
    await runner.check_kubernetes(VersionedKube(ConnectionError("refused")))  # type: ignore[arg-type]
    assert "could not be read (refused): not checked" in caplog.text


def settings(**env: str) -> OperatorConfig:
    return load_config({**ENV, "LITELLM_URL": "http://litellm.test", **env})


@pytest.mark.parametrize(
    ("answer", "allowed", "refused", "reported"),
    [
        pytest.param({"litellm_version": "1.104.0"}, False, False, "1.104.0", id="supported"),
        pytest.param({"litellm_version": "1.85.1"}, False, True, "1.85.1", id="too-old"),
        pytest.param({"litellm_version": "1.85.1"}, True, False, "1.85.1", id="too-old-allowed"),
        pytest.param({"status": "healthy"}, False, False, None, id="no-version-reported"),
        pytest.param(503, False, False, None, id="unavailable-not-checked"),
        pytest.param(404, False, True, "1.85.1", id="no-details-route-read-from-the-probe"),
    ],
)
async def test_check_litellm(
    answer: dict[str, str] | int, allowed: bool, refused: bool, reported: str | None
) -> None:
    metrics = Metrics()
    operator_config = settings(**({config.ALLOW_UNTESTED_LITELLM: "true"} if allowed else {}))
    with respx.mock(base_url="http://litellm.test", assert_all_called=False) as mock:
        route = mock.get("/health/readiness/details")
        route.respond(answer) if isinstance(answer, int) else route.respond(json=answer)
        mock.get("/health/readiness").respond(json={"litellm_version": "1.85.1"})
        if refused:
            with pytest.raises(preflight.Unsupported, match="older than the oldest supported"):
                await runner.check_litellm(operator_config, metrics)
        else:
            await runner.check_litellm(operator_config, metrics)
    versions = {s.labels["version"] for m in metrics.litellm_version.collect() for s in m.samples}
    assert versions == ({reported} if reported else set())
