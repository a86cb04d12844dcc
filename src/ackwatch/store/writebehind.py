"""Big inserts overlapped with the Python that makes the next rows: SQLite releases the GIL
while it works, so a first sync's tens of thousands of rows are written on the second core
while the caller prepares what comes next, instead of after it."""

from __future__ import annotations

import contextlib
import functools
import json
import queue
import sqlite3
import threading
from collections.abc import Callable, Iterator, Sequence

# Rows from which `write_behind` writes on a thread of its own: below it, starting the
# thread costs more than the overlap gives.
WRITE_BEHIND_ROWS = 2000


class WriteBehind:
    """The writes of a transaction, run in order on a thread of their own while the
    caller makes the next rows (``threaded``), or at once (not threaded).

    Each write must be one SQLite step, as `bulk_insert` makes them: an ``executemany``
    gives the GIL back for every row, and its thread waits each time for the caller to
    let go of it (up to the 5 ms switch interval: hardly any progress at all). Until
    `write_behind` ends, the caller must not use the connection.
    """

    def __init__(self, threaded: bool) -> None:
        self._queue: queue.SimpleQueue[Callable[[], object] | None] | None = None
        self._worker: threading.Thread | None = None
        self._failure: BaseException | None = None
        if threaded:
            self._queue = queue.SimpleQueue()
            self._worker = threading.Thread(
                target=self._work, name="ackwatch-store-write", daemon=True
            )
            self._worker.start()

    def __call__(self, write: Callable[[], object]) -> None:
        if self._queue is None:
            write()
        else:
            self._queue.put(write)

    def _work(self) -> None:
        assert self._queue is not None
        while (write := self._queue.get()) is not None:
            if self._failure is None:  # after a failure, the transaction is rolled back
                try:
                    write()
                except BaseException as exc:  # handed to the caller's thread
                    self._failure = exc

    def finish(self) -> None:
        """Wait for every write, to the end even when interrupted (KeyboardInterrupt):
        the transaction must not end, or roll back, while a write still runs in it.
        Then raise what a write raised, or the interruption."""
        if self._worker is None or self._queue is None:
            return
        self._queue.put(None)
        interrupted: BaseException | None = None
        while self._worker.is_alive():
            try:
                self._worker.join()
            except BaseException as exc:
                interrupted = exc
        if self._failure is not None:
            raise self._failure
        if interrupted is not None:
            raise interrupted


@contextlib.contextmanager
def write_behind(*, threaded: bool) -> Iterator[WriteBehind]:
    """A `WriteBehind` for the block, every write of which is done when it ends."""
    behind = WriteBehind(threaded)
    try:
        yield behind
    except BaseException:
        with contextlib.suppress(BaseException):  # the block's error is the one to raise
            behind.finish()
        raise
    behind.finish()


def bulk_insert(
    c: sqlite3.Connection, insert: str, rows: Sequence[tuple[str | int | None, ...]]
) -> Callable[[], object]:
    """A write of ``rows`` (text, integers and NULLs) by ``insert`` ("INSERT INTO links
    (link, key) {select} ON CONFLICT DO NOTHING"; without ``{select}``, the rows follow
    ``insert``), in one SQLite step: the rows travel as one JSON array (`json_each`),
    which inserts them in order, with their types. Text with a NUL character, which
    SQLite's JSON functions would cut, takes ``executemany`` instead, and so does
    another database (PostgreSQL's `postgres.connection`: psycopg pipelines it)."""
    if not rows:
        return lambda: None
    width = len(rows[0])
    payload = None
    if isinstance(c, sqlite3.Connection):
        payload = json.dumps(rows, ensure_ascii=False, separators=(",", ":"))
        if "\\u0000" in payload:
            payload = None
    if payload is None:
        values = ", ".join("?" * width)
        statement = insert.replace("{select}", f"VALUES ({values})") if "{select}" in insert \
            else f"{insert} VALUES ({values})"
        return functools.partial(c.executemany, statement, rows)
    select = "SELECT " + ", ".join(f"value->>{i}" for i in range(width))
    select += " FROM json_each(?) WHERE true"  # WHERE: an ON CONFLICT after it parses as one
    statement = insert.replace("{select}", select) if "{select}" in insert \
        else f"{insert} {select}"
    return functools.partial(c.execute, statement, (payload,))
