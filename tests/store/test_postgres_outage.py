"""PostgreSQL restarting under the store: a transaction it cuts leaves nothing half
written, the store says so (`StoreUnavailable`), reconnects, and the same operation done
again is stored once. What stops ackwatch for good (a wrong password, a newer schema)
stays a `StoreError`. On a PostgreSQL server of the test's own, restarted for real."""

from __future__ import annotations

import dataclasses
import datetime as dt

import pytest
from tests.servers.postgres import PASSWORD, database_config
from tests.support.storing import T0, new, store_step

from ackwatch.config.model import SecretRef
from ackwatch.core.item_rules import Deadlines, Item
from ackwatch.store import StoreError, StoreUnavailable, open_store
from ackwatch.store.schema import SCHEMA_VERSION

H = dt.timedelta(hours=1)


@pytest.fixture
def server(restartable_postgres):
    return restartable_postgres


@pytest.fixture
def database(server):
    return database_config(server, server.new_database())


def item(key: str) -> Item:
    return Item(
        key=key, thread=key, message_id=key, client_address="c@client.example", client="Acme",
        subject="Quote", received=T0, mailboxes=("anna",), account="anna@agency.example",
        deadlines=Deadlines("default", "calendar", T0 + 2 * H, T0 + H, None), ack=None,
    )


def restart_inside(monkeypatch, server, module, name: str, mode: str) -> None:
    """Restart ``server`` the moment the store calls ``module.name`` (inside its
    transaction), then let the call go on, onto the connection the restart cut."""
    original = getattr(module, name)

    def cut(*args, **kwargs):
        monkeypatch.setattr(module, name, original)  # once
        server.restart(mode)
        return original(*args, **kwargs)

    monkeypatch.setattr(module, name, cut)


@pytest.mark.parametrize("mode", ["fast", "immediate"])
def test_a_sync_step_cut_by_a_restart_stores_nothing_and_is_stored_once_when_done_again(
        server, database, tmp_path, monkeypatch, mode):
    from ackwatch.store import messages

    store = open_store(tmp_path, database=database)
    store_step(store, [new(1)], now=T0)
    # The copies are inserted, then the server restarts before their links are.
    restart_inside(monkeypatch, server, messages, "write_links", mode)
    with pytest.raises(StoreUnavailable, match="lost the connection to the state database"):
        store_step(store, [new(2), new(3)], now=T0)
    store.reconnect()
    assert store.message_count() == 1
    assert store.cursors("anna")["INBOX"].last_uid == 1  # the cursor did not move either
    assert store_step(store, [new(2), new(3)], now=T0) == 2
    assert store.message_count() == 3
    assert store.cursors("anna")["INBOX"].last_uid == 3
    store.close()


@pytest.mark.parametrize("table", ["messages", "links"])
def test_a_first_sync_cut_by_a_restart_inside_its_copy_stores_nothing_and_is_stored_once(
        server, database, tmp_path, monkeypatch, table):
    from ackwatch.store.postgres import bulk

    monkeypatch.setattr(bulk, "COPY_ROWS", 2)  # the step's rows go through COPY
    store = open_store(tmp_path, database=database)
    original = bulk._copy

    def cut(conn, sql, types, rows):  # type: ignore[no-untyped-def]
        if f"COPY {table} " in sql:
            monkeypatch.setattr(bulk, "_copy", original)  # once
            server.restart("immediate")
        return original(conn, sql, types, rows)

    monkeypatch.setattr(bulk, "_copy", cut)
    copies = [new(uid) for uid in range(1, 6)]
    with pytest.raises(StoreUnavailable, match="lost the connection to the state database"):
        store_step(store, copies, now=T0, initial=True)
    store.reconnect()

    def links() -> int:
        return store._db.conn.execute("SELECT COUNT(*) FROM links").fetchone()[0]

    assert store.message_count() == 0 and links() == 0
    assert store_step(store, copies, now=T0, initial=True) == 5
    assert store.message_count() == 5 and links() > 0
    store.close()


def test_marking_a_mail_sent_cut_by_a_restart_leaves_the_row_and_its_items_queued(
        server, database, tmp_path, monkeypatch):
    from ackwatch.store import outbox

    store = open_store(tmp_path, database=database)
    store.sync_items([item("a"), item("b")], now=T0, initial_keys=set())
    oid = store.enqueue(kind="nudge", recipient="anna@agency.example", cc=(), account=None,
                        nudge_keys=["a", "b"], escalation_keys=[], message_id="<x@y>", now=T0)
    # The row is updated to "sent", then the server restarts before its items are.
    restart_inside(monkeypatch, server, outbox, "_settle_members", "immediate")
    with pytest.raises(StoreUnavailable):
        store.outbox_sent(oid, T0)
    store.reconnect()
    assert [o.id for o in store.outbox_pending()] == [oid]
    assert {r.nudge_done for r in store.items()} == {"queued"}
    store.outbox_sent(oid, T0)
    assert store.outbox_pending() == []
    assert {r.nudge_done for r in store.items()} == {"sent"}
    store.close()


def test_every_operation_after_a_restart_says_unavailable_until_reconnected(
        server, database, tmp_path):
    store = open_store(tmp_path, database=database)
    reader = store.open_reader()
    store.set_meta("a", "1")
    server.restart("fast")
    with pytest.raises(StoreUnavailable):
        store.get_meta("a")  # a read
    with pytest.raises(StoreUnavailable):
        store.set_meta("a", "2")  # a write
    with pytest.raises(StoreUnavailable):
        reader.get_meta("a")  # a watcher's reader
    store.reconnect()
    reader.reconnect()
    store.set_meta("a", "2")
    assert reader.get_meta("a") == "2"
    reader.close()
    store.close()


def test_reconnecting_while_the_server_is_down_is_unavailable_then_succeeds(
        server, database, tmp_path):
    store = open_store(tmp_path, database=database)
    server.stop_for_now()
    try:
        with pytest.raises(StoreUnavailable, match="cannot connect to the state database"):
            store.reconnect()
    finally:
        server.start_again()
    store.reconnect()
    store.set_meta("back", "1")
    assert store.get_meta("back") == "1"
    store.close()


def test_a_password_refused_at_a_reconnect_stops_for_good_and_never_shows(
        server, database, tmp_path):
    store = open_store(tmp_path, database=database)
    with server.connect_admin() as admin:
        admin.execute("ALTER ROLE ackwatch_test PASSWORD 'changed-by-ops-91b2'")
    try:
        server.restart("fast")
        with pytest.raises(StoreError) as info:
            store.reconnect()
    finally:
        admin = __import__("psycopg").connect(
            host=server.host, port=server.port, user="ackwatch_test",
            password="changed-by-ops-91b2", dbname="postgres", autocommit=True)
        admin.execute(f"ALTER ROLE ackwatch_test PASSWORD '{PASSWORD}'")
        admin.close()
    assert not isinstance(info.value, StoreUnavailable)
    assert "password authentication failed" in str(info.value)
    assert PASSWORD not in str(info.value)
    store.close()


def test_a_schema_made_newer_meanwhile_stops_at_the_reconnect(server, database, tmp_path):
    store = open_store(tmp_path, database=database)
    newer = open_store(tmp_path, database=database)
    with newer._write() as c:
        c.execute("UPDATE schema_version SET version = ?", (SCHEMA_VERSION + 1,))
    newer.close()
    server.restart("fast")
    with pytest.raises(StoreError, match="newer than this ackwatch") as info:
        store.reconnect()
    assert not isinstance(info.value, StoreUnavailable)
    store.close()


def test_a_database_that_is_gone_is_not_an_outage(server, database, tmp_path):
    store = open_store(tmp_path, database=database)
    gone = dataclasses.replace(database, dbname="no_such_state")
    with pytest.raises(StoreError) as info:
        open_store(tmp_path, database=gone)
    assert not isinstance(info.value, StoreUnavailable)
    store.close()


def test_a_secret_that_cannot_be_read_is_not_an_outage(database, tmp_path):
    missing = dataclasses.replace(database, password=SecretRef("env", "NO_SUCH_PG_PASSWORD"))
    with pytest.raises(StoreError) as info:
        open_store(tmp_path, database=missing)
    assert not isinstance(info.value, StoreUnavailable)
