"""``ackwatch deadline``: the policy, responsible account, deadline, nudge and escalation a
mail from a given sender would get (nothing is read from a mailbox or the state)."""

from __future__ import annotations

import argparse
import datetime as dt
from zoneinfo import ZoneInfo

from ackwatch.cli.common import EX_OK, EX_USAGE, err, iso_datetime, load, out
from ackwatch.core.printable import json_text

NAME = "deadline"
HELP = "show the policy, responsible account, deadline, nudge and escalation for a mail"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--from", dest="sender", required=True, metavar="ADDR", help="the sender's address"
    )
    parser.add_argument(
        "--received",
        required=True,
        type=iso_datetime,
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


def run(args: argparse.Namespace) -> int:
    from ackwatch.core import explain

    config = load(args)
    received: dt.datetime = args.received
    if received.tzinfo is None or received.utcoffset() is None:
        received = received.replace(tzinfo=ZoneInfo(config.timezone))
    sender = args.sender.strip().lower()
    if "@" not in sender:
        err(f"ackwatch deadline: error: --from: not an email address: {args.sender!r}")
        return EX_USAGE
    to = tuple(a.strip().lower() for a in args.to if a.strip())
    explanation = explain.explain(config, sender, received, to)

    record = {name: _value(getattr(explanation, name)) for name in _FIELDS}
    record["tracked"] = explanation.tracked
    record["reason"] = explanation.reason
    if args.json:
        out(json_text(record, indent=None))
        return EX_OK
    if not explanation.tracked:
        why = _REASONS.get(explanation.reason, explanation.reason)
        out(f"not tracked: {why} ({explanation.reason})")
        out(f"{'received:':<13}{record['received']}")
        return EX_OK
    out(f"{'tracked:':<13}{_REASONS.get(explanation.reason, explanation.reason)}")
    for name in _FIELDS:
        value = record[name]
        if value is None:
            value = "never" if name == "escalate_at" else "-"
        out(f"{name + ':':<13}{value}")
    return EX_OK
