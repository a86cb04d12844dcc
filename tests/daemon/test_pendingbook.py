"""The metrics' counts kept by deltas equal the counts of every pending item
(`daemon/pendingbook.py`)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import random

from ackwatch.daemon.pendingbook import PendingBook
from ackwatch.store import ItemRecord

T0 = dt.datetime(2026, 11, 23, 8, 0, tzinfo=dt.UTC)
ACCOUNTS = ["anna@agency.example", "piotr@agency.example", None]


def record(
    key: str, account: str | None, deadline: dt.datetime, received: dt.datetime | None = None
) -> ItemRecord:
    fields = {f.name: None for f in dataclasses.fields(ItemRecord)}
    received = received or deadline - dt.timedelta(hours=4)
    fields.update(key=key, account=account, deadline=deadline, received=received, mailboxes=())
    return ItemRecord(**fields)  # type: ignore[arg-type]


def recount(items: dict[str, ItemRecord], now: dt.datetime) -> tuple[dict, dict]:
    pending: dict[str, int] = {}
    overdue: dict[str, int] = {}
    for r in items.values():
        a = r.account or "-"
        pending[a] = pending.get(a, 0) + 1
        if r.deadline <= now:
            overdue[a] = overdue.get(a, 0) + 1
    return pending, overdue


def test_counts_kept_by_deltas_equal_a_recount_of_every_pending_item():
    rng = random.Random(24)
    for _ in range(50):
        stored: dict[str, ItemRecord] = {}
        book = PendingBook()
        book.reset([])
        now = T0
        for _step in range(40):
            # An evaluation touches a few keys: new items, answered ones, new deadlines.
            touched = {f"k{rng.randrange(30)}" for _ in range(rng.randrange(1, 5))}
            for key in touched:
                if rng.random() < 0.4:
                    stored.pop(key, None)
                else:
                    deadline = now + dt.timedelta(minutes=rng.randrange(-30, 90))
                    stored[key] = record(key, rng.choice(ACCOUNTS), deadline)
            book.replace(touched, [stored[k] for k in touched if k in stored])
            now += dt.timedelta(minutes=rng.randrange(0, 20))
            pending, overdue = recount(stored, now)
            assert (book.pending, dict(book.overdue(now)), len(book)) == (
                pending, overdue, len(stored))
        book.reset(stored.values())
        assert (book.pending, dict(book.overdue(now))) == recount(stored, now)


def oldest(items: dict[str, ItemRecord]) -> tuple[dict, dict]:
    received: dict[str, dt.datetime] = {}
    deadline: dict[str, dt.datetime] = {}
    for r in items.values():
        a = r.account or "-"
        received[a] = min(received.get(a, r.received), r.received)
        deadline[a] = min(deadline.get(a, r.deadline), r.deadline)
    return received, deadline


def test_oldest_waiting_mail_and_earliest_deadline_per_account_equal_a_recount():
    rng = random.Random(22)
    for _ in range(50):
        stored: dict[str, ItemRecord] = {}
        book = PendingBook()
        book.reset([])
        for step in range(60):
            touched = {f"k{rng.randrange(30)}" for _ in range(rng.randrange(1, 5))}
            for key in touched:
                if rng.random() < 0.4:
                    stored.pop(key, None)
                else:  # a new item, or one evaluated again (a new deadline, account)
                    received = T0 + dt.timedelta(minutes=step * 10 - rng.randrange(0, 600))
                    deadline = received + dt.timedelta(minutes=rng.randrange(30, 600))
                    stored[key] = record(key, rng.choice(ACCOUNTS), deadline, received)
            book.replace(touched, [stored[k] for k in touched if k in stored])
            assert (dict(book.oldest_received()), dict(book.earliest_deadline())) == oldest(
                stored)
