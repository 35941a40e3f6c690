"""Single sign-on, without I/O: spec.ssoUserId and who owns what after creation (spec.sso).

LiteLLM's SSO rewrites ``user_email``, ``user_alias`` and (with role mappings or a role claim)
``user_role`` at every sign-in. The policy's ``spec.sso`` says, per field, whether the operator
keeps correcting it or leaves it to the identity provider after creation; ``spec.ssoUserId``
sets ``sso_user_id``, which only ``/user/new`` can write.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from litellm_operator.policies.resolve import PolicyViolation, resolve
from litellm_operator.users.plan import CreateUser, UpdateUser, plan_user
from litellm_operator.users.reconciler import drifted_fields, provider_owned
from tests.unit.test_plan import desired, in_sync_observed
from tests.unit.test_policy import policy, user

ALL_PROVIDER = frozenset({"userRole", "email", "alias"})
SIGNED_IN = {"email": "alice@example.com", "alias": "Alice"}
"""What LiteLLM holds after a sign-in that agrees with what was provisioned."""

SETTING = {
    "user_role": "userRole",
    "user_email": "email",
    "user_alias": "alias",
    "max_budget": "maxBudget",
}
"""The CRD name of each LiteLLM column the cases write."""

OWNERSHIP_CASES = [
    pytest.param(
        frozenset(),
        {},
        {"user_role": "proxy_admin"},
        {"user_role": "internal_user"},
        id="operator-role-promoted-by-sso-is-corrected",
    ),
    pytest.param(
        frozenset(),
        {},
        {"user_role": "internal_user_viewer"},
        {"user_role": "internal_user"},
        id="operator-role-demoted-by-sso-is-corrected",
    ),
    pytest.param(
        frozenset({"userRole"}),
        {},
        {"user_role": "internal_user_viewer"},
        {},
        id="provider-role-from-sso-stays",
    ),
    pytest.param(
        frozenset({"userRole"}),
        {"settings": {"user_role": "proxy_admin"}},
        {},
        {},
        id="provider-role-not-written-when-the-policy-changes",
    ),
    pytest.param(
        frozenset(),
        {},
        {"email": "alice@corp.example"},
        {"user_email": "alice@example.com"},
        id="operator-email-rewritten-by-sso-is-corrected",
    ),
    pytest.param(
        frozenset(), {}, {"email": "Alice@Example.COM"}, {}, id="operator-email-case-only-in-sync"
    ),
    pytest.param(
        frozenset({"email"}),
        {},
        {"email": "alice@corp.example"},
        {},
        id="provider-email-from-sso-stays",
    ),
    pytest.param(
        frozenset(),
        {},
        {"alias": "Alice Liddell"},
        {"user_alias": "Alice"},
        id="operator-alias-rewritten-by-sso-is-corrected",
    ),
    pytest.param(
        frozenset({"alias"}), {}, {"alias": "Alice Liddell"}, {}, id="provider-alias-stays"
    ),
    pytest.param(
        frozenset({"userRole"}),
        {},
        {"alias": "Alice Liddell", "email": "alice@corp.example"},
        {"user_alias": "Alice", "user_email": "alice@example.com"},
        id="provider-owns-only-the-role-others-corrected",
    ),
    pytest.param(
        ALL_PROVIDER,
        {},
        {"user_role": "proxy_admin", "alias": "A.", "email": "a@corp.example", "max_budget": 99.0},
        {"max_budget": 10.0},
        id="provider-owns-all-budget-still-corrected",
    ),
]


@pytest.mark.parametrize(("owned", "wanted", "held", "expected"), OWNERSHIP_CASES)
def test_operator_corrects_only_the_fields_it_owns(
    owned: frozenset[str], wanted: dict[str, Any], held: dict[str, Any], expected: dict[str, Any]
) -> None:
    mine = desired(provider_owned=owned, **SIGNED_IN, **wanted)
    plan = plan_user(mine, in_sync_observed(**{**SIGNED_IN, **held}))
    updates = [a for a in plan.actions if isinstance(a, UpdateUser)]
    assert (updates[0].fields if updates else {}) == expected
    # a resync counts as drift exactly what it would write
    assert set(drifted_fields(plan)) == {SETTING[column] for column in expected}


def test_provider_owned_fields_are_still_set_when_the_user_is_created() -> None:
    (create,) = plan_user(desired(provider_owned=ALL_PROVIDER, **SIGNED_IN), None).actions
    assert isinstance(create, CreateUser)
    assert create.fields["user_role"] == "internal_user"
    assert create.fields["user_email"] == "alice@example.com"
    assert create.fields["user_alias"] == "Alice"


@pytest.mark.parametrize(
    ("sso", "expected"),
    [
        pytest.param(None, frozenset(), id="default-operator-owns-all"),
        pytest.param({}, frozenset(), id="empty-operator-owns-all"),
        pytest.param({"userRole": "Provider"}, frozenset({"userRole"}), id="provider-role"),
        pytest.param(
            {"userRole": "Operator", "email": "Provider", "alias": "Provider"},
            frozenset({"email", "alias"}),
            id="provider-email-and-alias",
        ),
    ],
)
def test_provider_owned_is_read_from_the_policy(
    sso: dict[str, str] | None, expected: frozenset[str]
) -> None:
    the_policy = policy() if sso is None else policy(sso=sso)
    assert provider_owned(the_policy) == expected


def test_an_unknown_owner_is_rejected() -> None:
    with pytest.raises(ValueError, match="Operator"):
        policy(sso={"userRole": "Okta"})


# --- spec.ssoUserId ----------------------------------------------------------------------------


def test_sso_user_id_is_set_when_the_user_is_created() -> None:
    (create,) = plan_user(desired(sso_user_id="00u1abc"), None).actions
    assert isinstance(create, CreateUser)
    assert create.fields["sso_user_id"] == "00u1abc"


def test_no_sso_user_id_is_sent_unless_asked_for() -> None:
    (create,) = plan_user(desired(), None).actions
    assert isinstance(create, CreateUser)
    assert "sso_user_id" not in create.fields


@pytest.mark.parametrize(
    ("wanted", "held", "refused"),
    [
        pytest.param("00u1abc", "00u1abc", False, id="same-in-sync"),
        pytest.param(None, "sub-recorded-by-sso", False, id="unset-leaves-what-sso-recorded"),
        pytest.param(None, None, False, id="unset-and-none"),
        pytest.param("00u1abc", None, True, id="missing-cannot-be-written-by-update"),
        pytest.param("00u1abc", "00u9zzz", True, id="different-cannot-be-written-by-update"),
    ],
)
def test_sso_user_id_of_an_existing_user(
    wanted: str | None, held: str | None, refused: bool
) -> None:
    plan = plan_user(desired(sso_user_id=wanted), replace(in_sync_observed(), sso_user_id=held))
    if refused:
        assert plan.refusal is not None
        assert plan.actions == (plan.refusal,)
        assert plan.refusal.reason == "SsoUserIdMismatch"
        assert "cannot change" in plan.refusal.message
    else:
        assert plan.in_sync


@pytest.mark.parametrize(
    ("overrides", "problems"),
    [
        pytest.param({}, [("spec.ssoUserId", "OverrideForbidden")], id="not-allowed"),
        pytest.param(
            {"allowedFields": ["userId"]},
            [("spec.ssoUserId", "OverrideForbidden")],
            id="userId-is-not-ssoUserId",
        ),
        pytest.param({"allowedFields": ["ssoUserId"]}, [], id="allowed"),
        pytest.param(
            {"allowedFields": ["ssoUserId"], "ssoUserIdPattern": "^00u[a-z0-9]+$"},
            [],
            id="pattern-matches",
        ),
        pytest.param(
            {"allowedFields": ["ssoUserId"], "ssoUserIdPattern": "^[0-9]+$"},
            [("spec.ssoUserId", "UserIdNotAllowed")],
            id="pattern-does-not-match-as-a-whole",
        ),
    ],
)
def test_sso_user_id_is_an_override_the_policy_must_allow(
    overrides: dict[str, Any], problems: list[tuple[str, str]]
) -> None:
    the_policy = policy(overrides=overrides)
    the_user = user(ssoUserId="00u1abc")
    if not problems:
        assert resolve(the_policy, the_user).user_id == "alice"
        return
    with pytest.raises(PolicyViolation) as caught:
        resolve(the_policy, the_user)
    assert [(p.path, p.reason) for p in caught.value.problems] == problems


def test_sso_user_id_pattern_must_compile() -> None:
    with pytest.raises(ValueError, match="not a regular expression"):
        policy(overrides={"allowedFields": ["ssoUserId"], "ssoUserIdPattern": "("})
