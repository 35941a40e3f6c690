"""The effective-settings engine (litellm_operator.policies.resolve), case by case."""

from __future__ import annotations

from typing import Any

import pytest

from litellm_operator.models import LiteLLMUser, ProvisioningPolicy
from litellm_operator.policies.resolve import (
    BUILTIN,
    PolicyViolation,
    derive_user_id,
    email_for,
    normalize_group,
    resolve,
)
from tests.fixtures.policies import ANY_IDENTITY


def policy(name: str = "default", generation: int | None = 3, **spec: Any) -> ProvisioningPolicy:
    return ProvisioningPolicy.model_validate(
        {
            "apiVersion": "litellm.platform.dev/v1alpha1",
            "kind": "ProvisioningPolicy",
            "metadata": {"name": name, "generation": generation},
            "spec": {"allowedNamespaces": ["*"], "identities": ANY_IDENTITY, **spec},
        }
    )


def user(name: str = "alice", namespace: str = "team-a", **spec: Any) -> LiteLLMUser:
    return LiteLLMUser.model_validate(
        {
            "apiVersion": "litellm.platform.dev/v1alpha1",
            "kind": "LiteLLMUser",
            "metadata": {"name": name, "namespace": namespace, "uid": "u-1"},
            "spec": spec,
        }
    )


ROLES = [
    {"group": "platform-admins", "userRole": "proxy_admin", "models": []},
    {"group": "group:default/ai-power-users", "maxBudget": 100, "models": ["gpt-4o"]},
    {"group": "ai-power-users", "maxBudget": 999},
]
DEFAULTS = {"maxBudget": 20, "models": ["mini"], "metadata": {"a": "default", "b": "default"}}


# --- merge: which layer wins -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "groups", "field", "value", "source"),
    [
        pytest.param({}, [], "maxBudget", 10.0, "builtin", id="empty-policy-builtin-budget"),
        pytest.param({}, [], "budgetDuration", "30d", "builtin", id="builtin-duration"),
        pytest.param({}, [], "userRole", "internal_user", "builtin", id="builtin-role"),
        pytest.param({}, [], "models", [], "builtin", id="builtin-all-models"),
        pytest.param(
            {"defaults": DEFAULTS}, [], "maxBudget", 20.0, "default", id="defaults-over-builtin"
        ),
        pytest.param(
            {"defaults": {"maxBudget": None}},
            [],
            "maxBudget",
            None,
            "default",
            id="explicit-null-budget-in-defaults-is-no-cap",
        ),
        pytest.param(
            {"defaults": {"tpmLimit": None}},
            [],
            "tpmLimit",
            None,
            "default",
            id="explicit-null-limit-in-defaults",
        ),
        pytest.param(
            {"defaults": {"models": None}},
            [],
            "models",
            [],
            "builtin",
            id="null-list-in-defaults-falls-back-to-builtin",
        ),
        pytest.param(
            {"defaults": DEFAULTS, "roles": ROLES},
            ["ai-power-users"],
            "maxBudget",
            100.0,
            "role",
            id="first-match-wins",
        ),
        pytest.param(
            {"defaults": DEFAULTS, "roles": ROLES},
            ["ai-power-users", "platform-admins"],
            "userRole",
            "proxy_admin",
            "role",
            id="role-order-not-user-group-order",
        ),
        pytest.param(
            {"defaults": DEFAULTS, "roles": ROLES},
            ["ai-power-users"],
            "userRole",
            "internal_user",
            "builtin",
            id="omitted-role-field-falls-back",
        ),
        pytest.param(
            {"defaults": DEFAULTS, "roles": [{"group": "g", "maxBudget": None}]},
            ["g"],
            "maxBudget",
            20.0,
            "default",
            id="null-role-field-falls-back-to-defaults",
        ),
        pytest.param(
            {"defaults": {"maxBudget": None}, "roles": [{"group": "g", "maxBudget": None}]},
            ["g"],
            "maxBudget",
            None,
            "default",
            id="null-role-field-keeps-no-cap-default",
        ),
        pytest.param(
            {"defaults": DEFAULTS, "roles": ROLES},
            ["platform-admins"],
            "models",
            [],
            "role",
            id="empty-list-replaces",
        ),
        pytest.param(
            {"defaults": DEFAULTS, "roles": ROLES},
            ["ai-power-users"],
            "models",
            ["gpt-4o"],
            "role",
            id="list-replaces-not-appends",
        ),
        pytest.param(
            {
                "defaults": DEFAULTS,
                "roles": [{"group": "g", "metadata": {"b": "role", "c": "role"}}],
            },
            ["g"],
            "metadata",
            {"a": "default", "b": "role", "c": "role"},
            "role",
            id="metadata-merges-role-over-defaults",
        ),
        pytest.param(
            {"defaults": DEFAULTS, "roles": ROLES},
            ["nobody"],
            "maxBudget",
            20.0,
            "default",
            id="no-match-uses-defaults",
        ),
    ],
)
def test_merge(
    spec: dict[str, Any], groups: list[str], field: str, value: Any, source: str
) -> None:
    resolution = resolve(policy(**spec), user(groups=groups))
    assert resolution.effective.model_dump(by_alias=True)[field] == value
    assert resolution.sources[field] == source


def test_empty_policy_gives_builtin_settings() -> None:
    resolution = resolve(policy(), user())
    assert resolution.effective == BUILTIN
    assert set(resolution.sources.values()) == {"builtin"}
    assert resolution.matched_role is None
    assert resolution.notes == []


def test_resolution_records_policy_and_role_as_written() -> None:
    resolution = resolve(
        policy(name="default", generation=7, roles=ROLES), user(groups=["AI-Power-Users"])
    )
    assert resolution.policy_name == "default"
    assert resolution.policy_generation == 7
    assert resolution.matched_role == "group:default/ai-power-users"
    assert set(resolution.sources) == set(resolution.effective.model_dump(by_alias=True))


# --- groups ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("role_group", "user_group", "matches"),
    [
        pytest.param("ai-power-users", "ai-power-users", True, id="bare-names"),
        pytest.param("ai-power-users", "group:ai-power-users", True, id="kind-prefix"),
        pytest.param("ai-power-users", "group:default/ai-power-users", True, id="full-ref"),
        pytest.param("group:default/ai-power-users", "ai-power-users", True, id="full-ref-role"),
        pytest.param("AI-Power-Users", "Group:Default/ai-power-users", True, id="case-insensitive"),
        pytest.param("ai-power-users", "user:ai-power-users", False, id="user-kind-is-not-group"),
        pytest.param("user:bob", "user:bob", False, id="non-group-role-never-matches"),
        pytest.param("ai-power-users", "group:other/ai-power-users", False, id="other-namespace"),
        pytest.param("ai-power-users", "ai-power-users-2", False, id="prefix-is-not-equal"),
    ],
)
def test_group_matching(role_group: str, user_group: str, matches: bool) -> None:
    resolution = resolve(policy(roles=[{"group": role_group}]), user(groups=[user_group]))
    assert (resolution.matched_role == role_group) is matches


@pytest.mark.parametrize(
    ("ref", "canonical"),
    [
        pytest.param("team", "group:default/team", id="bare"),
        pytest.param("group:team", "group:default/team", id="kind"),
        pytest.param("GROUP:Default/Team", "group:default/team", id="upper"),
        pytest.param("ns/team", "group:ns/team", id="namespace-only"),
        pytest.param("user:x", "user:default/x", id="user-kind"),
        pytest.param("  team ", "group:default/team", id="whitespace"),
    ],
)
def test_normalize_group(ref: str, canonical: str) -> None:
    assert normalize_group(ref) == canonical


# --- user id -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("domain", "explicit", "expected"),
    [
        pytest.param(None, None, "alice", id="name"),
        pytest.param("example.com", None, "alice@example.com", id="name-at-domain"),
        pytest.param("example.com", "A.Liddell", "A.Liddell", id="explicit-verbatim"),
        pytest.param(None, "svc:ci", "svc:ci", id="explicit-without-domain"),
    ],
)
def test_user_id(domain: str | None, explicit: str | None, expected: str) -> None:
    spec: dict[str, Any] = {} if explicit is None else {"userId": explicit}
    ids: dict[str, Any] = {"allowedFields": ["userId"]}
    the_policy = policy(userIdDomain=domain, overrides=ids) if domain else policy(overrides=ids)
    the_user = user(**spec)
    assert derive_user_id(the_policy, the_user) == expected
    assert resolve(the_policy, the_user).user_id == expected


# --- roles are granted per namespace ----------------------------------------------------------

GRANTED = [
    {"group": "platform-admins", "namespaces": ["platform"], "userRole": "proxy_admin"},
    {"group": "power", "namespaces": ["team-*", "lab"], "maxBudget": 100},
    {"group": "power", "maxBudget": 50},
    {"group": "everyone", "maxBudget": 20},
]


@pytest.mark.parametrize(
    ("namespace", "groups", "role", "ignored"),
    [
        pytest.param("platform", ["platform-admins"], "platform-admins", (), id="granted-here"),
        pytest.param(
            "team-a", ["platform-admins"], None, ("platform-admins",), id="claimed-elsewhere"
        ),
        pytest.param(
            "team-a",
            ["platform-admins", "everyone"],
            "everyone",
            ("platform-admins",),
            id="falls-to-the-next-granted-role",
        ),
        pytest.param("team-b", ["power"], "power", (), id="glob-grant"),
        pytest.param("lab", ["power"], "power", (), id="second-pattern"),
        pytest.param(
            "other", ["power"], "power", (), id="same-group-ungranted-role-then-unrestricted-one"
        ),
        pytest.param("other", ["nobody"], None, (), id="unknown-group-is-not-reported"),
        pytest.param(
            "platformx",
            ["group:default/Platform-Admins"],
            None,
            ("group:default/Platform-Admins",),
            id="namespace-glob-is-exact",
        ),
    ],
)
def test_roles_are_granted_per_namespace(
    namespace: str, groups: list[str], role: str | None, ignored: tuple[str, ...]
) -> None:
    resolution = resolve(policy(roles=GRANTED), user(namespace=namespace, groups=groups))
    assert resolution.matched_role == role
    assert resolution.ignored_groups == ignored
    noted = [n for n in resolution.notes if "ignored" in n]
    assert bool(noted) == bool(ignored)
    if ignored:
        assert repr(namespace) in noted[0]
        assert ignored[0] in noted[0]


def test_ungranted_role_gives_nothing_of_its_settings() -> None:
    resolution = resolve(
        policy(roles=GRANTED), user(namespace="team-a", groups=["platform-admins"])
    )
    assert resolution.effective.user_role == "internal_user"
    assert resolution.sources["userRole"] == "builtin"


def test_pinned_user_id_stays_whatever_the_domain_says_now() -> None:
    resolution = resolve(policy(userIdDomain="new.example"), user(), "alice@old.example")
    assert resolution.user_id == "alice@old.example"


# --- overrides ---------------------------------------------------------------------------------

OVERRIDES = {
    "allowedFields": ["maxBudget", "tpmLimit", "models", "metadata"],
    "maxBudget": 50,
    "tpmLimit": 1000,
    "allowedModels": ["mini", "embed"],
}


@pytest.mark.parametrize(
    ("overrides", "field", "value", "source", "notes"),
    [
        pytest.param(
            {"maxBudget": 30}, "maxBudget", 30.0, "override", 0, id="allowed-below-ceiling"
        ),
        pytest.param({"maxBudget": 50}, "maxBudget", 50.0, "override", 0, id="at-ceiling"),
        pytest.param({"maxBudget": 75}, "maxBudget", 50.0, "override", 1, id="clamped-budget"),
        pytest.param({"tpmLimit": 5000}, "tpmLimit", 1000, "override", 1, id="clamped-tpm"),
        pytest.param({"models": ["embed"]}, "models", ["embed"], "override", 0, id="models-subset"),
        pytest.param(
            {"maxBudget": None}, "maxBudget", 20.0, "default", 0, id="null-is-no-override"
        ),
        pytest.param(
            {"metadata": {"b": "user"}},
            "metadata",
            {"a": "default", "b": "user"},
            "override",
            0,
            id="metadata-override-merges",
        ),
    ],
)
def test_allowed_override(
    overrides: dict[str, Any], field: str, value: Any, source: str, notes: int
) -> None:
    resolution = resolve(policy(defaults=DEFAULTS, overrides=OVERRIDES), user(overrides=overrides))
    assert resolution.effective.model_dump(by_alias=True)[field] == value
    assert resolution.sources[field] == source
    assert len(resolution.notes) == notes


NARROWING = [
    pytest.param(
        {"allowedFields": ["maxBudget"]},
        {"maxBudget": 500},
        "maxBudget",
        20.0,
        id="no-ceiling-means-the-policy-value-is-the-ceiling",
    ),
    pytest.param(
        {"allowedFields": ["maxBudget"]},
        {"maxBudget": 5},
        "maxBudget",
        5.0,
        id="no-ceiling-still-allows-lowering",
    ),
    pytest.param(
        {"allowedFields": ["userRole"]},
        {"userRole": "internal_user_viewer"},
        "userRole",
        "internal_user_viewer",
        id="role-may-be-lowered",
    ),
    pytest.param(
        {"allowedFields": ["userRole"], "allowedUserRoles": ["proxy_admin_viewer"]},
        {"userRole": "proxy_admin_viewer"},
        "userRole",
        "proxy_admin_viewer",
        id="role-raised-when-listed",
    ),
    pytest.param(
        {"allowedFields": ["budgetDuration"]},
        {"budgetDuration": "1mo"},
        "budgetDuration",
        "1mo",
        id="longer-budget-period",
    ),
    pytest.param(
        {"allowedFields": ["teams"], "allowedTeams": ["ml"]},
        {"teams": ["ml"]},
        "teams",
        ["ml"],
        id="team-in-allow-list",
    ),
]


@pytest.mark.parametrize(("rules", "overrides", "field", "value"), NARROWING)
def test_overrides_without_explicit_bounds_only_narrow(
    rules: dict[str, Any], overrides: dict[str, Any], field: str, value: Any
) -> None:
    resolution = resolve(policy(defaults=DEFAULTS, overrides=rules), user(overrides=overrides))
    assert resolution.effective.model_dump(by_alias=True)[field] == value


def test_clamp_note_names_field_and_ceiling() -> None:
    resolution = resolve(policy(overrides=OVERRIDES), user(overrides={"maxBudget": 75}))
    assert resolution.notes == [
        "spec.overrides.maxBudget: 75 exceeds the policy ceiling 50; clamped to 50"
    ]


@pytest.mark.parametrize(
    ("spec", "the_user", "problems"),
    [
        pytest.param(
            {},
            user(overrides={"maxBudget": 1}),
            [("spec.overrides.maxBudget", "OverrideForbidden")],
            id="overrides-forbidden-by-default",
        ),
        pytest.param(
            {"overrides": OVERRIDES},
            user(overrides={"userRole": "proxy_admin", "teams": ["x"]}),
            [
                ("spec.overrides.teams", "OverrideForbidden"),
                ("spec.overrides.userRole", "OverrideForbidden"),
            ],
            id="all-forbidden-fields-reported",
        ),
        pytest.param(
            {"overrides": OVERRIDES},
            user(overrides={"models": ["mini", "gpt-4o"]}),
            [("spec.overrides.models", "ModelNotAllowed")],
            id="model-outside-allow-list",
        ),
        pytest.param(
            {"overrides": OVERRIDES},
            user(overrides={"models": []}),
            [("spec.overrides.models", "ModelNotAllowed")],
            id="all-models-outside-allow-list",
        ),
        pytest.param(
            {"defaults": DEFAULTS, "overrides": {"allowedFields": ["models"]}},
            user(overrides={"models": ["gpt-4o"]}),
            [("spec.overrides.models", "ModelNotAllowed")],
            id="no-allow-list-bounds-to-policy-models",
        ),
        pytest.param(
            {"defaults": DEFAULTS, "overrides": {"allowedFields": ["teams"]}},
            user(overrides={"teams": ["admins"]}),
            [("spec.overrides.teams", "TeamNotAllowed")],
            id="no-team-allow-list-bounds-to-policy-teams",
        ),
        pytest.param(
            {"overrides": {"allowedFields": ["teams"], "allowedTeams": ["ml"]}},
            user(overrides={"teams": ["ml", "finance"]}),
            [("spec.overrides.teams", "TeamNotAllowed")],
            id="team-outside-allow-list",
        ),
        pytest.param(
            {"overrides": {"allowedFields": ["userRole"]}},
            user(overrides={"userRole": "proxy_admin"}),
            [("spec.overrides.userRole", "RoleNotAllowed")],
            id="role-escalation-without-allow-list",
        ),
        pytest.param(
            {"overrides": {"allowedFields": ["userRole"], "allowedUserRoles": ["internal_user"]}},
            user(overrides={"userRole": "proxy_admin_viewer"}),
            [("spec.overrides.userRole", "RoleNotAllowed")],
            id="role-outside-allow-list",
        ),
        pytest.param(
            {
                "defaults": {"budgetDuration": "30d"},
                "overrides": {"allowedFields": ["budgetDuration"]},
            },
            user(overrides={"budgetDuration": "1h"}),
            [("spec.overrides.budgetDuration", "OverrideForbidden")],
            id="shorter-budget-period-resets-more-often",
        ),
        pytest.param(
            {
                "defaults": {"budgetDuration": None},
                "overrides": {"allowedFields": ["budgetDuration"]},
            },
            user(overrides={"budgetDuration": "1mo"}),
            [("spec.overrides.budgetDuration", "OverrideForbidden")],
            id="no-reset-cannot-gain-one",
        ),
        pytest.param(
            {"allowedNamespaces": ["team-b", "prod-*"]},
            user(namespace="team-a"),
            [("metadata.namespace", "NamespaceNotAllowed")],
            id="namespace-not-allowed",
        ),
        pytest.param(
            {},
            user(policyRef="strict"),
            [("spec.policyRef", "PolicyMismatch")],
            id="wrong-policy",
        ),
        pytest.param(
            {"allowedNamespaces": ["other"]},
            user(overrides={"maxBudget": 1}),
            [
                ("metadata.namespace", "NamespaceNotAllowed"),
                ("spec.overrides.maxBudget", "OverrideForbidden"),
            ],
            id="every-problem-collected",
        ),
        pytest.param(
            {},
            user(userId="ops-root"),
            [("spec.userId", "OverrideForbidden")],
            id="explicit-user-id-is-an-override",
        ),
        pytest.param(
            {"overrides": {"allowedFields": ["userId"], "userIdPattern": "^svc-[a-z]+$"}},
            user(userId="ops-root"),
            [("spec.userId", "UserIdNotAllowed")],
            id="user-id-outside-the-pattern",
        ),
        pytest.param(
            {"overrides": {"allowedFields": ["userId"], "userIdPattern": "svc-[a-z]+"}},
            user(userId="svc-ci\u00e9x"),
            [("spec.userId", "UserIdNotAllowed")],
            id="pattern-matches-the-whole-id",
        ),
        pytest.param(
            {"overrides": {"allowedFields": ["userId"]}},
            user(userId="default_user_id"),
            [("spec.userId", "UserIdNotAllowed")],
            id="litellm-admin-never-even-when-ids-are-allowed",
        ),
        pytest.param(
            {"overrides": {"allowedFields": ["userId"], "userIdPattern": ".*"}},
            user(userId="litellm_internal_jobs"),
            [("spec.userId", "UserIdNotAllowed")],
            id="litellm-internal-identity-never",
        ),
        pytest.param(
            {},
            user(name="system"),
            [("spec.userId", "UserIdNotAllowed")],
            id="derived-id-reserved-too",
        ),
    ],
)
def test_violations(
    spec: dict[str, Any], the_user: LiteLLMUser, problems: list[tuple[str, str]]
) -> None:
    with pytest.raises(PolicyViolation) as caught:
        resolve(policy(**spec), the_user)
    found = sorted((p.path, p.reason) for p in caught.value.problems)
    assert found == sorted(problems)
    assert all(p.message for p in caught.value.problems)


@pytest.mark.parametrize(
    ("spec", "the_user"),
    [
        pytest.param(
            {"defaults": {"models": []}, "overrides": {"allowedFields": ["models"]}},
            user(overrides={"models": ["anything"]}),
            id="no-allow-list-and-all-models-allows-any",
        ),
        pytest.param(
            {"allowedNamespaces": ["team-*"]}, user(namespace="team-a"), id="namespace-glob"
        ),
        pytest.param({"allowedNamespaces": ["*"]}, user(namespace="x"), id="star-allows-all"),
        pytest.param(
            {"overrides": {"allowedFields": ["userId"], "userIdPattern": "^svc-[a-z]+$"}},
            user(userId="svc-ci"),
            id="user-id-matching-the-pattern",
        ),
    ],
)
def test_accepted(spec: dict[str, Any], the_user: LiteLLMUser) -> None:
    resolve(policy(**spec), the_user)


@pytest.mark.parametrize(
    ("spec", "user_id", "expected"),
    [
        pytest.param({"email": "Ann@X.io"}, "ann", "ann@x.io", id="spec-email-lower-cased"),
        pytest.param({}, "Ben@Example.com", "ben@example.com", id="e-mail-shaped-id"),
        pytest.param({}, "svc-ci", None, id="id-that-is-no-e-mail"),
        pytest.param({"email": "c@x.io"}, "other@y.io", "c@x.io", id="spec-email-wins"),
    ],
)
def test_every_person_gets_an_email(
    spec: dict[str, Any], user_id: str, expected: str | None
) -> None:
    assert email_for(user(**spec), user_id) == expected


# --- identities: granted per namespace, like roles ---------------------------------------------

TEAM_A_GRANT = [
    {"namespaces": ["team-a"], "emails": ["*@team-a.example"], "userIds": ["svc-a-*"]},
    {"namespaces": ["platform"], "emails": ["*@example.com"], "userIds": ["*"]},
]
IDS_ALLOWED = {"allowedFields": ["userId", "ssoUserId"]}


@pytest.mark.parametrize(
    ("domain", "the_user", "problems"),
    [
        pytest.param(None, user(name="svc-a-ci"), [], id="plain-id-matched-against-user-ids"),
        pytest.param(
            "team-a.example", user(name="bob"), [], id="derived-e-mail-id-matched-against-emails"
        ),
        pytest.param(
            "example.com",
            user(name="boss"),
            [("metadata.name", "IdentityNotAllowed")],
            id="derived-id-of-someone-else",
        ),
        pytest.param(
            None,
            user(name="bob", email="boss@example.com"),
            [("metadata.name", "IdentityNotAllowed"), ("spec.email", "IdentityNotAllowed")],
            id="email-of-someone-else",
        ),
        pytest.param(
            None,
            user(name="svc-a-ci", email="Bob@TEAM-A.example"),
            [],
            id="globs-are-case-insensitive",
        ),
        pytest.param(
            None,
            user(userId="boss@example.com"),
            [("spec.userId", "IdentityNotAllowed")],
            id="explicit-e-mail-id-matched-against-emails",
        ),
        pytest.param(
            None,
            user(userId="svc-a-x", ssoUserId="boss-sub"),
            [("spec.ssoUserId", "IdentityNotAllowed")],
            id="sso-user-id-matched-against-user-ids",
        ),
        pytest.param(
            None,
            user(name="svc-a-x", namespace="team-b"),
            [("metadata.name", "IdentityNotAllowed")],
            id="no-grant-for-the-namespace",
        ),
        pytest.param(
            None,
            user(userId="anyone", email="boss@example.com", namespace="platform"),
            [],
            id="another-namespace-s-grant",
        ),
    ],
)
def test_identities_are_granted_per_namespace(
    domain: str | None, the_user: LiteLLMUser, problems: list[tuple[str, str]]
) -> None:
    the_policy = policy(userIdDomain=domain, identities=TEAM_A_GRANT, overrides=IDS_ALLOWED)
    if not problems:
        resolve(the_policy, the_user)
        return
    with pytest.raises(PolicyViolation) as caught:
        resolve(the_policy, the_user)
    assert sorted((p.path, p.reason) for p in caught.value.problems) == sorted(problems)


def test_a_pinned_id_is_judged_too() -> None:
    the_policy = policy(identities=TEAM_A_GRANT)
    with pytest.raises(PolicyViolation) as caught:
        resolve(the_policy, user(name="svc-a-ci"), pinned_user_id="boss@example.com")
    assert [p.reason for p in caught.value.problems] == ["IdentityNotAllowed"]
