"""Where the benchmarked state lives (`bench/run.py --database`).

- ``sqlite`` (the default): the SQLite file under each run's ``state_dir``.
- ``postgresql``: a private PostgreSQL server (Debian's package), started as the tests
  start theirs (`tests/servers/postgres.py`: ``initdb`` in a temporary directory, a
  loopback port, as the ``postgres`` user when run as root; a commit is written before
  it is acknowledged, as in production, but ``fsync=off`` as in the tests), one new
  database per run, named in the run's config (a ``database`` section).

The targets read and write the state through `Backend` only: `ro` (a read-only look
from the bench, ``?`` placeholders on both), `open_store`, `errors`.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from pathlib import Path
from typing import Any

BACKENDS = ("sqlite", "postgresql")


class Backend:
    """One backend for the whole bench run."""

    def __init__(self, name: str) -> None:
        assert name in BACKENDS, name
        self.name = name
        self._server: Any = None  # tests.servers.postgres.PostgresServer
        self._databases: dict[Path, Any] = {}  # state dir -> DatabaseConfig

    @property
    def errors(self) -> tuple[type[Exception], ...]:
        """What a look at a state that is not there yet may raise."""
        if self.name == "sqlite":
            return (sqlite3.Error,)
        import psycopg

        return (psycopg.Error,)

    def start(self) -> None:
        if self.name == "postgresql":
            from tests.servers.postgres import PostgresServer, postgres_bindir

            if postgres_bindir() is None:
                raise SystemExit("--database postgresql: PostgreSQL is not installed "
                                 "(apt-get install postgresql)")
            self._server = PostgresServer(crash_safe=True)
            self._server.start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.cleanup()
            self._server = None

    def config_yaml(self, state: Path) -> str:
        """The config's ``database`` section for a run whose state dir is ``state``
        (a new, empty database); nothing for SQLite."""
        if self.name == "sqlite":
            return ""
        from tests.servers.postgres import database_config

        db = database_config(self._server, self._server.new_database())
        self._databases[state] = db
        return (f"database:\n  url: {db.url}\n  password_file: {db.password.value}\n"
                "  sslmode: disable\n")

    def database(self, state: Path) -> Any:
        """The run's `DatabaseConfig` (None: SQLite under ``state``)."""
        return self._databases.get(state)

    def open_store(self, state: Path) -> Any:
        """The run's state, writable (created and migrated)."""
        from ackwatch.store import open_store

        return open_store(state, database=self.database(state))

    def ro(self, state: Path) -> Any:
        """A read-only connection to the run's state, with sqlite3's ``execute`` and
        ``with`` (closed at its end for PostgreSQL)."""
        if self.name == "sqlite":
            from ackwatch.store.database import readonly_uri

            return sqlite3.connect(readonly_uri(state / "ackwatch.sqlite3"), uri=True,
                                   timeout=30)
        from ackwatch.store.postgres.connection import connect

        return _Look(connect(self._databases[state], _password(self._databases[state]),
                             readonly=True))


def _password(db: Any) -> str:
    from ackwatch.credentials import resolve_secret

    return resolve_secret(db.password)


class _Look:
    """A read-only PostgreSQL connection used as the bench uses an sqlite3 one."""

    def __init__(self, conn: Any) -> None:
        self._conn = conn

    def execute(self, sql: str, params: Sequence[object] = ()) -> Any:
        return self._conn.execute(sql, params)

    def close(self) -> None:
        self._conn.close()

    def __enter__(self) -> _Look:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
