"""Leader election on a ``coordination.k8s.io/v1`` Lease: the reads and writes, and the loops.

:class:`LeaderElector` campaigns for the Lease (``litellm-operator`` in the operator's namespace)
until it holds it, then keeps renewing it; :meth:`LeaderElector.hold` returns as soon as
leadership is lost, and :meth:`LeaderElector.release` gives it up cleanly on shutdown. Every
write carries the ``resourceVersion`` that was read (optimistic concurrency): of two candidates
that saw the same expired Lease, the API server lets exactly one write succeed (409 Conflict for
the other). What to do when is decided by the pure :mod:`litellm_operator.runtime.lease`.

Why not a library: kopf's peering is not Lease-based (it needs its own CRDs, and both peers keep
their watches open); the kubernetes client's ``leaderelection`` package is thread-based,
blocking (``time.sleep`` loops meant for a dedicated thread, not kopf's asyncio loop), cannot
release the Lease on shutdown, and keeps renewing until the renewal itself fails. No maintained
asyncio implementation exists, and the algorithm is small enough to own and table-test.

The kubernetes client is synchronous; calls run with a request timeout in a thread of the
elector's own, never in the loop's shared executor: there they queued behind the handlers' Secret
and Event calls, and under load a renewal waited past the renew deadline, so the leader stepped
down while nothing was wrong.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import random
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

import kubernetes
import urllib3

from litellm_operator.runtime.lease import (
    LEASE_NAME,
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

log = logging.getLogger(__name__)

TRANSIENT = (urllib3.exceptions.HTTPError, OSError)
"""Connection failures and timeouts: retried on the next round."""

JITTER = 1.2
"""Campaigning candidates wait retry_period x [1, JITTER) between tries (client-go's factor)."""


class LeaderElector:
    def __init__(
        self,
        api_client: kubernetes.client.ApiClient,
        namespace: str,
        identity: str,
        *,
        name: str = LEASE_NAME,
        timing: Timing | None = None,
    ) -> None:
        self.api = kubernetes.client.CoordinationV1Api(api_client)
        self.namespace = namespace
        self.identity = identity
        self.name = name
        self.timing = timing or Timing()
        self.observation: Observation | None = None
        self._resource_version: str | None = None
        self._leader_seen: str | None = None
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="lease")

    # --- the loops ----------------------------------------------------------------------------

    async def acquire(self) -> None:
        """Return once this process holds the Lease (cancel the task to give up campaigning)."""
        log.info("leader election: campaigning for lease %s/%s", self.namespace, self.name)
        while True:
            if await self.try_acquire_or_renew():
                break
            await asyncio.sleep(self.timing.retry_period * random.uniform(1.0, JITTER))  # noqa: S311
        log.info(
            "leader election: acquired lease %s/%s as %s", self.namespace, self.name, self.identity
        )

    async def hold(self) -> None:
        """Renew the Lease every retry period; return when leadership is lost.

        Lost means: another holder is seen, or no renewal succeeded for the renew deadline
        (API server unreachable, conflicts). The caller must stop writing at once.
        """
        last_renewed = time.monotonic()
        while True:
            await asyncio.sleep(self.timing.retry_period)
            started = time.monotonic()
            if renewal_overdue(last_renewed, started, self.timing):
                log.error("leader election: no renewal for %gs", started - last_renewed)
                return
            remaining = last_renewed + self.timing.renew_deadline - started
            try:
                renewed = await asyncio.wait_for(self.try_acquire_or_renew(), timeout=remaining)
            except TimeoutError:
                log.error("leader election: renewal timed out")
                return
            if renewed:
                last_renewed = started
            elif self.holder() not in (self.identity, None):
                log.error("leader election: lease taken over by %s", self.holder())
                return

    async def release(self) -> bool:
        """Clear the holder so that a standby takes over at once; ``True`` when it was ours."""
        try:
            lease = await self._call(self.api.read_namespaced_lease, self.name, self.namespace)
            record = to_record(lease)
            if record is None or record.holder != self.identity:
                return False
            body = to_body(self.name, self.namespace, released(record, wall_clock()))
            body["metadata"]["resourceVersion"] = lease.metadata.resource_version
            await self._call(self.api.replace_namespaced_lease, self.name, self.namespace, body)
        except (kubernetes.client.ApiException, *TRANSIENT) as exc:
            log.warning("leader election: could not release the lease: %s", describe(exc))
            return False
        log.info("leader election: released lease %s/%s", self.namespace, self.name)
        return True

    def holder(self) -> str | None:
        """The holder last observed (``""``: released; ``None``: no Lease or not read yet)."""
        record = self.observation.record if self.observation else None
        return None if record is None else record.holder

    # --- one round ----------------------------------------------------------------------------

    async def try_acquire_or_renew(self) -> bool:
        """Read the Lease, decide, and write if the decision is to; ``True`` when we hold it."""
        try:
            lease = await self._call(self.api.read_namespaced_lease, self.name, self.namespace)
        except kubernetes.client.ApiException as exc:
            if exc.status != 404:
                log.warning("leader election: cannot read the lease: %s", describe(exc))
                return False
            lease = None
        except TRANSIENT as exc:
            log.warning("leader election: cannot read the lease: %s", describe(exc))
            return False
        record = to_record(lease)
        self.observation = observe(self.observation, record, time.monotonic())
        self._report_leader(record)
        verdict = decide(self.observation, self.identity, time.monotonic())
        if verdict is Verdict.WAIT:
            return False
        desired = claimed(record, verdict, self.identity, wall_clock(), self.timing)
        body = to_body(self.name, self.namespace, desired)
        try:
            if verdict is Verdict.CREATE:
                written = await self._call(self.api.create_namespaced_lease, self.namespace, body)
            else:
                assert lease is not None
                body["metadata"]["resourceVersion"] = lease.metadata.resource_version
                written = await self._call(
                    self.api.replace_namespaced_lease, self.name, self.namespace, body
                )
        except kubernetes.client.ApiException as exc:
            level = logging.INFO if exc.status == 409 else logging.WARNING
            log.log(level, "leader election: %s failed: %s", verdict.value, describe(exc))
            return False
        except TRANSIENT as exc:
            log.warning("leader election: %s failed: %s", verdict.value, describe(exc))
            return False
        self.observation = observe(self.observation, to_record(written), time.monotonic())
        return True

    def _report_leader(self, record: LeaseRecord | None) -> None:
        holder = None if record is None else record.holder
        if holder != self._leader_seen:
            self._leader_seen = holder
            if holder and holder != self.identity:
                log.info("leader election: lease held by %s; standing by", holder)

    async def _call(self, method: Any, *args: Any) -> Any:
        timeout = (self.timing.retry_period, self.timing.renew_deadline / 2)
        call = functools.partial(method, *args, _request_timeout=timeout)
        return await asyncio.get_running_loop().run_in_executor(self._thread, call)

    def close(self) -> None:
        """End the elector's thread (after :meth:`release`)."""
        self._thread.shutdown(wait=False, cancel_futures=True)


# --- Lease objects ------------------------------------------------------------------------------


def wall_clock() -> datetime:
    return datetime.now(UTC)


def to_record(lease: Any) -> LeaseRecord | None:
    """The election record of a ``V1Lease`` (``None`` for no Lease)."""
    if lease is None:
        return None
    spec = lease.spec
    if spec is None:
        return LeaseRecord(holder="", duration_seconds=0)
    return LeaseRecord(
        holder=spec.holder_identity or "",
        duration_seconds=int(spec.lease_duration_seconds or 0),
        acquire_time=spec.acquire_time,
        renew_time=spec.renew_time,
        transitions=int(spec.lease_transitions or 0),
    )


def micro_time(value: datetime | None) -> str | None:
    """A Kubernetes MicroTime (RFC 3339, microseconds, UTC)."""
    if value is None:
        return None
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def to_body(name: str, namespace: str, record: LeaseRecord) -> dict[str, Any]:
    return {
        "apiVersion": "coordination.k8s.io/v1",
        "kind": "Lease",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "holderIdentity": record.holder,
            "leaseDurationSeconds": record.duration_seconds,
            "acquireTime": micro_time(record.acquire_time),
            "renewTime": micro_time(record.renew_time),
            "leaseTransitions": record.transitions,
        },
    }


def describe(exc: BaseException) -> str:
    if isinstance(exc, kubernetes.client.ApiException):
        return f"{exc.status} {exc.reason}"
    return f"{type(exc).__name__}: {exc}"
