"""The store's contract suite: every test that asks for ``store`` (or ``open_state``)
runs against each backend, SQLite and PostgreSQL, from the same test code. A test about
one database's own ways (SQLite's file modes and PRAGMAs) opens that database itself.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from tests.servers.fixtures import postgres_server, restartable_postgres  # noqa: F401 - fixtures
from tests.servers.postgres import PostgresServer, database_config

from ackwatch.store import Store, open_store

BACKENDS = ("sqlite", "postgresql")


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def open_state(backend: str, tmp_path: Path, request: pytest.FixtureRequest
               ) -> Iterator[Callable[..., Store]]:
    """``open_state(readonly=False)``: the test's one state on ``backend`` (a fresh
    directory, or a fresh PostgreSQL database), opened again at each call."""
    database = None
    if backend == "postgresql":
        server: PostgresServer = request.getfixturevalue("postgres_server")
        database = database_config(server, server.new_database())
    opened: list[Store] = []

    def open_(*, readonly: bool = False) -> Store:
        s = open_store(tmp_path / "state", readonly=readonly, database=database)
        opened.append(s)
        return s

    yield open_
    for s in opened:
        s.close()


@pytest.fixture
def store(open_state: Callable[..., Store]) -> Store:
    return open_state()
