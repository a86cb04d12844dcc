"""What the keeper found in each acknowledgement, and the "say by when" notes
(store/asks.py, migration 7). Tests asking for ``store`` run on both backends."""

from __future__ import annotations

import datetime as dt
import sqlite3

from ackwatch.core.item_rules import Ack, Deadlines, Item
from ackwatch.store import Store
from ackwatch.store.database import DB_NAME
from ackwatch.store.schema import MIGRATIONS
from ackwatch.store.sqlite import SqliteStore

T0 = dt.datetime(2026, 11, 23, 9, 0, tzinfo=dt.UTC)
M = dt.timedelta(minutes=1)
ANNA = "anna@agency.example"


def acked(key: str, kind: str = "reply") -> Item:
    return Item(
        key=key, thread=key, message_id=key, client_address="c@client.example", client="Acme",
        subject="Quote " + key, received=T0, mailboxes=("anna",), account=ANNA,
        deadlines=Deadlines("default", "calendar", T0 + 120 * M, T0 + 90 * M, None),
        ack=Ack("r-" + key, T0 + 10 * M, kind, ANNA),
    )


def found(store: Store) -> dict[str, str]:
    rows = store.ack_date_rows(T0 - M, T0 + M, per_item=True)
    grouped = store.ack_date_rows(T0 - M, T0 + M)
    assert sorted(r[4:] for r in grouped) == sorted((what, 1) for *_, what, _ in rows)
    return {key: what for key, _, _, _, what, _ in rows}


def test_each_acknowledgement_is_with_date_without_date_or_not_read(store):
    store.sync_items([acked("a"), acked("b"), acked("c"), acked("d"), acked("e", "answered")],
                     now=T0, initial_keys=set())  # fmt: skip
    store.record_promise_read("r-a", state="promise", now=T0, text_read=True)
    store.record_promise_read("r-b", state="none", now=T0, text_read=True)
    store.record_promise_read("r-c", state="none", now=T0, text_read=False)  # no text part
    store.record_promise_read("r-d", state="failed", now=T0, attempts=6, text_read=False)
    assert found(store) == {"a": "date", "b": "no_date"}, "the others were not read"


def test_reads_from_before_the_migration_count_as_not_read(tmp_path):
    conn = sqlite3.connect(tmp_path / DB_NAME)
    for statement in ";".join(MIGRATIONS[:6]).split(";"):
        if statement.strip():
            conn.execute(statement)
    conn.execute("PRAGMA user_version = 6")
    conn.execute("INSERT INTO promise_reads (key, state, attempts, read_at) VALUES"
                 " ('r-a', 'none', 1, '2026-11-23T09:10:00.000000+00:00')")  # fmt: skip
    conn.commit()
    conn.close()
    store = SqliteStore.open(tmp_path)
    store.sync_items([acked("a")], now=T0, initial_keys=set())
    assert found(store) == {}
    assert store.date_ask_candidates(T0 - M) == [], "no note about what was never measured"
    store.close()


def test_a_note_is_queued_at_most_once_per_item(store):
    store.sync_items([acked("a"), acked("b")], now=T0, initial_keys=set())
    for key in ("r-a", "r-b"):
        store.record_promise_read(key, state="none", now=T0, text_read=True)
    assert [i.key for i in store.date_ask_candidates(T0)] == ["a", "b"]
    first = store.enqueue_date_asks(recipient=ANNA, account=ANNA, item_keys=["a"],
                                    message_id="<n1@x>", now=T0)  # fmt: skip
    store.mark_date_asks(["b"], "skipped", T0)
    assert store.date_ask_candidates(T0) == []
    again = store.enqueue_date_asks(recipient=ANNA, account=ANNA, item_keys=["a"],
                                    message_id="<n2@x>", now=T0)  # fmt: skip
    assert [i.key for i in store.date_asks_of_outbox(first)] == ["a"]
    assert store.date_asks_of_outbox(again) == []
    store.outbox_sent(first, T0)
    state = store._conn.execute("SELECT state FROM date_asks WHERE item_key = 'a'").fetchone()
    assert state[0] == "sent"
