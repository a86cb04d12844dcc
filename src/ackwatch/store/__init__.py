"""The state: mail seen, items, the outbox, promises and mailbox health, kept across runs.

This package exports its public interface on purpose: `Store` (the operations the rest of
ackwatch uses, `api`), the records they take and give (`records`) and `open_store`, which
opens the state an ackwatch is configured with. Nothing else of the package is for use
outside it, and importing it loads no database module.

Behind the interface, one implementation per database. SQLite (`sqlite.SqliteStore`) is
split by table group: `schema` (numbered migrations), `database` (the connection and its
transactions), `messages` (copies and cursors), `links` (links, senders, threads, dirty
marks), `items`, `outbox`, `promises`, `health`; `forms` is how values are stored. The
groups are objects that each hold the one `database.Database`, composed by
`SqliteStore`: what they share (the connection, the write count) is handed to them, not
inherited. The store stores: parsing the mail is the core's (`core.message`), keeping
parses the evaluation's (`daemon.parsedmail`).
"""

from __future__ import annotations

from pathlib import Path

from ackwatch.store.api import Store
from ackwatch.store.records import (
    CopyToStore,
    HealthRecord,
    ItemRecord,
    NewMessage,
    NewPromise,
    OutboxRecord,
    PromiseRecord,
    StorableMessage,
    StoredCopy,
    StoredCursor,
    StoreError,
)

__all__ = [
    "CopyToStore",
    "HealthRecord",
    "ItemRecord",
    "NewMessage",
    "NewPromise",
    "OutboxRecord",
    "PromiseRecord",
    "StorableMessage",
    "Store",
    "StoreError",
    "StoredCopy",
    "StoredCursor",
    "open_store",
]


def open_store(state_dir: Path, *, readonly: bool = False) -> Store:
    """The state in ``state_dir``: created and migrated for a writer; read-only, it must
    exist (`StoreError` otherwise)."""
    from ackwatch.store.sqlite import SqliteStore

    return SqliteStore.open(state_dir, readonly=readonly)
