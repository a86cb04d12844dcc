"""A state database lost for now (`StoreUnavailable`) is waited out in the process, and
the work it cut is done again, never lost nor doubled: an event taken from the queue
stays first in line, a mail SMTP accepted is recorded as sent rather than sent again.
The outage is logged once, shown in the metrics, bounded by ``give_up_after``.

No server here: a store that loses its database on chosen operations until
`reconnect` (the real restarts are `tests/faults/test_postgres_restart.py`).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import threading

import pytest
from structlog.testing import capture_logs

from ackwatch.core.item_rules import Deadlines, Item
from ackwatch.daemon import outage
from ackwatch.daemon.metrics import Metrics
from ackwatch.daemon.outage import DatabaseOutage
from ackwatch.daemon.service import Daemon
from ackwatch.mail.sync import FolderCursor, FolderSync, FolderSyncEvent
from ackwatch.mail.uidfetch import FetchedMessage
from ackwatch.store import StoreError, StoreUnavailable
from ackwatch.store.sqlite import SqliteStore
from configfactory import make_config

NOW = dt.datetime(2026, 11, 23, 9, 0, tzinfo=dt.UTC)  # a Monday


class LosesItsDatabase:
    """The store, but the operations named in ``lose`` find the database gone (before
    doing anything, as a cut transaction stores nothing) from the moment `lose` is
    called until `reconnect`."""

    def __init__(self, store: SqliteStore, *, fail_reconnects: int = 0) -> None:
        self._store = store
        self._lost: set[str] = set()
        self.fail_reconnects = fail_reconnects
        self.reconnects = 0

    def lose(self, *operations: str) -> None:
        self._lost.update(operations)

    def reconnect(self) -> None:
        self.reconnects += 1
        if self.fail_reconnects:
            self.fail_reconnects -= 1
            raise StoreUnavailable("db: cannot connect to the state database: refused")
        self._lost.clear()

    def __getattr__(self, name: str):
        attr = getattr(self._store, name)
        if not callable(attr):
            return attr

        def operation(*args, **kwargs):
            if name in self._lost:
                raise StoreUnavailable(f"db: lost the connection to the state database ({name})")
            return attr(*args, **kwargs)

        return operation


@pytest.fixture
def store(tmp_path):
    s = SqliteStore.open(tmp_path)
    yield LosesItsDatabase(s)
    s.close()


def mail(uid: int) -> FetchedMessage:
    head = (f"Message-ID: <m{uid}@acme.example>\r\nFrom: jan.kowalski@acme.example\r\n"
            f"To: anna@agency.example\r\nSubject: Quote {uid}\r\n\r\n").encode()
    return FetchedMessage(uid, NOW - dt.timedelta(minutes=60 - uid), frozenset(), head)


def inbox_event(uid: int) -> FolderSyncEvent:
    return FolderSyncEvent("anna", FolderSync(
        "INBOX", "inbox", FolderCursor(1, uid), new_messages=(mail(uid),)))


def test_an_event_that_met_a_lost_database_is_applied_first_once_it_is_back(store, tmp_path):
    config = make_config(state_dir=tmp_path)
    daemon = Daemon(config, store, now=lambda: NOW, reload=lambda: config)  # type: ignore[arg-type]
    daemon.post(inbox_event(1))
    daemon.post(inbox_event(2))
    store.lose("apply_folder_sync")
    with pytest.raises(StoreUnavailable):
        daemon.drain_events()
    assert daemon.outage.ride_out(StoreUnavailable("lost"))
    assert daemon.drain_events() == 2
    assert store.cursors("anna")["INBOX"].last_uid == 2  # the later event applied last
    assert store.message_count() == 2


def test_a_mail_smtp_accepted_while_the_database_was_lost_is_recorded_not_sent_again(
        store, tmp_path):
    config = make_config(state_dir=tmp_path)
    sent: list[str] = []
    daemon = Daemon(config, store, now=lambda: NOW, reload=lambda: config,  # type: ignore[arg-type]
                    send=lambda msg, _cfg: sent.append(str(msg["Message-ID"])))
    item = Item(
        key="<m1@acme.example>", thread="<m1@acme.example>", message_id="<m1@acme.example>",
        client_address="jan.kowalski@acme.example", client="Acme", subject="Quote",
        received=NOW, mailboxes=("anna",), account="anna@agency.example",
        deadlines=Deadlines("default", "calendar", NOW, NOW, None), ack=None,
    )
    store.sync_items([item], now=NOW, initial_keys=set())
    oid = store.enqueue(kind="nudge", recipient="anna@agency.example", cc=(), account=None,
                        nudge_keys=[item.key], escalation_keys=[], message_id="<n1@ackwatch>",
                        now=NOW)
    store.lose("outbox_sent")  # SMTP says 250; the database is gone before it is recorded
    with pytest.raises(StoreUnavailable):
        daemon.process_outbox()
    assert sent == ["<n1@ackwatch>"]
    store.reconnect()
    daemon.process_outbox()
    assert sent == ["<n1@ackwatch>"]  # once
    assert store.outbox_pending() == []
    assert [r.nudge_done for r in store.items()] == ["sent"]
    assert oid


def outage_of(store, *, give_up_after: dt.timedelta = dt.timedelta(minutes=10),
              stop: threading.Event | None = None):
    metrics = Metrics()
    said: list[str] = []
    beats: list[int] = []
    ride = DatabaseOutage(
        store, give_up_after=lambda: give_up_after, stop=stop or threading.Event(),
        heartbeat=lambda: beats.append(1), status=said.append, up=metrics.set_database_up,
    )
    return ride, metrics, said, beats


@pytest.fixture
def quick(monkeypatch):
    monkeypatch.setattr(outage, "FIRST_RETRY_SECONDS", 0.001)
    monkeypatch.setattr(outage, "MAX_RETRY_SECONDS", 0.002)


def test_an_outage_is_logged_once_when_it_starts_and_once_when_it_ends(store, quick):
    store.fail_reconnects = 3
    ride, metrics, said, beats = outage_of(store)
    with capture_logs() as logs:
        assert ride.ride_out(StoreUnavailable("db: lost the connection"))
    events = [e["event"] for e in logs]
    assert events == ["database_unreachable", "database_reconnected"]
    assert logs[0]["log_level"] == "warning" and logs[0]["error"] == "db: lost the connection"
    assert logs[1]["attempts"] == 4 and logs[1]["outage_s"] >= 0
    assert len(said) == 3 and all(s.startswith("state database unreachable for") for s in said)
    assert len(beats) >= 4  # the watchdog fed at every attempt and wait
    text = metrics.render().decode()
    assert "ackwatch_database_up 1.0" in text
    assert "ackwatch_database_outages_total 1.0" in text


def test_the_metrics_say_the_database_is_down_while_it_is_waited_for(store, quick):
    ride, metrics, _, _ = outage_of(store)
    seen: list[str] = []
    store.fail_reconnects = 1
    original = store.reconnect

    def look_then_reconnect() -> None:
        seen.append(metrics.render().decode())
        original()

    store.reconnect = look_then_reconnect  # type: ignore[method-assign]
    assert ride.ride_out(StoreUnavailable("lost"))
    assert "ackwatch_database_up 0.0" in seen[0]


def test_an_outage_longer_than_give_up_after_is_a_store_error_that_ends_the_daemon(
        store, quick):
    store.fail_reconnects = 10**6
    ride, _, _, _ = outage_of(store, give_up_after=dt.timedelta(0))
    with capture_logs() as logs, pytest.raises(StoreError) as info:
        ride.ride_out(StoreUnavailable("lost"))
    assert not isinstance(info.value, StoreUnavailable)
    assert "database.give_up_after" in str(info.value)
    assert [e["event"] for e in logs][-1] == "database_outage_too_long"


def test_a_database_that_refuses_us_at_the_reconnect_ends_the_daemon(store, quick):
    def refused() -> None:
        raise StoreError("db: cannot connect: password authentication failed")

    store.reconnect = refused  # type: ignore[method-assign]
    ride, _, _, _ = outage_of(store)
    with pytest.raises(StoreError, match="password authentication failed"):
        ride.ride_out(StoreUnavailable("lost"))


def test_a_stop_asked_during_an_outage_ends_the_wait(store, quick):
    stop = threading.Event()
    stop.set()
    store.fail_reconnects = 10**6
    ride, _, _, _ = outage_of(store, stop=stop)
    assert ride.ride_out(StoreUnavailable("lost")) is False


def test_give_up_after_is_read_from_the_config(tmp_path):
    from ackwatch.config.model import DatabaseConfig

    db = DatabaseConfig(url="postgresql://a@h/d", host="h", port=5432, user="a", dbname="d",
                        give_up_after=dt.timedelta(seconds=42))
    config = make_config(state_dir=tmp_path, database=db)
    s = SqliteStore.open(tmp_path)
    try:
        daemon = Daemon(config, s, now=lambda: NOW, reload=lambda: config)
        assert outage.give_up_after(daemon.config) == dt.timedelta(seconds=42)
        sqlite_only = Daemon(dataclasses.replace(config, database=None), s, now=lambda: NOW)
        assert outage.give_up_after(sqlite_only.config) == dt.timedelta(0)
    finally:
        s.close()
