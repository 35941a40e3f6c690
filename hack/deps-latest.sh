#!/usr/bin/env bash
# The unit tier, kopf's internals checks among it, on the newest release of every dependency,
# the declared upper bounds (kopf's) ignored: tells early whether the next kopf still works.
# Uses its own venv (.venv-latest); the locked .venv is not touched. Exits with pytest's status.
set -euo pipefail
cd "$(dirname "$0")/.."
venv=.venv-latest
python3 -m venv "$venv"
"$venv/bin/pip" install -q --disable-pip-version-check --upgrade pip packaging
"$venv/bin/pip" install -q --disable-pip-version-check --no-deps -e .
# Every dependency (runtime and test extra) by name alone: the newest, whatever pyproject bounds.
mapfile -t names < <("$venv/bin/python" - <<'PY'
import tomllib
from packaging.requirements import Requirement
project = tomllib.load(open("pyproject.toml", "rb"))["project"]
for line in project["dependencies"] + project["optional-dependencies"]["test"]:
    print(Requirement(line).name)
PY
)
"$venv/bin/pip" install -q --disable-pip-version-check --upgrade --upgrade-strategy eager "${names[@]}"
echo "deps-latest: kopf $("$venv/bin/python" -c 'import importlib.metadata as m; print(m.version("kopf"))')" >&2
"$venv/bin/python" - <<'PY' || true
from litellm_operator.runtime import preflight
found = preflight.problems()
print("deps-latest: preflight:", "; ".join(found) if found else "kopf is supported and both patches install")
PY
exec "$venv/bin/python" -m pytest tests/unit -q -p no:cacheprovider
