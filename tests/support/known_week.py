"""The known week of the report's tests: Mon 9 - Mon 16 Nov 2026 in Europe/Warsaw (UTC+1),
office hours Mon-Fri 09:00-17:00, Wednesday 11 Nov a Polish public holiday (Independence
Day). Every instant is a literal; `now` is Mon 16 Nov 10:50."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from ackwatch.reporting.figures import ReportItem
from configfactory import ANNA, PIOTR, make_config

WAW = ZoneInfo("Europe/Warsaw")
CONFIG = make_config()
SINCE = dt.datetime(2026, 11, 9, tzinfo=WAW)
UNTIL = dt.datetime(2026, 11, 16, tzinfo=WAW)
NOW = dt.datetime(2026, 11, 16, 10, 50, tzinfo=WAW)


def at(day: int, hour: int, minute: int = 0) -> dt.datetime:
    """An instant in November 2026, Warsaw time."""
    return dt.datetime(2026, 11, day, hour, minute, tzinfo=WAW)


def item(key: str, received: dt.datetime, deadline: dt.datetime, ack: dt.datetime | None, *,
         client: str | None = "Globex", address: str = "grace@globex.example",
         account: str | None = PIOTR, policy: str = "default", clock: str = "business",
         subject: str | None = None, dropped: bool = False) -> ReportItem:
    return ReportItem(
        key=key, client=client, client_address=address, account=account,
        subject=subject or f"Subject {key}", received=received, deadline=deadline, ack_at=ack,
        policy=policy, clock=clock, dropped=dropped,
    )


SKLEP = {"client": "Sklep Kwiatowy", "address": "ola@sklep-kwiatowy.example", "account": ANNA}

WEEK = [
    # Globex (piotr, 2h business): 30 business minutes, in time.
    item("a1", at(9, 10), at(9, 12), at(9, 10, 30)),
    # Received at 16:30: 30 min on Monday + 45 on Tuesday = 75, deadline Tue 10:30.
    item("a2", at(9, 16, 30), at(10, 10, 30), at(10, 9, 45)),
    # Tue 16:00; Wednesday is a holiday: 60 + 0 + 30 = 90 business minutes (41.5 wall hours).
    item("a3", at(10, 16), at(12, 10), at(12, 9, 30), **SKLEP),
    # Fri 16:00 over the weekend: 60 + 100 = 160 business minutes, deadline Mon 10:00: late.
    item("a4", at(13, 16), at(16, 10), at(16, 10, 40), **SKLEP),
    # Never answered, deadline passed: overdue (a miss).
    item("a5", at(12, 11), at(12, 13), None, **SKLEP),
    # Acme, retainer (24h calendar clock), received on the holiday evening: 720 wall minutes.
    item("a6", at(11, 20), at(12, 20), at(12, 8), client="Acme", address="ceo@mail.example",
         account=ANNA, policy="retainer", clock="calendar"),
    # An unknown sender: grouped under its domain.
    item("a7", at(12, 14), at(12, 16), at(12, 14, 5), client=None, address="Jan@Gmail.COM"),
    # Sunday night, due Mon 11:00, after `now`: open, left out of the service level.
    item("a8", at(15, 22), at(16, 11), None, **SKLEP),
    # A policy since removed from the config, stored as business: the default's calendar.
    item("a11", at(13, 9), at(13, 11), at(13, 12), policy="legacy"),
    # Not counted: dropped, and received outside [since, until).
    item("d1", at(10, 9), at(10, 11), None, dropped=True),
    item("x1", at(8, 23, 59), at(9, 10), None),
    item("x2", at(16, 0), at(16, 11), None),
]
