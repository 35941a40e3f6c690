"""The pure parts of key acting: which watched Secret events matter, what status.keys says."""

from __future__ import annotations

import hashlib
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pydantic import SecretStr

from litellm_operator.keys.plan import (
    PENDING_ANNOTATION,
    TOKEN_ANNOTATION,
    DesiredKey,
    KeySettings,
    KeysObserved,
    ObservedKey,
    ObservedSecret,
)
from litellm_operator.keys.reconciler import parse_time, secret_drifted, squatter, statuses
from litellm_operator.kube import KeySecret
from litellm_operator.litellm import LiteLLMUserRecord
from litellm_operator.models import UserStatus
from litellm_operator.status import through
from litellm_operator.users.handlers import rotation_requested

VALUE = "sk-" + "a" * 43
TOKEN = hashlib.sha256(VALUE.encode()).hexdigest()
WRITTEN = KeySecret(
    "app-ci", annotations={TOKEN_ANNOTATION: TOKEN}, data={"api_key": SecretStr(VALUE)}
)


@pytest.mark.parametrize(
    ("kind", "secret", "expected"),
    [
        pytest.param("ADDED", WRITTEN, False, id="as-written"),
        pytest.param("MODIFIED", WRITTEN, False, id="modified-as-written"),
        pytest.param("DELETED", WRITTEN, True, id="deleted"),
        pytest.param(
            "MODIFIED",
            replace(WRITTEN, data={"api_key": SecretStr("sk-other")}),
            True,
            id="value-edited",
        ),
        pytest.param("MODIFIED", replace(WRITTEN, data={}), True, id="value-removed"),
        pytest.param(
            "MODIFIED",
            replace(WRITTEN, annotations={TOKEN_ANNOTATION: TOKEN, PENDING_ANNOTATION: "x"}),
            False,
            id="operator-writing-a-new-key",
        ),
        pytest.param(
            "ADDED",
            KeySecret("app-ci", annotations={PENDING_ANNOTATION: "x"}),
            False,
            id="created-pending",
        ),
    ],
)
def test_secret_drifted(kind: str, secret: KeySecret, expected: bool) -> None:
    assert secret_drifted(kind, secret) is expected


def test_a_secret_never_prints_its_data() -> None:
    assert VALUE not in repr(WRITTEN)
    assert VALUE not in str(WRITTEN)


KEY = DesiredKey("ci", "app-ci", "ns/app/ci", KeySettings(), None, timedelta(hours=1))
ISSUED = datetime(2026, 1, 1, tzinfo=UTC)
SECRET = ObservedSecret("app-ci", "ci", value_token="h1", token="h1", issued_at=ISSUED)
CURRENT = ObservedKey("h1", "ns/app/ci")


@pytest.mark.parametrize(
    ("secrets", "litellm", "ready"),
    [
        pytest.param({"app-ci": SECRET}, {"ns/app/ci": CURRENT}, True, id="ready"),
        pytest.param({}, {"ns/app/ci": CURRENT}, False, id="no-secret"),
        pytest.param({"app-ci": SECRET}, {}, False, id="no-key"),
        pytest.param(
            {"app-ci": SECRET},
            {"ns/app/ci": replace(CURRENT, blocked=True)},
            False,
            id="blocked",
        ),
        pytest.param(
            {"app-ci": replace(SECRET, pending_token="h2")},
            {"ns/app/ci": CURRENT},
            False,
            id="pending",
        ),
    ],
)
def test_status_keys(
    secrets: dict[str, ObservedSecret], litellm: dict[str, ObservedKey], ready: bool
) -> None:
    (status,) = statuses([KEY], KeysObserved(secrets, litellm))
    assert status["ready"] is ready
    assert (status["name"], status["secretName"], status["keyAlias"]) == (
        "ci",
        "app-ci",
        "ns/app/ci",
    )
    assert "h1" not in repr(status), "no hash either"
    typed = through(UserStatus, {"keys": [status]})  # the status model accepts it
    assert typed["keys"][0]["ready"] is ready


def test_status_keys_times() -> None:
    expires = ISSUED + timedelta(hours=1)
    secret = replace(SECRET, previous_token="h0", previous_expires_at=expires, rotation="r1")
    (status,) = statuses([KEY], KeysObserved({"app-ci": secret}, {"ns/app/ci": CURRENT}))
    assert (status["issuedAt"], status["previousExpiresAt"], status["rotation"]) == (
        "2026-01-01T00:00:00Z",
        "2026-01-01T01:00:00Z",
        "r1",
    )


def body(annotation: str | None, rotations: list[str | None]) -> dict[str, Any]:
    notes = {} if annotation is None else {"litellm.platform.dev/rotate": annotation}
    keys = [{"name": f"k{i}", "rotation": r} for i, r in enumerate(rotations)]
    return {"metadata": {"annotations": notes}, "status": {"keys": keys}}


@pytest.mark.parametrize(
    ("annotation", "rotations", "expected"),
    [
        pytest.param(None, [None], None, id="no-annotation"),
        pytest.param("1", ["1", "1"], None, id="handled"),
        pytest.param("2", ["1", "2"], "2", id="one-key-behind"),
        pytest.param("1", [None], "1", id="new-annotation"),
        pytest.param("1", [], None, id="no-keys"),
    ],
)
def test_rotation_requested(
    annotation: str | None, rotations: list[str | None], expected: str | None
) -> None:
    assert rotation_requested(body(annotation, rotations)) == expected


MANAGED = {"litellm.platform.dev/managed-by": "litellm-operator"}


@pytest.mark.parametrize(
    ("holder", "revoked"),
    [
        pytest.param(None, False, id="no-user-hand-made"),
        pytest.param(LiteLLMUserRecord(user_id="ops"), False, id="unmanaged-user"),
        pytest.param(
            LiteLLMUserRecord(user_id="ops", metadata={"litellm.platform.dev/managed-by": "x"}),
            False,
            id="another-manager",
        ),
        pytest.param(
            LiteLLMUserRecord(user_id="mallory", metadata=MANAGED), True, id="another-tenant"
        ),
        pytest.param(LiteLLMUserRecord(user_id="bob", metadata=MANAGED), False, id="itself"),
    ],
)
def test_which_alias_holders_are_squatters(holder: LiteLLMUserRecord | None, revoked: bool) -> None:
    assert squatter(holder, "bob") is revoked


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("2026-01-01T00:00:00Z", datetime(2026, 1, 1, tzinfo=UTC), id="utc"),
        pytest.param("2026-01-01T00:00:00", datetime(2026, 1, 1, tzinfo=UTC), id="no-offset"),
        pytest.param("yesterday", None, id="not-a-time"),
        pytest.param(None, None, id="absent"),
    ],
)
def test_issued_at_annotations_are_read_as_aware_times(
    text: str | None, expected: datetime | None
) -> None:
    assert parse_time(text) == expected
