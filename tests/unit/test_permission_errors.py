"""The e2e tests' scan of an operator log for refused Kubernetes calls (operator_harness)."""

from __future__ import annotations

import pytest

from tests.e2e.operator_harness import permission_errors

CASES = [
    pytest.param("starting: litellm=http://127.0.0.1:55403 scope=x", [], id="port-holding-403"),
    pytest.param("lease held by op-a_4031; standing by", [], id="name-holding-403"),
    pytest.param("APIForbiddenError: ('secrets is forbidden',)", None, id="forbidden"),
    pytest.param("Patching failed: 403, message='x'", None, id="bare-403"),
    pytest.param("Not enough permissions to watch for resources", None, id="kopf-permissions"),
    pytest.param("Failed to post an event. Ignoring and continuing.", None, id="kopf-event"),
]


@pytest.mark.parametrize(("line", "expected"), CASES)
def test_a_line_is_a_permission_error_only_when_it_says_so(
    line: str, expected: list[str] | None
) -> None:
    log = "Kubernetes 1.37\n" + line + "\nLiteLLM 1.108.7\n"
    assert permission_errors(log) == ([line] if expected is None else expected)
