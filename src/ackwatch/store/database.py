"""The SQLite connection every table group shares: opening the file privately, the one
kind of write transaction (all or nothing; `write_one` for a lone statement), chunked
``IN`` queries and the meta table.

One SQLite file (WAL) in ``state_dir``, 0600 in a 0700 directory: created so, and an
existing looser directory or file is tightened at each writable open (`private`). The
daemon's core thread is the single writer; ``ackwatch status`` and ``report`` open it
read-only while the daemon runs.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import sqlite3
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from ackwatch.private import tighten
from ackwatch.store import schema
from ackwatch.store.forms import iso
from ackwatch.store.records import StoreError
from ackwatch.store.schema import PENDING_KEYS_SQL

DB_NAME = "ackwatch.sqlite3"
_SIDE_FILES = ("-wal", "-shm")  # SQLite's WAL files beside the database, as private as it
CHUNK = 500  # values per ``IN (...)``: well under SQLite's limit on parameters


def readonly_uri(path: Path) -> str:
    """The SQLite ``file:`` URI that opens ``path`` read-only (`file_uri`)."""
    return file_uri(path, "ro")


def file_uri(path: Path, mode: str) -> str:
    """The SQLite ``file:`` URI that opens the existing ``path`` in ``mode`` ("ro",
    "rw"). The path is percent-quoted: in a URI "#" starts a fragment, "?" the parameters
    and "%" an escape, so a state directory named "state#1" would otherwise open (or
    create) another file."""
    from urllib.parse import quote

    return f"file:{quote(str(Path(path).absolute()))}?mode={mode}"


_NOT_WRITABLE = "the state directory is not writable: read-only file system or permissions"


def _reader(state_dir: Path, path: Path) -> sqlite3.Connection:
    """A connection that only reads the database at ``path``.

    SQLite removes the WAL's side files when the last connection to the database closes,
    and only a connection that may write can: a ``mode=ro`` one that closes last
    (``ackwatch status`` while the daemon is stopped, a board read that outlives the
    writer) leaves them behind. So where this process may write, a reader is opened
    read-write (``mode=rw`` never creates the file) and made read-only with ``PRAGMA
    query_only``; elsewhere (a read-only mount, another user's state) ``mode=ro``."""
    writable = all(os.access(p, os.W_OK) for p in (state_dir, path))
    conn = sqlite3.connect(file_uri(path, "rw" if writable else "ro"), uri=True, timeout=10,
                           check_same_thread=False, isolation_level=None)
    if writable:
        conn.execute("PRAGMA query_only=ON")
    return conn


class Database:
    """One open state database: its connection, where it is, and its write transactions."""

    # The stored report rows' group of five columns as one JSON text (`items.report_rows`).
    JSON_ARRAY = "json_array({})"
    # A column numbering the rows inserted without it 1, 2, ... (`links.linked_batches`).
    COUNTER_KEY = "INTEGER PRIMARY KEY"
    # The database's clock, in seconds since the epoch (the leases' and the leader's).
    CLOCK = "((julianday('now') - 2440587.5) * 86400.0)"

    def __init__(self, conn: sqlite3.Connection, path: Path, readonly: bool):
        self.conn = conn
        self.path = path
        self.readonly = readonly
        self.streams = 0  # `stream`s open now: refused writes (`_check_writable`)

    @classmethod
    def open(cls, state_dir: Path, *, readonly: bool = False) -> Database:
        """Open (a writer: create, tighten and migrate) the database in ``state_dir``."""
        state_dir = Path(state_dir)
        path = state_dir / DB_NAME
        conn: sqlite3.Connection | None = None
        try:
            if readonly:
                if not path.exists():
                    raise StoreError(f"{path}: no state yet (has ackwatch run?)")
                conn = _reader(state_dir, path)
            else:
                state_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
                if not path.exists():
                    fd = os.open(path, os.O_CREAT | os.O_RDWR, 0o600)
                    os.close(fd)
                # Said here, before SQLite: with the WAL's side files left by a process that
                # did not close every connection, SQLite opens a read-only file system and
                # fails only at the first write.
                if not all(os.access(p, os.W_OK) for p in (state_dir, path)):
                    raise StoreError(f"{path}: cannot open the state database for writing"
                                     f" ({_NOT_WRITABLE})")
                # Modes set by hand or by a restore are tightened too, not only new files.
                tighten((state_dir, path, *(path.with_name(path.name + s) for s in _SIDE_FILES)))
                # isolation_level=None: transactions are explicit (BEGIN IMMEDIATE in `write`).
                conn = sqlite3.connect(
                    path, timeout=30, check_same_thread=False, isolation_level=None
                )
                conn.execute("PRAGMA journal_mode=WAL")
                conn.execute("PRAGMA synchronous=FULL")
            conn.execute("PRAGMA foreign_keys=ON")
            conn.row_factory = sqlite3.Row
            db = cls(conn, path, readonly)
            if not readonly:
                schema.migrate(db)
            elif (version := db.user_version()) > schema.SCHEMA_VERSION:
                raise StoreError(f"{path}: schema {version} is newer than this ackwatch")
            opened, conn = db, None
            return opened
        except sqlite3.Error as exc:
            hint = ""
            if not readonly and not all(os.access(p, os.W_OK) for p in (state_dir, path)):
                hint = f" ({_NOT_WRITABLE})"
            raise StoreError(f"{path}: cannot open the state database: {exc}{hint}") from exc
        except OSError as exc:
            raise StoreError(f"{path}: cannot create the state database: {exc.strerror}") from exc
        finally:
            if conn is not None:  # not opened after all: closed, or its WAL files stay
                with contextlib.suppress(sqlite3.Error):
                    conn.close()

    def close(self) -> None:
        with contextlib.suppress(sqlite3.Error):
            self.conn.close()

    def reconnect(self) -> None:
        """Nothing to do: a file is never "unreachable for now" (`StoreUnavailable`)."""

    @contextlib.contextmanager
    def write(self) -> Iterator[sqlite3.Connection]:
        """One write transaction: everything done in the block is stored, or (on any
        error, an interruption included) nothing is."""
        self._check_writable()
        try:
            self.conn.execute("BEGIN IMMEDIATE")
            yield self.conn
            self.conn.execute("COMMIT")
        except BaseException as exc:
            with contextlib.suppress(sqlite3.Error):
                self.conn.execute("ROLLBACK")
            if isinstance(exc, sqlite3.Error):
                raise StoreError(f"{self.path}: write failed: {exc}") from exc
            raise

    def write_one(self, sql: str, params: Sequence[object] = ()) -> list[Any]:
        """One statement as a transaction of its own; the rows it returns (RETURNING).
        One round trip where `write` takes three, and the rows it locks are free again
        when the statement ends: never held while this process waits to send COMMIT."""
        self._check_writable()
        try:
            return self.conn.execute(sql, params).fetchall()
        except sqlite3.Error as exc:
            raise StoreError(f"{self.path}: write failed: {exc}") from exc

    def _check_writable(self) -> None:
        if self.readonly:
            raise StoreError("the state database was opened read-only")
        if self.streams:
            # The rule of PostgreSQL's connection (`PgDatabase`), where such a write would
            # be stored only when the stream ends; refused here too, so that code run on
            # SQLite never relies on what the other backend refuses.
            raise StoreError("a write while a streamed read is open on the connection")

    def stream(self, sql: str, params: Sequence[object] = ()) -> Iterator[tuple[Any, ...]]:
        """The rows of ``sql`` as plain tuples, as SQLite steps through them (it never
        holds a whole result); the statement is finished when the generator ends or is
        closed. No write until then (`_check_writable`)."""
        rows = self.conn.cursor()
        rows.row_factory = None
        self.streams += 1
        try:
            yield from rows.execute(sql, params)
        finally:
            self.streams -= 1
            rows.close()

    stream_through = stream  # SQLite steps through a query as it is read in any case

    def user_version(self) -> int:
        """The schema version of the file (`schema.MIGRATIONS` applied)."""
        return self.conn.execute("PRAGMA user_version").fetchone()[0]

    def integrity_check(self) -> str:
        return self.conn.execute("PRAGMA integrity_check").fetchone()[0]

    def refresh_statistics(self, tables: Sequence[str]) -> None:
        """Nothing: without statistics SQLite's planner takes an index wherever one
        serves, which is what the state's queries want; ``ANALYZE`` could only change
        plans that are right."""

    def insert_new_rows(
        self, c: sqlite3.Connection, sql: str, rows: Sequence[Sequence[object]]
    ) -> None:
        c.executemany(sql, rows)

    def rows_in(
        self, query: str, args: Sequence[object], values: Iterable[object]
    ) -> Iterator[Any]:
        return chunked(self.conn, query, args, values)

    def get_meta(self, name: str) -> str | None:
        row = self.conn.execute("SELECT value FROM meta WHERE name = ?", (name,)).fetchone()
        return None if row is None else row[0]

    def set_meta(self, name: str, value: str) -> None:
        with self.write() as c:
            set_meta(c, {name: value})

    def set_meta_many(self, values: Mapping[str, str]) -> None:
        with self.write() as c:
            set_meta(c, values)


def set_meta(c: sqlite3.Connection, values: Mapping[str, str]) -> None:
    """Record ``values`` in the meta table, within the caller's transaction."""
    c.executemany(
        "INSERT INTO meta (name, value) VALUES (?, ?)"
        " ON CONFLICT(name) DO UPDATE SET value = excluded.value",
        values.items(),
    )


# A stored copy is of a pending item's mail: the item's first message or a follow-up
# folded into it (`pending_copies`, what `Store.pending_uids` reads per folder). Each
# test starts from the copy's key (nested EXISTS: a join would let the planner start from
# every pending item); ``{0}`` is the table whose ``key`` is tested.
_OF_PENDING_ITEM = (
    "(EXISTS (SELECT 1 FROM items i WHERE i.key = {0}.key AND i.state = 'pending')"
    " OR EXISTS (SELECT 1 FROM item_members im WHERE im.member_key = {0}.key"
    " AND EXISTS (SELECT 1 FROM items i WHERE i.key = im.item_key AND i.state = 'pending')))"
)
_ADD_PENDING = ("INSERT INTO pending_copies (mailbox, folder, uid, key)"
                " SELECT mailbox, folder, uid, key FROM messages WHERE ")


def mark_pending_copies(c: sqlite3.Connection, keys: Iterable[str] | None = None) -> None:
    """Bring `pending_copies` up to date for the copies of ``keys`` (every copy when
    None), within the caller's transaction, after items' states or members were written.

    The table lets a folder's pending UIDs be read by its primary key, at a cost that
    follows that folder's pending copies rather than every pending item. A marker is a
    row of its own, inserted and deleted: a first evaluation marks 13k copies by
    writing 13k short rows, where a flag on `messages` rewrote each copy with its
    header bytes and indexes (on PostgreSQL, no update of a column in an index's
    condition is in place). Only what changed is written."""
    if keys is None:
        c.execute("DELETE FROM pending_copies WHERE NOT "
                  + _OF_PENDING_ITEM.format("pending_copies"))
        c.execute(_ADD_PENDING + f"key IN ({PENDING_KEYS_SQL}) ON CONFLICT DO NOTHING")
        return
    chunk: list[str] = []
    for key in sorted(set(keys)):
        chunk.append(key)
        if len(chunk) == CHUNK:
            _mark_pending_chunk(c, chunk)
            chunk = []
    if chunk:
        _mark_pending_chunk(c, chunk)


def _mark_pending_chunk(c: sqlite3.Connection, keys: Sequence[str]) -> None:
    marks = ",".join("?" * len(keys))
    c.execute(f"DELETE FROM pending_copies WHERE key IN ({marks}) AND NOT "
              + _OF_PENDING_ITEM.format("pending_copies"), keys)
    c.execute(_ADD_PENDING + f"key IN ({marks}) AND " + _OF_PENDING_ITEM.format("messages")
              + " ON CONFLICT DO NOTHING", keys)


def chunked(
    c: sqlite3.Connection | sqlite3.Cursor, query: str, args: Sequence[object],
    values: Iterable[object],
) -> Iterator[Any]:
    """``query`` (with one ``IN ({})``) run over ``values`` in chunks SQLite accepts."""
    chunk: list[object] = []
    for v in values:
        chunk.append(v)
        if len(chunk) == CHUNK:
            yield from c.execute(query.format(",".join("?" * len(chunk))), (*args, *chunk))
            chunk = []
    if chunk:
        yield from c.execute(query.format(",".join("?" * len(chunk))), (*args, *chunk))


def in_period(
    column: str, since: dt.datetime | None, until: dt.datetime | None
) -> tuple[str, list[object]]:
    """The conditions ``since <= column < until`` (each bound when given) to append to a
    WHERE clause, and their values."""
    conditions, args = "", list[object]()
    if since is not None:
        conditions += f" AND {column} >= ?"
        args.append(iso(since))
    if until is not None:
        conditions += f" AND {column} < ?"
        args.append(iso(until))
    return conditions, args
