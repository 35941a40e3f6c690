"""The LiteLLM version matrix: the integration tier and the core e2e scenarios on each version.

    python hack/litellm_matrix.py 1.104.0            # one version (make test-litellm)
    python hack/litellm_matrix.py --readme           # every version of VERSIONS, then the README
    python hack/litellm_matrix.py --render           # the README's table from the kept results

Each version is installed by devenv.litellm like the default one (cached per version) and the
tests run against it with ``LITELLM_OPERATOR_LITELLM_VERSION``. Results are kept per version in
``docs/compat/litellm.json``; ``--readme`` rewrites the README's compatibility table from it.
Exits non-zero when a version could not be installed or a test failed.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

from litellm_operator.litellm import versions
from litellm_operator.runtime.config import ALLOW_UNTESTED_LITELLM

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "docs" / "compat" / "litellm.json"
README = ROOT / "README.md"
BEGIN, END = "<!-- litellm-compat:begin -->\n", "<!-- litellm-compat:end -->"
VERSION_ENV = "LITELLM_OPERATOR_LITELLM_VERSION"
VERSIONS = ("1.74.9", "1.85.1", "1.104.0", "1.108.7", "1.110.2")
"""The oldest tried, the two chart defaults, the default, the newest on the index (1.82.7 and
1.82.8, withdrawn as malicious, are never installed)."""
SCENARIOS = (
    "tests/integration",
    "tests/e2e/test_operator.py",  # create, update, policy edit, drift, delete
    "tests/e2e/test_keys.py",  # keys issued, rotated, revoked
)


def install(version: str, env: dict[str, str]) -> str | None:
    """Install ``version``; why not in one line (pip's last ``ERROR:``) when it cannot."""
    done = subprocess.run(
        [sys.executable, "-m", "devenv.litellm", "install"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode == 0:
        return None
    lines = done.stderr.splitlines()
    pip = [line for line in lines if line.startswith("ERROR:")]  # pip's own verdict, last
    ours = [line for line in lines if "error" in line.lower()]
    return (pip[-1:] or ours[:1] or ["install failed"])[0].strip()


def failures(junit: Path) -> tuple[int, list[str]]:
    """(tests run, ids of those that failed or errored) from a pytest junit file."""
    root = ET.parse(junit).getroot()
    cases = list(root.iter("testcase"))
    failed = [
        f"{case.get('classname', '').rsplit('.', 1)[-1]}::{case.get('name')}"
        for case in cases
        if case.find("failure") is not None or case.find("error") is not None
    ]
    skipped = sum(case.find("skipped") is not None for case in cases)
    return len(cases) - skipped, failed


def run(version: str, pytest_args: list[str]) -> dict[str, Any]:
    # The matrix measures what each version does, so the operator's refusal of old ones is off.
    env = {**os.environ, VERSION_ENV: version, ALLOW_UNTESTED_LITELLM: "true"}
    started = time.monotonic()
    problem = install(version, env)
    if problem:
        return {"version": version, "installed": False, "problem": problem}
    with tempfile.TemporaryDirectory() as tmp:
        junit = Path(tmp) / "junit.xml"
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pytest",
                *SCENARIOS,
                "-q",
                "-p",
                "no:cacheprovider",
                f"--junitxml={junit}",
                *pytest_args,
            ],
            env=env,
            cwd=ROOT,
            check=False,
        )
        ran, failed = failures(junit) if junit.exists() else (0, ["pytest did not finish"])
    return {
        "version": version,
        "installed": True,
        "tests": ran,
        "failed": failed,
        "seconds": round(time.monotonic() - started),
    }


def operator_on(version: str) -> str:
    """What the operator does on ``version``, from the one declaration of the minimum."""
    if versions.unsupported(version):
        return f"refused (older than {versions.MINIMUM})"
    return "supported"


def table(results: list[dict[str, Any]]) -> str:
    rows = ["| LiteLLM | operator | result | failed |", "| --- | --- | --- | --- |"]
    for result in results:
        version = result["version"]
        cells = f"| {version} | {operator_on(version)} |"
        if not result["installed"]:
            rows.append(f"{cells} not installable here | {result['problem']} |")
            continue
        passed = result["tests"] - len(result["failed"])
        verdict = f"{passed} of {result['tests']} passed ({result['seconds']} s)"
        failed = ", ".join(result["failed"]) or "none"
        rows.append(f"{cells} {verdict} | {failed} |")
    return "\n".join(rows) + "\n"


def with_table(readme: str, rendered: str) -> str:
    head, rest = readme.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    return head + BEGIN + rendered + END + tail


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("versions", nargs="*", help=f"default: {' '.join(VERSIONS)}")
    parser.add_argument("--readme", action="store_true", help="rewrite the README's table")
    parser.add_argument(
        "--render", action="store_true", help="only rewrite the README's table from the results"
    )
    args, pytest_args = parser.parse_known_args()
    kept = {r["version"]: r for r in json.loads(RESULTS.read_text())} if RESULTS.exists() else {}
    versions_run = [] if args.render else args.versions or VERSIONS
    fresh = [run(version, pytest_args) for version in versions_run]
    kept.update({r["version"]: r for r in fresh})
    ordered = sorted(kept.values(), key=lambda r: tuple(int(p) for p in r["version"].split(".")))
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(ordered, indent=2) + "\n")
    print(table(fresh), end="")
    if args.readme or args.render:
        README.write_text(with_table(README.read_text(), table(ordered)))
    return 0 if all(r["installed"] and not r["failed"] for r in fresh) else 1


if __name__ == "__main__":
    sys.exit(main())
