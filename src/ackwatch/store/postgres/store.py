"""`PostgresStore`: the `api.Store` on a PostgreSQL database."""

from __future__ import annotations

import psycopg

from ackwatch.config.model import DatabaseConfig
from ackwatch.store.postgres.database import PgDatabase
from ackwatch.store.sqlite import SqliteStore


class PostgresStore(SqliteStore):
    """The state in PostgreSQL: the same table groups, composed as `SqliteStore` composes
    them (they speak SQL both databases accept), on a `PgDatabase`."""

    errors: tuple[type[Exception], ...] = (psycopg.Error,)

    @classmethod
    def connect(
        cls, config: DatabaseConfig, password: str | None, *, readonly: bool = False
    ) -> PostgresStore:
        """The state on the configured server: migrated for a writer."""
        return cls(PgDatabase.open(config, password, readonly=readonly))  # type: ignore[arg-type]

    def open_reader(self) -> PostgresStore:
        """A read-only store on the same database, with a connection of its own."""
        return PostgresStore(self._db.reader())  # type: ignore[attr-defined]
