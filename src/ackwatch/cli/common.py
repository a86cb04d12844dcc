"""What every command shares: exit codes, printing, the config, argument types.

The ``ackwatch`` command is the only place that prints and picks exit codes: a command
returns its status; a `ConfigError` becomes 78 (EX_CONFIG) in `ackwatch.cli.main`.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from typing import TYPE_CHECKING, TextIO

from ackwatch.config import Config, load_config

if TYPE_CHECKING:
    from ackwatch.store import Store

EX_OK = 0
EX_USAGE = 2
EX_UNAVAILABLE = 69  # no mailbox could be reached (run --once, backfill)
EX_CANTCREAT = 73  # the state database cannot be opened or written
EX_TEMPFAIL = 75  # run --once, backfill: nodes are running on this state now


def out(text: str = "", file: TextIO | None = None) -> None:
    print(text, file=file or sys.stdout)


def err(text: str) -> None:
    print(text, file=sys.stderr)


def load(args: argparse.Namespace) -> Config:
    return load_config(args.config)


def open_state(config: Config, *, readonly: bool = False) -> Store | None:
    """The state store, or None once stderr says why it cannot be opened (the command
    then exits EX_CANTCREAT)."""
    from ackwatch.store import StoreError, open_store

    try:
        return open_store(config.state_dir, readonly=readonly, database=config.database)
    except StoreError as exc:
        err(f"ackwatch: {exc}")
        return None


def nodes_running(config: Config, store: Store, command: str) -> bool:
    """True once stderr says that nodes run on this PostgreSQL state (a heartbeat
    younger than ``cluster.lease``, a mailbox lease or the lead): a one-off ``command``
    that watches or writes beside them would hold no lease (the command then exits
    EX_TEMPFAIL). Always False with SQLite: one process at a time there."""
    if config.database is None:
        return False
    view = store.cluster_view()
    live = {*view.live_nodes(max_age=config.cluster.lease.total_seconds()),
            *view.leases.values(), *([view.leader] if view.leader else [])}
    if not live:
        return False
    err(f"ackwatch {command}: {plural(len(live), 'node')} running on this state "
        f"({', '.join(sorted(live))}; {plural(len(view.leases), 'mailbox lease')} held"
        f"{', one leads' if view.leader else ''}). It would watch and write beside them "
        "without a lease; stop them first (`ackwatch status --nodes` lists them), or "
        "leave the work to them.")
    return True


def plural(n: int, word: str, plural: str | None = None) -> str:
    return f"{n} {word if n == 1 else plural or word + 's'}"


def iso_datetime(text: str) -> dt.datetime:
    """An argparse type: an ISO 8601 date and time (with or without an offset)."""
    try:
        return dt.datetime.fromisoformat(text.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"not an ISO 8601 date and time: {text!r} (e.g. 2026-03-06T16:10 or "
            "2026-03-06T16:10+01:00)"
        ) from None
