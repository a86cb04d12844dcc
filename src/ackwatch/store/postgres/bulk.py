"""Many rows of one single-row ``INSERT`` written through ``COPY``: the server reads rows
where it would parse and plan ``VALUES`` lists (`batch`), and the client sends them in
PostgreSQL's binary form (no text to make of the integers, no hex of the headers).

Taken where an ``executemany`` writes at least `COPY_ROWS` rows (a first sync's copies,
links and senders; a first evaluation's items), with the outcome of the multi-row
statements:

- a plain ``INSERT``: ``COPY table (columns) FROM STDIN``, the rows in their order (the
  identity ``rowid`` numbers them as before); an integer or ``NULL`` literal of the row
  is written as that value in every row (the literal assigned to the column and the
  value copied into it are the same);
- ``ON CONFLICT ... DO NOTHING`` or ``DO UPDATE`` into an empty table (a first sync's
  links, senders and dirty marks, a first evaluation's threads), or rows the caller
  knows to be new (`PgDatabase.insert_new_rows`: the links and senders of mail stored
  for the first time, into tables holding other mail's): the same, in a savepoint.
  Where no row conflicts, either clause stores every row as given; a row that
  conflicts (with an earlier one of the batch, or one another node stores meanwhile)
  undoes it, and the rows go as statements, which skip or update. Other rows into a
  table that holds rows go as statements too (they may well conflict: a ``COPY`` into
  a temporary table and one ``INSERT ... SELECT ... ON CONFLICT DO NOTHING`` from it
  measured slower);
- another literal (text, an expression), or a value that is not of its column's type
  (an integer for a text column: PostgreSQL's binary form has no conversions, the
  statements do) is left to `batch`.

Measured with `bench/pg_bulk.py` (a first sync's 30k copies stored, their 82k links
and 30k senders; bench/README.md, Session 14): 1.72 s as statements, 1.18 s in binary
COPY, 1.32 s in text COPY.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import psycopg

from ackwatch.store.postgres.batch import RowInsert

#: Rows from which an ``executemany`` goes through ``COPY``: a first sync's or a
#: backfill's bulk. `bench/pg_bulk.py` measures COPY ahead from 500 rows, but below a
#: few thousand the gain is a few milliseconds, and a step's usual handful of rows keeps
#: the one path that every store test runs.
COPY_ROWS = 5000

_LITERAL = re.compile(r"-?\d+|NULL", re.IGNORECASE)
_TEXT_OID = 25
_LITERAL_TYPES = (20, 21, 23, _TEXT_OID)  # int8, int2, int4, text


def copyable(conn: psycopg.Connection[Any], insert: RowInsert, rows: int) -> bool:
    """Whether ``rows`` rows of ``insert`` go through `copy_rows`: enough of them, and
    its literals integers or ``NULL`` in integer or text columns."""
    if rows < COPY_ROWS:
        return False
    literals = [i for i, v in enumerate(insert.row) if v != "?"]
    if not literals:
        return True
    if not all(_LITERAL.fullmatch(insert.row[i]) for i in literals):
        return False
    types = _types(conn, insert.table, ", ".join(insert.columns))
    return all(types[i] in _LITERAL_TYPES for i in literals)


def copy_rows(conn: psycopg.Connection[Any], insert: RowInsert,
              rows: Sequence[Sequence[object]], *, new: bool = False) -> int | None:
    """Write ``rows`` (the parameters of ``insert``'s ``?``, NUL-free) through ``COPY``:
    the rows stored, or None when that would not store what the statements store, and
    then nothing is written: ``ON CONFLICT`` into a table that holds rows (unless the
    caller knows the rows to be ``new``: none stored, no repeats), or with a row that
    conflicts; a value not of its column's type in binary form (an integer for a text
    column, text for an integer: the statements convert it)."""
    if insert.action and not new and not _empty(conn, insert.table):
        return None
    columns = ", ".join(insert.columns)
    types = _types(conn, insert.table, columns)
    rows = _with_literals(insert.row, types, rows)
    try:
        with conn.transaction():  # a savepoint in the caller's transaction
            _copy(conn, f"COPY {insert.table} ({columns}) FROM STDIN (FORMAT BINARY)",
                  types, rows)
    except psycopg.errors.UniqueViolation:
        if not insert.action:
            raise
        return None  # a conflict with an earlier row, or one another node stored since:
        # the statements skip or update it
    except (TypeError, ValueError, OverflowError):  # psycopg's binary dumpers refusing a value
        return None
    return len(rows)


def _empty(conn: psycopg.Connection[Any], table: str) -> bool:
    return conn.execute(f"SELECT 1 FROM {table} LIMIT 1").fetchone() is None


def _copy(conn: psycopg.Connection[Any], sql: str, types: Sequence[int],
          rows: Sequence[Sequence[object]]) -> None:
    with conn.cursor().copy(sql) as copy:
        copy.set_types(types)
        for row in rows:
            copy.write_row(row)


def _types(conn: psycopg.Connection[Any], table: str, columns: str) -> list[int]:
    """The type OIDs of ``table``'s ``columns``, in order."""
    key = (table, columns)
    if key not in _TYPES:
        description = conn.execute(f"SELECT {columns} FROM {table} LIMIT 0").description or []
        _TYPES[key] = [d.type_code for d in description]
    return _TYPES[key]


# The built-in types' OIDs are the same in every database: the cache serves them all.
_TYPES: dict[tuple[str, str], list[int]] = {}


def _with_literals(items: Sequence[str], types: Sequence[int],
                   rows: Sequence[Sequence[object]]) -> Sequence[Sequence[object]]:
    """``rows`` with the row's literals as the values their columns get from them."""
    literals = [(i, None if v.upper() == "NULL" else str(int(v)) if types[i] == _TEXT_OID
                 else int(v)) for i, v in enumerate(items) if v != "?"]
    if not literals:
        return rows
    out = []
    for row in rows:
        full = list(row)
        for i, value in literals:
            full.insert(i, value)
        out.append(full)
    return out
