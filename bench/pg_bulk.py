"""A first sync's store step on PostgreSQL, its bulk rows as multi-row INSERTs or COPY
(issue 20, target 1; `ackwatch.store.postgres.bulk`).

    nice -n 19 .venv/bin/python bench/pg_bulk.py                  # 30k copies, 3 rounds
    nice -n 19 .venv/bin/python bench/pg_bulk.py --copies 20000 --rounds 5
    nice -n 19 .venv/bin/python bench/pg_bulk.py --copies 1000 --copy-rows 500  # the threshold

Starts a private PostgreSQL as the bench does (`bench/backend.py`: Debian's package,
``initdb`` in a temporary directory, commits written before they are acknowledged,
``fsync=off``), generates one INBOX of ``--copies`` mails with `generate.mailbox_mails`
(the big100k shapes: clients, newsletters, auto-replies, follow-ups) and stores it as
a first sync's step (`Store.apply_folder_sync` with ``initial=True``) into a new
database, once per path and round, the paths interleaved round by round:

- ``values``: the multi-row INSERTs of `store.postgres.batch` (`bulk.COPY_ROWS` out of
  reach);
- ``copy``: COPY in binary form (`bulk`, as shipped; ``--copy-rows``: its threshold);
- ``copy-text``: COPY in text form (`copy.write_row` without types), for comparison.

With ``--evaluate`` the first evaluation after the store step is timed too
(`Evaluator.reevaluate` with the tests' agency, `tests/configfactory.py`: the items,
their threads and follow-ups written). With ``--second`` the tables hold another mailbox's first sync of as many other mails
(stored untimed before): the ``DO NOTHING`` rows then go through a temporary table.

The parsing and the header variants' read are done before the clock starts; what is
timed is `apply_folder_sync` alone (wall, and this process's CPU beside it: the rest
is the server's). The figures are the median and range per path; a comparison counts
only within one run (the machine's load moves them all).
"""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT))

import generate  # noqa: E402

NOW = dt.datetime(2026, 11, 23, 9, 0, tzinfo=dt.UTC)
PATHS = ("values", "copy", "copy-text")


def inbox(copies: int, seed: int = 7) -> list[Any]:
    """``copies`` fetched INBOX copies of the big100k shapes, UIDs 1.."""
    from ackwatch.store import NewMessage

    mails = [m for m in generate.mailbox_mails(
        owner="anna@agency.example", inbox=copies, window=copies // 3, now=NOW, seed=seed)
        if m.folder == "INBOX"]
    out = []
    for uid, m in enumerate(mails, 1):
        header = m.raw[: m.raw.index(b"\r\n\r\n") + 4]
        flags = frozenset({"\\Seen"} | ({"\\Answered"} if "R" in m.flags else set()))
        out.append(NewMessage(uid, m.received, flags, header))
    return out


def _copy_text(conn: Any, sql: str, types: Any, rows: Any) -> None:
    with conn.cursor().copy(sql.replace(" (FORMAT BINARY)", "")) as copy:
        for row in rows:
            copy.write_row(row)


def store_once(server: Any, msgs: list[Any], path: str, copy_rows: int = 5000,
               before: Sequence[Any] = (), evaluate: bool = False
               ) -> tuple[float, float, float]:
    """One first sync's store step of ``msgs`` into a new database by ``path`` (after
    ``before``, another mailbox's first sync, untimed): (wall, this process's CPU, the
    first evaluation's wall or 0) in seconds."""
    from tests.servers.postgres import database_config

    from ackwatch.store import open_store
    from ackwatch.store.postgres import bulk

    bulk.COPY_ROWS = 10**9 if path == "values" else copy_rows
    bulk._copy = _copy_text if path == "copy-text" else _COPY_BINARY  # type: ignore[assignment]
    state = Path(tempfile.mkdtemp(prefix="ackwatch-pgbulk-"))
    store = open_store(state, database=database_config(server, server.new_database()))
    try:
        if before:
            _apply(store, "bob", before)
        wall, cpu = _apply(store, "anna", msgs)
        return wall, cpu, _evaluate(store) if evaluate else 0.0
    finally:
        store.close()


def _evaluate(store: Any) -> float:
    """The first evaluation's wall time (`Evaluator.reevaluate`, the tests' agency:
    unknown senders tracked, anna's mailbox)."""
    from tests.configfactory import make_config

    from ackwatch.daemon.evaluation import Evaluator

    config = make_config()
    evaluator = Evaluator(store, lambda: config, lambda: NOW, progress=lambda: None,
                          evaluated=lambda _items, _keys: None)
    wall = time.perf_counter()
    evaluator.reevaluate()
    return time.perf_counter() - wall


def _apply(store: Any, mailbox: str, msgs: Sequence[Any]) -> tuple[float, float]:
    from ackwatch.daemon.parsedmail import ParsedMail, copies_to_store

    parsed = ParsedMail()
    fetched = parsed.parse(mailbox, "INBOX", "inbox", msgs)
    to_store = copies_to_store(store, fetched)
    wall, cpu = time.perf_counter(), time.process_time()
    store.apply_folder_sync(
        mailbox=mailbox, folder="INBOX", role="inbox", uidvalidity=1,
        last_uid=msgs[-1].uid, highestmodseq=None, new_messages=to_store,
        flag_updates=(), reset=False, initial=True, dismiss_keyword="$Ackwatch-Done",
        now=NOW,
    )
    return time.perf_counter() - wall, time.process_time() - cpu


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--copies", type=int, default=30_000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--paths", default=",".join(PATHS))
    ap.add_argument("--second", action="store_true",
                    help="store into tables that hold another mailbox's first sync")
    ap.add_argument("--evaluate", action="store_true",
                    help="time the first evaluation after the store step too")
    ap.add_argument("--copy-rows", type=int, default=5000, help="bulk.COPY_ROWS of the COPY paths")
    args = ap.parse_args()
    import structlog
    from tests.servers.postgres import PostgresServer

    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))

    paths = args.paths.split(",")
    msgs = inbox(args.copies)
    before = inbox(args.copies, seed=8) if args.second else []
    print(f"{len(msgs)} copies; paths {paths}; {args.rounds} rounds", flush=True)
    server = PostgresServer(crash_safe=True)
    server.start()
    try:
        store_once(server, msgs[:2000], "values")  # warm: imports, the server's caches
        times: dict[str, list[tuple[float, float, float]]] = {p: [] for p in paths}
        for r in range(args.rounds):
            for p in paths if r % 2 == 0 else reversed(paths):
                times[p].append(store_once(server, msgs, p, args.copy_rows, before,
                                           args.evaluate))
                wall, cpu, evaluation = times[p][-1]
                print(f"round {r + 1} {p:9s} {wall:.3f} s wall, {cpu:.3f} s CPU"
                      + (f"; evaluation {evaluation:.3f} s" if args.evaluate else ""),
                      flush=True)
        for p, ts in times.items():
            walls = [w for w, _, _ in ts]
            evaluations = [e for _, _, e in ts]
            print(f"{p:9s} wall median {statistics.median(walls):.3f} s"
                  f" ({min(walls):.3f}-{max(walls):.3f}); client CPU median"
                  f" {statistics.median(c for _, c, _ in ts):.3f} s"
                  + (f"; evaluation median {statistics.median(evaluations):.3f} s"
                     f" ({min(evaluations):.3f}-{max(evaluations):.3f})"
                     if args.evaluate else ""))
    finally:
        server.cleanup()


if __name__ == "__main__":
    from ackwatch.store.postgres import bulk as _bulk

    _COPY_BINARY = _bulk._copy
    main()
