"""Moving a state from SQLite to PostgreSQL (``ackwatch migrate-state``): every table,
row for row, into an empty PostgreSQL database, in one transaction whose counts are
checked before it commits. Ids and rowids are kept (items name their outbox rows, and
the links are resumable by rowid); the identity sequences then continue after them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from ackwatch.store.records import StoreError

if TYPE_CHECKING:
    from ackwatch.store.database import Database
    from ackwatch.store.postgres.database import PgDatabase

# Every table of the state, in an order that needs no other first.
TABLES = ("meta", "folders", "messages", "pending_copies", "items", "item_members", "outbox",
          "outbox_reach", "sent_counts", "promises", "promise_reads", "date_asks", "health",
          "links", "threads", "dirty", "senders")
# The tables whose SQLite rowid PostgreSQL keeps as a column of that name.
ROWID_TABLES = ("messages", "items")
# Identity columns whose sequence must continue after the copied ids.
IDENTITIES = (("messages", "rowid"), ("items", "rowid"), ("outbox", "id"), ("promises", "id"))
BATCH = 5000


def copy_state(source: Database, target: PgDatabase) -> Mapping[str, int]:
    """Copy ``source`` (SQLite, at the current schema) into ``target`` (empty): returns
    the rows copied by table. `StoreError` for a target that holds anything, or when a
    count differs (then nothing is stored)."""
    if source.user_version() != target.user_version():
        raise StoreError(f"{source.path}: schema {source.user_version()}, but the target "
                         f"has {target.user_version()}")
    held = {t: n for t in TABLES if (n := _count(target.conn, t))}
    if held:
        raise StoreError(f"{target.path}: not empty ({_counts_text(held)}); migrate-state "
                         "copies into an empty database only")
    counts = {}
    with target.write():
        raw = target.conn.raw
        for table in TABLES:
            columns = _columns(source, table)
            selected = (["rowid"] if table in ROWID_TABLES else []) + columns
            names = ", ".join(f'"{c}"' for c in selected)
            rows = source.conn.execute(f"SELECT {names} FROM {table}")
            with raw.cursor().copy(f"COPY {table} ({names}) FROM STDIN") as copy:
                while batch := rows.fetchmany(BATCH):
                    for row in batch:
                        copy.write_row(tuple(row))
            counts[table] = _count(target.conn, table)
            expected = _count(source.conn, table)
            if counts[table] != expected:
                raise StoreError(f"{target.path}: {table}: {counts[table]} rows copied, "
                                 f"{expected} in {source.path}; nothing was stored")
        for table, column in IDENTITIES:
            raw.execute(
                f"SELECT setval(pg_get_serial_sequence('{table}', '{column}'),"
                f" COALESCE(MAX({column}), 0) + 1, false) FROM {table}"
            )
    return counts


def _columns(source: Database, table: str) -> list[str]:
    """The stored columns of a table (generated ones are PostgreSQL's to compute)."""
    return [r[1] for r in source.conn.execute(f"PRAGMA table_xinfo({table})") if r[6] == 0]


def _count(conn: object, table: str) -> int:
    return int(conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0])  # type: ignore[attr-defined]


def _counts_text(counts: Mapping[str, int]) -> str:
    return ", ".join(f"{table} {n}" for table, n in counts.items())
