"""The running operator: kopf with the project's settings, handlers and clients, under leader
election when configured (the command line of ``run`` is :mod:`litellm_operator.runtime.launch`).

The LiteLLM client, the metrics endpoint and the
handlers are built inside the event loop and torn down when kopf stops.

With leader election on (``--leader-elect`` or ``LITELLM_OPERATOR_LEADER_ELECTION=true``, as in
the shipped manifests) kopf is not even started until this process holds the Lease: a standby
runs no handler, timer or index and writes nothing but its attempts on the Lease. While it waits,
``/healthz`` answers on the health port (kopf's own liveness endpoint takes the port over once
leading) and ``litellm_operator_leader`` is 0. A leader that loses the Lease exits at once with
status 3 (the pod restarts as a standby, as controller-runtime does); one that is stopped
(SIGTERM) lets kopf finish, then releases the Lease so that a standby takes over in seconds.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import secrets
import signal
import socket
import threading
from collections.abc import Callable, Iterable, Mapping
from typing import Any, NoReturn, cast

import kopf
from aiohttp import web

from litellm_operator import kinds
from litellm_operator.kube import Kube
from litellm_operator.litellm import LiteLLMClient, LiteLLMError, versions
from litellm_operator.litellm.aio import AiohttpTransport
from litellm_operator.models import GROUP
from litellm_operator.runtime import kopf_watch, preflight, vitals
from litellm_operator.runtime.config import ALLOW_UNTESTED_LITELLM, OperatorConfig
from litellm_operator.runtime.leader import LeaderElector
from litellm_operator.runtime.memory import trimming
from litellm_operator.runtime.metrics import Metrics

log = logging.getLogger(__name__)

FINALIZER = f"{GROUP}/finalizer"

EXIT_LEADERSHIP_LOST = 3


def holder_identity(config: OperatorConfig) -> str:
    """The pod name (or host name) and a random suffix: unique per process, readable. The
    Lease holder's name and kopf's identity both."""
    return f"{config.pod_name or socket.gethostname()}_{secrets.token_hex(4)}"


def step_down() -> NoReturn:
    """Leadership is lost: stop every write now by ending the process (it restarts as standby)."""
    log.critical("leader election: leadership lost; exiting so that no write follows")
    logging.shutdown()
    os._exit(EXIT_LEADERSHIP_LOST)


async def serve(
    config: OperatorConfig,
    *,
    health_port: int = 0,
    stop_flag: threading.Event | asyncio.Event | None = None,
    ready_flag: threading.Event | asyncio.Event | None = None,
    on_leadership_lost: Callable[[], None] = step_down,
) -> None:
    """Run the operator until ``stop_flag`` is set or the process is signalled.

    With leader election, only once this process holds the Lease; ``on_leadership_lost`` is
    called the moment it no longer does (by default it ends the process).
    """
    preflight.install_patches(allow_slow_toggles=config.allow_slow_toggles)
    metrics = Metrics()
    vital_signs = vitals.register(metrics.registry, asyncio.get_running_loop())
    if config.metrics_port:
        metrics.serve(config.metrics_port)
    kube = Kube()
    elector: LeaderElector | None = None
    leading = False
    identity = holder_identity(config)
    try:
        await check_kubernetes(kube)
        await check_litellm(config, metrics)
        if config.leader_election:
            elector = LeaderElector(kube.api_client, config.lease_namespace, identity)
            metrics.leader.set(0)
            # SIGTERM/SIGINT set this flag from now on: while standing by, and in the moment
            # between winning and kopf installing its own handlers (kopf also watches it).
            stopping = asyncio.Event()
            if stop_flag is None:
                stop_flag = stopping
            if not await campaign(elector, health_port, stopping):
                return
        leading = True
        metrics.leader.set(1)
        log.info("leading; kopf %s", preflight.kopf_version())  # a standby never starts kopf
        async with (
            LiteLLMClient(
                config.litellm_url,
                config.master_key,
                timeout=config.timeout_seconds,
                max_concurrency=config.concurrency,
                transport=AiohttpTransport(max_connections=config.concurrency),
                observer=metrics.observe_request,
                watch_version=True,
                allow_untested=config.allow_untested_litellm,
                on_version=metrics.report_litellm_version,
            ) as client,
            kinds.started(kinds.Base(config, client, kube, metrics)) as operated,
            trimming(),
        ):
            feeds = {
                key: kopf_watch.Feed(indices, shortcuts=kind.shortcuts.get(key))
                for kind in operated
                for key, indices in kind.feeds.items()
            }
            settings = kopf_watch.FedSettings(feeds=feeds)
            vital_signs.feeds = feeds
            kube.patch_status = functools.partial(kopf_watch.patch_found, settings=settings)
            registry = kopf.OperatorRegistry()
            for kind in operated:
                kind.register(registry, settings)
            configure_kopf(registry, config)
            if isinstance(stop_flag, asyncio.Event):
                flag = stop_flag

                @kopf.on.cleanup(registry=registry, id="raise-stop-flag")
                def stopped(**_: Any) -> None:
                    """Stopped by kopf's own signal handler: raise the flag too, or kopf's task
                    that waits on it would hang its shutdown for 5 s."""
                    flag.set()

            operator = asyncio.create_task(
                kopf.operator(
                    registry=registry,
                    clusterwide=not config.namespaces,
                    namespaces=config.kopf_namespaces,
                    standalone=True,
                    priority=0,
                    # Without one, kopf builds its identity from getpass.getuser(), which raises
                    # for a uid with no passwd entry: the image's 65532. kopf's Identity is a
                    # NewType of str that kopf does not export: a str is one at run time.
                    identity=identity,  # type: ignore[arg-type]
                    liveness_endpoint=(
                        f"http://0.0.0.0:{health_port}/healthz" if health_port else None
                    ),
                    stop_flag=stop_flag,
                    ready_flag=ready_flag,
                    settings=settings,
                )
            )
            if elector is None:
                await operator
                return
            holding = asyncio.create_task(elector.hold())
            await asyncio.wait({operator, holding}, return_when=asyncio.FIRST_COMPLETED)
            if holding.done():
                leading = False
                metrics.leader.set(0)
                on_leadership_lost()
                operator.cancel()
            else:
                holding.cancel()
            await asyncio.gather(operator, holding, return_exceptions=True)
            if not operator.cancelled():
                operator.result()
    finally:
        if elector is not None and leading:
            await elector.release()
        if elector is not None:
            elector.close()
        kube.close()


async def check_kubernetes(kube: Kube) -> None:
    """Refuse (:class:`preflight.Unsupported`) an API server older than the oldest supported,
    before the campaign; one that cannot be asked now is not checked (and not waited for)."""
    try:
        version = await asyncio.to_thread(kube.server_version)
    except Exception as exc:  # any failure: not checked, said once
        log.warning("the API server's version could not be read (%s): not checked", exc)
        return
    log.info("Kubernetes %d.%d", *version)
    problem = preflight.kubernetes_problem(version)
    if problem:
        raise preflight.Unsupported(problem)


async def check_litellm(config: OperatorConfig, metrics: Metrics) -> None:
    """Read the proxy's version, report it (log, ``litellm_version_info``) and refuse
    (:class:`preflight.Unsupported`) one older than the oldest supported, unless allowed; a
    proxy that cannot be asked now is not checked here (the operator waits out LiteLLM
    outages; its client reads the version again before it writes, and refuses then)."""
    try:
        async with LiteLLMClient(
            config.litellm_url, config.master_key, timeout=config.timeout_seconds, max_retries=0
        ) as client:
            version = await client.version()
    except LiteLLMError as exc:
        log.warning("LiteLLM's version could not be read (%s): not checked", exc)
        return
    if version is None:
        log.warning("LiteLLM reported no version: not checked")
        return
    log.info("LiteLLM %s", version)
    metrics.report_litellm_version(version)
    problem = versions.unsupported(version)
    if problem and config.allow_untested_litellm:
        log.warning("%s: running anyway, as allowed", problem)
    elif problem:
        raise preflight.Unsupported(
            f"{problem} (see the README's LiteLLM matrix); set {ALLOW_UNTESTED_LITELLM}=true "
            "to run on it anyway"
        )


async def campaign(elector: LeaderElector, health_port: int, stopping: asyncio.Event) -> bool:
    """Stand by until ``elector`` holds the Lease (``True``) or SIGTERM/SIGINT sets ``stopping``
    (``False``). The signal handlers stay installed until kopf replaces them."""
    loop = asyncio.get_running_loop()
    if threading.current_thread() is threading.main_thread():
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stopping.set)
    health = await standby_health(health_port) if health_port else None
    acquiring = asyncio.create_task(elector.acquire())
    stopped = asyncio.create_task(stopping.wait())
    try:
        await asyncio.wait({acquiring, stopped}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        acquiring.cancel()
        stopped.cancel()
        await asyncio.gather(acquiring, stopped, return_exceptions=True)
        if health is not None:
            await health.cleanup()
    won = acquiring.done() and not acquiring.cancelled() and acquiring.exception() is None
    if won and stopping.is_set():
        await elector.release()
        return False
    if not won and not stopping.is_set():
        acquiring.result()  # re-raise what ended the campaign
    return won


async def standby_health(port: int) -> web.AppRunner:
    """``/healthz`` for a standby (200 while it campaigns); kopf's endpoint replaces it."""

    async def healthz(_: web.Request) -> web.Response:
        return web.json_response({"leader": False})

    app = web.Application()
    app.router.add_get("/healthz", healthz)
    runner = web.AppRunner(app, handle_signals=False, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "0.0.0.0", port, reuse_address=True).start()  # noqa: S104
    return runner


LIST_CHUNK_SIZE = 100
"""kopf lists the objects it watches in pages of this many, not in one response. What a
restart allocates stays resident (see kopf_watch), and one response parses every object at
once, managedFields included (kopf_watch drops them only as each object passes on); the
resident size this saves is in the README's Performance section ("Memory")."""
WORKER_IDLE_SECONDS = 0.5
"""How long kopf keeps an object's worker (with the object's last event, parsed) once it has
nothing to do; kopf's default is 5 s. A restart hands kopf the listed users a few at a time
(kopf_watch), but at kopf's default every resumed user's worker lived on, so all of a
restart's workers still existed at its end (the README's Performance section, "Memory", has
what that cost). A worker waits longer when a patch of its own is still to come back (kopf's
consistency), and an event after it exits starts a new one."""


class StatusDiffBase(kopf.MultiDiffBaseStorage):
    """kopf's last-handled configuration, kept in ``status.kopf`` and written there only.

    In an annotation it costs every handled change a second request (the main resource beside
    the status). It is still read from the annotation earlier versions wrote, so an upgrade is
    not taken for a change of every resource.
    """

    def __init__(self, settled: kopf_watch.Settled | None = None) -> None:
        self.status = kopf.StatusDiffBaseStorage()
        self.settled = settled
        """Told what kopf stores, once its handlers are done with a body (kopf_watch.Settled)."""
        legacy = kopf.AnnotationsDiffBaseStorage(prefix=GROUP, key="last-handled-configuration")
        super().__init__([self.status, legacy])

    def build(
        self, *, body: kopf.Body, extra_fields: Iterable[kopf.FieldSpec] | None = None
    ) -> kopf.BodyEssence:
        """kopf's essence, built from the body without its status when no handler reads a
        status field: kopf deep-copies the whole body on every event only to drop the status
        (the users' keys, conditions and kopf's own last-handled copy), which was most of what
        it copied."""
        fields = list(extra_fields or [])
        if any(is_status_field(field) for field in fields):
            return super().build(body=body, extra_fields=fields)
        without_status = {key: value for key, value in body.items() if key != "status"}
        return super().build(
            body=kopf.Body(cast(kopf.RawBody, without_status)), extra_fields=fields
        )

    def store(self, *, body: kopf.Body, patch: kopf.Patch, essence: kopf.BodyEssence) -> None:
        self.status.store(body=body, patch=patch, essence=essence)
        stored = resolved(patch, self.status.field)
        if self.settled is not None and isinstance(stored, str):
            self.settled.record(body, stored)


def resolved(mapping: Any, path: Iterable[str]) -> Any:
    """The value at ``path`` in nested mappings (``None`` where it stops)."""
    for key in path:
        if not isinstance(mapping, Mapping):
            return None
        mapping = mapping.get(key)
    return mapping


def is_status_field(field: kopf.FieldSpec) -> bool:
    """Whether a kopf field spec (``"status.x"``, ``["status", "x"]``) lies under ``status``."""
    if isinstance(field, str):
        return field.split(".", 1)[0] == "status"
    return field is not None and next(iter(field), None) == "status"


def configure_kopf(registry: kopf.OperatorRegistry, config: OperatorConfig) -> None:
    @kopf.on.login(registry=registry)
    def login(**kwargs: Any) -> kopf.ConnectionInfo | None:
        """In-cluster service account, else the kubeconfig (via the kubernetes client)."""
        info: kopf.ConnectionInfo | None = kopf.login_via_client(**kwargs)
        return info

    @kopf.on.startup(registry=registry)
    def settings(settings: kopf.OperatorSettings, **_: Any) -> None:
        apply_settings(settings)


def apply_settings(settings: kopf.OperatorSettings) -> None:
    """The operator's kopf settings (set by a start-up handler, before kopf lists anything)."""
    settings.persistence.finalizer = FINALIZER
    # Progress and the last-handled configuration live in status.kopf: a handled change then
    # costs one status write, where annotations cost a second write per change (and a first one
    # per object for kopf's "kopf-managed" marker).
    settings.persistence.progress_storage = kopf.StatusProgressStorage()
    settings.persistence.diffbase_storage = StatusDiffBase(kopf_watch.settled_of(settings))
    # kopf's own "Handler succeeded" events are noise; the operator posts its own.
    settings.posting.level = logging.WARNING
    settings.watching.server_timeout = 300
    settings.watching.chunk_size = LIST_CHUNK_SIZE
    settings.queueing.idle_timeout = WORKER_IDLE_SECONDS
    settings.networking.request_timeout = 60
