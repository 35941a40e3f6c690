"""`litellm-operator run`: its arguments, then the configuration and the pre-flight checks, then
:func:`litellm_operator.runtime.runner.serve`.

The configuration is read once, before anything connects anywhere; every problem is printed
at once and the process exits with status 2. Then :mod:`litellm_operator.runtime.preflight` checks
kopf: a version outside the tested range, or internals that its patches no longer recognise,
end the process with one line per problem and status 4, before the leader election campaign,
so that no replica takes the Lease only to crash; an API server older than the oldest
supported Kubernetes is refused the same way, once connected, still before the campaign.
:mod:`litellm_operator.runtime.runner` (and the
patches with it) is imported only then: the other subcommands never load them.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys

import kopf
import uvloop

from litellm_operator.runtime import memory, preflight
from litellm_operator.runtime.config import ConfigError, load_config

log = logging.getLogger(__name__)

KOPF_OBJECTS_LOGGER = "kopf.objects"

EXIT_CONFIG = 2
EXIT_UNSUPPORTED = 4


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
        "--leader-elect",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="run only while holding the Lease litellm-operator in POD_NAMESPACE (default: "
        "LITELLM_OPERATOR_LEADER_ELECTION, else off); needed for more than one replica",
    )


def command(args: argparse.Namespace) -> int:
    try:
        config = load_config()
    except ConfigError as exc:
        print(f"litellm-operator: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    refused = preflight.problems(
        allow_untested_kopf=config.allow_untested_kopf,
        allow_slow_toggles=config.allow_slow_toggles,
    )
    if refused:
        for problem in refused:
            print(f"litellm-operator: {problem}", file=sys.stderr)
        return EXIT_UNSUPPORTED
    from litellm_operator.runtime import runner  # only now: it loads the patches checked above

    memory.tune_collector()  # the process's own setting: not in serve, which tests run in-process

    kopf.configure(
        verbose=args.verbose,
        log_format=kopf.LogFormat.JSON if args.log_format == "json" else kopf.LogFormat.PLAIN,
    )
    # httpx logs every request at INFO; the operator's own metrics count them instead.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    if not args.verbose:
        # kopf logs two INFO lines per handled change of every object ("Handler ... succeeded",
        # "... is processed"): per user, more CPU than some of its handlers. The operator's own
        # logs and events say what it did.
        logging.getLogger(KOPF_OBJECTS_LOGGER).setLevel(logging.WARNING)
    if args.leader_elect is not None:
        config = config.model_copy(update={"leader_election": args.leader_elect})
    log.info("starting: %s", config.summary())
    try:
        # libuv's event loop: the operator is a few thousand small tasks and sockets, and
        # asyncio's own loop and transports were a fifth of its CPU (README, Performance).
        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as loop_runner:
            loop_runner.run(runner.serve(config, health_port=args.health_port))
    except preflight.Unsupported as exc:
        print(f"litellm-operator: {exc}", file=sys.stderr)
        return EXIT_UNSUPPORTED
    return 0


def register_command(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "run",
        help="run the operator (configuration from the environment)",
        description="Run the operator. Environment: LITELLM_URL, LITELLM_MASTER_KEY or "
        "LITELLM_MASTER_KEY_FILE, LITELLM_OPERATOR_NAMESPACES (comma-separated; default all), "
        "LITELLM_OPERATOR_RESYNC_SECONDS (600), LITELLM_OPERATOR_CONCURRENCY (8), "
        "LITELLM_OPERATOR_TIMEOUT_SECONDS (10), LITELLM_OPERATOR_METRICS_PORT (8080; 0 = off), "
        "LITELLM_OPERATOR_LEADER_ELECTION (false), POD_NAMESPACE (the Lease's namespace; "
        "default: default), POD_NAME (stem of the holder identity).",
    )
    add_arguments(parser)
    parser.set_defaults(func=command)
