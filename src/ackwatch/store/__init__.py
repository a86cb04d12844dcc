"""The state: mail seen, items, the outbox, promises and mailbox health, kept across runs.

This package exports its public interface on purpose: `Store` (the operations the rest of
ackwatch uses, `api`), the records they take and give (`records`) and `open_store`, which
opens the state an ackwatch is configured with. Nothing else of the package is for use
outside it, and importing it loads no database module.

Behind the interface, one implementation per database: SQLite (`sqlite.SqliteStore`, the
default) and PostgreSQL (`postgres.store.PostgresStore`). Both are `tables.TableStore`, the
table groups composed on one database (`tables.SqlDatabase`: SQLite's `database.Database`
or `postgres.database.PgDatabase`). The groups: `schema` (numbered migrations), `database`
(the connection and its transactions), `messages` (copies and cursors), `links` (links,
senders, threads, dirty marks), `items`, `outbox`, `promises`, `asks`, `health`, `leases`
(several nodes: heartbeats, mailbox leases, the leader's epoch); `forms` is
how values are stored. Each group holds the one database: what they share (the connection,
the write count) is handed to them, not inherited. The store stores: parsing the mail is
the core's (`core.message`), keeping parses the evaluation's (`daemon.parsedmail`).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from ackwatch.store.api import Store
from ackwatch.store.records import (
    ClusterView,
    CopyToStore,
    HealthRecord,
    ItemRecord,
    Marks,
    MarksKept,
    NameHolder,
    NewMessage,
    NewPromise,
    NotLeading,
    OutboxRecord,
    PromiseRecord,
    StorableMessage,
    StoredCopy,
    StoredCursor,
    StoreError,
    StoreUnavailable,
    Term,
)

if TYPE_CHECKING:
    from ackwatch.config.model import DatabaseConfig

__all__ = [
    "ClusterView",
    "CopyToStore",
    "HealthRecord",
    "ItemRecord",
    "Marks",
    "MarksKept",
    "NameHolder",
    "NewMessage",
    "NewPromise",
    "NotLeading",
    "OutboxRecord",
    "PromiseRecord",
    "StorableMessage",
    "Store",
    "StoreError",
    "StoreUnavailable",
    "StoredCopy",
    "StoredCursor",
    "Term",
    "open_store",
]


def open_store(
    state_dir: Path, *, readonly: bool = False, database: DatabaseConfig | None = None
) -> Store:
    """The state an ackwatch is configured with: in PostgreSQL when ``database`` is given
    (config ``database``), else in SQLite in ``state_dir``. Created (SQLite) and migrated
    for a writer; read-only, it must exist (`StoreError` otherwise, and when the
    database's password cannot be read)."""
    if database is not None:
        from ackwatch.credentials import SecretError, resolve_secret
        from ackwatch.store.postgres.store import PostgresStore

        try:
            password = resolve_secret(database.password) if database.password else None
        except SecretError as exc:
            raise StoreError(f"{database.url}: {exc}") from None
        return PostgresStore.connect(database, password, readonly=readonly)
    from ackwatch.store.sqlite import SqliteStore

    return SqliteStore.open(state_dir, readonly=readonly)
