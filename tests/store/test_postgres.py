"""What is PostgreSQL's own in the state on PostgreSQL: its schema version table, its
connection (placeholders, rows, text), its password and its read-only readers. The
operations themselves are the contract suite's (every test asking for ``store``)."""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import threading

import pytest
from tests.servers.postgres import PASSWORD, database_config

from ackwatch.config.model import SecretRef
from ackwatch.store import StoreError, open_store
from ackwatch.store.schema import SCHEMA_VERSION

T0 = dt.datetime(2026, 11, 23, 9, 0, tzinfo=dt.UTC)


@pytest.fixture
def database(postgres_server):
    return database_config(postgres_server, postgres_server.new_database())


def test_placeholders_become_numbered_and_quoted_text_is_left_alone():
    from ackwatch.store.postgres.connection import translate

    assert translate("SELECT a FROM t WHERE b = ? AND c LIKE 'x?%' AND d IN (?, ?)") == (
        "SELECT a FROM t WHERE b = $1 AND c LIKE 'x?%' AND d IN ($2, $3)"
    )


def test_a_new_database_gets_every_migration_and_reopening_changes_nothing(database, tmp_path):
    s = open_store(tmp_path, database=database)
    assert s._db.user_version() == SCHEMA_VERSION
    s.set_meta("kept", "1")
    s.close()
    s = open_store(tmp_path, database=database)
    assert s._db.user_version() == SCHEMA_VERSION and s.get_meta("kept") == "1"
    assert s._conn.execute("SELECT COUNT(*) FROM schema_version").fetchone()[0] == 1
    s.close()


def test_ackwatch_processes_starting_together_migrate_once(database, tmp_path):
    failures: list[BaseException] = []

    def start() -> None:
        try:
            open_store(tmp_path, database=database).close()
        except BaseException as exc:
            failures.append(exc)

    threads = [threading.Thread(target=start) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert failures == []


@pytest.mark.parametrize("readonly", [False, True])
def test_a_newer_schema_is_refused(database, tmp_path, readonly):
    s = open_store(tmp_path, database=database)
    with s._write() as c:
        c.execute("UPDATE schema_version SET version = ?", (SCHEMA_VERSION + 1,))
    s.close()
    with pytest.raises(StoreError, match="newer than this ackwatch"):
        open_store(tmp_path, readonly=readonly, database=database)


def test_a_reader_cannot_write_even_through_the_connection(database, tmp_path):
    writer = open_store(tmp_path, database=database)
    writer.set_meta("a", "1")
    reader = writer.open_reader()
    assert reader.get_meta("a") == "1"
    with pytest.raises(StoreError):
        reader.set_meta("a", "2")
    with pytest.raises(reader.errors):
        reader._conn.execute("UPDATE meta SET value = '3'")
    reader.close()
    writer.close()


@pytest.mark.parametrize("readonly", [False, True])
def test_a_connection_notices_a_silent_server_through_tcp_keepalives(database, readonly):
    from ackwatch.store.postgres.connection import TCP_OPTIONS, connect_raw

    raw = connect_raw(database, PASSWORD, readonly=readonly)
    try:
        parameters = raw.info.get_parameters()
    finally:
        raw.close()
    assert {k: parameters.get(k) for k in TCP_OPTIONS} == {
        k: str(v) for k, v in TCP_OPTIONS.items()}


@pytest.mark.parametrize("readonly", [False, True])
def test_a_connection_never_compiles_its_statements_just_in_time(database, readonly):
    # A first sync's statements, planned before the tables have statistics, cost
    # PostgreSQL's JIT half a second each to compile (bench/README.md, target 1).
    from ackwatch.store.postgres.connection import connect_raw

    raw = connect_raw(database, PASSWORD, readonly=readonly)
    try:
        assert raw.execute("SHOW jit").fetchone() == ("off",)
    finally:
        raw.close()


def test_a_wrong_password_is_a_clear_error_that_never_shows_a_password(database, tmp_path):
    secret = tmp_path / "wrong.pass"
    secret.write_text("not-" + PASSWORD)
    wrong = dataclasses.replace(database, password=SecretRef("file", str(secret)))
    with pytest.raises(StoreError) as info:
        open_store(tmp_path, database=wrong)
    text = str(info.value)
    assert text.startswith(f"{database.url}: cannot connect to the state database")
    assert "password authentication failed" in text
    assert PASSWORD not in text and "not-" not in text


def test_a_password_that_cannot_be_read_is_a_store_error(database, tmp_path):
    missing = dataclasses.replace(database, password=SecretRef("env", "NO_SUCH_PG_PASSWORD"))
    with pytest.raises(StoreError, match="NO_SUCH_PG_PASSWORD"):
        open_store(tmp_path, database=missing)


def test_batches_over_mail_just_stored_are_planned_with_its_statistics(database, tmp_path):
    """A first sync's copies have no statistics until autovacuum's first pass: without
    them a chunked ``key IN (...)`` of the batches is planned as a scan of the table."""
    from tests.support.storing import new, store_step

    s = open_store(tmp_path, database=database)
    store_step(s, [new(uid) for uid in range(1, 30)], now=T0)
    analyzed = ("SELECT relname FROM pg_stat_user_tables WHERE analyze_count > 0"
                " AND relname IN ('messages', 'links')")
    assert s._conn.execute(analyzed).fetchall() == []
    batches = list(s.linked_batches(T0 - dt.timedelta(days=400), frozenset(), 10))
    assert sum(len(b) for b in batches) == 29
    assert sorted(r[0] for r in s._conn.execute(analyzed)) == ["links", "messages"]
    s.close()


def test_text_with_a_nul_character_is_stored_not_refused(database, tmp_path):
    """PostgreSQL's text cannot hold NUL (SQLite's can): a hostile subject still stores."""
    from ackwatch.core.item_rules import Deadlines, Item

    s = open_store(tmp_path, database=database)
    item = Item(
        key="<n@x>", thread="<n@x>", message_id="<n@x>", client_address="c@client.example",
        client=None, subject="Quote\x00 now", received=T0, mailboxes=("anna",), account=None,
        deadlines=Deadlines("default", "calendar", T0, T0, None), ack=None,
    )
    s.sync_items([item], now=T0, initial_keys=set())
    assert [r.subject for r in s.items()] == ["Quote\ufffd now"]
    s.close()


def test_a_round_cut_off_mid_transaction_does_not_hold_the_leases_from_the_others(
        database, tmp_path):
    """Node "a" is cut off between its lease statement and its COMMIT (the server sees
    its session idle in a transaction, its row lock held). Its lease ran out: "b" takes
    it over once the server ends "a"'s session, not when the network gives up on it."""
    a = open_store(tmp_path, database=database)
    b = open_store(tmp_path, database=database)
    a.end_idle_transactions_after(0.2)
    a.claim_leases("a", ["anna"], -1.0)  # expired already
    locked, back = threading.Event(), threading.Event()

    def cut_off_mid_transaction() -> None:
        with contextlib.suppress(Exception), a._write() as c:
            c.execute("UPDATE mailbox_leases SET node = node WHERE mailbox = 'anna'")
            locked.set()
            back.wait(30)  # nothing more comes from "a" until the test ends

    holder = threading.Thread(target=cut_off_mid_transaction, daemon=True)
    holder.start()
    assert locked.wait(10)
    won: list[set[str]] = []
    claimer = threading.Thread(target=lambda: won.append(b.claim_leases("b", ["anna"], 30.0)),
                               daemon=True)
    claimer.start()
    claimer.join(15)
    back.set()
    holder.join(5)
    try:
        assert won == [{"anna"}], "b waited on a's row lock"
    finally:
        a.close()
        b.close()
