"""Many rows of one single-row ``INSERT`` written as a few multi-row statements.

The table groups write their rows with ``executemany`` of an ``INSERT ... VALUES (?, ...)``
(SQLite runs it in-process, row after row). PostgreSQL executes each row as a statement
of its own, even pipelined: a first sync's 20k messages, 58k links and 13k items cost
about 30 us of server time and more of the client's a row. The same ``INSERT`` with
``VALUES (...), (...), ...`` stores a thousand rows in one statement, with the same
outcome:

- without ``ON CONFLICT``, and with ``ON CONFLICT ... DO NOTHING`` (a row that conflicts
  with one stored earlier in the same statement is skipped, as it would be a statement
  later);
- with ``ON CONFLICT (cols) DO UPDATE``, provided no two rows of one statement have the
  same conflict target (PostgreSQL refuses to update a row twice in one command): a
  repeated target starts the next statement, so the later row still wins.

What is not of that form (placeholders after ``VALUES (...)``, a ``DO UPDATE`` whose
target is not all placeholders, ``DELETE``, ``UPDATE``) is left to psycopg's pipelined
``executemany``.

The statements use PostgreSQL's own numbered placeholders (``$1``), for psycopg's
`RawCursor`: a ``%s`` query longer than 4 kB is parsed again in Python at every
execution (psycopg caches only shorter ones), which cost more than the server's work.
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
import re
from collections.abc import Iterator, Sequence

#: Rows in one statement: beyond a few hundred rows a statement costs about the same per
#: row; the bound on parameters is the protocol's (their count is a 16-bit number).
MAX_ROWS = 1000
MAX_PARAMS = 65_535

# The table groups' form: ``?`` placeholders; nothing quoted up to the row's end.
_INSERT = re.compile(
    r"(?P<head>\s*INSERT\s+INTO\s+(?P<table>\w+)\s*\((?P<columns>[^()'\"?]*)\)\s*VALUES\s*)"
    r"\((?P<row>[^()'\"]*)\)"
    r"(?P<tail>\s*ON\s+CONFLICT\s*(?:\((?P<target>[^()'\"?]*)\))?\s*DO\s+"
    r"(?P<action>NOTHING|UPDATE)\b[^?]*)?",
    re.IGNORECASE | re.DOTALL,
)


@dataclasses.dataclass(frozen=True)
class RowInsert:
    """A single-row ``INSERT`` taken apart: ``head`` up to ``VALUES``, the ``row``'s
    items (``?`` and literals), the ``tail`` (an ``ON CONFLICT`` clause or nothing), and
    for ``DO UPDATE`` the positions in a row's parameters of its conflict target (``()``:
    rows may repeat it). ``table``, ``columns`` and ``action`` (``""``, ``NOTHING`` or
    ``UPDATE``) are for `bulk`'s COPY."""

    head: str
    row: tuple[str, ...]
    tail: str
    target: tuple[int, ...]
    table: str = ""
    columns: tuple[str, ...] = ()
    action: str = ""

    @property
    def params(self) -> int:
        return self.row.count("?")

    def statements(self, rows: Sequence[Sequence[object]]) -> Iterator[tuple[str, list[object]]]:
        """(statement, parameters) pairs that write ``rows``, in their order."""
        per_statement = max(1, min(MAX_ROWS, MAX_PARAMS // max(1, self.params)))
        chunk: list[Sequence[object]] = []
        seen: set[tuple[object, ...]] = set()
        for row in rows:
            if self.target:
                key = tuple(row[i] for i in self.target)
                if key in seen:  # a second update of one row: the next statement's
                    yield self._statement(chunk)
                    chunk, seen = [], set()
                seen.add(key)
            chunk.append(row)
            if len(chunk) == per_statement:
                yield self._statement(chunk)
                chunk, seen = [], set()
        if chunk:
            yield self._statement(chunk)

    def _statement(self, chunk: Sequence[Sequence[object]]) -> tuple[str, list[object]]:
        return self.sql(len(chunk)), list(itertools.chain.from_iterable(chunk))

    @functools.lru_cache(maxsize=32)  # noqa: B019 - the instances live on, cached themselves
    def sql(self, rows: int) -> str:
        """The statement writing ``rows`` rows, its placeholders numbered ``$1``..."""
        numbers = itertools.count(1)
        values = ",".join(
            "(" + ",".join(f"${next(numbers)}" if v == "?" else v for v in self.row) + ")"
            for _ in range(rows)
        )
        return self.head + values + self.tail


@functools.lru_cache(maxsize=256)
def row_insert(sql: str) -> RowInsert | None:
    """``sql`` (``?`` placeholders) as a `RowInsert`, or None when it cannot be written
    as multi-row statements with the same outcome."""
    m = _INSERT.fullmatch(sql)
    if m is None:
        return None
    items = tuple(v.strip() for v in m["row"].split(","))
    columns = [c.strip().lower() for c in m["columns"].split(",")]
    if len(items) != len(columns) or any("?" in v and v != "?" for v in items) \
            or any("$" in v for v in items):
        return None
    target: tuple[int, ...] = ()
    if m["action"] and m["action"].upper() == "UPDATE":
        if not m["target"]:
            return None
        param_of = {c: items[:i].count("?") for i, c in enumerate(columns) if items[i] == "?"}
        names = [c.strip().lower() for c in m["target"].split(",")]
        if not all(n in param_of for n in names):
            return None
        target = tuple(param_of[n] for n in names)
    return RowInsert(m["head"], items, m["tail"] or "", target, m["table"], tuple(columns),
                     (m["action"] or "").upper())
