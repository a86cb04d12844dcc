"""Many rows written at once (``executemany``), on both backends: on PostgreSQL a
single-row ``INSERT`` goes as multi-row statements (`store.postgres.batch`), which must
store what one statement a row stores; a first sync's rows go in a few statements."""

from __future__ import annotations

import psycopg
import pytest
from tests.support.storing import T0, new, store_step

from ackwatch.store import Store
from ackwatch.store import database as store_database
from ackwatch.store.postgres import batch
from ackwatch.store.postgres import database as pg_database
from ackwatch.store.postgres.batch import row_insert

UPSERT_META = ("INSERT INTO meta (name, value) VALUES (?, ?)"
               " ON CONFLICT(name) DO UPDATE SET value = excluded.value")


def meta(store: Store) -> dict[str, str]:
    return {r[0]: r[1] for r in store._db.conn.execute("SELECT name, value FROM meta")}


def test_every_row_of_a_large_insert_is_stored_and_counted(store):
    rows = [(f"link{i}", f"<{i}@client.example>") for i in range(2 * batch.MAX_ROWS + 7)]
    with store._db.write() as c:
        written = c.executemany("INSERT INTO links (link, key) VALUES (?, ?)", rows).rowcount
    assert written == len(rows)
    stored = store._db.conn.execute("SELECT link, key FROM links ORDER BY link").fetchall()
    assert [tuple(r) for r in stored] == sorted(rows)


def test_a_repeated_row_under_do_nothing_keeps_the_first(store):
    rows = [("subject:quote", "<1@c>"), ("subject:quote", "<1@c>"), ("subject:quote", "<2@c>")]
    with store._db.write() as c:
        c.executemany("INSERT INTO links (link, key) VALUES (?, ?) ON CONFLICT DO NOTHING", rows)
    assert store.keys_linked({"subject:quote"}) == {"<1@c>", "<2@c>"}


def test_a_key_updated_twice_in_one_batch_ends_with_the_later_value(store):
    rows = [("a", "1"), ("b", "1"), ("a", "2"), ("c", "1"), ("a", "3"), ("b", "2")]
    with store._db.write() as c:
        c.executemany(UPSERT_META, rows)
    assert {k: v for k, v in meta(store).items() if k in "abc"} == {"a": "3", "b": "2", "c": "1"}


def test_a_failing_batch_stores_none_of_its_rows(store):
    rows = [(f"n{i}", "v") for i in range(batch.MAX_ROWS + 5)] + [("n0", "again")]
    with pytest.raises(Exception), store._db.write() as c:  # noqa: B017 - each backend raises its own
        c.executemany("INSERT INTO meta (name, value) VALUES (?, ?)", rows)
    assert not any(k.startswith("n") for k in meta(store))


@pytest.mark.parametrize("backend", ["postgresql"])
def test_a_first_sync_writes_its_copies_a_thousand_rows_a_statement(store, monkeypatch):
    sent: list[int] = []  # rows of each statement the server was sent

    def counted(cls: type, method: str, rows_of) -> None:  # type: ignore[no-untyped-def]
        original = getattr(cls, method)

        def spy(self, query, params=None, *a, **kw):  # type: ignore[no-untyped-def]
            if str(query).lstrip().upper().startswith("INSERT"):
                sent.extend(rows_of(query, params))
            return original(self, query, params, *a, **kw)
        monkeypatch.setattr(cls, method, spy)

    counted(psycopg.Cursor, "execute", lambda q, p: [str(q).count("),(") + 1])
    counted(psycopg.Cursor, "executemany", lambda q, p: [1] * len(list(p)))
    store_step(store, [new(uid) for uid in range(1, 2501)], now=T0, initial=True)
    assert store.message_count() == 2500
    # messages, senders (2,500 rows each) and links: 1,000 rows a statement, each table's
    # remainder in one more; the cursor's and the health's row one statement each
    assert sum(sent) >= 3 * 2500
    assert len(sent) <= sum(sent) // batch.MAX_ROWS + 3 + 2, repr(sent)


def test_single_row_inserts_are_taken_apart_and_the_rest_left_alone():
    links = row_insert("INSERT INTO links (link, key) VALUES (?, ?) ON CONFLICT DO NOTHING")
    assert links is not None and links.target == ()
    assert links.sql(2) == ("INSERT INTO links (link, key) VALUES ($1,$2),($3,$4)"
                            " ON CONFLICT DO NOTHING")
    literal = row_insert("INSERT INTO m (a, b, c) VALUES (?,?,1)")
    assert literal is not None and literal.sql(2) == "INSERT INTO m (a, b, c) VALUES ($1,$2,1),($3,$4,1)"
    upsert = row_insert(UPSERT_META)
    assert upsert is not None and upsert.target == (0,)
    for other in (
        "DELETE FROM dirty WHERE key = ? AND seq = ?",
        "UPDATE items SET state = ? WHERE key = ?",
        "INSERT INTO meta (name, value) VALUES (?, ?) ON CONFLICT(name) DO UPDATE SET value = ?",
        "INSERT INTO meta (name, value) VALUES (?, 'x') ON CONFLICT(value) DO UPDATE SET name = 'y'",
        "INSERT INTO meta (name, value) SELECT ?, ?",
    ):
        assert row_insert(other) is None, other


def test_a_repeated_conflict_target_starts_the_next_statement():
    upsert = row_insert(UPSERT_META)
    assert upsert is not None
    statements = list(upsert.statements([("a", "1"), ("b", "1"), ("a", "2")]))
    assert [p for _, p in statements] == [["a", "1", "b", "1"], ["a", "2"]]


def test_statements_hold_at_most_max_rows_rows_and_the_protocols_parameters():
    links = row_insert("INSERT INTO links (link, key) VALUES (?, ?)")
    assert links is not None
    sizes = [len(p) // 2 for _, p in links.statements([("l", str(i)) for i in range(2500)])]
    assert sizes == [batch.MAX_ROWS, batch.MAX_ROWS, 500]
    wide = row_insert(f"INSERT INTO t ({', '.join(f'c{i}' for i in range(100))})"
                      f" VALUES ({', '.join('?' * 100)})")
    assert wide is not None
    params = [len(p) for _, p in wide.statements([tuple(range(100))] * 1000)]
    assert max(params) <= batch.MAX_PARAMS and sum(params) == 100_000


def test_a_lookup_of_many_values_finds_each_stored_one_across_its_chunks(
        store, monkeypatch, backend):
    """`rows_in`: SQLite's ``IN`` in chunks, PostgreSQL's ``= ANY`` of arrays, both cut
    into several statements here; texts and integers, values absent or given twice."""
    monkeypatch.setattr(store_database, "CHUNK", 4)
    monkeypatch.setattr(pg_database, "ANY_VALUES", 4)
    store_step(store, [new(uid) for uid in range(1, 12)], now=T0, initial=True)
    keys = [f"<m{n}@client.example>" for n in (*range(1, 12, 2), 40, 41, 3)]
    found = {r[0] for r in store._db.rows_in(
        "SELECT DISTINCT key FROM messages WHERE key IN ({})", (), keys)}
    assert found == {f"<m{n}@client.example>" for n in range(1, 12, 2)}
    uids = [r[0] for r in store._db.rows_in(
        "SELECT uid FROM messages WHERE mailbox = ? AND uid IN ({})", ("anna",),
        [2, 4, 99, 2**40, 6, 8, 10])]
    assert sorted(uids) == [2, 4, 6, 8, 10]
