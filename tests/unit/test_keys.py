"""Table tests of the keys planner: spec + policy → desired keys; desired + observed → actions."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from litellm_operator.keys import (
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
)
from litellm_operator.models import KeyPolicy, KeySpec
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
    result = desired_keys("team-a", "alice", keys, user_models, "default", policy)
    if isinstance(expected, Reason):
        assert isinstance(result, KeyRefusal)
        assert result.reason == expected
    else:
        assert result == expected


def test_user_name_too_long_for_a_label() -> None:
    result = desired_keys("team-a", "u" * 64, [spec()], [], "default", KeyPolicy())
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
