"""The operator's kopf settings (runner.apply_settings): the ones its behaviour and its
memory at a restart depend on (the benchmark measures their effect on real components)."""

from __future__ import annotations

from typing import Any, cast

import kopf
import pytest
from hypothesis import given
from hypothesis import strategies as st

from litellm_operator.models import GROUP
from litellm_operator.runtime.runner import (
    FINALIZER,
    LIST_CHUNK_SIZE,
    WORKER_IDLE_SECONDS,
    StatusDiffBase,
    apply_settings,
    is_status_field,
)


def test_kopf_lists_in_pages_and_keeps_its_bookkeeping_in_the_status() -> None:
    settings = kopf.OperatorSettings()
    assert settings.watching.chunk_size is None  # kopf's default: everything in one response
    apply_settings(settings)
    assert settings.watching.chunk_size == LIST_CHUNK_SIZE
    assert (
        settings.queueing.idle_timeout
        == WORKER_IDLE_SECONDS
        < kopf.OperatorSettings().queueing.idle_timeout
    )
    assert settings.persistence.finalizer == FINALIZER
    assert isinstance(settings.persistence.progress_storage, kopf.StatusProgressStorage)
    assert isinstance(settings.persistence.diffbase_storage, StatusDiffBase)


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=5),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=10,
)
ANNOTATION_KEYS = st.sampled_from(
    [
        "kubectl.kubernetes.io/last-applied-configuration",
        f"{GROUP}/last-handled-configuration",
        f"{GROUP}/kopf-managed",
        "kopf.zalando.org/last-handled-configuration",
        "other.example.com/x",
        "plain",
    ]
)
BODIES = st.fixed_dictionaries(
    {
        "apiVersion": st.just(f"{GROUP}/v1alpha1"),
        "kind": st.just("LiteLLMUser"),
        "metadata": st.fixed_dictionaries(
            {"name": st.just("u"), "generation": st.integers(1, 5)},
            optional={
                "labels": st.dictionaries(st.text(min_size=1, max_size=5), st.text(max_size=5)),
                "annotations": st.dictionaries(ANNOTATION_KEYS, st.text(max_size=8)),
                "finalizers": st.lists(st.just(FINALIZER), max_size=1),
            },
        ),
    },
    optional={
        "spec": st.dictionaries(st.text(min_size=1, max_size=5), JSON, max_size=4),
        "status": st.fixed_dictionaries(
            {},
            optional={
                "kopf": st.fixed_dictionaries(
                    {"last-handled-configuration": st.just('{"spec":{}}')}
                ),
                "userId": st.text(max_size=5),
                "conditions": st.lists(st.dictionaries(st.text(max_size=4), JSON), max_size=2),
            },
        ),
    },
)
EXTRA_FIELDS = st.sampled_from(
    [None, [], ["spec.a"], ["status.userId"], [("status", "conditions")], ["metadata.generation"]]
)


@given(body=BODIES, extra_fields=EXTRA_FIELDS)
def test_the_essence_is_kopfs_own_without_copying_the_status(
    body: dict[str, Any], extra_fields: list[kopf.FieldSpec] | None
) -> None:
    storage = StatusDiffBase()
    kopfs = kopf.MultiDiffBaseStorage(list(storage.storages))
    raw = cast(kopf.RawBody, body)
    built = storage.build(body=kopf.Body(raw), extra_fields=extra_fields)
    assert built == kopfs.build(body=kopf.Body(raw), extra_fields=extra_fields)


@pytest.mark.parametrize(
    ("field", "under_status"),
    [
        pytest.param("status.userId", True, id="dotted"),
        pytest.param(("status", "keys"), True, id="tuple"),
        pytest.param(["status"], True, id="the-whole-status"),
        pytest.param("statuses.x", False, id="a-prefix-is-not-the-stanza"),
        pytest.param("spec.status", False, id="status-below-spec"),
        pytest.param((), False, id="empty"),
        pytest.param(None, False, id="none"),
    ],
)
def test_status_fields_are_told_apart(field: kopf.FieldSpec, under_status: bool) -> None:
    assert is_status_field(field) is under_status
