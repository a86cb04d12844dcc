"""The board while the state database is unreachable (PostgreSQL restarting): every read
answers 503 "state database unreachable" with Retry-After, so the page's script says it
is stale; the outage is logged once when it starts and once when it ends, not per
request; the database is tried at most once every `RETRY_AFTER` meanwhile.

The store is the board's test state in SQLite behind a reader whose reads raise
`StoreUnavailable` while ``down``, as a PostgreSQL reader's do when the server restarts.
The board's clock is the test's (no waiting).
"""

from __future__ import annotations

import datetime as dt
import http.client
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs
from tests.support.board_state import write_state

from ackwatch.store import Store, StoreUnavailable
from ackwatch.store.sqlite import SqliteStore
from ackwatch.web.outage import RETRY_AFTER
from ackwatch.web.server import WebBoard

NOW = dt.datetime.now(dt.UTC).replace(microsecond=0)
LOST = ("postgresql://ackwatch@db.internal:5432/ackwatch: connection lost: "
        "terminating connection due to administrator command")
POLL = dt.timedelta(milliseconds=500)  # the page's script asks /live this often


class FlakyReader:
    """A read-only store whose reads raise `StoreUnavailable` while its database is down."""

    def __init__(self, real: Store, database: FlakyDatabase) -> None:
        self._real, self._database = real, database

    def close(self) -> None:
        self._real.close()

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._real, name)
        if not callable(attr):
            return attr

        def read(*args: Any, **kwargs: Any) -> Any:
            self._database.reads += 1
            if self._database.down:
                raise StoreUnavailable(LOST)
            return attr(*args, **kwargs)
        return read


class FlakyDatabase:
    """The daemon's store as the board uses it: a reader opened for each read."""

    def __init__(self, real: Store) -> None:
        self._real = real
        self.down = False
        self.reads = 0

    def open_reader(self) -> FlakyReader:
        return FlakyReader(self._real.open_reader(), self)


class Board:
    def __init__(self, board: WebBoard, port: int, database: FlakyDatabase,
                 clock: list[dt.datetime]) -> None:
        self.board, self.port, self.database, self._clock = board, port, database, clock

    def advance(self, by: dt.timedelta) -> None:
        self._clock[0] += by

    def get(self, path: str) -> tuple[int, http.client.HTTPMessage, bytes]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            conn.request("GET", path)
            response = conn.getresponse()
            return response.status, response.headers, response.read()
        finally:
            conn.close()

    def database_goes_down(self) -> None:
        self.database.down = True
        self.board.changed()  # the daemon's last step before the outage: the board reads

    def poll(self, times: int) -> list[int]:
        """The page's script polling /live ``times``, half a second apart."""
        statuses = []
        for _ in range(times):
            statuses.append(self.get("/live")[0])
            self.advance(POLL)
        return statuses


@pytest.fixture
def board(tmp_path: Path) -> Iterator[Board]:
    state = write_state(tmp_path, NOW)
    store = SqliteStore.open(state.config.state_dir)
    database = FlakyDatabase(store)
    clock = [NOW]
    now: Callable[[], dt.datetime] = lambda: clock[0]  # noqa: E731
    web = WebBoard(database, lambda: state.config, now)  # type: ignore[arg-type]
    port = web.serve("127.0.0.1:0")
    try:
        yield Board(web, port, database, clock)
    finally:
        web.close()
        store.close()


def report_path() -> str:
    since = NOW.date() - dt.timedelta(days=2)
    return f"/report?format=json&since={since}&until={since + dt.timedelta(days=4)}"


def test_while_the_state_database_is_unreachable_every_read_answers_503_with_retry_after(
        board):
    assert board.get("/")[0] == 200
    board.database_goes_down()
    for path in ("/live", "/", report_path()):
        board.advance(RETRY_AFTER)  # each one tries the database
        status, headers, body = board.get(path)
        assert (status, body) == (503, b"State database unreachable; retrying.\n"), path
        assert headers["Retry-After"] == str(int(RETRY_AFTER.total_seconds()))
    assert board.get("/static/board.js")[0] == 200  # the page's script needs no database


def test_an_outage_is_logged_once_when_it_starts_and_once_when_it_ends(board):
    assert board.get("/")[0] == 200
    with capture_logs() as logs:
        board.database_goes_down()
        assert set(board.poll(40)) == {503}  # 20 s of an open page
        board.database.down = False
        board.advance(RETRY_AFTER)
        assert board.get("/live")[0] == 200
        assert board.poll(4) == [200] * 4
    assert [e["event"] for e in logs] == ["web_database_unreachable", "web_database_reconnected"]
    started, ended = logs
    assert started["log_level"] == "warning" and started["error"] == LOST
    assert started["retry_after_s"] == 5
    assert ended["log_level"] == "info" and ended["requests_refused"] == 40
    assert ended["outage_s"] == 20 + RETRY_AFTER.total_seconds()


def test_during_an_outage_the_database_is_tried_at_most_once_every_retry_after(board):
    assert board.get("/")[0] == 200
    board.database_goes_down()
    reads_before = board.database.reads
    board.poll(40)  # 20 s: tried at 0, 5, 10 and 15 s
    assert board.database.reads - reads_before == 4


def test_a_second_outage_is_logged_again(board):
    with capture_logs() as logs:
        for _ in range(2):
            board.database_goes_down()
            board.poll(3)
            board.database.down = False
            board.advance(RETRY_AFTER)
            assert board.get("/live")[0] == 200
    assert [e["event"] for e in logs] == ["web_database_unreachable",
                                          "web_database_reconnected"] * 2
