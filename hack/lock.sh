#!/usr/bin/env bash
# Re-resolve the lock files from pyproject.toml with pip-tools (kept in its own venv):
#   requirements/operator.lock  what the image installs (the runtime dependencies)
#   requirements/dev.lock       what `make venv` installs (runtime + the test extra)
# Run `make test` afterwards: the lock files say what was tested.
set -euo pipefail
cd "$(dirname "$0")/.."
CACHE_ROOT=${LITELLM_OPERATOR_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/litellm-operator}
tools=$CACHE_ROOT/pip-tools
[[ -x $tools/bin/pip-compile ]] || { python3 -m venv "$tools" && "$tools/bin/pip" install -q pip-tools; }
compile() {
	"$tools/bin/pip-compile" -q --strip-extras --allow-unsafe --no-emit-index-url \
		--no-emit-find-links --upgrade "$@" pyproject.toml
}
compile -o requirements/operator.lock
compile --extra test -o requirements/dev.lock
echo "lock: requirements/operator.lock and requirements/dev.lock re-resolved; now run make test" >&2
