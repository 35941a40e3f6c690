"""The `litellm-operator` command line: a registry of subcommands.

Each subcommand module exposes `register(subparsers)`, which adds its parser and sets
`func=run` where `run(args) -> int` is the exit status. To add a subcommand (e.g. `run`),
append its register function to COMMANDS.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from litellm_operator import __version__, explain
from litellm_operator.crdgen import render_crds
from litellm_operator.runtime import launch

Register = Callable[["argparse._SubParsersAction[argparse.ArgumentParser]"], None]


def register_crds(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "crds", help="write the CRD YAML generated from the models", description=__doc__
    )
    parser.add_argument("--output", default="deploy/crds", metavar="DIR")
    parser.set_defaults(func=run_crds)


def run_crds(args: argparse.Namespace) -> int:
    directory = Path(args.output)
    directory.mkdir(parents=True, exist_ok=True)
    for name, text in render_crds().items():
        (directory / name).write_text(text, encoding="utf-8")
        print(directory / name)
    return 0


COMMANDS: list[Register] = [explain.register, register_crds, launch.register_command]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="litellm-operator", description="Provision LiteLLM users from Kubernetes policy."
    )
    parser.add_argument("--version", action="version", version=__version__)
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for register in COMMANDS:
        register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one subcommand; returns its exit status (2 for usage errors)."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else 2
    func: Callable[[argparse.Namespace], Any] = args.func
    return int(func(args))


if __name__ == "__main__":
    sys.exit(main())
