"""`SqliteStore`: the `api.Store` on one SQLite file in the state directory: the table
groups (`tables.TableStore`) on one `database.Database`."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from ackwatch.store.database import Database
from ackwatch.store.tables import TableStore


class SqliteStore(TableStore):
    """The state in SQLite: a writer (the daemon's core thread) or a read-only view."""

    errors: tuple[type[Exception], ...] = (sqlite3.Error,)

    @classmethod
    def open(cls, state_dir: Path, *, readonly: bool = False) -> SqliteStore:
        """The state in ``state_dir``: created and migrated for a writer; a reader needs
        it to exist (`records.StoreError` otherwise)."""
        return cls(Database.open(state_dir, readonly=readonly))

    def notify(self, channel: str, payload: str = "") -> None:
        """One process holds a SQLite state: there is no other node to tell."""

    def end_idle_transactions_after(self, seconds: float) -> None:
        """One process holds a SQLite state: no other node waits on its locks."""

    def open_reader(self) -> SqliteStore:
        """A read-only store on the same file, with a connection of its own."""
        return SqliteStore.open(Path(self.path).parent, readonly=True)
