"""``ackwatch promise``: when an acknowledgement's text promises the work ("by Friday
noon", "do jutra"), as the keeper would read it."""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from zoneinfo import ZoneInfo

from ackwatch.cli.common import EX_OK, EX_USAGE, err, iso_datetime, load, out
from ackwatch.core.printable import clean, json_text

NAME = "promise"
HELP = "find when an acknowledgement promises the work (\"by Friday noon\", \"do jutra\", ...)"

_PROMISE_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_PROMISE_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct",
                   "Nov", "Dec")  # fmt: skip


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--sent",
        required=True,
        type=iso_datetime,
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
        "--json", action="store_true",
        help='print {"promised": ISO 8601 or null, "sentence": ...}; with no date, also '
        '"sentences_read": [{"sentence", "why"}]'
    )
    parser.add_argument(
        "text", nargs="?", metavar="TEXT", help="the reply's plain text (default: stdin)"
    )


def _promise_when(t: dt.datetime) -> str:
    return (
        f"{_PROMISE_DAYS[t.weekday()]} {t.day} {_PROMISE_MONTHS[t.month - 1]} {t.year} "
        f"{t:%H:%M}"
    )


def run(args: argparse.Namespace) -> int:
    from ackwatch.config import CalendarConfig, OpenRange
    from ackwatch.core.promise_text import find_promise, sentences_read

    config = load(args)
    account = args.account.strip().lower()
    if "@" not in account:
        err(f"ackwatch promise: error: --account: not an email address: {args.account!r}")
        return EX_USAGE
    sent: dt.datetime = args.sent
    if sent.tzinfo is None or sent.utcoffset() is None:
        sent = sent.replace(tzinfo=ZoneInfo(config.timezone))
    calendar = config.calendar_for_account(account)
    if calendar is None:
        office = (OpenRange(9 * 60, 17 * 60),)
        calendar = CalendarConfig("default", config.timezone, (office,) * 5 + ((),) * 2)
        err(
            "ackwatch promise: warning: no calendar configured; using Mon-Fri 09:00-17:00 "
            f"in {config.timezone}"
        )
    known = config.account(account)
    if known is None:
        err(f"ackwatch promise: warning: {account} is not a configured account")
    text = args.text if args.text is not None else sys.stdin.read()
    promise = find_promise(
        text,
        sent=sent,
        calendar=calendar,
        language_hint=known.language if known is not None else None,
    )
    looked_at = (
        [] if promise is not None else sentences_read(
            text, sent=sent, calendar=calendar,
            language_hint=known.language if known is not None else None,
        )
    )
    if args.json:
        record: dict[str, object] = {
            "promised": promise.promised.isoformat() if promise else None,
            "sentence": promise.sentence if promise else None,
        }
        if promise is None:
            record["sentences_read"] = [{"sentence": s, "why": why} for s, why in looked_at]
        out(json_text(record, indent=None))
        return EX_OK
    if promise is None:
        out("no date found: the reply does not say by when")
        if not looked_at:
            out("  (no text left once quoted mail and signature are removed)")
        for sentence, why in looked_at:
            out(f"  - {clean(sentence)}")
            out(f"    {why}")
        return EX_OK
    out(f"promised: {_promise_when(promise.promised)} ({calendar.timezone})")
    out(f"sentence: {clean(promise.sentence)}")
    return EX_OK
