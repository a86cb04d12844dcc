"""`PostgresStore`: the `api.Store` on a PostgreSQL database: the table groups
(`tables.TableStore`) on one `PgDatabase`."""

from __future__ import annotations

import psycopg

from ackwatch.config.model import DatabaseConfig
from ackwatch.store.postgres.database import PgDatabase
from ackwatch.store.tables import TableStore


class PostgresStore(TableStore):
    """The state in PostgreSQL, on a `PgDatabase`."""

    errors: tuple[type[Exception], ...] = (psycopg.Error,)

    def __init__(self, db: PgDatabase):
        super().__init__(db)
        self._pg = db

    @classmethod
    def connect(
        cls, config: DatabaseConfig, password: str | None, *, readonly: bool = False
    ) -> PostgresStore:
        """The state on the configured server: migrated for a writer."""
        return cls(PgDatabase.open(config, password, readonly=readonly))

    def notify(self, channel: str, payload: str = "") -> None:
        """Wake the nodes that LISTEN on ``channel`` (`daemon.cluster`)."""
        self._pg.conn.execute("SELECT pg_notify(?, ?)", (channel, payload))

    def end_idle_transactions_after(self, seconds: float) -> None:
        """Have the server end this connection's session when it sits in an open
        transaction for longer than ``seconds`` (the cluster's rounds: a node cut off
        between a statement and its COMMIT would otherwise keep its row locks on the
        leases and the leadership, and stall every other node's round, for as long as
        the network keeps the dead connection open)."""
        ms = max(1, round(seconds * 1000))
        self._pg.conn.execute(f"SET idle_in_transaction_session_timeout = {ms}")

    def open_reader(self) -> PostgresStore:
        """A read-only store on the same database, with a connection of its own."""
        return PostgresStore(self._pg.reader())
