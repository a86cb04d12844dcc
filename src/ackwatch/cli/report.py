"""``ackwatch report``: the service level over a period, as a table, JSON, CSV or HTML,
to standard output or a new private file."""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from typing import TYPE_CHECKING

from ackwatch.cli.common import EX_CANTCREAT, EX_OK, EX_USAGE, err, load, open_state
from ackwatch.config import Config
from ackwatch.core.printable import clean

if TYPE_CHECKING:
    from ackwatch.store import Store

NAME = "report"
HELP = "service level over a period: totals, per account and client, breaches"

REPORT_FORMATS = ("table", "json", "csv", "csv-summary", "html")  # = reporting.render.FORMATS


def _report_target(text: str) -> float:
    """``0.9`` or ``90%`` -> 0.9 (a share in (0, 1])."""
    import math

    value = text.strip()
    try:
        number = float(value[:-1]) / 100 if value.endswith("%") else float(value)
    except ValueError:
        number = math.nan
    if not 0 < number <= 1:
        raise argparse.ArgumentTypeError(
            f"expected a share such as 0.9 or 90%, got {text!r}"
        )
    return number


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--since", metavar="DATE",
        help="first day (YYYY-MM-DD, 00:00 in the config's timezone) or an ISO 8601 instant; "
        "default: Monday 00:00 of last week (with only --until: 7 days before it)",
    )
    parser.add_argument(
        "--until", metavar="DATE",
        help="end, excluded (YYYY-MM-DD: 00:00 that day) or an ISO 8601 instant; default: "
        "Monday 00:00 of this week (with only --since: now)",
    )
    parser.add_argument("--format", choices=REPORT_FORMATS, default="table",
                        help="table (default), json, csv (one row per email), csv-summary "
                        "(one row per account and client, with promises) or html")
    parser.add_argument("--output", "-o", metavar="FILE",
                        help="write to FILE (a new 0600 file: it holds client subjects) "
                        "instead of standard output; only a regular file is replaced")
    parser.add_argument("--target", type=_report_target, default=0.9, metavar="SHARE",
                        help="the service-level target: clients below it are listed, however few "
                        "their emails (default 0.9)")


def _report_period(
    args: argparse.Namespace, config: Config, now: dt.datetime
) -> tuple[dt.datetime, dt.datetime]:
    from ackwatch.reporting.period import default_period, parse_bound

    since = parse_bound(args.since, config.timezone) if args.since else None
    until = parse_bound(args.until, config.timezone) if args.until else None
    if since is None and until is None:
        return default_period(now, config.timezone)
    if since is None:
        assert until is not None
        since = until - dt.timedelta(days=7)
    if until is None:
        until = now
    if since >= until:
        raise ValueError(f"the period is empty: --since {args.since} is not before the end")
    return since, until


def _promise_rows(
    store: Store, since: dt.datetime, until: dt.datetime
) -> list[tuple[str | None, str, str]]:
    """(account, client, state) of the promises made in the period; [] on a state database
    from before promises (schema 1, opened read-only)."""
    try:
        return store.promise_rows(since, until)
    except store.errors:  # no such table
        return []


def _ack_date_rows(
    store: Store, since: dt.datetime, until: dt.datetime, *, per_item: bool
) -> list[tuple[str | None, str | None, str | None, str, str, int]]:
    """What the keeper found in the period's acknowledgements; [] on a state database
    from before schema 7 (opened read-only, not migrated)."""
    import sqlite3

    try:
        return store.ack_date_rows(since, until, per_item=per_item)
    except sqlite3.OperationalError:  # no such column / table
        return []


def run(args: argparse.Namespace) -> int:
    from ackwatch.core import promise_rules as promises
    from ackwatch.gcpause import gc_paused
    from ackwatch.reporting import dates, figures
    from ackwatch.reporting.render import render_report

    config = load(args)
    now = dt.datetime.now(dt.UTC)
    try:
        since, until = _report_period(args, config, now)
    except ValueError as exc:
        err(f"ackwatch report: {exc}")
        return EX_USAGE
    # A short-lived process that builds up to millions of objects and frees none: the
    # cyclic collector would only rescan them (a third of the run time at 1M items).
    with gc_paused():
        store = open_state(config, readonly=True)
        if store is None:
            return EX_CANTCREAT
        try:
            if args.format == "csv":  # one row per item: every column of every item
                items = store.report_rows(since, until, figures.ReportItem)
                result = figures.compute(items, config, since=since, until=until, now=now)
            else:  # figures and breaches only: streamed, no object per item
                rows = store.report_rows(since, until, stored=True)
                result = figures.compute_stored(rows, config, since=since, until=until,
                                                now=now)
            promise_rows = _promise_rows(store, since, until)
            date_rows = _ack_date_rows(store, since, until, per_item=args.format == "csv")
        except store.errors as exc:
            err(f"ackwatch: {store.path}: cannot read the state database: {exc}")
            return EX_CANTCREAT
        finally:
            store.close()
        dated = dates.date_figures(date_rows, result)
        text = render_report(result, args.format, target=args.target, dates=dated,
                             promises=promises.figures(promise_rows))
    if args.output and args.output != "-":
        from ackwatch.private import RefusedPath, write_private

        try:
            write_private(args.output, text)
        except RefusedPath as exc:
            err(f"ackwatch report: cannot write {clean(args.output)}: {clean(str(exc))}")
            return EX_CANTCREAT
        except OSError as exc:
            err(f"ackwatch report: cannot write {args.output}: {exc.strerror or exc}")
            return EX_CANTCREAT
        err(f"ackwatch report: written to {args.output}")
    else:
        sys.stdout.write(text)
        sys.stdout.flush()
    return EX_OK
