"""Streamed reads (`SqlDatabase.stream`), on both backends: a query over millions of rows
(a first start's link walk) is read a part at a time, never held whole, and leaves the
connection as it found it however early the reader stops."""

from __future__ import annotations

import pytest

from ackwatch.store import Store
from ackwatch.store.postgres.connection import STREAM_ROWS
from ackwatch.store.records import StoreError

ROWS = [(f"link{i:06d}", f"<{i}@client.example>") for i in range(2 * STREAM_ROWS + 7)]


@pytest.fixture
def links(store: Store) -> Store:
    with store._db.write() as c:
        c.executemany("INSERT INTO links (link, key) VALUES (?, ?)", ROWS)
    return store


def test_a_streamed_read_yields_every_row_in_order_as_plain_tuples(links):
    rows = list(links._db.stream("SELECT link, key FROM links WHERE link >= ? ORDER BY link",
                                 ("link000003",)))
    assert rows == ROWS[3:]
    assert type(rows[0]) is tuple


def test_a_stream_closed_early_leaves_the_connection_usable_and_writes_stored(
        links, open_state):
    rows = links._db.stream("SELECT link, key FROM links ORDER BY link")
    assert [next(rows) for _ in range(3)] == ROWS[:3]
    rows.close()
    links._db.set_meta("after_stream", "stored")
    # Another connection sees the write: it is committed, not inside a read left open.
    assert open_state(readonly=True)._db.get_meta("after_stream") == "stored"
    assert list(links._db.stream("SELECT COUNT(*) FROM links")) == [(len(ROWS),)]


def test_the_connection_can_read_between_a_streams_rows(links):
    rows = links._db.stream("SELECT link FROM links ORDER BY link")
    assert next(rows) == (ROWS[0][0],)
    assert links._db.conn.execute("SELECT COUNT(*) FROM links").fetchone()[0] == len(ROWS)
    assert [r[0] for r in rows] == [r[0] for r in ROWS[1:]]


@pytest.mark.parametrize("backend", ["postgresql"])
def test_on_postgresql_a_stream_is_a_server_side_cursor(links):
    rows = links._db.stream("SELECT link FROM links ORDER BY link")
    next(rows)
    open_cursors = links._db.conn.execute("SELECT name FROM pg_cursors").fetchall()
    assert [r[0] for r in open_cursors if r[0].startswith("ackwatch_stream_")]
    rows.close()
    assert not links._db.conn.execute("SELECT name FROM pg_cursors").fetchall()


def test_a_write_while_a_stream_is_open_is_refused_and_stores_nothing(links):
    rows = links._db.stream("SELECT link FROM links ORDER BY link")
    next(rows)
    with pytest.raises(StoreError, match="streamed read"):
        links._db.set_meta("during_stream", "x")
    with pytest.raises(StoreError, match="streamed read"):
        links._db.write_one("DELETE FROM links")
    rows.close()
    assert links._db.get_meta("during_stream") is None
    links._db.set_meta("during_stream", "y")
    assert links._db.get_meta("during_stream") == "y"
    assert list(links._db.stream("SELECT COUNT(*) FROM links")) == [(len(ROWS),)]


def test_a_stream_read_to_its_end_allows_writes_again(links):
    assert len(list(links._db.stream("SELECT link FROM links"))) == len(ROWS)
    links._db.set_meta("after_stream", "stored")
    assert links._db.get_meta("after_stream") == "stored"


def test_a_read_streamed_through_yields_every_row_in_order_as_plain_tuples(links):
    rows = list(links._db.stream_through(
        "SELECT link, key FROM links WHERE link >= ? ORDER BY link", ("link000003",)))
    assert rows == ROWS[3:]
    assert type(rows[0]) is tuple


def test_a_read_streamed_through_and_closed_early_leaves_the_connection_usable(
        links, open_state):
    rows = links._db.stream_through("SELECT link, key FROM links ORDER BY link")
    assert [next(rows) for _ in range(3)] == ROWS[:3]
    with pytest.raises(StoreError, match="streamed read"):
        links._db.set_meta("during_stream", "x")
    rows.close()
    links._db.set_meta("after_stream", "stored")
    assert open_state(readonly=True)._db.get_meta("after_stream") == "stored"
    assert list(links._db.stream_through("SELECT COUNT(*) FROM links")) == [(len(ROWS),)]
