"""Which policy a deletion follows: only one that exists and allows the resource's namespace
(pure: :func:`litellm_operator.users.reconciler.governs`)."""

from __future__ import annotations

from typing import Any

import pytest

from litellm_operator.users.reconciler import governs


@pytest.mark.parametrize(
    ("policy", "namespace", "expected"),
    [
        pytest.param({"spec": {"allowedNamespaces": ["team-*"]}}, "team-a", True, id="allowed"),
        pytest.param({"spec": {"allowedNamespaces": ["*"]}}, "anywhere", True, id="star"),
        pytest.param(
            {"spec": {"allowedNamespaces": ["elsewhere"]}}, "team-a", False, id="not-allowed"
        ),
        pytest.param(None, "team-a", False, id="no-policy"),
        pytest.param({"spec": {}}, "team-a", False, id="policy-without-namespaces"),
        pytest.param(
            {"spec": {"allowedNamespaces": ["team-a"], "deleteAdoptedUsers": "yes"}},
            "team-a",
            True,
            id="invalid-policy-still-governs-its-namespaces",
        ),
    ],
)
def test_a_deletion_follows_only_a_policy_that_allows_the_namespace(
    policy: dict[str, Any] | None, namespace: str, expected: bool
) -> None:
    assert governs(policy, namespace) is expected
