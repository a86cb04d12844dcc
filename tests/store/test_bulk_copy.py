"""Many rows of one ``INSERT`` (``executemany``) past `bulk.COPY_ROWS`, on both backends:
on PostgreSQL they go through ``COPY`` (`store.postgres.bulk`), which must store what
the multi-row statements store, row for row; SQLite stores them as always. The
threshold is lowered so that a few rows take that path."""

from __future__ import annotations

import pytest
from tests.support.storing import T0, new, store_step

from ackwatch.store import Store
from ackwatch.store.postgres import bulk

INSERT_COPY = (
    "INSERT INTO messages (mailbox, folder, uid, uidvalidity, role, key, received, flags,"
    " answered_at, gm_thrid, headers, first_seen, trace_headers)"
    " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,1)"
)
LINKS = "INSERT INTO links (link, key) VALUES (?, ?) ON CONFLICT DO NOTHING"
THREADS = "INSERT INTO threads (key, thread) VALUES (?, ?) ON CONFLICT DO NOTHING"


@pytest.fixture
def copies(monkeypatch, backend) -> list[str]:
    """The statements sent through ``COPY`` (none on SQLite), past a threshold of 3."""
    monkeypatch.setattr(bulk, "COPY_ROWS", 3)
    sent: list[str] = []
    original = bulk._copy

    def spy(conn, sql, types, rows):  # type: ignore[no-untyped-def]
        sent.append(sql)
        return original(conn, sql, types, rows)

    monkeypatch.setattr(bulk, "_copy", spy)
    return sent


def copy_row(uid: int, **kw: object) -> tuple[object, ...]:
    row = {
        "mailbox": "anna", "folder": "INBOX", "uid": uid, "uidvalidity": 4_294_967_295,
        "role": "inbox", "key": f"<{uid}@client.example>",
        "received": f"2026-11-23T09:{uid:02d}:00.000000+00:00", "flags": '["\\\\Seen"]',
        "answered_at": None, "gm_thrid": 2**62 + uid,
        "headers": b"Subject: Quote\r\nX-Raw: \xff\x00\xfe\r\n\r\n",
        "first_seen": "2026-11-23T09:00:00.000000+00:00",
    } | kw
    return tuple(row.values())


def rows(store: Store, sql: str) -> list[tuple[object, ...]]:
    return [tuple(bytes(v) if isinstance(v, memoryview) else v for v in r)
            for r in store._db.conn.execute(sql).fetchall()]


def test_a_large_insert_stores_texts_integers_bytes_nulls_and_literals_as_given(
        store, copies, backend):
    given = [copy_row(1), copy_row(2, answered_at="2026-11-23T10:00:00.000000+00:00",
                                   gm_thrid=None, headers=b""),
             copy_row(3, key="<3@client.example>\x00", role="sent"), copy_row(4)]
    with store._db.write() as c:
        written = c.executemany(INSERT_COPY, given).rowcount
    assert written == 4
    stored = rows(store, "SELECT mailbox, folder, uid, uidvalidity, role, key, received, flags,"
                         " answered_at, gm_thrid, headers, first_seen, trace_headers, initial"
                         " FROM messages ORDER BY rowid")
    nul = "\ufffd" if backend == "postgresql" else "\x00"  # PostgreSQL's text holds no NUL
    expected = [(*r, 1, 0) for r in given]
    expected[2] = (*given[2][:5], f"<3@client.example>{nul}", *given[2][6:], 1, 0)
    assert stored == expected  # in the order given: rowid numbers them so
    assert copies == (["COPY messages (mailbox, folder, uid, uidvalidity, role, key, received,"
                       " flags, answered_at, gm_thrid, headers, first_seen, trace_headers)"
                       " FROM STDIN (FORMAT BINARY)"] if backend == "postgresql" else [])


def test_a_large_insert_below_the_threshold_is_not_copied(store, copies):
    with store._db.write() as c:
        c.executemany(INSERT_COPY, [copy_row(1), copy_row(2)])
    assert copies == [] and store.message_count() == 2


def _threads_with_repeats(store, insert: str, stored_before: bool) -> int:
    """``insert`` of a batch of threads rows that repeats key "a" (and "b", when
    ``stored_before`` stores it first); the rows written, as the cursor counts them."""
    if stored_before:
        with store._db.write() as c:
            c.execute("INSERT INTO threads (key, thread) VALUES ('b', 'before')")
    given = [("a", "first"), ("b", "batch"), ("c", "1"), ("a", "second"), ("d", "1")]
    with store._db.write() as c:
        return c.executemany(insert, given).rowcount


@pytest.mark.parametrize("stored_before", [False, True], ids=["into_empty", "into_stored"])
def test_do_nothing_skips_rows_stored_before_and_later_repeats_of_the_batch(
        store, copies, backend, stored_before):
    written = _threads_with_repeats(store, THREADS, stored_before)
    stored = dict(rows(store, "SELECT key, thread FROM threads"))
    assert stored == {"a": "first", "b": "before" if stored_before else "batch",
                      "c": "1", "d": "1"}
    assert written == (3 if stored_before else 4)
    # into an empty table tried through COPY, then as statements
    assert len(copies) == (1 if backend == "postgresql" and not stored_before else 0)


def test_do_nothing_into_an_empty_table_without_conflicts_stores_every_row(
        store, copies, backend):
    given = [(f"subject:quote {i}", f"<{i}@client.example>") for i in range(10)]
    with store._db.write() as c:
        written = c.executemany(LINKS, given).rowcount
        again = c.executemany(LINKS, [*given[:5], ("subject:new", "<n@client.example>")])
    assert written == 10 and again.rowcount == 1
    assert sorted(rows(store, "SELECT link, key FROM links")) == sorted(
        [*given, ("subject:new", "<n@client.example>")])
    assert copies == (["COPY links (link, key) FROM STDIN (FORMAT BINARY)"]
                      if backend == "postgresql" else [])  # the table held rows the 2nd time


def test_a_value_not_of_its_columns_type_is_converted_as_by_the_statements(store, copies):
    given = [(1, 2), (3, 4), ("5", "6")]  # integers for the text columns
    with store._db.write() as c:
        written = c.executemany("INSERT INTO links (link, key) VALUES (?, ?)", given).rowcount
    assert written == 3
    assert sorted(rows(store, "SELECT link, key FROM links")) == [("1", "2"), ("3", "4"),
                                                                  ("5", "6")]


def test_a_large_insert_that_fails_stores_none_of_its_rows(store, copies):
    with pytest.raises(Exception), store._db.write() as c:  # noqa: B017 - each backend raises its own
        c.executemany(INSERT_COPY, [copy_row(1), copy_row(2), copy_row(3), copy_row(1)])
    assert store.message_count() == 0


UPSERT_THREADS = ("INSERT INTO threads (key, thread) VALUES (?, ?)"
                  " ON CONFLICT(key) DO UPDATE SET thread = excluded.thread")


@pytest.mark.parametrize("stored_before", [False, True], ids=["into_empty", "into_stored"])
def test_do_update_ends_with_the_later_of_repeated_rows_and_updates_rows_stored_before(
        store, copies, backend, stored_before):
    _threads_with_repeats(store, UPSERT_THREADS, stored_before)
    assert dict(rows(store, "SELECT key, thread FROM threads")) == {
        "a": "second", "b": "batch", "c": "1", "d": "1"}
    # into an empty table tried through COPY, then as statements
    assert len(copies) == (1 if backend == "postgresql" and not stored_before else 0)


def test_do_update_into_an_empty_table_without_conflicts_stores_every_row(
        store, copies, backend):
    given = [(f"<{i}@client.example>", f"<{i % 3}@client.example>") for i in range(10)]
    with store._db.write() as c:
        c.executemany(UPSERT_THREADS, given)
    assert sorted(rows(store, "SELECT key, thread FROM threads")) == sorted(given)
    assert len(copies) == (1 if backend == "postgresql" else 0)


def test_new_rows_into_a_table_that_holds_rows_are_copied(store, copies, backend):
    other = [(f"subject:other {i}", f"<o{i}@client.example>") for i in range(4)]
    given = [(f"subject:quote {i}", f"<{i}@client.example>") for i in range(10)]
    with store._db.write() as c:
        c.executemany(LINKS, other)
        store._db.insert_new_rows(c, LINKS, given)
    assert sorted(rows(store, "SELECT link, key FROM links")) == sorted([*other, *given])
    assert copies == (["COPY links (link, key) FROM STDIN (FORMAT BINARY)"] * 2
                      if backend == "postgresql" else [])


def test_new_rows_that_conflict_after_all_are_skipped_as_by_the_statements(
        store, copies, backend):
    """Another node stored one of the rows at the same moment: the COPY is undone, and
    the statements skip that row and store the others."""
    given = [(f"subject:quote {i}", f"<{i}@client.example>") for i in range(10)]
    with store._db.write() as c:
        c.execute("INSERT INTO links (link, key) VALUES (?, ?)", given[7])
        store._db.insert_new_rows(c, LINKS, given)
    assert sorted(rows(store, "SELECT link, key FROM links")) == sorted(given)
    assert len(copies) == (1 if backend == "postgresql" else 0)  # tried, then statements


def test_links_and_senders_of_mail_stored_for_the_first_time_are_copied_beside_others(
        store, copies, backend):
    """A second folder's first sync: its new mail's links and senders go through COPY
    into tables holding the first folder's; the links of a mail stored in both folders
    as statements (they are stored already), each row once."""
    store_step(store, [new(1), new(2)], now=T0, folder="Sent", role="sent", initial=True)
    before = set(rows(store, "SELECT link, key FROM links"))
    copies.clear()
    store_step(store, [new(2), new(3), new(4), new(5), new(6), new(3 + 4, n=3)], now=T0,
               initial=True)  # mail 3 twice in the INBOX (UIDs 3 and 7)
    links = rows(store, "SELECT link, key FROM links")
    senders = rows(store, "SELECT sender, received, key FROM senders")
    assert len(links) == len(set(links)) and before < set(links)
    assert {key for _, key in links} == {f"<m{n}@client.example>" for n in range(1, 7)}
    # a row per time received: mail 3 at two (UIDs 3 and 7), mail 2 at one in both folders
    assert sorted(key for *_, key in senders) == [
        f"<m{n}@client.example>" for n in (1, 2, 3, 3, 4, 5, 6)]
    assert copies == (["COPY messages (mailbox, folder, uid, uidvalidity, role, key, received,"
                       " flags, answered_at, dismissed_at, gm_thrid, headers, initial,"
                       " first_seen, trace_headers) FROM STDIN (FORMAT BINARY)",
                       "COPY links (link, key) FROM STDIN (FORMAT BINARY)",
                       "COPY senders (sender, received, key) FROM STDIN (FORMAT BINARY)"]
                      if backend == "postgresql" else [])
