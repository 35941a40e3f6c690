"""Leader election's decisions (litellm_operator.runtime.lease): acquire, renew or wait; what is
written."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from kubernetes.client import ApiClient

from litellm_operator.runtime.leader import micro_time, to_body, to_record
from litellm_operator.runtime.lease import (
    LeaseRecord,
    Observation,
    Timing,
    Verdict,
    claimed,
    decide,
    observe,
    released,
    renewal_overdue,
)

ME = "pod-a_1234abcd"
OTHER = "pod-b_5678ef01"
T0 = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)
HELD = LeaseRecord(OTHER, 15, T0, T0, 3)
MINE = LeaseRecord(ME, 15, T0, T0, 4)
RELEASED = LeaseRecord("", 1, T0, T0, 3)

DECISIONS = [
    pytest.param(None, 0.0, 100.0, Verdict.CREATE, id="no-lease-creates"),
    pytest.param(MINE, 0.0, 1.0, Verdict.RENEW, id="ours-renews"),
    pytest.param(MINE, 0.0, 1000.0, Verdict.RENEW, id="ours-even-if-stale-renews"),
    pytest.param(RELEASED, 100.0, 100.0, Verdict.ACQUIRE, id="released-acquires-at-once"),
    pytest.param(HELD, 100.0, 100.0, Verdict.WAIT, id="held-just-seen-waits"),
    pytest.param(HELD, 100.0, 114.9, Verdict.WAIT, id="held-within-duration-waits"),
    pytest.param(HELD, 100.0, 115.0, Verdict.ACQUIRE, id="held-expired-acquires"),
    pytest.param(
        LeaseRecord(OTHER, 60, T0, T0), 100.0, 130.0, Verdict.WAIT, id="longer-duration-honoured"
    ),
    pytest.param(
        LeaseRecord(OTHER, 0, None, None), 100.0, 100.0, Verdict.ACQUIRE, id="zero-duration"
    ),
]


@pytest.mark.parametrize(("record", "seen_at", "now", "expected"), DECISIONS)
def test_decide(record: LeaseRecord | None, seen_at: float, now: float, expected: Verdict) -> None:
    assert decide(Observation(record, seen_at), ME, now) is expected


def test_expiry_counts_from_the_local_observation_not_the_remote_renew_time() -> None:
    """A renewTime far in the past (another node's clock) does not make a live Lease expired."""
    skewed = LeaseRecord(OTHER, 15, T0 - timedelta(hours=1), T0 - timedelta(hours=1))
    first = observe(None, skewed, now=500.0)
    assert decide(first, ME, now=501.0) is Verdict.WAIT


OBSERVATIONS = [
    pytest.param(None, HELD, 10.0, 10.0, id="first-read"),
    pytest.param(Observation(HELD, 5.0), HELD, 10.0, 5.0, id="unchanged-keeps-its-clock"),
    pytest.param(
        Observation(HELD, 5.0),
        LeaseRecord(OTHER, 15, T0, T0 + timedelta(seconds=2), 3),
        10.0,
        10.0,
        id="renewed-restarts-the-clock",
    ),
    pytest.param(Observation(HELD, 5.0), RELEASED, 10.0, 10.0, id="released-restarts"),
    pytest.param(Observation(HELD, 5.0), None, 10.0, 10.0, id="deleted-restarts"),
]


@pytest.mark.parametrize(("previous", "record", "now", "seen_at"), OBSERVATIONS)
def test_observe(
    previous: Observation | None, record: LeaseRecord | None, now: float, seen_at: float
) -> None:
    observation = observe(previous, record, now)
    assert observation.record == record
    assert observation.seen_at == seen_at


def test_a_standby_takes_over_one_lease_duration_after_the_last_renewal_it_saw() -> None:
    """The leader renews at 0, 2, 4 and dies; the standby, polling at 1, 3, 5 ..., saw the last
    renewal at 5, so the Lease is valid until 20 and it acquires at its next poll, 21."""
    timing = Timing()
    observation: Observation | None = None
    acquired_at = None
    for tick in range(0, 40, 2):
        now = float(tick)
        renew = min(tick, 4)  # the leader's last renewal was at t=4
        record = LeaseRecord(OTHER, 15, T0, T0 + timedelta(seconds=renew), 3)
        observation = observe(observation, record, now + 1)  # the standby reads at t+1
        if decide(observation, ME, now + 1) is Verdict.ACQUIRE:
            acquired_at = now + 1
            break
    assert acquired_at == 21.0
    assert acquired_at - 4 <= timing.lease_duration + timing.retry_period


CLAIMS = [
    pytest.param(
        None, Verdict.CREATE, LeaseRecord(ME, 15, T0, T0, 0), id="create-starts-transitions"
    ),
    pytest.param(
        HELD, Verdict.ACQUIRE, LeaseRecord(ME, 15, T0, T0, 4), id="takeover-counts-a-transition"
    ),
    pytest.param(
        RELEASED, Verdict.ACQUIRE, LeaseRecord(ME, 15, T0, T0, 4), id="released-counts-too"
    ),
    pytest.param(
        LeaseRecord(ME, 15, T0 - timedelta(minutes=5), T0 - timedelta(seconds=2), 4),
        Verdict.RENEW,
        LeaseRecord(ME, 15, T0 - timedelta(minutes=5), T0, 4),
        id="renew-keeps-acquire-time",
    ),
]


@pytest.mark.parametrize(("current", "verdict", "expected"), CLAIMS)
def test_claimed(current: LeaseRecord | None, verdict: Verdict, expected: LeaseRecord) -> None:
    assert claimed(current, verdict, ME, T0, Timing()) == expected


def test_waiting_writes_nothing() -> None:
    with pytest.raises(ValueError, match="writes nothing"):
        claimed(HELD, Verdict.WAIT, ME, T0, Timing())


def test_release_clears_the_holder_and_shortens_the_lease() -> None:
    later = T0 + timedelta(seconds=30)
    assert released(MINE, later) == LeaseRecord("", 1, later, later, 4)
    assert decide(Observation(released(MINE, later), 0.0), OTHER, 0.0) is Verdict.ACQUIRE


OVERDUE = [
    pytest.param(0.0, 9.9, False, id="within-deadline"),
    pytest.param(0.0, 10.0, True, id="at-deadline"),
    pytest.param(0.0, 12.0, True, id="past-deadline"),
]


@pytest.mark.parametrize(("last", "now", "expected"), OVERDUE)
def test_renewal_overdue(last: float, now: float, expected: bool) -> None:
    assert renewal_overdue(last, now, Timing()) is expected


BAD_TIMINGS = [
    pytest.param(15.0, 15.0, 2.0, id="deadline-not-below-duration"),
    pytest.param(15.0, 10.0, 10.0, id="retry-not-below-deadline"),
    pytest.param(15.0, 10.0, 0.0, id="zero-retry"),
]


@pytest.mark.parametrize(("duration", "deadline", "retry"), BAD_TIMINGS)
def test_timing_is_validated(duration: float, deadline: float, retry: float) -> None:
    with pytest.raises(ValueError, match="retry_period < renew_deadline < lease_duration"):
        Timing(duration, deadline, retry)


def test_default_timing_is_controller_runtimes() -> None:
    assert Timing() == Timing(lease_duration=15.0, renew_deadline=10.0, retry_period=2.0)


def test_lease_objects_round_trip_through_the_api_shapes() -> None:
    """What leader.py writes is what it reads back (MicroTime, UTC, microseconds)."""
    record = LeaseRecord(ME, 15, T0, T0 + timedelta(microseconds=1500), 7)
    body = to_body("litellm-operator", "ops", record)
    assert body["spec"]["renewTime"] == "2026-01-01T12:00:00.001500Z"
    assert body["metadata"] == {"name": "litellm-operator", "namespace": "ops"}

    lease = ApiClient().deserialize(json.dumps(body), "V1Lease", "application/json")
    assert to_record(lease) == record
    assert to_record(None) is None
    assert micro_time(None) is None
