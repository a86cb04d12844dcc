"""What ties stored mail together, for re-evaluating only what new mail touches: the
links (every stored copy's `threads.link_values`, noise aside), the senders (who sent what
when), the threads as last evaluated and the dirty marks (keys stored, re-flagged or removed
since their last evaluation)."""

from __future__ import annotations

import datetime as dt
import operator
import sqlite3
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING

from ackwatch.core.threads import component_batches, is_noise_link
from ackwatch.store.database import mark_pending_copies, set_meta
from ackwatch.store.forms import from_iso, iso
from ackwatch.store.records import CopyToStore, Marks, MarksKept, StoredCopy

if TYPE_CHECKING:
    from ackwatch.store.tables import SqlDatabase

_first = operator.itemgetter(0)


class Links:
    """The evaluation's scope: which stored keys new mail can touch, and in what batches."""

    def __init__(self, db: SqlDatabase):
        self._db = db

    def links_pending(self) -> bool:
        """True while mail stored before schema 4 has no links yet (`build_links`)."""
        return self._db.get_meta("links_after_rowid") is not None

    def build_links(
        self,
        link: Callable[[Sequence[StoredCopy]], Sequence[CopyToStore]],
        progress: Callable[[int], None] | None = None,
    ) -> int:
        """Link the mail stored before schema 4, a batch per transaction, resumable after a
        kill (the last rowid done is kept in meta): ``link`` gives each copy of a batch
        its key, sender and links. ``progress(done)`` after each batch. Returns how many
        copies were linked."""
        done = 0
        while True:
            after = self._db.get_meta("links_after_rowid")
            if after is None:
                return done
            rows = self._db.conn.execute(
                "SELECT rowid, mailbox, folder, uid, uidvalidity, role, received, gm_thrid,"
                " headers FROM messages WHERE rowid > ? ORDER BY rowid LIMIT 5000",
                (int(after),),
            ).fetchall()
            copies = link([
                StoredCopy(r[1], r[2], r[3], r[4], r[5], from_iso(r[6]), frozenset(), None,
                           None, r[7], bytes(r[8]), False)
                for r in rows
            ])
            with self._db.write() as c:
                write_links(self._db, c, [(n, iso(n.copy.received)) for n in copies])
                if rows:
                    c.execute("UPDATE meta SET value = ? WHERE name = 'links_after_rowid'",
                              (str(rows[-1][0]),))
                else:
                    c.execute("DELETE FROM meta WHERE name = 'links_after_rowid'")
            done += len(rows)
            if progress is not None and rows:
                progress(done)

    def copies_since(self, since: dt.datetime) -> int:
        """How many stored copies were received at or after ``since``."""
        return self._db.conn.execute(
            "SELECT COUNT(*) FROM messages WHERE received >= ?", (iso(since),)
        ).fetchone()[0]

    def linked_batches(
        self, since: dt.datetime, noise: frozenset[str], max_keys: int
    ) -> Iterator[set[str]]:
        """The keys of the mail received at or after ``since``, in batches of whole link
        components (`threads.component_batches`: keys joined by a chain of shared
        `threads.link_values`, the values ``noise`` leaves out aside), of about
        ``max_keys`` keys each.

        Computed from the links table, not from parsed mail: the keys are numbered in a
        temporary table and only integers are held here. `end_linked_batches` completes
        the evaluation these batches were for.
        """
        c = self._db.conn
        # A temporary table (the connection's own; unqualified, its name means the
        # temporary one in SQLite and PostgreSQL alike), numbered 1, 2, ... in key order.
        c.execute("DROP TABLE IF EXISTS window_keys")
        c.execute(f"CREATE TEMP TABLE window_keys (id {self._db.COUNTER_KEY},"
                  " key TEXT NOT NULL UNIQUE)")
        c.execute("INSERT INTO window_keys (key)"
                  " SELECT key FROM messages WHERE received >= ? GROUP BY key ORDER BY key",
                  (iso(since),))
        n = c.execute("SELECT COALESCE(MAX(id), 0) FROM window_keys").fetchone()[0]
        # The batches' reads are chunked `IN` queries on what a first sync (or a
        # backfill) has just stored, and on the keys numbered here.
        self._db.refresh_statistics(("messages", "links", "window_keys"))

        def edges() -> Iterator[tuple[int, int]]:
            # Millions of rows each: streamed, never held whole (on the connection that
            # made window_keys, a temporary table no other connection sees).
            # Keys that share a link value (the links table is in link order).
            link, first, skip = None, 0, False
            for value, key_id in self._db.stream(
                "SELECT l.link, w.id - 1 FROM links l"
                " JOIN window_keys w ON w.key = l.key ORDER BY l.link"
            ):
                if value != link:
                    link, first = value, key_id
                    skip = is_noise_link(value, noise)
                elif not skip:
                    yield first, key_id
            # A key and the stored mail it refers to ("id:<key>"; its own id is not stored).
            yield from self._db.stream("SELECT w.id - 1, r.id - 1 FROM links l"
                                       " JOIN window_keys w ON w.key = l.key"
                                       " JOIN window_keys r ON r.key = substr(l.link, 4)"
                                       " WHERE l.link >= 'id:' AND l.link < 'id;'")

        for batch in component_batches(n, edges(), max_keys):
            yield {r[0] for r in self._db.rows_in(
                "SELECT key FROM window_keys WHERE id IN ({})", (), (i + 1 for i in batch))}

    def end_linked_batches(self, meta: Mapping[str, str], marks: Marks | None = None) -> None:
        """After every batch of `linked_batches` was evaluated (`sync_items` with each batch
        as its scope): what `sync_items` without a scope does for the rest. Pending items of
        mail no longer stored (or out of the window) are dropped; the threads and dirty
        marks of such mail go (``marks``: only those, as `sync_items`); ``meta`` is
        recorded."""
        with self._db.write() as c:
            # NOT EXISTS, not NOT IN: PostgreSQL hashes a NOT IN list only while it fits
            # in work_mem and otherwise scans it again for every row (a million keys:
            # hours); an anti-join has no such edge.
            c.execute("UPDATE items SET state = 'dropped' WHERE state = 'pending' AND NOT"
                      " EXISTS (SELECT 1 FROM window_keys w WHERE w.key = items.key)")
            mark_pending_copies(c)
            c.execute("DELETE FROM threads WHERE NOT EXISTS"
                      " (SELECT 1 FROM window_keys w WHERE w.key = threads.key)")
            if marks is None:
                c.execute("DELETE FROM dirty")
            else:
                delete_marks(c, marks)
            set_meta(c, meta)
        self._db.conn.execute("DROP TABLE window_keys")

    def threads_since(self, since: dt.datetime) -> list[str]:
        """The threads (as last evaluated) with mail received at or after ``since``."""
        return [
            r[0] for r in self._db.conn.execute(
                "SELECT DISTINCT t.thread FROM messages m JOIN threads t ON t.key = m.key"
                " WHERE m.received >= ? ORDER BY t.thread", (iso(since),))
        ]

    def thread_members(self, threads: Iterable[str]) -> set[str]:
        """Every key of ``threads`` (as last evaluated)."""
        return {r[0] for r in self._db.rows_in("SELECT key FROM threads WHERE thread IN ({})", (),
                                            threads)}


    def dirty_keys(self) -> set[str]:
        """Keys stored, re-flagged or removed since their last evaluation."""
        return {r[0] for r in self._db.conn.execute("SELECT key FROM dirty")}

    def dirty_marks(self) -> dict[str, int]:
        """The dirty marks as read now: key -> which marking it is (``seq``). An
        evaluation hands back the marks it read, and only those are deleted: a key that
        another node marks again meanwhile keeps its new mark."""
        return {r[0]: int(r[1]) for r in self._db.conn.execute("SELECT key, seq FROM dirty")}

    def keep_marks(self) -> MarksKept:
        """The dirty marks as read now, kept in this connection's temporary table
        ``marks_read`` (`delete_marks` ends them and drops it). For an evaluation of
        everything, which needs the marks only to end them: a first start over a year
        marks a million keys, whose dict of key -> seq (and PostgreSQL's whole result
        behind it) took 300 MB, and whose end took as many single-row DELETEs."""
        c = self._db.conn
        c.execute("DROP TABLE IF EXISTS marks_read")
        c.execute("CREATE TEMP TABLE marks_read (key TEXT PRIMARY KEY, seq BIGINT NOT NULL)")
        c.execute("INSERT INTO marks_read (key, seq) SELECT key, seq FROM dirty")
        self._db.refresh_statistics(("marks_read",))  # for the one DELETE that ends them
        return MarksKept(c.execute("SELECT COUNT(*) FROM marks_read").fetchone()[0])

    def keys_linked(self, links: Iterable[str]) -> set[str]:
        """Keys of the stored mail that has any of ``links`` (`threads.link_values`).

        A mail's own "id:<key>" is not in the links table (a quarter of its rows): the
        messages table's key answers for it."""
        links = set(links)
        found = {r[0] for r in self._db.rows_in("SELECT key FROM links WHERE link IN ({})", (), links)}
        ids = {v[3:] for v in links if v.startswith("id:")}
        found.update(
            r[0] for r in self._db.rows_in("SELECT DISTINCT key FROM messages WHERE key IN ({})", (), ids)
        )
        return found

    def thread_keys(self, keys: Iterable[str]) -> set[str]:
        """Every key of the threads (as last evaluated) that ``keys`` belong to."""
        threads = {
            r[0] for r in self._db.rows_in("SELECT thread FROM threads WHERE key IN ({})", (), keys)
        }
        return {
            r[0] for r in self._db.rows_in("SELECT key FROM threads WHERE thread IN ({})", (), threads)
        }

    def keys_from(self, senders: Iterable[str], since: dt.datetime) -> set[str]:
        """Keys of stored mail from ``senders`` received at or after ``since``."""
        return {
            r[0]
            for r in self._db.rows_in(
                "SELECT key FROM senders WHERE received >= ? AND sender IN ({})",
                (iso(since),), (s.lower() for s in senders))
        }

    def newest_from(
        self, sender: str, since: dt.datetime, until: dt.datetime, limit: int,
        before: tuple[dt.datetime, str] | None = None,
    ) -> list[tuple[dt.datetime, str]]:
        """(received, key) of the stored mail from ``sender`` received within [``since``,
        ``until``], newest first (ties by key, descending), at most ``limit`` rows;
        ``before``: only the rows after this one in that order (the last of the page
        before). One range of the senders table's primary key: who is away needs an
        address's newest mail only, never all it sent in the look-back."""
        sql = "SELECT received, key FROM senders WHERE sender = ? AND received >= ?"
        args: list[object] = [sender.lower(), iso(since)]
        if before is None:
            sql += " AND received <= ?"
            args.append(iso(until))
        else:
            sql += " AND (received < ? OR (received = ? AND key < ?))"
            args += [iso(before[0]), iso(before[0]), before[1]]
        sql += " ORDER BY received DESC, key DESC LIMIT ?"
        args.append(limit)
        return [(from_iso(r[0]), r[1]) for r in self._db.conn.execute(sql, args)]


_INSERT_LINKS = "INSERT INTO links (link, key) VALUES (?, ?) ON CONFLICT DO NOTHING"
_INSERT_SENDERS = (
    "INSERT INTO senders (sender, received, key) VALUES (?, ?, ?) ON CONFLICT DO NOTHING"
)


def write_links(
    db: SqlDatabase, c: sqlite3.Connection, stored: Sequence[tuple[CopyToStore, str]]
) -> None:
    """Write the links and the senders of newly stored copies (with their received time
    as stored), on ``c`` (``db``'s write transaction).

    The rows of keys stored for the first time (`CopyToStore.key_stored` false: a first
    sync's, nearly all) cannot be in the tables yet: they go to `SqlDatabase.insert_new_rows`,
    without repeats (a row's columns are its primary key); the others as statements
    that skip what is stored."""
    if not stored:
        return
    new_links: set[tuple[str, str]] = set()
    links: list[tuple[str, str]] = []
    new_senders: set[tuple[str, str, str]] = set()
    senders: list[tuple[str, str, str]] = []
    for n, received in stored:
        key = n.key
        own = "id:" + key  # not stored: `keys_linked` finds it as the mail's key
        rows = [(v, key) for v in n.links if v != own]
        sender = [(n.sender, received, key)] if n.sender else []
        if n.key_stored:
            links += rows
            senders += sender
        else:
            new_links.update(rows)
            new_senders.update(sender)
    # In primary-key order: these tables are B-trees keyed by the row, and a batch
    # inserted in key order is appended page by page instead of touching pages at random
    # (4x faster for a first sync's links). The first column is order enough, and sorts
    # faster than whole rows.
    db.insert_new_rows(c, _INSERT_LINKS, sorted(new_links, key=_first))
    c.executemany(_INSERT_LINKS, sorted(links, key=_first))
    db.insert_new_rows(c, _INSERT_SENDERS, sorted(new_senders))
    c.executemany(_INSERT_SENDERS, sorted(senders))


# A key marked again gets a new ``seq`` (the column's default: random on SQLite, a
# sequence on PostgreSQL), so that an evaluation that read the older mark keeps this one.
MARK_AGAIN = " ON CONFLICT(key) DO UPDATE SET seq = excluded.seq"


def mark_dirty_keys(c: sqlite3.Connection, keys: Iterable[str]) -> None:
    c.executemany(
        "INSERT INTO dirty (key) VALUES (?)" + MARK_AGAIN, ((k,) for k in sorted(set(keys)))
    )


def delete_marks(c: sqlite3.Connection, marks: Marks) -> None:
    """Delete the dirty marks read (key and seq both): not a mark made since."""
    if isinstance(marks, MarksKept):
        c.execute("DELETE FROM dirty WHERE EXISTS (SELECT 1 FROM marks_read m"
                  " WHERE m.key = dirty.key AND m.seq = dirty.seq)")
        c.execute("DROP TABLE marks_read")
    else:
        c.executemany("DELETE FROM dirty WHERE key = ? AND seq = ?", sorted(marks.items()))
