"""Table tests of the keys planner: spec + policy → desired keys; desired + observed → actions."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pydantic import ValidationError

from litellm_operator.keys.owner import (
    TEAM_OWNER,
    USER_OWNER,
    KeyBounds,
    KeyOwner,
    bounds_of,
    owner_of_secret,
)
from litellm_operator.keys.plan import (
    CompleteKey,
    DeleteSecret,
    DesiredKey,
    IssueKey,
    KeyAction,
    KeyRefusal,
    KeySettings,
    KeysObserved,
    ObservedKey,
    ObservedSecret,
    RefreshSecret,
    RevokeKeys,
    RevokePrevious,
    UnblockKey,
    UpdateKey,
    desired_keys,
    interval,
    plan_keys,
    team_keys_of,
)
from litellm_operator.litellm.models import GenerateKeyRequest
from litellm_operator.models import (
    EffectiveSettings,
    KeyPolicy,
    KeySpec,
    LiteLLMTeam,
    ProvisioningPolicy,
    TeamSettings,
)
from litellm_operator.policies.resolve import BUILTIN
from litellm_operator.reasons import Reason

NOW = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
PREFIX = "team-a/alice/"
KEY = DesiredKey(
    name="ci",
    secret_name="alice-ci",
    key_alias="team-a/alice/ci",
    settings=KeySettings(models=("gpt-4o",), max_budget=5.0),
    rotate_every=None,
    grace_period=timedelta(hours=1),
)
CURRENT = ObservedKey("h1", "team-a/alice/ci", settings=KEY.settings)
PREVIOUS = ObservedKey("h0", "team-a/alice/ci/previous", settings=KEY.settings)
SECRET = ObservedSecret(
    "alice-ci", "ci", value_token="h1", token="h1", issued_at=NOW - timedelta(days=1)
)


def spec(**fields: Any) -> KeySpec:
    return KeySpec.model_validate({"name": "ci", **fields})


ALICE = KeyOwner(USER_OWNER, "team-a", "alice")


def user(**settings: Any) -> KeyBounds:
    """The bounds of a user's effective settings: the built-in ones, with ``settings``."""
    effective: EffectiveSettings = BUILTIN.model_copy(update=settings)
    return bounds_of(effective)


@pytest.mark.parametrize(
    ("keys", "policy", "user_models", "expected"),
    [
        pytest.param([], KeyPolicy(allowed=False), [], (), id="no-keys-any-policy"),
        pytest.param(
            [spec()],
            KeyPolicy(),
            ["gpt-4o", "gpt-4o-mini"],
            (replace(KEY, settings=KeySettings(models=("gpt-4o", "gpt-4o-mini"))),),
            id="defaults-user-models-1h-grace",
        ),
        pytest.param(
            [spec(models=["gpt-4o"], maxBudget=5.0, rotateEvery="7d", gracePeriod="0s")],
            KeyPolicy(),
            ["gpt-4o", "gpt-4o-mini"],
            (replace(KEY, rotate_every=timedelta(days=7), grace_period=timedelta(0)),),
            id="explicit",
        ),
        pytest.param(
            [spec(models=["gpt-4o"])],
            KeyPolicy(max_budget=5.0, rotate_every="1d", grace_period="10m"),
            [],
            (replace(KEY, rotate_every=timedelta(days=1), grace_period=timedelta(minutes=10)),),
            id="policy-defaults-and-ceiling-as-default",
        ),
        pytest.param(
            [spec(secretName="shared")],
            KeyPolicy(),
            [],
            (replace(KEY, secret_name="shared", settings=KeySettings()),),
            id="secret-name-all-models",
        ),
        pytest.param(
            [spec()],
            KeyPolicy(allowed=False),
            [],
            Reason.OVERRIDE_FORBIDDEN,
            id="keys-not-allowed",
        ),
        pytest.param(
            [spec(), spec(name="two")],
            KeyPolicy(max_per_user=1),
            [],
            Reason.OVERRIDE_FORBIDDEN,
            id="too-many",
        ),
        pytest.param(
            [spec(maxBudget=50.0)],
            KeyPolicy(max_budget=10.0),
            [],
            Reason.OVERRIDE_FORBIDDEN,
            id="budget-above-ceiling",
        ),
        pytest.param(
            [spec(models=["gpt-4o", "o1"])],
            KeyPolicy(),
            ["gpt-4o"],
            Reason.MODEL_NOT_ALLOWED,
            id="model-outside-user",
        ),
        pytest.param(
            [spec(secretName="s"), spec(name="two", secretName="s")],
            KeyPolicy(),
            [],
            Reason.INVALID_SPEC,
            id="secret-shared-by-two-keys",
        ),
    ],
)
def test_desired_keys(
    keys: list[KeySpec], policy: KeyPolicy, user_models: list[str], expected: Any
) -> None:
    result = desired_keys(ALICE, keys, user(models=user_models), "default", policy)
    if isinstance(expected, Reason):
        assert isinstance(result, KeyRefusal)
        assert result.reason == expected
    else:
        assert result == expected


@pytest.mark.parametrize(
    ("key", "policy", "settings", "refused"),
    [
        pytest.param(spec(rotateEvery="59m"), KeyPolicy(), {}, True, id="rotate-under-1h-floor"),
        pytest.param(spec(rotateEvery="1h"), KeyPolicy(), {}, False, id="rotate-at-floor"),
        pytest.param(
            spec(rotateEvery="5m"),
            KeyPolicy(min_rotate_every="5m"),
            {},
            False,
            id="rotate-at-lowered-floor",
        ),
        pytest.param(
            spec(), KeyPolicy(rotate_every="30m"), {}, True, id="policy-default-under-floor"
        ),
        pytest.param(spec(gracePeriod="25h"), KeyPolicy(), {}, True, id="grace-over-24h"),
        pytest.param(spec(gracePeriod="24h"), KeyPolicy(), {}, False, id="grace-at-ceiling"),
        pytest.param(
            spec(), KeyPolicy(grace_period="2d"), {}, True, id="policy-default-grace-over-ceiling"
        ),
        pytest.param(
            spec(gracePeriod="2d"),
            KeyPolicy(max_grace_period="7d"),
            {},
            False,
            id="grace-under-raised-ceiling",
        ),
        pytest.param(spec(tpmLimit=1001), KeyPolicy(), {"tpm_limit": 1000}, True, id="tpm-above"),
        pytest.param(spec(tpmLimit=1000), KeyPolicy(), {"tpm_limit": 1000}, False, id="tpm-equal"),
        pytest.param(spec(tpmLimit=10**9), KeyPolicy(), {"tpm_limit": None}, False, id="tpm-free"),
        pytest.param(spec(rpmLimit=11), KeyPolicy(), {"rpm_limit": 10}, True, id="rpm-above"),
        pytest.param(
            spec(maxParallelRequests=3),
            KeyPolicy(),
            {"max_parallel_requests": 2},
            True,
            id="parallel-above",
        ),
        pytest.param(
            spec(budgetDuration="1s"),
            KeyPolicy(),
            {"budget_duration": "30d"},
            True,
            id="period-shorter-than-users",
        ),
        pytest.param(
            spec(budgetDuration="1mo"),
            KeyPolicy(),
            {"budget_duration": "30d"},
            False,
            id="period-as-long-as-users",
        ),
        pytest.param(
            spec(budgetDuration="30d"),
            KeyPolicy(),
            {"budget_duration": None},
            True,
            id="period-where-the-user-never-resets",
        ),
    ],
)
def test_key_floors_and_ceilings(
    key: KeySpec, policy: KeyPolicy, settings: dict[str, Any], refused: bool
) -> None:
    result = desired_keys(ALICE, [key], user(**settings), "default", policy)
    if refused:
        assert isinstance(result, KeyRefusal)
        assert result.reason == Reason.OVERRIDE_FORBIDDEN
    else:
        assert not isinstance(result, KeyRefusal)


@pytest.mark.parametrize(
    "value", ["0s", "59s", "0m30s", "0h0m59s", "0d"], ids=lambda v: f"refused-{v}"
)
def test_rotate_every_under_a_minute_is_invalid(value: str) -> None:
    with pytest.raises(ValidationError, match="at least 1m"):
        spec(rotateEvery=value)
    with pytest.raises(ValidationError, match="at least 1m"):
        KeyPolicy.model_validate({"minRotateEvery": value})


@pytest.mark.parametrize("value", ["1m", "60s", "0h1m", "100s", "1d", "12h30m"])
def test_rotate_every_of_a_minute_or_more_is_valid(value: str) -> None:
    assert spec(rotateEvery=value).rotate_every == value


def test_every_key_is_for_inference_only() -> None:
    result = desired_keys(ALICE, [spec()], user(), "default", KeyPolicy())
    assert not isinstance(result, KeyRefusal)
    (key,) = result
    assert key.settings.allowed_routes == ("llm_api_routes",)
    assert key.settings.wire()["allowed_routes"] == ["llm_api_routes"]


def test_key_settings_round_trip_through_the_wire() -> None:
    settings = KeySettings(models=("a",), max_budget=1.0, budget_duration="1d", tpm_limit=5)
    assert KeySettings.from_wire(settings.wire()) == settings
    assert KeySettings.from_wire({"models": None, "allowed_routes": None}) == KeySettings(
        allowed_routes=()
    )


@pytest.mark.parametrize(
    ("desired", "held", "update"),
    [
        pytest.param({"max_budget": 0.1}, {"max_budget": 0.1 + 1e-12}, {}, id="amount-tolerance"),
        pytest.param({"max_budget": 0.1}, {"max_budget": 0.2}, {"max_budget": 0.1}, id="amount"),
        pytest.param({"models": ("a", "b")}, {"models": ("b", "a")}, {}, id="models-any-order"),
        pytest.param({}, {"models": ("a",)}, {"models": []}, id="all-models-written-as-empty"),
        pytest.param({}, {"tpm_limit": 5}, {"tpm_limit": None}, id="removed-limit-is-null"),
        pytest.param(
            {}, {"max_parallel_requests": 2}, {"max_parallel_requests": None}, id="parallel-null"
        ),
        pytest.param(
            {}, {"allowed_routes": ()}, {"allowed_routes": ["llm_api_routes"]}, id="routes"
        ),
        pytest.param({"budget_duration": "1mo"}, {"budget_duration": "1mo"}, {}, id="in-sync"),
    ],
)
def test_a_key_update_sends_only_what_litellm_holds_differently(
    desired: dict[str, Any], held: dict[str, Any], update: dict[str, Any]
) -> None:
    """The declarations' rules (fields.KEY_COLUMNS): amounts with a tolerance, lists as sets,
    "none" as LiteLLM reads it back, so a key in sync makes no /key/update."""
    wanted, observed = KeySettings(**desired), KeySettings(**held)
    assert wanted.changed(observed) == update
    assert (wanted == observed) is (not update)
    assert KeySettings.from_wire(observed.wire()) == observed


def test_every_key_setting_fits_the_wire_request() -> None:
    """A key column the request model could not carry fails here, not on the proxy."""
    limits = {"tpm_limit": 5, "rpm_limit": 6, "max_parallel_requests": 7}
    settings = KeySettings(models=("a",), max_budget=1.0, budget_duration="1d", **limits)
    request = GenerateKeyRequest.of(**settings.wire())
    assert request.to_wire() == settings.wire()
    with pytest.raises(TypeError, match="not a key setting"):
        KeySettings(max_budgett=1.0)


def test_user_name_too_long_for_a_label() -> None:
    result = desired_keys(
        KeyOwner(USER_OWNER, "team-a", "u" * 64), [spec()], user(), "default", KeyPolicy()
    )
    assert isinstance(result, KeyRefusal)
    assert result.reason == Reason.INVALID_SPEC


def test_interval() -> None:
    assert interval("1h30m") == timedelta(minutes=90)
    assert interval("0s") == timedelta(0)
    assert interval("7d") == timedelta(days=7)


def observed(*keys: ObservedKey, secrets: tuple[ObservedSecret, ...] = (SECRET,)) -> KeysObserved:
    return KeysObserved({s.name: s for s in secrets}, {k.alias: k for k in keys})


PENDING = replace(SECRET, pending_token="h2")
ROTATING = replace(KEY, rotate_every=timedelta(days=7))


@pytest.mark.parametrize(
    ("desired", "state", "options", "expected"),
    [
        pytest.param([KEY], observed(CURRENT), {}, [], id="in-sync"),
        pytest.param([KEY], observed(secrets=()), {}, [IssueKey(KEY, "SecretMissing")], id="new"),
        pytest.param(
            [KEY],
            observed(CURRENT, PREVIOUS, secrets=()),
            {},
            [IssueKey(KEY, "SecretMissing", revoke=("h1", "h0"))],
            id="secret-deleted-revokes-lost-keys",
        ),
        pytest.param(
            [KEY],
            observed(CURRENT, secrets=(replace(SECRET, value_token="hx"),)),
            {},
            [IssueKey(KEY, "SecretEdited", revoke=("h1",))],
            id="secret-edited",
        ),
        pytest.param(
            [KEY],
            observed(CURRENT, secrets=(replace(SECRET, value_token=None),)),
            {},
            [IssueKey(KEY, "SecretEdited", revoke=("h1",))],
            id="api-key-removed",
        ),
        pytest.param(
            [KEY], observed(), {}, [IssueKey(KEY, "KeyMissing")], id="key-deleted-in-litellm"
        ),
        pytest.param(
            [KEY],
            observed(replace(CURRENT, token="hx")),
            {},
            [IssueKey(KEY, "KeyMissing", revoke=("hx",))],
            id="alias-held-by-another-key",
        ),
        pytest.param(
            [KEY], observed(secrets=()), {"suspended": True}, [], id="suspended-issues-nothing"
        ),
        pytest.param(
            [KEY],
            observed(secrets=(PENDING,)),
            {},
            [CompleteKey(KEY)],
            id="pending-first-key",
        ),
        pytest.param(
            [KEY],
            observed(CURRENT, PREVIOUS, secrets=(PENDING,)),
            {},
            [CompleteKey(KEY, keep="h1", drop="h0", previous="h1")],
            id="pending-rotation-keeps-current-drops-older",
        ),
        pytest.param(
            [replace(KEY, grace_period=timedelta(0))],
            observed(CURRENT, secrets=(PENDING,)),
            {},
            [CompleteKey(replace(KEY, grace_period=timedelta(0)), drop="h1")],
            id="pending-rotation-no-grace",
        ),
        pytest.param(
            [KEY],
            observed(replace(CURRENT, token="h2"), PREVIOUS, secrets=(PENDING,)),
            {},
            [CompleteKey(KEY, previous="h0")],
            id="pending-registered-promotion-interrupted",
        ),
        pytest.param(
            [KEY],
            observed(PREVIOUS, secrets=(PENDING,)),
            {},
            [CompleteKey(KEY, previous="h0")],
            id="pending-renamed-not-registered",
        ),
        pytest.param(
            [KEY],
            observed(replace(CURRENT, token="hx"), secrets=(PENDING,)),
            {},
            [CompleteKey(KEY, drop="hx")],
            id="pending-alias-held-by-lost-key",
        ),
        pytest.param(
            [KEY],
            observed(CURRENT),
            {"rotation": "r1"},
            [IssueKey(KEY, "RotationRequested")],
            id="rotate-annotation-new-value",
        ),
        pytest.param(
            [KEY],
            observed(CURRENT, secrets=(replace(SECRET, rotation="r1"),)),
            {"rotation": "r1"},
            [],
            id="rotate-annotation-handled",
        ),
        pytest.param(
            [ROTATING],
            observed(replace(CURRENT), secrets=(replace(SECRET, issued_at=NOW - timedelta(8)),)),
            {},
            [IssueKey(ROTATING, "RotationDue")],
            id="rotation-due",
        ),
        pytest.param(
            [ROTATING],
            observed(CURRENT, secrets=(replace(SECRET, issued_at=NOW - timedelta(8)),)),
            {"suspended": True},
            [],
            id="no-rotation-while-suspended",
        ),
        pytest.param(
            [KEY],
            observed(CURRENT, secrets=(replace(SECRET, issued_at=NOW - timedelta(minutes=59)),)),
            {"rotation": "r1"},
            [],
            id="rotate-annotation-waits-for-the-floor",
        ),
        pytest.param(
            [KEY],
            observed(
                replace(CURRENT, created_at=NOW - timedelta(minutes=5)),
                secrets=(replace(SECRET, issued_at=NOW - timedelta(days=9)),),
            ),
            {"rotation": "r1"},
            [],
            id="rotate-annotation-floor-from-litellm-not-the-edited-secret",
        ),
        pytest.param(
            [KEY],
            observed(
                replace(CURRENT, created_at=NOW - timedelta(hours=2)),
                secrets=(replace(SECRET, issued_at=None),),
            ),
            {"rotation": "r1"},
            [IssueKey(KEY, "RotationRequested")],
            id="rotate-annotation-after-the-floor",
        ),
        pytest.param(
            [KEY],
            observed(replace(CURRENT, blocked=True)),
            {},
            [UnblockKey(KEY, "h1")],
            id="blocked-behind-our-back",
        ),
        pytest.param(
            [KEY],
            observed(replace(CURRENT, blocked=True)),
            {"blocked_by_suspension": frozenset({"h1"})},
            [],
            id="blocked-by-suspension-left-to-resume",
        ),
        pytest.param(
            [KEY],
            observed(replace(CURRENT, blocked=True)),
            {"suspended": True},
            [],
            id="blocked-while-suspended",
        ),
        pytest.param(
            [KEY],
            observed(replace(CURRENT, settings=KeySettings(models=("gpt-4o",), max_budget=9.0))),
            {},
            [UpdateKey(KEY, "h1", {"max_budget": 5.0})],
            id="settings-drifted",
        ),
        pytest.param(
            [KEY],
            observed(CURRENT, secrets=(replace(SECRET, base_url_ok=False),)),
            {},
            [RefreshSecret(KEY)],
            id="base-url-changed",
        ),
        pytest.param(
            [KEY],
            observed(
                CURRENT,
                PREVIOUS,
                secrets=(replace(SECRET, previous_token="h0", previous_expires_at=NOW),),
            ),
            {},
            [RevokePrevious(KEY, "h0")],
            id="grace-over",
        ),
        pytest.param(
            [KEY],
            observed(CURRENT, secrets=(replace(SECRET, previous_token="h0"),)),
            {},
            [RevokePrevious(KEY, None)],
            id="previous-already-gone-clears-record",
        ),
        pytest.param(
            [],
            observed(CURRENT, PREVIOUS),
            {},
            [RevokeKeys("ci", ("h1", "h0")), DeleteSecret("alice-ci")],
            id="key-removed",
        ),
        pytest.param(
            [],
            observed(ObservedKey("hz", "team-a/alice2/ci"), secrets=()),
            {},
            [],
            id="other-users-keys-untouched",
        ),
    ],
)
def test_plan_keys(
    desired: list[DesiredKey],
    state: KeysObserved,
    options: dict[str, Any],
    expected: list[KeyAction],
) -> None:
    plan = plan_keys(desired, state, now=NOW, prefix=PREFIX, **options)
    assert list(plan.actions) == expected


@pytest.mark.parametrize(
    ("secret", "expected"),
    [
        pytest.param(SECRET, "revoke", id="previous-in-litellm-without-record"),
        pytest.param(
            replace(SECRET, previous_token="h0"), "revoke", id="previous-without-expiry-revoked"
        ),
        pytest.param(
            replace(SECRET, previous_token="h0", previous_expires_at=NOW + timedelta(minutes=5)),
            NOW + timedelta(minutes=5),
            id="grace-end",
        ),
    ],
)
def test_next_check(secret: ObservedSecret, expected: datetime | str | None) -> None:
    state = observed(CURRENT, PREVIOUS, secrets=(secret,))
    plan = plan_keys([KEY], state, now=NOW, prefix=PREFIX)
    if expected == "revoke":
        assert plan.actions == (RevokePrevious(KEY, "h0"),)
    else:
        assert plan.actions == ()
        assert plan.next_check == expected


def test_nothing_scheduled() -> None:
    plan = plan_keys([KEY], observed(CURRENT), now=NOW, prefix=PREFIX)
    assert (plan.actions, plan.next_check) == ((), None)


def test_next_check_is_the_rotation() -> None:
    plan = plan_keys([ROTATING], observed(CURRENT), now=NOW, prefix=PREFIX)
    assert plan.next_check == SECRET.issued_at + timedelta(days=7)  # type: ignore[operator]


def test_a_deferred_rotation_request_is_checked_again_at_the_floor() -> None:
    issued = NOW - timedelta(minutes=20)
    state = observed(CURRENT, secrets=(replace(SECRET, issued_at=issued),))
    plan = plan_keys([KEY], state, now=NOW, prefix=PREFIX, rotation="r1")
    assert (plan.actions, plan.next_check) == ((), issued + timedelta(hours=1))


def test_rotation_requests_in_a_row_make_one_key_per_floor() -> None:
    """A key just issued, then a new annotation value every second for three hours: a new key
    when the floor (1h) has passed since the last one, no more."""
    secret, issued = replace(SECRET, issued_at=NOW), []
    for second in range(3 * 3600):
        now = NOW + timedelta(seconds=second)
        state = observed(CURRENT, secrets=(secret,))
        plan = plan_keys([KEY], state, now=now, prefix=PREFIX, rotation=str(second))
        if plan.actions:
            issued.append(second)
            secret = replace(secret, issued_at=now, rotation=str(second))
    assert issued == [3600, 7200]


# --- owners: a LiteLLMUser's keys and a LiteLLMTeam's, one planner ---------------------------

CREW = KeyOwner(TEAM_OWNER, "team-a", "crew", "u-9", "team-a.crew")


@pytest.mark.parametrize(
    ("owner", "prefix", "selector", "identity", "kind"),
    [
        pytest.param(
            KeyOwner(USER_OWNER, "team-a", "alice", "u-1", "alice@example.com"),
            "team-a/alice/",
            "app.kubernetes.io/managed-by=litellm-operator,litellm.platform.dev/user=alice",
            {"user_id": "alice@example.com"},
            "LiteLLMUser",
            id="user",
        ),
        pytest.param(
            CREW,
            "team:team-a/crew/",
            "app.kubernetes.io/managed-by=litellm-operator,litellm.platform.dev/team=crew",
            {"team_id": "team-a.crew"},
            "LiteLLMTeam",
            id="team",
        ),
    ],
)
def test_what_each_owner_gives_its_keys(
    owner: KeyOwner, prefix: str, selector: str, identity: dict[str, str], kind: str
) -> None:
    assert owner.prefix == prefix
    assert owner.selector == selector
    assert owner.identity() == identity
    assert owner.reference()["kind"] == kind
    assert owner.reference()["uid"] == owner.uid
    assert owner.labels("ci")["litellm.platform.dev/key"] == "ci"
    assert owner_of_secret(owner.labels("ci")) == (owner.of, owner.name)


@pytest.mark.parametrize(
    ("user", "team"),
    [
        pytest.param("crew", "crew", id="same-name"),
        pytest.param("team", "x", id="user-named-team"),
    ],
)
def test_no_user_alias_is_a_team_alias(user: str, team: str) -> None:
    """A namespace is a DNS label (no ":"): a team's prefix never starts a user's alias."""
    users = KeyOwner(USER_OWNER, "team-a", user)
    teams = KeyOwner(TEAM_OWNER, "team-a", team)
    assert not (users.prefix + "ci").startswith(teams.prefix)
    assert not (teams.prefix + "ci").startswith(users.prefix)


def test_a_secret_of_no_owner() -> None:
    assert owner_of_secret({"litellm.platform.dev/key": "ci"}) is None


def team_settings(**settings: Any) -> TeamSettings:
    base: dict[str, Any] = {"models": [], "blocked": False, "metadata": {}}
    return TeamSettings.model_validate({**base, **settings})


def test_a_team_s_bounds_have_no_parallel_ceiling() -> None:
    """A team has no max_parallel_requests (LiteLLM ignores it on teams): its keys' are free."""
    bounds = bounds_of(team_settings(models=["gpt-4o"], tpmLimit=100, budgetDuration="1d"))
    assert bounds.models == ("gpt-4o",)
    assert bounds.limits == {"tpm_limit": 100, "rpm_limit": None, "max_parallel_requests": None}
    assert bounds.budget_duration == "1d"


TEAM_POLICY = ProvisioningPolicy.model_validate(
    {
        "metadata": {"name": "default"},
        "spec": {
            "allowedNamespaces": ["*"],
            "identities": [{"namespaces": ["*"], "userIds": ["*"], "emails": ["*"]}],
            "keys": {"maxPerUser": 1, "maxBudget": 5.0},
        },
    }
)


def crew(*keys: dict[str, Any]) -> LiteLLMTeam:
    return LiteLLMTeam.model_validate(
        {
            "metadata": {"name": "crew", "namespace": "team-a", "uid": "u-9"},
            "spec": {"keys": list(keys)},
        }
    )


@pytest.mark.parametrize(
    ("keys", "settings", "expected"),
    [
        pytest.param(
            [{"name": "ci"}],
            {"models": ["gpt-4o", "o1"]},
            (
                replace(
                    KEY,
                    secret_name="crew-ci",
                    key_alias="team:team-a/crew/ci",
                    settings=KeySettings(models=("gpt-4o", "o1"), max_budget=5.0),
                ),
            ),
            id="team-models-and-policy-budget-by-default",
        ),
        pytest.param(
            [{"name": "ci", "models": ["o3"]}],
            {"models": ["gpt-4o"]},
            Reason.MODEL_NOT_ALLOWED,
            id="model-outside-the-team",
        ),
        pytest.param(
            [{"name": "ci", "tpmLimit": 200}],
            {"tpmLimit": 100},
            Reason.OVERRIDE_FORBIDDEN,
            id="limit-above-the-team",
        ),
        pytest.param(
            [{"name": "ci", "maxParallelRequests": 4}],
            {},
            (
                replace(
                    KEY,
                    secret_name="crew-ci",
                    key_alias="team:team-a/crew/ci",
                    settings=KeySettings(max_budget=5.0, max_parallel_requests=4),
                ),
            ),
            id="parallel-unbounded-by-a-team",
        ),
        pytest.param(
            [{"name": "ci", "budgetDuration": "1h"}],
            {"budgetDuration": "1d"},
            Reason.OVERRIDE_FORBIDDEN,
            id="period-shorter-than-the-team",
        ),
        pytest.param(
            [{"name": "ci", "maxBudget": 50.0}],
            {},
            Reason.OVERRIDE_FORBIDDEN,
            id="budget-above-the-policy-keys-ceiling",
        ),
        pytest.param(
            [{"name": "ci"}, {"name": "two"}],
            {},
            Reason.OVERRIDE_FORBIDDEN,
            id="more-than-max-per-user-per-team",
        ),
    ],
)
def test_team_keys_are_bounded_like_user_keys(
    keys: list[dict[str, Any]], settings: dict[str, Any], expected: Any
) -> None:
    result = team_keys_of(crew(*keys), TEAM_POLICY, team_settings(**settings))
    if isinstance(expected, Reason):
        assert isinstance(result, KeyRefusal)
        assert result.reason == expected
        assert "team's" in result.message or "keys." in result.message
    else:
        assert result == expected
