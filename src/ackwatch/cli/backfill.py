"""``ackwatch backfill``: import older history so the report covers it (no nudges)."""

from __future__ import annotations

import argparse
import datetime as dt

from ackwatch.cli.common import (
    EX_CANTCREAT,
    EX_OK,
    EX_TEMPFAIL,
    EX_UNAVAILABLE,
    EX_USAGE,
    err,
    load,
    nodes_running,
    open_state,
    out,
    plural,
)

NAME = "backfill"
HELP = "import older history so the report covers it (silent: no nudges)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--since", required=True, metavar="DATE",
        help="import history received on or after this date (YYYY-MM-DD)",
    )


def run(args: argparse.Namespace) -> int:
    from ackwatch.daemon.once import backfill
    from ackwatch.daemon.service import Daemon
    from ackwatch.logs import configure_logging
    from ackwatch.store import StoreError

    try:
        since = dt.date.fromisoformat(args.since)
    except ValueError:
        err(f"ackwatch backfill: --since: expected a date like 2026-10-01, got {args.since!r}")
        return EX_USAGE
    config = load(args)
    configure_logging(level=config.log.level, subjects=config.log.subjects)
    store = open_state(config)
    if store is None:
        return EX_CANTCREAT
    try:
        if nodes_running(config, store, "backfill"):
            return EX_TEMPFAIL
        reached, failed, added = backfill(Daemon(config, store), since)
    except StoreError as exc:
        err(f"ackwatch: {exc}")
        return EX_CANTCREAT
    finally:
        store.close()
    out(f"backfill: {plural(added, 'message')} imported from "
         f"{plural(len(reached), 'mailbox', 'mailboxes')}"
         + (f"; failed: {', '.join(failed)}" if failed else ""))
    return EX_OK if reached else EX_UNAVAILABLE
