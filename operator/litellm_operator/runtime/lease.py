"""Leader election's decisions, without I/O: given the Lease as read, the time and who we are,
acquire, renew or wait; and the Lease record each of those writes.

The rules are client-go's (``k8s.io/client-go/tools/leaderelection``):

* A Lease is valid for ``leaseDurationSeconds`` from the moment *this process first saw* its
  current record, measured on this process's monotonic clock. The ``renewTime`` written by
  another process is never compared with the local clock, so clock skew between nodes cannot
  make a live leader look expired.
* An empty ``holderIdentity`` means the leader released the Lease (SIGTERM): anyone may take it
  at once. That is what makes a rolling update hand over in seconds rather than a lease duration.
* The leader renews every ``retry_period``; when no renewal has succeeded for ``renew_deadline``
  (shorter than the lease duration) it steps down, before any standby may consider the Lease
  expired.

:mod:`litellm_operator.runtime.leader` does the reading and writing; this module only decides.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum

LEASE_NAME = "litellm-operator"


@dataclass(frozen=True)
class Timing:
    """client-go's three durations, in seconds (controller-runtime uses 15 / 10 / 2)."""

    lease_duration: float = 15.0
    renew_deadline: float = 10.0
    retry_period: float = 2.0

    def __post_init__(self) -> None:
        if not 0 < self.retry_period < self.renew_deadline < self.lease_duration:
            raise ValueError(
                "leader election needs 0 < retry_period < renew_deadline < lease_duration, got "
                f"{self.retry_period:g} / {self.renew_deadline:g} / {self.lease_duration:g}"
            )


@dataclass(frozen=True)
class LeaseRecord:
    """The election fields of a Lease's spec."""

    holder: str
    """``holderIdentity``; empty when nobody holds it (released)."""
    duration_seconds: int
    acquire_time: datetime | None = None
    renew_time: datetime | None = None
    transitions: int = 0


@dataclass(frozen=True)
class Observation:
    """A Lease record and when (monotonic seconds) this process first saw it as it is."""

    record: LeaseRecord | None
    """``None``: there is no Lease."""
    seen_at: float


class Verdict(StrEnum):
    CREATE = "create"
    """No Lease exists: create it, holding it."""
    ACQUIRE = "acquire"
    """Released or expired: take it over (a write guarded by its resourceVersion)."""
    RENEW = "renew"
    """We hold it: write a fresh renewTime."""
    WAIT = "wait"
    """Another process holds a valid Lease."""


def observe(previous: Observation | None, record: LeaseRecord | None, now: float) -> Observation:
    """The observation after reading ``record`` at ``now``: its clock restarts only on a change."""
    if previous is not None and previous.record == record:
        return previous
    return Observation(record, now)


def decide(observation: Observation, identity: str, now: float) -> Verdict:
    """What ``identity`` should do about the Lease it observed, at monotonic time ``now``."""
    record = observation.record
    if record is None:
        return Verdict.CREATE
    if record.holder == identity:
        return Verdict.RENEW
    if not record.holder:
        return Verdict.ACQUIRE
    if now >= observation.seen_at + record.duration_seconds:
        return Verdict.ACQUIRE
    return Verdict.WAIT


def claimed(
    current: LeaseRecord | None, verdict: Verdict, identity: str, wall_now: datetime, timing: Timing
) -> LeaseRecord:
    """The record that ``verdict`` (CREATE, ACQUIRE or RENEW) writes for ``identity``."""
    duration = round(timing.lease_duration)
    if verdict is Verdict.RENEW and current is not None:
        return replace(current, duration_seconds=duration, renew_time=wall_now)
    if verdict is Verdict.WAIT:
        raise ValueError("waiting writes nothing")
    transitions = 0 if current is None else current.transitions + (current.holder != identity)
    return LeaseRecord(identity, duration, wall_now, wall_now, transitions)


def released(current: LeaseRecord, wall_now: datetime) -> LeaseRecord:
    """What a leader writes when it steps down cleanly (client-go's ReleaseOnCancel)."""
    return replace(
        current, holder="", duration_seconds=1, acquire_time=wall_now, renew_time=wall_now
    )


def renewal_overdue(last_renewed: float, now: float, timing: Timing) -> bool:
    """Whether a leader whose last successful renewal started at ``last_renewed`` must stop."""
    return now - last_renewed >= timing.renew_deadline
