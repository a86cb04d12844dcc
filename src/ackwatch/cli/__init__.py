"""The ``ackwatch`` command: argparse wiring and `main` (the only package that prints).

Each subcommand is a module of this package with ``NAME``, ``HELP``, ``add_arguments(parser)``
and ``run(args) -> exit status``, listed in `COMMANDS` in the order ``--help`` shows them.
Every subcommand gets ``-c/--config`` (default ``$ACKWATCH_CONFIG``, else
``/etc/ackwatch/config.yaml``). A `ConfigError` is caught once, in `main`: its lines go to
stderr and the status is 78 (EX_CONFIG), which the systemd unit does not restart on. Usage
errors exit 2. A command module imports what only it needs inside ``run``: every start
imports every command module.

This module's interface: `main` (the console entry point), `build_parser`, `COMMANDS`.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from ackwatch import __version__
from ackwatch.cli import (
    backfill,
    check_config,
    check_mailboxes,
    deadline,
    hash_password,
    migrate_state,
    promise,
    report,
    run,
    status,
)
from ackwatch.cli.common import EX_USAGE, err
from ackwatch.config import DEFAULT_CONFIG_PATH, EX_CONFIG, ConfigError


@dataclass(frozen=True)
class Command:
    help: str
    add_arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int]


COMMANDS: dict[str, Command] = {
    module.NAME: Command(module.HELP, module.add_arguments, module.run)
    for module in (check_config, check_mailboxes, deadline, run, status, report, promise,
                   backfill, migrate_state, hash_password)
}


def default_config_path(environ: Mapping[str, str] | None = None) -> str:
    """``$ACKWATCH_CONFIG``, else ``/etc/ackwatch/config.yaml``."""
    env = os.environ if environ is None else environ
    return env.get("ACKWATCH_CONFIG") or str(DEFAULT_CONFIG_PATH)


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "-c",
        "--config",
        default=default_config_path(),
        metavar="FILE",
        help="the config file (default: $ACKWATCH_CONFIG, else /etc/ackwatch/config.yaml; "
        "here: %(default)s)",
    )
    parser = argparse.ArgumentParser(
        prog="ackwatch",
        description="Make sure every client email gets a human acknowledgement in time.",
    )
    parser.add_argument("--version", action="version", version=f"ackwatch {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, cmd in COMMANDS.items():
        p = sub.add_parser(name, parents=[common], help=cmd.help, description=cmd.help)
        cmd.add_arguments(p)
        p.set_defaults(run=cmd.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version, usage errors: keep argparse's status
        return exc.code if isinstance(exc.code, int) else EX_USAGE
    if getattr(args, "run", None) is None:
        parser.print_help(sys.stderr)
        return EX_USAGE
    try:
        return args.run(args)
    except ConfigError as exc:
        err(exc.render())
        return EX_CONFIG
    except KeyboardInterrupt:
        return 130


__all__ = ["COMMANDS", "build_parser", "main"]
