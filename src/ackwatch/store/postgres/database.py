"""The PostgreSQL database every table group shares: the connection, the one kind of
write transaction (all or nothing; `write_one` for a lone statement), lookups of many
values (``= ANY`` of an array) and the meta table, with the interface of
`ackwatch.store.database.Database`.

Where the state is, for messages, is the URL (it never holds the password).

A lost connection makes any operation raise `records.StoreUnavailable` (its transaction
stored nothing); `reconnect` then replaces the connection, for the same work to be done
again (`ackwatch.daemon.outage`).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

import psycopg

from ackwatch.config.model import DatabaseConfig
from ackwatch.store.database import set_meta
from ackwatch.store.postgres import schema
from ackwatch.store.postgres.connection import Connection, connect, connect_raw, reason
from ackwatch.store.postgres.errors import connect_failure_is_outage
from ackwatch.store.records import StoreError, StoreUnavailable

# Values in one ``= ANY(?)`` array (`PgDatabase.rows_in`): a statement of a few
# hundred kB at most.
ANY_VALUES = 10_000


class PgDatabase:
    """One open state database on a PostgreSQL server."""

    # The stored report rows' group of five columns as one JSON text (`items.report_rows`).
    JSON_ARRAY = "json_build_array({})::text"
    # A column numbering the rows inserted without it 1, 2, ... (`links.linked_batches`).
    COUNTER_KEY = "INTEGER GENERATED ALWAYS AS IDENTITY PRIMARY KEY"
    # The database's clock, in seconds since the epoch (the leases' and the leader's).
    CLOCK = "extract(epoch FROM clock_timestamp())::double precision"

    def __init__(self, conn: Connection, config: DatabaseConfig, password: str | None,
                 readonly: bool):
        self.conn = conn
        self.config = config
        self.path = config.url
        self.readonly = readonly
        self._password = password

    @classmethod
    def open(cls, config: DatabaseConfig, password: str | None, *,
             readonly: bool = False) -> PgDatabase:
        """Connect (a writer: and migrate); refuse a schema newer than this ackwatch."""
        try:
            db = cls(connect(config, password, readonly=readonly), config, password, readonly)
        except psycopg.Error as exc:
            raise _cannot_connect(config, password, exc) from None
        try:
            db._check_schema()
        except BaseException:
            db.close()
            raise
        return db

    def _check_schema(self) -> None:
        """A writer: migrate (refusing a newer schema); a reader: refuse a newer one."""
        if not self.readonly:
            schema.migrate(self)
        elif (version := self.user_version()) > schema.SCHEMA_VERSION:
            raise StoreError(f"{self.config.url}: schema {version} is newer than this ackwatch")

    def reconnect(self) -> None:
        """A new connection in place of a lost one, its schema checked again (a failover
        may land on a database that a newer ackwatch migrated). `StoreUnavailable` while
        the server cannot be reached yet; `StoreError` when it refuses us for good
        (authentication, permissions, a newer schema)."""
        try:
            raw = connect_raw(self.config, self._password, readonly=self.readonly)
        except psycopg.Error as exc:
            raise _cannot_connect(self.config, self._password, exc) from None
        old, self.conn.raw = self.conn.raw, raw
        with contextlib.suppress(psycopg.Error):
            old.close()
        self._check_schema()

    def reader(self) -> PgDatabase:
        """Another connection to the same database, read-only."""
        return PgDatabase.open(self.config, self._password, readonly=True)

    def close(self) -> None:
        with contextlib.suppress(psycopg.Error):
            self.conn.close()

    @contextlib.contextmanager
    def write(self) -> Iterator[Connection]:
        """One write transaction: everything done in the block is stored, or (on any
        error, an interruption included) nothing is."""
        self._check_writable()
        try:
            with self.conn.raw.transaction():
                yield self.conn
        except psycopg.Error as exc:  # at BEGIN or COMMIT (statements: `Connection`)
            raise self.conn.unavailable(exc) or StoreError(
                f"{self.path}: write failed: {reason(exc, self._password)}") from exc

    def write_one(self, sql: str, params: Sequence[object] = ()) -> list[Any]:
        """One statement as a transaction of its own (the connection is in autocommit);
        the rows it returns (RETURNING). One round trip where `write` takes three, and
        the rows it locks are free again when the statement ends: never held while this
        process waits for the interpreter to send COMMIT."""
        self._check_writable()
        try:
            return self.conn.execute(sql, params).fetchall()
        except psycopg.Error as exc:
            raise self.conn.unavailable(exc) or StoreError(
                f"{self.path}: write failed: {reason(exc, self._password)}") from exc

    def _check_writable(self) -> None:
        if self.readonly:
            raise StoreError("the state database was opened read-only")
        if self.conn.streams:
            # It would be a savepoint in the stream's transaction, stored only when the
            # stream ends: never a write that seems stored and is not yet.
            raise StoreError("a write while a streamed read is open on the connection")

    def stream(self, sql: str, params: Sequence[object] = ()) -> Iterator[tuple[Any, ...]]:
        """The rows of ``sql`` as plain tuples, a few thousand at a time
        (`Connection.stream`); no write until it ends or is closed."""
        return self.conn.stream(sql, params)

    def stream_through(self, sql: str, params: Sequence[object] = ()) -> Iterator[tuple[Any, ...]]:
        """The rows of ``sql`` as the server produces them (`Connection.stream_through`)."""
        return self.conn.stream_through(sql, params)

    def user_version(self) -> int:
        """The schema version of the database (`schema.MIGRATIONS` applied)."""
        return schema.version(self.conn)

    def integrity_check(self) -> str:
        return "ok"  # PostgreSQL checks its pages itself (data checksums, amcheck)

    def refresh_statistics(self, tables: Sequence[str]) -> None:
        """``ANALYZE`` of ``tables``. Tables a first sync has just filled have no
        statistics until autovacuum's first pass (a minute later; never for a temporary
        table): the planner then takes a chunked ``key IN (500 keys)`` for most of the
        table and scans it (34 ms a chunk of 100k stored copies, 5.7 ms by the index
        once analyzed)."""
        self.conn.execute("ANALYZE " + ", ".join(tables))

    def insert_new_rows(self, c: Connection, sql: str, rows: Sequence[Sequence[object]]) -> None:
        c.executemany(sql, rows, new=True)

    def rows_in(
        self, query: str, args: Sequence[object], values: Iterable[object]
    ) -> Iterator[Any]:
        """The rows of ``query`` over ``values``, its ``IN ({})`` made ``= ANY(?)`` with
        an array of up to `ANY_VALUES` of them: a statement where SQLite's chunks take
        20 (the server parses and plans one short statement, and psycopg adapts one
        array where it would adapt 500 parameters: 20,000 keys looked up in 0.05-0.09 s
        against 0.22-0.26 s, bench/README.md Session 15)."""
        sql = query.replace("IN ({})", "= ANY(?)")
        chunk: list[object] = []
        for v in values:
            chunk.append(v)
            if len(chunk) == ANY_VALUES:
                yield from self.conn.execute(sql, (*args, chunk))
                chunk = []
        if chunk:
            yield from self.conn.execute(sql, (*args, chunk))

    def get_meta(self, name: str) -> str | None:
        row = self.conn.execute("SELECT value FROM meta WHERE name = ?", (name,)).fetchone()
        return None if row is None else row[0]

    def set_meta(self, name: str, value: str) -> None:
        with self.write() as c:
            set_meta(c, {name: value})  # type: ignore[arg-type]

    def set_meta_many(self, values: Mapping[str, str]) -> None:
        with self.write() as c:
            set_meta(c, values)  # type: ignore[arg-type]


def _cannot_connect(config: DatabaseConfig, password: str | None,
                    exc: psycopg.Error) -> StoreError:
    """A failed connect: `StoreUnavailable` for an outage, else `StoreError`."""
    kind = StoreUnavailable if connect_failure_is_outage(exc) else StoreError
    return kind(f"{config.url}: cannot connect to the state database: {reason(exc, password)}")
