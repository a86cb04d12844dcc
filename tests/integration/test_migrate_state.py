"""`ackwatch migrate-state`: an SQLite state moved into PostgreSQL keeps its history,
items, outbox, promises and cursors, and the report over it says what it said before."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from tests.servers.postgres import PASSWORD, SUPERUSER, database_config
from tests.support.report_state import ANNA, PIOTR, write_config
from tests.support.run_once import ackwatch
from tests.support.storing import store_step

from ackwatch.core.item_rules import Ack, Deadlines, Item
from ackwatch.store import NewMessage, NewPromise, open_store
from ackwatch.store.postgres.migrate import TABLES

pytestmark = pytest.mark.integration

WAW = ZoneInfo("Europe/Warsaw")
WEEK = ("--since", "2024-11-11", "--until", "2024-11-18")


def at(day: int, hour: int, minute: int = 0) -> dt.datetime:
    return dt.datetime(2024, 11, day, hour, minute, tzinfo=WAW)


def _item(n: int, received: dt.datetime, ack: dt.datetime | None, account: str,
          address: str, client: str | None) -> Item:
    deadline = received + dt.timedelta(hours=2)
    return Item(
        key=f"<c{n}@example>", thread=f"<c{n}@example>", message_id=f"<c{n}@example>",
        client_address=address, client=client, subject=f"Quote {n}", received=received,
        mailboxes=("anna",), account=account,
        deadlines=Deadlines("default", "business", deadline,
                            deadline - dt.timedelta(minutes=30), deadline),
        ack=None if ack is None else Ack(f"<re{n}@agency.example>", ack, "reply", account),
    )


ITEMS = [
    _item(1, at(12, 10), at(12, 10, 45), PIOTR, "grace@globex.example", "Globex"),
    _item(2, at(11, 10), at(12, 9, 20), ANNA, "ola@sklep-kwiatowy.example", "Sklep Kwiatowy"),
    _item(3, at(15, 16), at(18, 11), ANNA, "ola@sklep-kwiatowy.example", "Sklep Kwiatowy"),
    _item(4, at(13, 12), None, ANNA, "ceo@acme.example", "Acme"),
    _item(5, at(14, 10), at(14, 10, 10), PIOTR, "lead@gmail.com", None),
]


def _sqlite_state(cfg: Path) -> None:
    """A state as a daemon leaves it: mail and a cursor, items, a sent nudge and a
    queued one, a promise, a mailbox's health."""
    store = open_store(cfg.parent / "state")
    try:
        now = at(18, 12)
        store_step(store, [
            NewMessage(uid, at(12, 10), frozenset({"\\Seen"}),
                       f"Message-ID: <c{uid}@example>\r\nFrom: Grace <grace@globex.example>"
                       f"\r\nTo: {ANNA}\r\nSubject: Quote {uid}\r\n\r\n".encode())
            for uid in (1, 2)
        ], now=now, uidvalidity=7, reset=True)
        store.sync_items(ITEMS, now=now, initial_keys=set())
        sent = store.enqueue(kind="nudge", recipient=ANNA, cc=[], account=ANNA,
                             nudge_keys=["<c3@example>"], escalation_keys=[],
                             message_id="<n1@ackwatch>", now=now)
        store.outbox_sent(sent, now)
        store.enqueue(kind="nudge", recipient=ANNA, cc=[PIOTR], account=ANNA,
                      nudge_keys=["<c4@example>"], escalation_keys=[],
                      message_id="<n2@ackwatch>", now=now)
        store.record_promise_read("<re2@agency.example>", state="done", now=now,
                                  promise=NewPromise(
                                      source_key="<re2@agency.example>", thread="<c2@example>",
                                      item_key="<c2@example>", account=ANNA,
                                      client="Sklep Kwiatowy",
                                      client_address="ola@sklep-kwiatowy.example",
                                      subject="Quote 2", made_at=at(12, 9, 20),
                                      promised=at(13, 12), remind_at=at(13, 10),
                                      sentence="I will send it by Wednesday noon."))
        store.set_health("anna", "up", since=now, last_error=None)
    finally:
        store.close()


def _report(cfg: Path) -> dict:
    result = ackwatch("report", "-c", str(cfg), "--format", "json", *WEEK)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def _with_database(cfg: Path, url: str, secret: Path) -> Path:
    moved = cfg.with_name("config-pg.yaml")
    moved.write_text(cfg.read_text() + f"database:\n  url: {url}\n  password_file: {secret}\n"
                     "  sslmode: disable\n")
    moved.chmod(0o600)
    return moved


@pytest.fixture
def target(postgres_server, tmp_path):
    database = database_config(postgres_server, postgres_server.new_database())
    return database, Path(database.password.value)


def test_the_report_over_the_migrated_history_is_the_report_before(tmp_path, target):
    database, secret = target
    cfg = write_config(tmp_path)
    _sqlite_state(cfg)
    before = _report(cfg)
    assert before["totals"]["client_emails"] == 5

    result = ackwatch("migrate-state", "-c", str(cfg), "--to", database.url,
                      "--password-file", str(secret), "--sslmode", "disable")
    assert result.returncode == 0, result.stderr
    assert "the counts match" in result.stdout
    assert PASSWORD not in result.stdout + result.stderr

    moved = _with_database(cfg, database.url, secret)
    assert _report(moved) == before
    sqlite = open_store(tmp_path / "state", readonly=True)
    postgres = open_store(tmp_path / "state", readonly=True, database=database)
    try:
        assert postgres.cursors("anna") == sqlite.cursors("anna")
        assert postgres.outbox_pending() == sqlite.outbox_pending()
        assert postgres.promises() == sqlite.promises()
        assert postgres.items() == sqlite.items()
        assert postgres.health() == sqlite.health()
        reached = sqlite.reached_since(at(18, 11), [ANNA, PIOTR])
        assert reached == {ANNA: [at(18, 12)] * 2, PIOTR: [at(18, 12)]}
        assert postgres.reached_since(at(18, 11), [ANNA, PIOTR]) == reached
        assert postgres.load_copies() == sqlite.load_copies()
        for table in TABLES:
            count = f"SELECT COUNT(*) FROM {table}"
            assert (postgres._conn.execute(count).fetchone()[0]
                    == sqlite._conn.execute(count).fetchone()[0]), table
    finally:
        sqlite.close()
        postgres.close()

    # New rows continue after the copied ids: the next outbox row is the third.
    writer = open_store(tmp_path / "state", database=database)
    try:
        assert writer.enqueue(kind="nudge", recipient=ANNA, cc=[], account=ANNA,
                              nudge_keys=[], escalation_keys=[], message_id="<n3@ackwatch>",
                              now=at(18, 13)) == 3
    finally:
        writer.close()


def test_a_target_that_holds_anything_is_refused_and_left_as_it_was(tmp_path, target):
    database, secret = target
    cfg = write_config(tmp_path)
    _sqlite_state(cfg)
    moved = _with_database(cfg, database.url, secret)
    first = ackwatch("migrate-state", "-c", str(moved), "--to", database.url)
    assert first.returncode == 0, first.stderr  # the config's own section, same URL
    again = ackwatch("migrate-state", "-c", str(moved), "--to", database.url)
    assert again.returncode == 73
    assert "not empty" in again.stderr and "migrate-state copies into an empty" in again.stderr
    assert _report(moved) == _report(cfg)


def test_a_password_in_the_target_url_is_refused_without_showing_it(tmp_path, postgres_server):
    cfg = write_config(tmp_path)
    url = f"postgresql://{SUPERUSER}:{PASSWORD}@127.0.0.1:{postgres_server.port}/x"
    result = ackwatch("migrate-state", "-c", str(cfg), "--to", url)
    assert result.returncode == 2
    assert result.stderr.startswith("ackwatch migrate-state: --to: the URL must not hold")
    assert PASSWORD not in result.stdout + result.stderr
