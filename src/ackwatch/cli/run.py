"""``ackwatch run``: the daemon (``--once``: one sync, one step, and exit)."""

from __future__ import annotations

import argparse

from ackwatch.cli.common import (
    EX_CANTCREAT,
    EX_OK,
    EX_TEMPFAIL,
    EX_UNAVAILABLE,
    err,
    load,
    nodes_running,
    open_state,
)
from ackwatch.config import EX_CONFIG

NAME = "run"
HELP = "watch the mailboxes and send nudges and escalations (the daemon)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--once",
        action="store_true",
        help="sync every mailbox once, update items, send what is due, and exit",
    )
    parser.add_argument(
        "--node",
        metavar="NAME",
        help="this node's name, unique among the nodes sharing one PostgreSQL state "
        "(default: the host name); in every log event and in the metrics",
    )


def _enable_stack_dumps(on_demand: int) -> None:
    """Every thread's stack to stderr (journald) when the daemon hangs: on a fatal signal,
    SIGABRT included (what systemd sends when the watchdog is not fed), and on
    ``on_demand`` (SIGUSR1: ``systemctl kill -s USR1 ackwatch``) without stopping it.
    Only file names, lines and function names are written: no values, so no secret."""
    import faulthandler

    faulthandler.enable(all_threads=True)
    faulthandler.register(on_demand, all_threads=True, chain=False)


def run(args: argparse.Namespace) -> int:
    import signal
    import socket

    from ackwatch.daemon.once import sync_once
    from ackwatch.daemon.service import Daemon
    from ackwatch.daemon.signals import StopDeadline, wake_on_signals
    from ackwatch.logs import configure_logging
    from ackwatch.store import StoreError

    config = load(args)
    node = args.node or socket.gethostname()
    configure_logging(level=config.log.level, subjects=config.log.subjects, node=node)
    store = open_state(config)
    if store is None:
        return EX_CANTCREAT
    try:
        if args.once and nodes_running(config, store, "run --once"):
            return EX_TEMPFAIL
        daemon = Daemon(config, store, node=None if args.once else node)
        if args.once:
            reached, failed = sync_once(daemon)
            daemon.step(report=False)
            if not reached:
                err(
                    "ackwatch: no mailbox could be reached ("
                    + ", ".join(failed)
                    + "); see the log above"
                )
                return EX_UNAVAILABLE
            return EX_OK
        deadline = StopDeadline()  # a stop stuck on a hung database ends anyway

        def stop(*_: object) -> None:
            daemon.request_stop()
            deadline.arm()

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        signal.signal(signal.SIGHUP, lambda *_: daemon.request_reload())
        _enable_stack_dumps(signal.SIGUSR1)
        undo_wake = wake_on_signals(daemon.events.put)  # after the handlers, main thread
        try:
            daemon.run()
        finally:
            undo_wake()
        if daemon.cluster.name_taken:  # another live process runs under this --node
            err(f"ackwatch: {daemon.cluster.name_taken}")
            return EX_CONFIG
        return EX_OK
    except StoreError as exc:
        err(f"ackwatch: {exc}")
        return EX_CANTCREAT
    finally:
        store.close()
