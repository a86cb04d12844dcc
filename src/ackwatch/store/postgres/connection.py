"""psycopg behind the part of the `sqlite3` interface the table groups use: ``execute``
and ``executemany`` with ``?`` placeholders, cursors whose rows answer to an index and
to a column name (`sqlite3.Row`), and plain tuples with ``row_factory = None``.

The SQL the table groups write is what both databases accept; the placeholders are the
one thing translated here, to PostgreSQL's own numbered ones (``$1``) for psycopg's
`RawCursor`: a ``%s`` query is parsed again in Python at every execution unless it is
short (under 4 kB and 50 parameters), and the chunked ``IN (...)`` queries have 500.

A lost connection (`errors.lost_connection`) is raised as `records.StoreUnavailable`,
whatever the statement, so that the daemon rides the outage out
(`PgDatabase.reconnect`); any other error is psycopg's own, as before. The wrapper
outlives its psycopg connection: a reconnect puts a new one in ``raw``.
"""

from __future__ import annotations

import contextlib
import functools
import itertools
from collections.abc import Iterable, Iterator, Sequence
from typing import Any, ClassVar

import psycopg
from psycopg.types.string import StrDumperUnknown

from ackwatch.config.model import DatabaseConfig
from ackwatch.store.postgres import bulk
from ackwatch.store.postgres.batch import row_insert
from ackwatch.store.postgres.errors import lost_connection
from ackwatch.store.records import StoreUnavailable


@functools.lru_cache(maxsize=1024)
def translate(sql: str) -> str:
    """``sql`` with PostgreSQL's placeholders: each ``?`` outside quotes becomes ``$1``,
    ``$2``, ... in order."""
    out: list[str] = []
    quote: str | None = None
    number = 0
    for ch in sql:
        if quote is not None:
            if ch == quote:
                quote = None
        elif ch in ("'", '"'):
            quote = ch
        elif ch == "?":
            number += 1
            out.append(f"${number}")
            continue
        out.append(ch)
    return "".join(out)


class Row(tuple):
    """A row, by index or by column name (as `sqlite3.Row`)."""

    __slots__ = ()
    names: ClassVar[dict[str, int]] = {}

    def __getitem__(self, key: Any) -> Any:
        if isinstance(key, str):
            return tuple.__getitem__(self, self.names[key])
        return tuple.__getitem__(self, key)

    def keys(self) -> list[str]:
        return list(self.names)


def _named_rows(cursor: psycopg.Cursor[Any]) -> Any:
    desc = cursor.description
    if desc is None:
        return tuple
    cls = type("Row", (Row,), {"__slots__": (), "names": {d.name: i for i, d in enumerate(desc)}})
    return cls


class NulFreeStrDumper(StrDumperUnknown):
    """Text without NUL characters, which PostgreSQL's text cannot hold (SQLite can):
    mail is hostile input, and a NUL in a subject must not fail the transaction that
    stores it. Each becomes U+FFFD, in a query's values as in the rows written."""

    def dump(self, obj: str) -> bytes | bytearray | memoryview | None:
        # The base class's NUL check done here, once: every text value of a statement
        # passes through this (the batched INSERTs' are made NUL-free by `nul_free`).
        if "\x00" in obj:
            obj = obj.replace("\x00", "\ufffd")
        return obj.encode(self._encoding)


def nul_free(row: Iterable[object]) -> tuple[object, ...]:
    """``row`` with each NUL of a text made U+FFFD, as `NulFreeStrDumper` makes it: done
    on the values at once where many rows are written: 0.07 us a value, where the
    dumper's Python, called for each text, adds 0.53 us to psycopg's C dumper."""
    return tuple([v.replace("\x00", "\ufffd") if type(v) is str and "\x00" in v else v
                  for v in row])


class Cursor:
    """A psycopg cursor with `sqlite3.Cursor`'s ways (``execute`` returns it)."""

    def __init__(self, raw: psycopg.RawCursor[Any], conn: Connection):
        self._raw = raw
        self._conn = conn
        self.row_factory: object = "named"  # None: plain tuples
        self._written: int | None = None  # the rows an `executemany` wrote, all told

    def execute(self, sql: str, params: Sequence[object] = ()) -> Cursor:
        self._written = None
        self._raw.row_factory = _named_rows if self.row_factory is not None else psycopg.rows.tuple_row
        try:
            self._raw.execute(translate(sql), tuple(params))
        except psycopg.Error as exc:
            if (lost := self._conn.unavailable(exc)) is not None:
                raise lost from exc
            raise
        return self

    def executemany(
        self, sql: str, params: Iterable[Sequence[object]], *, new: bool = False
    ) -> Cursor:
        """``sql`` once for each row of ``params``: a single-row ``INSERT`` through
        ``COPY`` (`bulk`, many rows) or as multi-row statements (`batch`), anything else
        through psycopg's pipeline. ``new``: no stored row is known to conflict with
        these (`PgDatabase.insert_new_rows`)."""
        self._written = 0
        insert = row_insert(sql)
        rows = [tuple(p) for p in params] if insert is None else [nul_free(p) for p in params]
        if rows:
            try:
                if insert is None:
                    self._raw.executemany(translate(sql), rows)
                    self._written = self._raw.rowcount
                elif bulk.copyable(self._raw.connection, insert, len(rows)) and (
                        copied := bulk.copy_rows(self._raw.connection, insert, rows, new=new)
                ) is not None:
                    self._written = copied
                else:  # pipelined: the server runs a statement while the next is made
                    conn = self._raw.connection
                    sent = []
                    with conn.pipeline():
                        for statement, values in insert.statements(rows):
                            sent.append(cursor := psycopg.RawCursor(conn))
                            # psycopg's own dumper (in C): the text is NUL-free already
                            cursor.adapters.register_dumper(str, StrDumperUnknown)
                            cursor.execute(statement, values)
                    self._written = sum(c.rowcount for c in sent)
            except psycopg.Error as exc:
                if (lost := self._conn.unavailable(exc)) is not None:
                    raise lost from exc
                raise
        return self

    def fetchone(self) -> Any:
        return self._raw.fetchone() if self._raw.description is not None else None

    def fetchall(self) -> list[Any]:
        return self._raw.fetchall() if self._raw.description is not None else []

    def __iter__(self) -> Iterator[Any]:
        if self._raw.description is None:
            return iter(())
        return iter(self._raw)

    @property
    def rowcount(self) -> int:
        return self._raw.rowcount if self._written is None else self._written


class Connection:
    """One psycopg connection (autocommit: a transaction is `database.PgDatabase.write`).
    ``where`` names the database in messages; ``secret`` is scrubbed from them."""

    def __init__(self, raw: psycopg.Connection[Any], *, where: str = "",
                 secret: str | None = None, writer: bool = False):
        self.raw = raw
        self.where = where
        self.writer = writer
        self._secret = secret
        self.streams = 0  # `stream`s open now: a write would join their transaction

    def cursor(self) -> Cursor:
        return Cursor(psycopg.RawCursor(self.raw), self)

    def unavailable(self, exc: psycopg.Error) -> StoreUnavailable | None:
        """``exc`` as `StoreUnavailable` when it is an outage (None: it is not)."""
        if not lost_connection(exc, self.raw, writer=self.writer):
            return None
        return StoreUnavailable(
            f"{self.where}: lost the connection to the state database: "
            f"{reason(exc, self._secret)}"
        )

    def execute(self, sql: str, params: Sequence[object] = ()) -> Cursor:
        return self.cursor().execute(sql, params)

    def executemany(
        self, sql: str, params: Iterable[Sequence[object]], *, new: bool = False
    ) -> Cursor:
        return self.cursor().executemany(sql, params, new=new)

    def stream(self, sql: str, params: Sequence[object] = ()) -> Iterator[tuple[Any, ...]]:
        """The rows of ``sql`` as plain tuples, fetched `STREAM_ROWS` at a time from a
        server-side cursor: a client-side one holds the whole result in libpq's memory
        before the first row is read. The cursor lives in a transaction of its own
        (the connection is in autocommit), which ends, and the cursor with it, when the
        rows run out or the generator is closed."""
        name = f"ackwatch_stream_{next(_stream_names)}"  # unique: streams may nest
        with self._streaming(), self.raw.transaction(), psycopg.RawServerCursor(
            self.raw, name, row_factory=psycopg.rows.tuple_row
        ) as rows:
            rows.itersize = STREAM_ROWS
            rows.execute(translate(sql), tuple(params))
            yield from rows

    def stream_through(self, sql: str, params: Sequence[object] = ()) -> Iterator[tuple[Any, ...]]:
        """The rows of ``sql`` as plain tuples, sent by the server as it produces them
        (libpq's chunked rows, `STREAM_ROWS` a chunk): its work overlaps the reading, where
        `stream`'s server-side cursor waits for each part to be asked for (a report over
        a year of 1M items: 4.0-4.2 s instead of 4.7-5.9 s, bench/README.md Session 13).
        The connection carries nothing else until the rows run out or the generator is
        closed (psycopg then ends the query), so no other statement may be run while
        it is read, only after."""
        with self._streaming(), psycopg.RawCursor(
            self.raw, row_factory=psycopg.rows.tuple_row
        ) as rows:
            yield from rows.stream(translate(sql), tuple(params), size=_CHUNK_ROWS)

    @contextlib.contextmanager
    def _streaming(self) -> Iterator[None]:
        """A streamed read open (writes are refused meanwhile), its outage raised as
        `StoreUnavailable`."""
        self.streams += 1
        try:
            yield
        except psycopg.Error as exc:
            if (lost := self.unavailable(exc)) is not None:
                raise lost from exc
            raise
        finally:
            self.streams -= 1

    def close(self) -> None:
        self.raw.close()


#: Rows a streamed read fetches at a time: a few hundred kB of small rows in memory, and
#: the round trips are a small part of the reading (one every 5,000 rows).
STREAM_ROWS = 5000
_stream_names = itertools.count(1)
#: Chunked rows need libpq 17 (psycopg's binary wheel bundles a newer one); an older one
#: sends the rows one by one, which works, more slowly.
_CHUNK_ROWS = STREAM_ROWS if psycopg.pq.version() >= 170000 else 1


def connect(config: DatabaseConfig, password: str | None, *, readonly: bool) -> Connection:
    """A connection to the configured server, TLS as configured (verified by default).
    A reader's transactions are read-only on the server's side too; a writer's
    connection is to a server that takes writes (a standby is refused, as during a
    failover)."""
    return Connection(connect_raw(config, password, readonly=readonly), where=config.url,
                      secret=password, writer=not readonly)


#: A server that vanishes without closing the connection (a network cut, a host gone)
#: is noticed within about half a minute rather than TCP's quarter of an hour: probes
#: after 10 s of silence, 5 s apart, 3 unanswered close it; data unacknowledged for
#: 30 s does too. The node's lease deadline (`daemon.cluster`) stops it watching and
#: sending sooner still; this bounds how long a stuck statement keeps it from
#: reconnecting when the network comes back.
TCP_OPTIONS: dict[str, Any] = {
    "keepalives": 1,
    "keepalives_idle": 10,
    "keepalives_interval": 5,
    "keepalives_count": 3,
    "tcp_user_timeout": 30_000,
}


def connect_raw(config: DatabaseConfig, password: str | None, *,
                readonly: bool) -> psycopg.Connection[Any]:
    """The psycopg connection of `connect`."""
    # No JIT compilation: the state's statements are short, and a statement planned
    # before its tables have statistics (a first sync writes 20k messages before
    # autovacuum analyzes any) looks costly enough for PostgreSQL to spend half a second
    # compiling it, 40x what running it takes.
    options = "-c jit=off" + (" -c default_transaction_read_only=on" if readonly else "")
    raw = psycopg.connect(
        host=config.host,
        port=config.port,
        user=config.user,
        dbname=config.dbname,
        password=password,
        sslmode=config.sslmode,
        sslrootcert=str(config.sslrootcert) if config.sslrootcert else None,
        application_name="ackwatch",
        connect_timeout=10,
        options=options,
        target_session_attrs="any" if readonly else "read-write",
        autocommit=True,
        **TCP_OPTIONS,
    )
    raw.adapters.register_dumper(str, NulFreeStrDumper)
    return raw


def reason(exc: psycopg.Error, password: str | None) -> str:
    """The server's or libpq's reason, first line, never with the password in it."""
    text = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    if password:
        text = text.replace(password, "***")
    return text
