"""Reconciler error paths with LiteLLM mocked (respx): how failures become conditions.

What LiteLLM itself does is proven in tests/integration and tests/e2e against the real proxy;
these cases force the failures that are hard to produce there.
"""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator, Sequence
from typing import Any

import httpx
import pytest
import respx

from litellm_operator.fields import MANAGED_BY, MANAGER
from litellm_operator.litellm import LiteLLMClient, Unavailable
from litellm_operator.models import API_VERSION
from litellm_operator.status import Failed, Synced
from litellm_operator.users.indices import Claim
from litellm_operator.users.plan import (
    OWNER_NAME,
    OWNER_NAMESPACE,
    OWNER_UID,
    POLICY_GENERATION,
    POLICY_NAME,
)
from litellm_operator.users.reconciler import Reconciler
from tests.fixtures.policies import ANY_IDENTITY

BASE = "http://litellm.test"
MASTER = "sk-master-0123456789abcdef"
POLICY: dict[str, Any] = {
    "apiVersion": API_VERSION,
    "kind": "ProvisioningPolicy",
    "metadata": {"name": "default", "generation": 1},
    "spec": {
        "allowedNamespaces": ["*"],
        "identities": ANY_IDENTITY,
        "adoptExistingUsers": True,
        "overrides": {"allowedFields": ["userId"]},
        "defaults": {"maxBudget": 10, "teams": ["t1", "t2"]},
    },
}


OURS = {
    MANAGED_BY: MANAGER,
    OWNER_NAMESPACE: "ns",
    OWNER_NAME: "alice",
    OWNER_UID: "uid-1",
    POLICY_NAME: "default",
    POLICY_GENERATION: "1",
}
"""The markers of the LiteLLMUser ``user()`` under ``POLICY``."""

UPDATED = httpx.Response(200, json={"data": {"user_id": "alice"}})


def user(**spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": API_VERSION,
        "kind": "LiteLLMUser",
        "metadata": {
            "name": "alice",
            "namespace": "ns",
            "uid": "uid-1",
            "generation": 1,
            "creationTimestamp": "2026-01-02T00:00:00Z",
        },
        "spec": spec,
    }


def error(status: int, message: str) -> httpx.Response:
    return httpx.Response(status, json={"error": {"message": message, "code": str(status)}})


def user_info(**fields: Any) -> httpx.Response:
    record = {"user_id": "alice", "max_budget": 10.0, "budget_duration": "30d", **fields}
    return httpx.Response(200, json={"user_id": "alice", "user_info": record, "keys": []})


@pytest.fixture
async def reconciler() -> AsyncIterator[Reconciler]:
    async with LiteLLMClient(BASE, MASTER, backoff_base=0.001, max_retries=1) as client:
        yield Reconciler(client)


@respx.mock
async def test_outage_is_transient_and_says_so(reconciler: Reconciler) -> None:
    respx.get(f"{BASE}/user/info").mock(side_effect=httpx.ConnectError("refused"))
    result = await reconciler.reconcile(user(), POLICY)
    assert isinstance(result.outcome, Failed)
    assert result.outcome.reason == "LiteLLMUnavailable"
    assert result.outcome.transient


@respx.mock
async def test_rate_limit_passes_retry_after_on(reconciler: Reconciler) -> None:
    respx.get(f"{BASE}/user/info").mock(
        return_value=httpx.Response(429, json={}, headers={"Retry-After": "120"})
    )
    result = await reconciler.reconcile(user(), POLICY)
    assert isinstance(result.outcome, Failed)
    assert result.outcome.transient
    assert result.retry_after == 120


@respx.mock
async def test_rejection_is_permanent_and_redacted(reconciler: Reconciler) -> None:
    respx.get(f"{BASE}/user/info").mock(return_value=error(404, "not found"))
    respx.post(f"{BASE}/user/new").mock(
        return_value=error(400, f"bad budget for key sk-secret123456789 (Bearer {MASTER})")
    )
    result = await reconciler.reconcile(user(), POLICY)
    assert isinstance(result.outcome, Failed)
    assert result.outcome.reason == "Rejected"
    assert not result.outcome.transient
    assert "sk-secret123456789" not in result.outcome.message
    assert MASTER not in result.outcome.message


async def test_a_proxy_older_than_supported_gets_no_write_and_a_reason_naming_it() -> None:
    """An operator whose LiteLLM was replaced by an older release (say, a rollback while it ran)
    reads, then writes nothing: the user is Stalled until a resync finds a supported release."""
    with respx.mock(base_url=BASE) as mock:
        mock.get("/health/readiness/details").respond(json={"litellm_version": "1.85.1"})
        mock.get("/user/info").mock(return_value=error(404, "not found"))
        async with LiteLLMClient(BASE, MASTER, max_retries=0, watch_version=True) as client:
            result = await Reconciler(client).reconcile(user(), POLICY)
        assert not [call for call in mock.calls if call.request.method != "GET"]
    assert isinstance(result.outcome, Failed)
    assert result.outcome.reason == "LiteLLMVersionUnsupported"
    assert not result.outcome.transient
    assert "LiteLLM 1.85.1 is older than the oldest supported, 1.104.0" in result.outcome.message


@respx.mock
async def test_email_of_another_user_is_refused_with_a_clear_message(
    reconciler: Reconciler,
) -> None:
    respx.get(f"{BASE}/user/info").mock(return_value=error(404, "not found"))
    respx.post(f"{BASE}/user/new").mock(return_value=error(409, "email already exists"))
    result = await reconciler.reconcile(user(email="A@x.io"), POLICY)
    assert isinstance(result.outcome, Failed)
    assert (result.outcome.reason, result.outcome.transient) == ("EmailInUse", False)
    assert "a@x.io" in result.outcome.message


@respx.mock
async def test_changing_the_email_to_another_users_changes_nothing(
    reconciler: Reconciler,
) -> None:
    """LiteLLM's /user/update does not check e-mails: the operator looks the owner up first."""
    respx.get(f"{BASE}/user/info").mock(
        return_value=user_info(
            user_email="old@x.io", user_role="internal_user", metadata=OURS, teams=["t1", "t2"]
        )
    )
    lookup = respx.get(f"{BASE}/user/list").mock(
        return_value=httpx.Response(
            200,
            json={
                "users": [
                    {"user_id": "mallory", "user_email": "B@x.io"},
                    {"user_id": "x", "user_email": "bb@x.io"},
                ],
                "total_pages": 1,
            },
        )
    )
    update = respx.post(f"{BASE}/user/update")
    result = await reconciler.reconcile(user(email="b@x.io"), POLICY)
    assert lookup.calls.last.request.url.params["user_email"] == "b@x.io"
    assert not update.called
    assert isinstance(result.outcome, Failed)
    assert result.outcome.reason == "EmailInUse"
    assert "mallory" not in result.outcome.message


@respx.mock
async def test_email_differing_only_in_case_is_not_drift(reconciler: Reconciler) -> None:
    respx.get(f"{BASE}/user/info").mock(
        return_value=user_info(
            user_email="Ben@X.io", user_role="internal_user", metadata=OURS, teams=["t1", "t2"]
        )
    )
    update = respx.post(f"{BASE}/user/update")
    result = await reconciler.reconcile(user(email="ben@x.io"), POLICY)
    assert not update.called
    assert isinstance(result.outcome, Synced)


@respx.mock
async def test_user_id_and_teams_are_recorded_before_the_create(reconciler: Reconciler) -> None:
    calls: list[str] = []
    respx.get(f"{BASE}/user/info").mock(return_value=error(404, "not found"))

    def created(request: httpx.Request) -> httpx.Response:
        calls.append("create")
        return httpx.Response(200, json={"user_id": "alice"})

    respx.post(f"{BASE}/user/new").mock(side_effect=created)
    respx.post(f"{BASE}/team/member_add").mock(return_value=httpx.Response(200, json={}))

    async def record(user_id: str, teams: Sequence[str], creating: bool) -> None:
        calls.append(f"record {user_id} {','.join(teams)} creating={creating}")

    await reconciler.reconcile(user(userId="alice"), POLICY, record_progress=record)
    assert calls[:2] == ["record alice t1,t2 creating=True", "create"]


@respx.mock
async def test_teams_about_to_be_joined_are_recorded_first(reconciler: Reconciler) -> None:
    """A lost /team/member_add answer or a crash cannot lose the membership the operator made."""
    calls: list[str] = []
    respx.get(f"{BASE}/user/info").mock(
        return_value=user_info(user_role="internal_user", metadata=OURS, teams=["t1"])
    )

    def added(request: httpx.Request) -> httpx.Response:
        calls.append("member_add")
        return httpx.Response(200, json={})

    respx.post(f"{BASE}/team/member_add").mock(side_effect=added)

    async def record(user_id: str, teams: Sequence[str], creating: bool) -> None:
        calls.append(f"record {','.join(teams)} creating={creating}")

    body = user(userId="alice")
    body["status"] = {"userId": "alice", "managedTeams": ["t1"]}
    await reconciler.reconcile(body, POLICY, record_progress=record)
    assert calls == ["record t1,t2 creating=False", "member_add"]


@pytest.mark.parametrize(
    ("lost", "managed"),
    [
        pytest.param(httpx.ConnectError("gone"), ["t1"], id="never-sent"),
        pytest.param(httpx.ReadTimeout("answer lost"), ["t1", "t2"], id="answer-lost"),
    ],
)
@respx.mock
async def test_team_progress_survives_a_failure(
    reconciler: Reconciler, lost: Exception, managed: list[str]
) -> None:
    """The failure's status keeps the teams joined, and the team whose /team/member_add may have
    added the member (its answer lost, and LiteLLM unreadable since): the recorded claim stands."""
    respx.get(f"{BASE}/user/info").mock(return_value=user_info(metadata={}, teams=[]))
    respx.get(f"{BASE}/team/info").mock(side_effect=httpx.ReadTimeout("still slow"))
    respx.post(f"{BASE}/user/update").mock(return_value=UPDATED)
    team_add = respx.post(f"{BASE}/team/member_add")
    team_add.side_effect = [httpx.Response(200, json={})] + [lost] * 5
    body = user(adopt=True)
    result = await reconciler.reconcile(body, POLICY)
    assert isinstance(result.outcome, Failed)
    assert result.outcome.transient
    assert sorted(result.outcome.managed_teams or ()) == managed


@respx.mock
async def test_a_membership_whose_answer_was_lost_stays_managed_once_synced(
    reconciler: Reconciler,
) -> None:
    """The retry after a lost answer finds the member in LiteLLM: still the operator's."""
    respx.get(f"{BASE}/user/info").mock(
        return_value=user_info(user_role="internal_user", metadata=OURS, teams=["t1", "t2"])
    )
    body = user(userId="alice")
    body["status"] = {"userId": "alice", "managedTeams": ["t1", "t2"]}
    result = await reconciler.reconcile(body, POLICY)
    assert isinstance(result.outcome, Synced)
    assert sorted(result.outcome.managed_teams) == ["t1", "t2"]


@respx.mock
async def test_a_membership_someone_else_made_is_not_claimed(reconciler: Reconciler) -> None:
    """/team/member_add answering "already a member" for a team the operator never claimed."""
    respx.get(f"{BASE}/user/info").mock(return_value=user_info(metadata={}, teams=[]))
    respx.post(f"{BASE}/user/update").mock(return_value=UPDATED)
    respx.post(f"{BASE}/team/member_add").mock(
        side_effect=[
            error(400, "User alice already in team t1"),
            httpx.Response(200, json={}),
        ]
    )
    result = await reconciler.reconcile(user(adopt=True), POLICY)
    assert isinstance(result.outcome, Synced)
    assert list(result.outcome.managed_teams) == ["t2"]


@respx.mock
async def test_missing_team_does_not_stop_the_rest(reconciler: Reconciler) -> None:
    respx.get(f"{BASE}/user/info").mock(return_value=user_info(metadata={}, teams=[]))
    update = respx.post(f"{BASE}/user/update").mock(return_value=UPDATED)
    respx.post(f"{BASE}/team/member_add").mock(
        side_effect=[error(400, "Team id=t1 does not exist in db"), httpx.Response(200, json={})]
    )
    result = await reconciler.reconcile(user(adopt=True), POLICY)
    assert isinstance(result.outcome, Synced)
    assert list(result.outcome.missing_teams) == ["t1"]
    assert list(result.outcome.managed_teams) == ["t2"]
    assert update.called


async def test_missing_policy_makes_no_call(reconciler: Reconciler) -> None:
    with respx.mock(assert_all_called=False) as mock:
        route = mock.route()
        result = await reconciler.reconcile(user(), None)
        assert not route.called
    assert isinstance(result.outcome, Failed)
    assert result.outcome.reason == "PolicyNotFound"


@respx.mock
async def test_older_claim_wins_an_absent_user_without_any_write(reconciler: Reconciler) -> None:
    older = Claim("2026-01-01T00:00:00Z", "other", "first", "uid-0")
    respx.get(f"{BASE}/user/info").mock(return_value=error(404, "not found"))
    create = respx.post(f"{BASE}/user/new")
    result = await reconciler.reconcile(user(userId="alice"), POLICY, lambda _id: [older])
    assert not create.called
    assert isinstance(result.outcome, Failed)
    assert result.outcome.reason == "Conflict"
    assert "other" not in result.outcome.message.replace("another", "")
    assert "first" not in result.outcome.message


@respx.mock
async def test_older_claim_in_the_same_namespace_is_named(reconciler: Reconciler) -> None:
    older = Claim("2026-01-01T00:00:00Z", "ns", "first", "uid-0")
    respx.get(f"{BASE}/user/info").mock(return_value=error(404, "not found"))
    result = await reconciler.reconcile(user(userId="alice"), POLICY, lambda _id: [older])
    assert isinstance(result.outcome, Failed)
    assert "ns/first" in result.outcome.message


@respx.mock
async def test_the_winner_stays_the_winner_whatever_older_claims_say(
    reconciler: Reconciler,
) -> None:
    """A user whose markers name this resource is its own, even if an older resource claims
    the id now (as after a race that LiteLLM's last-write-wins /user/new decided)."""
    older = Claim("2026-01-01T00:00:00Z", "other", "first", "uid-0")
    respx.get(f"{BASE}/user/info").mock(
        return_value=user_info(user_role="internal_user", metadata=OURS, teams=["t1", "t2"])
    )
    result = await reconciler.reconcile(user(userId="alice"), POLICY, lambda _id: [older])
    assert isinstance(result.outcome, Synced)


@respx.mock
async def test_a_create_that_another_writer_overwrote_is_a_conflict(
    reconciler: Reconciler,
) -> None:
    foreign = {**OURS, OWNER_UID: "uid-9", OWNER_NAME: "bob"}
    respx.get(f"{BASE}/user/info").mock(
        side_effect=[error(404, "not found"), user_info(metadata=foreign)]
    )
    respx.post(f"{BASE}/user/new").mock(return_value=httpx.Response(200, json={"user_id": "a"}))
    respx.post(f"{BASE}/team/member_add").mock(return_value=httpx.Response(200, json={}))
    result = await reconciler.reconcile(user(userId="alice"), POLICY)
    assert isinstance(result.outcome, Failed)
    assert result.outcome.reason == "Conflict"


async def test_invalid_body_is_invalid_spec(reconciler: Reconciler) -> None:
    body = user()
    body["spec"]["overrides"] = {"maxBudget": -5}
    result = await reconciler.reconcile(body, POLICY)
    assert isinstance(result.outcome, Failed)
    assert result.outcome.reason == "InvalidSpec"
    assert "maxBudget" in result.outcome.message


@respx.mock
async def test_deletion_outage_raises_so_the_finalizer_stays(reconciler: Reconciler) -> None:
    respx.get(f"{BASE}/user/info").mock(side_effect=httpx.ConnectError("refused"))
    body = user()
    body["status"] = {"userId": "alice"}
    with pytest.raises(Unavailable):
        await reconciler.finalize(body)


@respx.mock
async def test_unexpected_response_shape_is_a_condition_not_a_crash(
    reconciler: Reconciler,
) -> None:
    respx.get(f"{BASE}/user/info").mock(return_value=user_info(metadata={}, teams=["t1", "t2"]))
    respx.post(f"{BASE}/user/update").mock(return_value=httpx.Response(200, json={"data": {}}))
    result = await reconciler.reconcile(user(adopt=True), POLICY)
    assert isinstance(result.outcome, Failed)
    assert result.outcome.reason == "UnexpectedResponse"
    assert result.outcome.transient


@respx.mock
async def test_a_request_the_planner_cannot_build_is_a_bug_not_a_retry(
    reconciler: Reconciler, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A field the wire model does not know (a declaration the request cannot carry) fails at
    plan time, before any write, and is not retried: not "LiteLLM answered in a shape…"."""
    from litellm_operator.users import plan

    creation_fields = plan.creation_fields
    monkeypatch.setattr(
        plan, "creation_fields", lambda desired: {**creation_fields(desired), "bogus": 1}
    )
    respx.get(f"{BASE}/user/info").mock(return_value=error(404, "not found"))
    created = respx.post(f"{BASE}/user/new").mock(return_value=httpx.Response(200, json={}))
    result = await reconciler.reconcile(user(), POLICY)
    assert isinstance(result.outcome, Failed)
    assert (result.outcome.reason, result.outcome.transient) == ("MalformedRequest", False)
    assert "NewUserRequest: bogus: Extra inputs are not permitted" in result.outcome.message
    assert not created.called


@respx.mock
async def test_a_2xx_that_is_not_json_is_retried_not_stalled(reconciler: Reconciler) -> None:
    respx.get(f"{BASE}/user/info").mock(return_value=httpx.Response(200, text="<html>"))
    result = await reconciler.reconcile(user(), POLICY)
    assert isinstance(result.outcome, Failed)
    assert (result.outcome.reason, result.outcome.transient) == ("LiteLLMUnavailable", True)


@respx.mock
async def test_an_email_the_provider_owns_is_never_looked_up(reconciler: Reconciler) -> None:
    """SSO rewrote the e-mail: the operator neither writes it back nor asks who holds it."""
    respx.get(f"{BASE}/user/info").mock(
        return_value=user_info(
            user_email="ann@sso.example",
            user_role="internal_user",
            metadata=OURS,
            teams=["t1", "t2"],
        )
    )
    lookup = respx.get(f"{BASE}/user/list")
    update = respx.post(f"{BASE}/user/update")
    policy = {**POLICY, "spec": {**POLICY["spec"], "sso": {"email": "Provider"}}}
    result = await reconciler.reconcile(user(email="ann@example.com"), policy)
    assert isinstance(result.outcome, Synced)
    assert not lookup.called
    assert not update.called


async def test_an_id_lock_is_shared_while_held_and_then_forgotten(reconciler: Reconciler) -> None:
    lock = reconciler.id_lock("alice")
    async with lock:
        assert reconciler.id_lock("alice") is lock, "a second reconcile of alice waits on it"
        assert reconciler.id_lock("bob") is not lock
    del lock
    gc.collect()
    assert len(reconciler._id_locks) == 0, "ids seen once are not kept forever"
