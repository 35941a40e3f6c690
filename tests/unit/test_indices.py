"""ObjectIndices: what each object contributes, replaced by its events and by whole listings,
read as kopf's indices are read (key → a store of one value per object)."""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from typing import Any

import pytest

from litellm_operator.runtime.indices import ObjectIndices, single, uid_of
from litellm_operator.users.indices import DEFAULT_POLICY_REF, USER_INDICES, Claim


def obj(uid: str, name: str, policy: str, owner: str | None = None) -> dict[str, Any]:
    return {
        "metadata": {"uid": uid, "name": name, "namespace": "ns"},
        "spec": {"policyRef": policy},
        "status": {"owner": owner} if owner else {},
    }


def by_policy(body: Mapping[str, Any]) -> dict[Hashable, Any]:
    return {body["spec"]["policyRef"]: body["metadata"]["name"]}


def by_owner(body: Mapping[str, Any]) -> dict[Hashable, Any] | None:
    owner = body["status"].get("owner")
    return {owner: body["metadata"]["name"]} if owner else None


def indices() -> ObjectIndices:
    return ObjectIndices({"by_policy": by_policy, "by_owner": by_owner})


def contents(found: ObjectIndices) -> dict[str, dict[Any, list[Any]]]:
    return {
        name: {key: sorted(store) for key, store in index.items()}
        for name, index in found.views.items()
    }


def event(kind: str, body: dict[str, Any]) -> dict[str, Any]:
    return {"type": kind, "object": body}


@pytest.mark.parametrize(
    ("events", "expected"),
    [
        pytest.param(
            [event("ADDED", obj("1", "a", "p"))],
            {"by_policy": {"p": ["a"]}, "by_owner": {}},
            id="added",
        ),
        pytest.param(
            [event("ADDED", obj("1", "a", "p")), event("ADDED", obj("2", "b", "p", "x"))],
            {"by_policy": {"p": ["a", "b"]}, "by_owner": {"x": ["b"]}},
            id="two-objects-one-key",
        ),
        pytest.param(
            [event("ADDED", obj("1", "a", "p", "x")), event("MODIFIED", obj("1", "a", "q"))],
            {"by_policy": {"q": ["a"]}, "by_owner": {}},
            id="modified-moves-and-drops-keys",
        ),
        pytest.param(
            [event("ADDED", obj("1", "a", "p")), event("DELETED", obj("1", "a", "p"))],
            {"by_policy": {}, "by_owner": {}},
            id="deleted",
        ),
        pytest.param(
            [
                event("ADDED", obj("1", "a", "p")),
                event("ADDED", obj("2", "b", "p")),
                event("ADDED", obj("3", "c", "p")),
                event("DELETED", obj("2", "b", "p")),
                event("DELETED", obj("1", "a", "p")),
            ],
            {"by_policy": {"p": ["c"]}, "by_owner": {}},
            id="many-objects-one-key-back-to-one",
        ),
        pytest.param(
            [
                event("ADDED", obj("1", "a", "p")),
                event("ADDED", obj("2", "b", "p")),
                event("MODIFIED", obj("1", "a", "q")),
                event("ADDED", obj("3", "c", "q")),
            ],
            {"by_policy": {"p": ["b"], "q": ["a", "c"]}, "by_owner": {}},
            id="one-of-two-moves-to-a-key-of-its-own-then-shares-it",
        ),
        pytest.param(
            [event("ADDED", obj("1", "a", "p")), event("MODIFIED", obj("1", "a2", "p"))],
            {"by_policy": {"p": ["a2"]}, "by_owner": {}},
            id="one-object-s-value-replaced",
        ),
        pytest.param(
            [event("DELETED", obj("9", "z", "p"))],
            {"by_policy": {}, "by_owner": {}},
            id="deleted-unknown",
        ),
        pytest.param(
            [
                event("ADDED", obj("1", "a", "p")),
                {"type": "BOOKMARK", "object": {"metadata": {"resourceVersion": "7"}}},
                {"type": "ERROR", "object": {"code": 410}},
                event("ADDED", {"metadata": {"name": "no-uid"}, "spec": {}, "status": {}}),
            ],
            {"by_policy": {"p": ["a"]}, "by_owner": {}},
            id="non-object-events-ignored",
        ),
    ],
)
def test_events(events: list[dict[str, Any]], expected: dict[str, Any]) -> None:
    found = indices()
    for each in events:
        found.apply("ns", each)
    assert contents(found) == expected


def test_a_listing_replaces_what_its_stream_held_and_nothing_else() -> None:
    found = indices()
    found.apply("ns", event("ADDED", obj("1", "a", "p")))
    found.apply("ns", event("ADDED", obj("2", "b", "p", "x")))
    found.apply("other", event("ADDED", obj("3", "c", "p")))
    relisted = obj("2", "b", "q")
    found.replace_stream(
        "ns", {"2": found.entries(relisted), "4": found.entries(obj("4", "d", "p"))}
    )
    assert contents(found) == {"by_policy": {"p": ["c", "d"], "q": ["b"]}, "by_owner": {}}
    assert len(found) == 3


def test_an_empty_listing_empties_its_stream_only() -> None:
    found = indices()
    found.apply("ns", event("ADDED", obj("1", "a", "p")))
    found.apply(None, event("ADDED", obj("2", "b", "p")))
    found.replace_stream("ns", {})
    assert contents(found)["by_policy"] == {"p": ["b"]}


def test_views_read_as_kopf_indices() -> None:
    found = indices()
    found.apply("ns", event("ADDED", obj("1", "a", "p")))
    view = found.views["by_policy"]
    assert "p" in view
    assert "q" not in view
    assert view.get("q") is None
    assert list(view.get("q", [])) == []
    store = view["p"]
    assert list(store) == ["a"]
    assert len(store) == 1
    assert "a" in store
    found.apply("ns", event("ADDED", obj("2", "b", "p")))
    assert sorted(view["p"]) == ["a", "b"], "views are live"
    many = view["p"]
    assert (len(many), "b" in many, "z" in many) == (2, True, False)


def test_single_reads_the_one_value_per_key_of_either_kind_of_index() -> None:
    found = indices()
    found.apply("ns", event("ADDED", obj("1", "a", "p", owner="o")))
    ours = found.views["by_owner"]
    kopfs: dict[str, list[str]] = {"o": ["a"], "empty": []}
    for index in (ours, kopfs):
        read = single(index)
        assert read("o") == "a"
        assert read("absent") is None
    assert single(kopfs)("empty") is None
    found.apply("ns", event("DELETED", obj("1", "a", "p", owner="o")))
    assert single(ours)("o") is None, "the operator's index is read live"


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        pytest.param({"metadata": {"uid": "u"}}, "u", id="uid"),
        pytest.param({"metadata": {"uid": ""}}, None, id="empty"),
        pytest.param({"metadata": None}, None, id="no-metadata"),
        pytest.param({}, None, id="nothing"),
    ],
)
def test_uid_of(body: dict[str, Any], expected: str | None) -> None:
    assert uid_of(body) == expected


def litellm_user(status: dict[str, Any]) -> dict[str, Any]:
    return {
        "metadata": {
            "uid": "u-1",
            "name": "alice",
            "namespace": "team-a",
            "creationTimestamp": "2026-01-01T00:00:00Z",
        },
        "spec": {},
        "status": status,
    }


@pytest.mark.parametrize(
    ("status", "claims"),
    [
        pytest.param({}, {}, id="no-user-id-no-claim"),
        pytest.param(
            {"userId": "alice@corp"},
            {"alice@corp": [Claim("2026-01-01T00:00:00Z", "team-a", "alice", "u-1")]},
            id="claim",
        ),
    ],
)
def test_the_litellm_user_indices(status: dict[str, Any], claims: dict[str, Any]) -> None:
    found = ObjectIndices(USER_INDICES)
    found.apply("team-a", event("ADDED", litellm_user(status)))
    views = found.views
    assert {k: list(v) for k, v in views["users_by_policy"].items()} == {
        DEFAULT_POLICY_REF: [("team-a", "alice")]
    }
    (indexed,) = views["user_bodies"][("team-a", "alice")]
    assert indexed.body()["status"] == status
    assert {k: list(v) for k, v in views["user_id_claims"].items()} == claims
