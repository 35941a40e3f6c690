"""The operator's kopf settings (runner.apply_settings): the ones its behaviour and its
memory at a restart depend on (the benchmark measures their effect on real components)."""

from __future__ import annotations

import kopf

from litellm_operator.runtime.runner import (
    FINALIZER,
    LIST_CHUNK_SIZE,
    WORKER_IDLE_SECONDS,
    StatusDiffBase,
    apply_settings,
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
