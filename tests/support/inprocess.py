"""The real `Daemon` in the test process, for the digest, hourly cap and outbox tests.

No IMAP: the state is written through the store as the sync would, the clock is a
settable `Clock`, and mail goes to a real SMTP server (the `sink` fixture, aiosmtpd),
declared by the test modules that import it.
"""

from __future__ import annotations

import datetime as dt

import pytest
from tests.servers.smtp import SmtpSink

from ackwatch.core.item_rules import Deadlines, Item
from ackwatch.daemon.service import Daemon
from ackwatch.store.sqlite import SqliteStore as Store
from configfactory import ANNA, make_config

WARSAW = dt.timezone(dt.timedelta(hours=1))  # November: CET
MONDAY_0900 = dt.datetime(2026, 11, 23, 9, 0, tzinfo=WARSAW)


class Clock:
    def __init__(self, t: dt.datetime):
        self.t = t

    def __call__(self) -> dt.datetime:
        return self.t


@pytest.fixture
def sink():
    with SmtpSink() as s:
        yield s


def daemon(tmp_path, sink, clock, **changes) -> Daemon:
    config = make_config(state_dir=tmp_path, smtp=sink.smtp_config(), **changes)
    store = Store.open(tmp_path)
    return Daemon(config, store, now=clock, reload=lambda: config)


def due_item(key: str, at: dt.datetime) -> Item:
    """A client mail to Anna whose nudge and escalation are both due at ``at``."""
    return Item(key=key, thread=key, message_id=f"<{key}@acme.example>",
                client_address="jan@acme.example", client="Acme", subject="Quote " + key,
                received=at - dt.timedelta(hours=3), mailboxes=("anna",), account=ANNA,
                deadlines=Deadlines("retainer", "calendar", at, at, at), ack=None)
