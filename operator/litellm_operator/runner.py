"""`litellm-operator run`: validate the configuration, then run kopf with the project's settings.

The configuration is read once, before anything connects anywhere; every problem is printed
at once and the process exits with status 2. The LiteLLM client, the metrics endpoint and the
handlers are built inside the event loop and torn down when kopf stops.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
import threading
from typing import Any

import kopf

from litellm_operator.config import ConfigError, OperatorConfig, load_config
from litellm_operator.handlers import FINALIZER, Directory, Runtime, register
from litellm_operator.kube import Kube
from litellm_operator.litellm import LiteLLMClient
from litellm_operator.metrics import Metrics
from litellm_operator.models import GROUP
from litellm_operator.reconciler import Reconciler

log = logging.getLogger(__name__)

SNAPSHOT_MAX_AGE_FRACTION = 0.5
"""A /user/list snapshot is reused for at most half a resync interval."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--log-format",
        choices=["json", "plain"],
        default="json",
        help="log format (default: json, one object per line)",
    )
    parser.add_argument("--verbose", action="store_true", help="debug logging")
    parser.add_argument(
        "--health-port",
        type=int,
        default=8081,
        help="port of the liveness endpoint /healthz (0: off; default 8081)",
    )
    parser.add_argument(
        "--peering",
        default=None,
        help="kopf peering name for an active/standby pair (needs kopf's peering CRDs); "
        "default: standalone",
    )


def command(args: argparse.Namespace) -> int:
    try:
        config = load_config()
    except ConfigError as exc:
        print(f"litellm-operator: {exc}", file=sys.stderr)
        return 2
    kopf.configure(
        verbose=args.verbose,
        log_format=kopf.LogFormat.JSON if args.log_format == "json" else kopf.LogFormat.PLAIN,
    )
    # httpx logs every request at INFO; the operator's own metrics count them instead.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    log.info("starting: %s", config.summary())
    asyncio.run(serve(config, health_port=args.health_port, peering=args.peering))
    return 0


async def serve(
    config: OperatorConfig,
    *,
    health_port: int = 0,
    peering: str | None = None,
    stop_flag: threading.Event | asyncio.Event | None = None,
    ready_flag: threading.Event | asyncio.Event | None = None,
) -> None:
    """Run the operator until ``stop_flag`` is set or the process is signalled."""
    metrics = Metrics()
    if config.metrics_port:
        metrics.serve(config.metrics_port)
    async with LiteLLMClient(
        config.litellm_url,
        config.master_key,
        timeout=config.timeout_seconds,
        max_concurrency=config.concurrency,
        observer=metrics.observe_request,
    ) as client:
        kube = Kube()
        runtime = Runtime(
            config=config,
            client=client,
            reconciler=Reconciler(client),
            kube=kube,
            metrics=metrics,
            directory=Directory(client, config.resync_seconds * SNAPSHOT_MAX_AGE_FRACTION),
        )
        registry = kopf.OperatorRegistry()
        register(registry, runtime)
        configure_kopf(registry, config)
        try:
            await kopf.operator(
                registry=registry,
                clusterwide=not config.namespaces,
                namespaces=list(config.namespaces),
                standalone=peering is None,
                peering_name=peering,
                priority=0,
                liveness_endpoint=f"http://0.0.0.0:{health_port}/healthz" if health_port else None,
                stop_flag=stop_flag,
                ready_flag=ready_flag,
            )
        finally:
            kube.close()


def configure_kopf(registry: kopf.OperatorRegistry, config: OperatorConfig) -> None:
    @kopf.on.login(registry=registry)
    def login(**kwargs: Any) -> kopf.ConnectionInfo | None:
        """In-cluster service account, else the kubeconfig (via the kubernetes client)."""
        info: kopf.ConnectionInfo | None = kopf.login_via_client(**kwargs)
        return info

    @kopf.on.startup(registry=registry)
    def settings(settings: kopf.OperatorSettings, **_: Any) -> None:
        settings.persistence.finalizer = FINALIZER
        settings.persistence.progress_storage = kopf.SmartProgressStorage(prefix=GROUP)
        settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
            prefix=GROUP, key="last-handled-configuration"
        )
        # kopf's own "Handler succeeded" events are noise; the operator posts its own.
        settings.posting.level = logging.WARNING
        settings.watching.server_timeout = 300
        settings.networking.request_timeout = 60


def register_command(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "run",
        help="run the operator (configuration from the environment)",
        description="Run the operator. Environment: LITELLM_URL, LITELLM_MASTER_KEY or "
        "LITELLM_MASTER_KEY_FILE, LITELLM_OPERATOR_NAMESPACES (comma-separated; default all), "
        "LITELLM_OPERATOR_RESYNC_SECONDS (600), LITELLM_OPERATOR_CONCURRENCY (8), "
        "LITELLM_OPERATOR_TIMEOUT_SECONDS (10), LITELLM_OPERATOR_METRICS_PORT (8080; 0 = off).",
    )
    add_arguments(parser)
    parser.set_defaults(func=command)
