"""``ackwatch migrate-state``: copy the SQLite state into an empty PostgreSQL database."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from ackwatch.cli.common import EX_CANTCREAT, EX_OK, EX_USAGE, err, load, out, plural

if TYPE_CHECKING:
    from ackwatch.config.model import DatabaseConfig

NAME = "migrate-state"
HELP = ("copy the SQLite state (history, items, outbox, promises, cursors) into an empty "
        "PostgreSQL database; stop ackwatch first")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--to", required=True, metavar="URL",
        help="postgresql://user@host:port/dbname (no password in it); its password, sslmode "
        "and sslrootcert are the config's database section's when that names the same "
        "URL, else the options below",
    )
    secret = parser.add_mutually_exclusive_group()
    secret.add_argument("--password-file", metavar="FILE", help="the database password's file")
    secret.add_argument("--password-env", metavar="NAME",
                        help="the environment variable holding the database password")
    parser.add_argument("--sslmode", default=None, metavar="MODE",
                        help="verify-full (default), verify-ca, or disable (loopback only)")
    parser.add_argument("--sslrootcert", default=None, metavar="FILE",
                        help="the CA file to verify the server with")


def run(args: argparse.Namespace) -> int:
    from ackwatch.store import StoreError, open_store

    config = load(args)
    target = _target(args, config.database)
    if target is None:
        return EX_USAGE
    try:
        source = open_store(config.state_dir)
    except StoreError as exc:
        err(f"ackwatch: {exc}")
        return EX_CANTCREAT
    try:
        from ackwatch.store.postgres.migrate import copy_state

        destination = open_store(config.state_dir, database=target)
        try:
            counts = copy_state(source._db, destination._db)  # type: ignore[attr-defined]
        finally:
            destination.close()
    except StoreError as exc:
        err(f"ackwatch: {exc}")
        return EX_CANTCREAT
    finally:
        source.close()
    out(f"migrate-state: {source.path} -> {target.url}")
    for table, n in counts.items():
        out(f"  {table:<14} {plural(n, 'row')}")
    out("the counts match; point the config's database section at it and start ackwatch")
    return EX_OK


_OPTIONS = {"url": "--to", "password_file": "--password-file", "password_env": "--password-env",
            "sslmode": "--sslmode", "sslrootcert": "--sslrootcert"}


def _target(args: argparse.Namespace, configured: DatabaseConfig | None) -> DatabaseConfig | None:
    """The target, checked as the config file's ``database`` section is: the config's own
    when it names the same URL and no option is given; None after saying what is wrong."""
    from pathlib import Path

    from ackwatch.config.connections import database
    from ackwatch.config.problems import Ctx

    options = {key: getattr(args, option[2:].replace("-", "_"))
               for key, option in _OPTIONS.items()}
    options["url"] = args.to
    given = {k: v for k, v in options.items() if v is not None}
    if configured is not None and configured.url == args.to and len(given) == 1:
        return configured
    ctx = Ctx(Path.cwd())
    value = database(ctx, given)
    for problem in ctx.problems:
        key = problem.path.removeprefix("database").lstrip(".") or "url"
        err(f"ackwatch migrate-state: {_OPTIONS.get(key, key)}: {problem.message}")
    return None if ctx.problems else value
