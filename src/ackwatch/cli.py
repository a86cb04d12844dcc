"""The ``ackwatch`` command: argparse, output and exit codes (the only module that prints).

Each subcommand is a pair registered in `COMMANDS`: a function that adds its arguments
to its subparser and a function ``(args) -> exit status`` that runs it. Every subcommand
gets ``-c/--config`` (default ``$ACKWATCH_CONFIG``, else ``/etc/ackwatch/config.yaml``).
A `ConfigError` is caught once, in `main`: its lines go to stderr and the status is 78
(EX_CONFIG), which the systemd unit does not restart on. Usage errors exit 2.

Adding a subcommand (run, status, report, backfill, promise) is one function pair::

    def _status_arguments(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--json", action="store_true")

    @command("status", "show mailboxes, pending items and the next action", _status_arguments)
    def cmd_status(args: argparse.Namespace) -> int:
        config = _load(args)  # a ConfigError here becomes exit 78 in main
        ...
        return EX_OK
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, TextIO
from zoneinfo import ZoneInfo

from ackwatch import __version__
from ackwatch import credentials as secrets
from ackwatch.config import DEFAULT_CONFIG_PATH, EX_CONFIG, Config, ConfigError, load_config
from ackwatch.core.printable import clean, json_text

if TYPE_CHECKING:
    from ackwatch.store.sqlite import PromiseRecord, Store

EX_OK = 0
EX_USAGE = 2


@dataclass(frozen=True)
class Command:
    help: str
    add_arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int]


COMMANDS: dict[str, Command] = {}


def command(name: str, help: str, add_arguments: Callable[[argparse.ArgumentParser], None]):
    """Register ``run(args) -> int`` as subcommand ``name``."""

    def register(run: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
        COMMANDS[name] = Command(help, add_arguments, run)
        return run

    return register


def _out(text: str = "", file: TextIO | None = None) -> None:
    print(text, file=file or sys.stdout)


def _err(text: str) -> None:
    print(text, file=sys.stderr)


def _load(args: argparse.Namespace) -> Config:
    return load_config(args.config)


def _plural(n: int, word: str, plural: str | None = None) -> str:
    return f"{n} {word if n == 1 else plural or word + 's'}"


# --------------------------------------------------------------------------- check-config


def _check_config_arguments(parser: argparse.ArgumentParser) -> None:
    del parser  # only -c/--config


@command(
    "check-config",
    "validate the config file; report every error, and warnings about secrets and files",
    _check_config_arguments,
)
def cmd_check_config(args: argparse.Namespace) -> int:
    config = _load(args)
    _out(
        "config OK: "
        + ", ".join(
            [
                _plural(len(config.mailboxes), "mailbox", "mailboxes"),
                _plural(len(config.calendars), "calendar"),
                _plural(len(config.policies), "policy", "policies"),
                _plural(len(config.accounts), "account"),
                _plural(len(config.clients), "client"),
            ]
        )
    )
    for warning in config_warnings(config):
        _err(f"warning: {warning}")
    return EX_OK


def config_warnings(config: Config, environ: Mapping[str, str] | None = None) -> list[str]:
    """Things that load fine but will probably not work as intended (never a secret):
    secrets this shell cannot see, lax file modes, no smtp, missing files."""
    warnings: list[str] = []
    warnings += secrets.secret_warnings(config, environ)
    warnings += secrets.permission_warnings(config)
    if config.smtp is None:
        warnings.append("smtp: not configured: no nudge, escalation or digest can be sent")
    if not config.agency.domains and not config.agency.addresses:
        warnings.append(
            "agency: no domains and no addresses: only the watched mailboxes and the accounts "
            "count as agency side"
        )
    if config.notify.templates_dir is not None and not config.notify.templates_dir.is_dir():
        warnings.append(f"notify.templates_dir: {config.notify.templates_dir} is not a directory")
    for i, mb in enumerate(config.mailboxes):
        if mb.ca_file is not None and not mb.ca_file.is_file():
            warnings.append(f"mailboxes[{i}].ca_file: {mb.ca_file} does not exist")
    smtp_ca = config.smtp.ca_file if config.smtp is not None else None
    if smtp_ca is not None and not smtp_ca.is_file():
        warnings.append(f"smtp.ca_file: {smtp_ca} does not exist")
    from ackwatch.daemon.httpserve import is_loopback, parse_listen

    if config.metrics.listen and not is_loopback(parse_listen(config.metrics.listen)[0]):
        warnings.append(
            f"metrics.listen: {config.metrics.listen} is not a loopback address: whoever "
            "reaches it reads account addresses and mailbox names; listen on 127.0.0.1 "
            "behind a proxy, or firewall the port"
        )
    managers = [a for a in config.accounts if a.manager]
    if (
        config.accounts
        and not managers
        and any(p.escalate_after is not None for p in config.policies.values())
    ):
        warnings.append("accounts: no account has a manager, so nothing is ever escalated")
    return warnings


# --------------------------------------------------------------------------- deadline


def _iso_datetime(text: str) -> dt.datetime:
    try:
        return dt.datetime.fromisoformat(text.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"not an ISO 8601 date and time: {text!r} (e.g. 2026-03-06T16:10 or "
            "2026-03-06T16:10+01:00)"
        ) from None


def _deadline_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--from", dest="sender", required=True, metavar="ADDR", help="the sender's address"
    )
    parser.add_argument(
        "--received",
        required=True,
        type=_iso_datetime,
        metavar="ISO8601",
        help="when the mail arrived; without an offset it is in the config's timezone",
    )
    parser.add_argument(
        "--to",
        dest="to",
        action="append",
        default=[],
        metavar="ADDR",
        help="a recipient (repeatable; default: the first mailbox's owner)",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object")


_REASONS = {
    "client": "a configured client",
    "unknown-sender-tracked": "an unknown sender (unknown_senders: track)",
    "agency-sender": "the sender is on the agency side (agency.domains, agency.addresses, "
    "a watched mailbox or an account)",
    "unknown-sender-ignored": "the sender matches no client and unknown_senders is ignore",
    "ignored:ignore-sender": "the sender matches ignore.senders",
    "ignored:ignore-subject": "the subject matches ignore.subjects",
}

_FIELDS = (
    "policy",
    "clock",
    "client",
    "account",
    "received",
    "deadline",
    "nudge_at",
    "escalate_at",
)


def _value(value: object) -> object:
    return value.isoformat() if isinstance(value, dt.datetime) else value


@command(
    "deadline",
    "show the policy, responsible account, deadline, nudge and escalation for a mail",
    _deadline_arguments,
)
def cmd_deadline(args: argparse.Namespace) -> int:
    from ackwatch.core import item_rules as sla

    config = _load(args)
    received: dt.datetime = args.received
    if received.tzinfo is None or received.utcoffset() is None:
        received = received.replace(tzinfo=ZoneInfo(config.timezone))
    sender = args.sender.strip().lower()
    if "@" not in sender:
        _err(f"ackwatch deadline: error: --from: not an email address: {args.sender!r}")
        return EX_USAGE
    to = tuple(a.strip().lower() for a in args.to if a.strip())
    explanation = sla.explain(config, sender, received, to)

    record = {name: _value(getattr(explanation, name)) for name in _FIELDS}
    record["tracked"] = explanation.tracked
    record["reason"] = explanation.reason
    if args.json:
        _out(json_text(record, indent=None))
        return EX_OK
    if not explanation.tracked:
        why = _REASONS.get(explanation.reason, explanation.reason)
        _out(f"not tracked: {why} ({explanation.reason})")
        _out(f"{'received:':<13}{record['received']}")
        return EX_OK
    _out(f"{'tracked:':<13}{_REASONS.get(explanation.reason, explanation.reason)}")
    for name in _FIELDS:
        value = record[name]
        if value is None:
            value = "never" if name == "escalate_at" else "-"
        _out(f"{name + ':':<13}{value}")
    return EX_OK


# --------------------------------------------------------------------------- run

EX_UNAVAILABLE = 69  # no mailbox could be reached (run --once)
EX_CANTCREAT = 73  # the state database cannot be opened or written


def _run_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--once",
        action="store_true",
        help="sync every mailbox once, update items, send what is due, and exit",
    )


def _enable_stack_dumps(on_demand: int) -> None:
    """Every thread's stack to stderr (journald) when the daemon hangs: on a fatal signal,
    SIGABRT included (what systemd sends when the watchdog is not fed), and on
    ``on_demand`` (SIGUSR1: ``systemctl kill -s USR1 ackwatch``) without stopping it.
    Only file names, lines and function names are written: no values, so no secret."""
    import faulthandler

    faulthandler.enable(all_threads=True)
    faulthandler.register(on_demand, all_threads=True, chain=False)


@command("run", "watch the mailboxes and send nudges and escalations (the daemon)", _run_arguments)
def cmd_run(args: argparse.Namespace) -> int:
    import signal

    from ackwatch.daemon.once import sync_once
    from ackwatch.daemon.service import Daemon
    from ackwatch.logs import configure_logging
    from ackwatch.store.sqlite import Store, StoreError

    config = _load(args)
    configure_logging(level=config.log.level, subjects=config.log.subjects)
    try:
        store = Store.open(config.state_dir)
    except StoreError as exc:
        _err(f"ackwatch: {exc}")
        return EX_CANTCREAT
    daemon = Daemon(config, store)
    try:
        if args.once:
            reached, failed = sync_once(daemon)
            daemon.step()
            if not reached:
                _err(
                    "ackwatch: no mailbox could be reached ("
                    + ", ".join(failed)
                    + "); see the log above"
                )
                return EX_UNAVAILABLE
            return EX_OK
        signal.signal(signal.SIGTERM, lambda *_: daemon.request_stop())
        signal.signal(signal.SIGINT, lambda *_: daemon.request_stop())
        signal.signal(signal.SIGHUP, lambda *_: daemon.request_reload())
        _enable_stack_dumps(signal.SIGUSR1)
        undo_wake = daemon.wake_on_signals()
        try:
            daemon.run()
        finally:
            undo_wake()
        return EX_OK
    except StoreError as exc:
        _err(f"ackwatch: {exc}")
        return EX_CANTCREAT
    finally:
        store.close()


# --------------------------------------------------------------------------- status


def _status_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--json",
        action="store_true",
        help="print the open items as a JSON array (with --mailboxes: the mailboxes' health)",
    )
    parser.add_argument(
        "--mailboxes", action="store_true", help="with --json: print the mailboxes' health"
    )
    parser.add_argument(
        "--promises",
        action="store_true",
        help="with --json: print the open promises (made to clients, not yet kept or moved)",
    )


def _iso(value: dt.datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def _left(deadline: dt.datetime, now: dt.datetime) -> str:
    seconds = int((deadline - now).total_seconds())
    overdue = seconds < 0
    minutes_total = -(-abs(seconds) // 60)  # round up: "1m overdue", never "0m"
    days, rest = divmod(minutes_total, 1440)
    hours, minutes = divmod(rest, 60)
    text = f"{days}d{hours}h" if days else f"{hours}h{minutes:02d}m" if hours else f"{minutes}m"
    return f"{text} overdue" if overdue else text


def _local(t: dt.datetime, zone: ZoneInfo) -> dt.datetime:
    """``t`` in ``zone``; in UTC when the conversion would overflow (year 1 or 9999)."""
    try:
        return t.astimezone(zone)
    except OverflowError:
        return t.astimezone(dt.UTC)


def _cut(text: str | None, width: int) -> str:
    """``text`` made safe to print (`clean`), cut to ``width`` characters with "…"."""
    text = clean(text)
    return text if len(text) <= width else text[: width - 1] + "…"


@command("status", "show the open items and the mailboxes' health (also while running)",
         _status_arguments)
def cmd_status(args: argparse.Namespace) -> int:
    from ackwatch.store.sqlite import Store, StoreError

    config = _load(args)
    try:
        store = Store.open(config.state_dir, readonly=True)
    except StoreError as exc:
        _err(f"ackwatch: {exc}")
        return EX_CANTCREAT
    now = dt.datetime.now(dt.UTC)
    try:
        items = store.items(state="pending")
        health = store.health()
        promised = _open_promises(store, now)
    finally:
        store.close()
    zone = ZoneInfo(config.timezone)
    if args.json:
        if args.promises:
            data: object = [_promise_json(p, now) for p in promised]
        elif args.mailboxes:
            data: object = [
                {
                    "mailbox": h.mailbox,
                    "state": h.state,
                    "since": _iso(h.since),
                    "last_error": h.last_error,
                    "last_sync": _iso(h.last_sync),
                }
                for h in health
            ]
        else:
            data = [
                {
                    "message_id": r.message_id,
                    "key": r.key,
                    "from": r.client_address,
                    "client": r.client,
                    "subject": r.subject,
                    "received": _iso(r.received),
                    "deadline": _iso(r.deadline),
                    "nudge_at": _iso(r.nudge_at),
                    "escalate_at": _iso(r.escalate_at),
                    "account": r.account,
                    "policy": r.policy,
                    "mailboxes": list(r.mailboxes),
                    "state": "overdue" if r.deadline <= now else r.state,
                    "nudge": r.nudge_done,
                    "escalation": r.escalation_done,
                }
                for r in items
            ]
        _out(json_text(data))
        return EX_OK
    _out("Mailboxes:")
    known = {h.mailbox: h for h in health}
    for mb in config.mailboxes:
        h = known.get(mb.name)
        if h is None:
            _out(f"  {clean(mb.name):<16} never synced")
            continue
        synced = _local(h.last_sync, zone).strftime("%Y-%m-%d %H:%M:%S") if h.last_sync else "never"
        error = f"  ({_cut(h.last_error, 40)})" if h.last_error and h.state != "up" else ""
        _out(f"  {clean(mb.name):<16} {clean(h.state):<12} last sync {synced}{error}")
    _out("")
    if not items:
        _out("No client email waits for an acknowledgement.")
        _print_promises(promised, zone, now)
        return EX_OK
    _out(f"{_plural(len(items), 'client email')} waiting for an acknowledgement:")
    _out(f"  {'ACCOUNT':<16} {'CLIENT':<12} {'SUBJECT':<20} {'RECEIVED':<11} {'DEADLINE':<11} LEFT")
    for r in items:
        account = (r.account or "-").split("@")[0]
        client = r.client or r.client_address
        _out(
            f"  {_cut(account, 16):<16} {_cut(client, 12):<12} {_cut(r.subject, 20):<20} "
            f"{_local(r.received, zone).strftime('%a %H:%M'):<11} "
            f"{_local(r.deadline, zone).strftime('%a %H:%M'):<11} {_left(r.deadline, now)}"
        )
    _print_promises(promised, zone, now)
    return EX_OK


OPEN_PROMISE_HORIZON = dt.timedelta(days=30)  # broken promises listed this long after


def _open_promises(store: Store, now: dt.datetime) -> list[PromiseRecord]:
    """Promises still waiting for the client to hear back: open ones, and broken ones
    (the date passed) that no message followed, for 30 days. [] on a pre-promise state
    database."""
    import sqlite3

    try:
        records = store.promises(states=("open", "broken"))
    except sqlite3.Error:
        return []
    return [
        p
        for p in records
        if p.follow_key is None and (p.state == "open" or p.promised >= now - OPEN_PROMISE_HORIZON)
    ]


def _promise_json(p: PromiseRecord, now: dt.datetime) -> dict[str, object]:
    state = "overdue" if p.promised <= now else "open"
    return {
        "id": p.id,
        "account": p.account,
        "client": p.client,
        "client_address": p.client_address,
        "subject": p.subject,
        "item_key": p.item_key,
        "thread": p.thread,
        "made_at": _iso(p.made_at),
        "promised": _iso(p.promised),
        "remind_at": _iso(p.remind_at),
        "sentence": p.sentence,
        "state": state,
        "reminder": p.reminder_done,
        "overdue_notice": p.overdue_done,
    }


def _print_promises(promised: list[PromiseRecord], zone: ZoneInfo, now: dt.datetime) -> None:
    if not promised:
        return
    _out("")
    _out(f"{_plural(len(promised), 'open promise')} to clients:")
    _out(f"  {'ACCOUNT':<16} {'CLIENT':<12} {'PROMISED':<11} {'LEFT':<13} SENTENCE")
    for p in promised:
        account = (p.account or "-").split("@")[0]
        client = p.client or p.client_address
        sentence = " ".join(p.sentence.split())
        _out(
            f"  {_cut(account, 16):<16} {_cut(client, 12):<12} "
            f"{_local(p.promised, zone).strftime('%a %H:%M'):<11} "
            f"{_left(p.promised, now):<13} \"{_cut(sentence, 60)}\""
        )


# --------------------------------------------------------------------------- report

REPORT_FORMATS = ("table", "json", "csv", "html")


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


def _report_arguments(parser: argparse.ArgumentParser) -> None:
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
                        help="table (default), json, csv (one row per email) or html")
    parser.add_argument("--output", "-o", metavar="FILE",
                        help="write to FILE (a new 0600 file: it holds client subjects) "
                        "instead of standard output; only a regular file is replaced")
    parser.add_argument("--target", type=_report_target, default=0.9, metavar="SHARE",
                        help="the service-level target shown in table and html (default 0.9)")


def _report_period(
    args: argparse.Namespace, config: Config, now: dt.datetime
) -> tuple[dt.datetime, dt.datetime]:
    from ackwatch.reporting.report import default_period, parse_bound

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
    import sqlite3

    try:
        return store.promise_rows(since, until)
    except sqlite3.OperationalError:  # no such table
        return []


@command("report", "service level over a period: totals, per account and client, breaches",
         _report_arguments)
def cmd_report(args: argparse.Namespace) -> int:
    import gc
    import sqlite3

    from ackwatch.core import promise_rules as promises
    from ackwatch.reporting import report
    from ackwatch.store.sqlite import Store, StoreError

    config = _load(args)
    now = dt.datetime.now(dt.UTC)
    try:
        since, until = _report_period(args, config, now)
    except ValueError as exc:
        _err(f"ackwatch report: {exc}")
        return EX_USAGE
    # A short-lived process that builds up to millions of objects and frees none: the
    # cyclic collector would only rescan them (a third of the run time at 1M items).
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        try:
            store = Store.open(config.state_dir, readonly=True)
        except StoreError as exc:
            _err(f"ackwatch: {exc}")
            return EX_CANTCREAT
        try:
            if args.format == "csv":  # one row per item: every column of every item
                items = store.report_rows(since, until, report.ReportItem)
                result = report.compute(items, config, since=since, until=until, now=now)
            else:  # figures and breaches only: streamed, no object per item
                rows = store.report_rows(since, until, stored=True)
                result = report.compute_stored(rows, config, since=since, until=until,
                                               now=now)
            promise_rows = _promise_rows(store, since, until)
        except sqlite3.Error as exc:
            _err(f"ackwatch: {store.path}: cannot read the state database: {exc}")
            return EX_CANTCREAT
        finally:
            store.close()
        kept = promises.figures(promise_rows)
        if args.format == "json":
            data = report.to_json_data(result)
            data["promises"] = promises.figures_json(kept)
            text = json_text(data) + "\n"
        elif args.format == "csv":
            text = report.render_csv(result)
        elif args.format == "html":
            text = report.render_html(result, target=args.target)
        else:
            text = report.render_table(result, target=args.target)
            text += "\n" + promises.figures_table(kept)
    finally:
        if gc_was_enabled:
            gc.enable()
    if args.output and args.output != "-":
        from ackwatch.private import RefusedPath, write_private

        try:
            write_private(args.output, text)
        except RefusedPath as exc:
            _err(f"ackwatch report: cannot write {clean(args.output)}: {clean(str(exc))}")
            return EX_CANTCREAT
        except OSError as exc:
            _err(f"ackwatch report: cannot write {args.output}: {exc.strerror or exc}")
            return EX_CANTCREAT
        _err(f"ackwatch report: written to {args.output}")
    else:
        sys.stdout.write(text)
        sys.stdout.flush()
    return EX_OK


# --------------------------------------------------------------------------- promise

_PROMISE_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_PROMISE_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct",
                   "Nov", "Dec")  # fmt: skip


def _promise_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--sent",
        required=True,
        type=_iso_datetime,
        metavar="ISO8601",
        help="when the acknowledgement was sent; without an offset it is in the config's "
        "timezone",
    )
    parser.add_argument(
        "--account",
        required=True,
        metavar="ADDR",
        help="who wrote it: its calendar (else the first calendar) gives the timezone and "
        "closing time, its language is tried first",
    )
    parser.add_argument(
        "--json", action="store_true", help='print {"promised": ISO 8601 or null, "sentence": ...}'
    )
    parser.add_argument(
        "text", nargs="?", metavar="TEXT", help="the reply's plain text (default: stdin)"
    )


def _promise_when(t: dt.datetime) -> str:
    return (
        f"{_PROMISE_DAYS[t.weekday()]} {t.day} {_PROMISE_MONTHS[t.month - 1]} {t.year} "
        f"{t:%H:%M}"
    )


@command(
    "promise",
    "find when an acknowledgement promises the work (\"by Friday noon\", \"do jutra\", ...)",
    _promise_arguments,
)
def cmd_promise(args: argparse.Namespace) -> int:
    from ackwatch.config import CalendarConfig, OpenRange
    from ackwatch.core.promise_text import find_promise

    config = _load(args)
    account = args.account.strip().lower()
    if "@" not in account:
        _err(f"ackwatch promise: error: --account: not an email address: {args.account!r}")
        return EX_USAGE
    sent: dt.datetime = args.sent
    if sent.tzinfo is None or sent.utcoffset() is None:
        sent = sent.replace(tzinfo=ZoneInfo(config.timezone))
    calendar = config.calendar_for_account(account)
    if calendar is None:
        office = (OpenRange(9 * 60, 17 * 60),)
        calendar = CalendarConfig("default", config.timezone, (office,) * 5 + ((),) * 2)
        _err(
            "ackwatch promise: warning: no calendar configured; using Mon-Fri 09:00-17:00 "
            f"in {config.timezone}"
        )
    known = config.account(account)
    if known is None:
        _err(f"ackwatch promise: warning: {account} is not a configured account")
    text = args.text if args.text is not None else sys.stdin.read()
    promise = find_promise(
        text,
        sent=sent,
        calendar=calendar,
        language_hint=known.language if known is not None else None,
    )
    if args.json:
        record = {
            "promised": promise.promised.isoformat() if promise else None,
            "sentence": promise.sentence if promise else None,
        }
        _out(json_text(record, indent=None))
        return EX_OK
    if promise is None:
        _out("no promise found")
        return EX_OK
    _out(f"promised: {_promise_when(promise.promised)} ({calendar.timezone})")
    _out(f"sentence: {clean(promise.sentence)}")
    return EX_OK


# --------------------------------------------------------------------------- backfill


def _backfill_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--since", required=True, metavar="DATE",
        help="import history received on or after this date (YYYY-MM-DD)",
    )


@command("backfill", "import older history so the report covers it (silent: no nudges)",
         _backfill_arguments)
def cmd_backfill(args: argparse.Namespace) -> int:
    from ackwatch.daemon.once import backfill
    from ackwatch.daemon.service import Daemon
    from ackwatch.logs import configure_logging
    from ackwatch.store.sqlite import Store, StoreError

    try:
        since = dt.date.fromisoformat(args.since)
    except ValueError:
        _err(f"ackwatch backfill: --since: expected a date like 2026-10-01, got {args.since!r}")
        return EX_USAGE
    config = _load(args)
    configure_logging(level=config.log.level, subjects=config.log.subjects)
    try:
        store = Store.open(config.state_dir)
    except StoreError as exc:
        _err(f"ackwatch: {exc}")
        return EX_CANTCREAT
    try:
        reached, failed, added = backfill(Daemon(config, store), since)
    except StoreError as exc:
        _err(f"ackwatch: {exc}")
        return EX_CANTCREAT
    finally:
        store.close()
    _out(f"backfill: {_plural(added, 'message')} imported from "
         f"{_plural(len(reached), 'mailbox', 'mailboxes')}"
         + (f"; failed: {', '.join(failed)}" if failed else ""))
    return EX_OK if reached else EX_UNAVAILABLE


# --------------------------------------------------------------------------- main


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
        _err(exc.render())
        return EX_CONFIG
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
