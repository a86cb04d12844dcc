"""How long a node's lease renewal waits for the interpreter (issue 20), on PostgreSQL.

    .venv/bin/python bench/lease_renewal.py                 # 100 mailboxes, 0/1/4 busy threads
    .venv/bin/python bench/lease_renewal.py --mailboxes 400 --busy 0,2

A node's cluster round runs in a thread of its own beside the watchers and the core.
Each SQL statement is a round trip during which the round thread lets go of the GIL,
and it must win it back before the next one: with other threads busy in Python, each
round trip can cost a switch interval (5 ms) or several. This renews the leases of
``--mailboxes`` mailboxes (all held already, the steady case) on a private PostgreSQL,
with ``--busy`` other threads spinning in Python, two ways: one upsert per mailbox
(before session 12) and `Leases.claim_leases` (one statement per 500 mailboxes). It
prints the renewal's wall time and the round thread's own CPU time; the difference is
waiting, for the server or for the interpreter (the server's own time is about 1 ms).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.servers.postgres import PostgresServer, database_config  # noqa: E402

from ackwatch.store import open_store  # noqa: E402
from ackwatch.store.leases import Leases  # noqa: E402


def claim_one_by_one(db, node: str, mailboxes: list[str], seconds: float) -> set[str]:  # type: ignore[no-untyped-def]
    """The renewal as it was: one conditional upsert per mailbox, in one transaction."""
    held: set[str] = set()
    with db.write() as c:
        for mailbox in sorted(set(mailboxes)):
            row = c.execute(
                "INSERT INTO mailbox_leases (mailbox, node, expires_at)"
                f" VALUES (?, ?, {db.CLOCK} + ?)"
                " ON CONFLICT(mailbox) DO UPDATE SET node = excluded.node,"
                " expires_at = excluded.expires_at"
                " WHERE mailbox_leases.node = excluded.node"
                f" OR mailbox_leases.expires_at <= {db.CLOCK}"
                " RETURNING mailbox",
                (mailbox, node, float(seconds)),
            ).fetchone()
            if row is not None:
                held.add(row[0])
    return held


def spin(stop: threading.Event) -> None:
    """A thread busy in Python, as a watcher parsing a flood of mail or the core is."""
    x = 0
    while not stop.is_set():
        for i in range(1000):
            x += i * i


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mailboxes", type=int, default=100)
    ap.add_argument("--busy", default="0,1,4", help="numbers of busy threads, comma-separated")
    ap.add_argument("--repeat", type=int, default=15)
    a = ap.parse_args()
    server = PostgresServer()
    server.start()
    try:
        config = database_config(server, server.new_database())
        store = open_store(Path(tempfile.mkdtemp()) / "state", database=config)
        db = store._pg  # type: ignore[attr-defined]
        leases = Leases(db)
        names = [f"mb{i:04d}" for i in range(a.mailboxes)]
        ways = (("one statement per mailbox", lambda: claim_one_by_one(db, "n1", names, 15.0)),
                ("one statement (claim_leases)", lambda: leases.claim_leases("n1", names, 15.0)))
        print(f"{a.mailboxes} leases renewed; switch interval {sys.getswitchinterval() * 1000:.0f} ms")
        print("| busy threads | renewal | wall p50 | wall max | own CPU p50 |\n|---|---|---|---|---|")
        for busy in (int(n) for n in a.busy.split(",")):
            stop = threading.Event()
            spinners = [threading.Thread(target=spin, args=(stop,), daemon=True)
                        for _ in range(busy)]
            for t in spinners:
                t.start()
            for label, renew in ways:
                walls, cpus = [], []
                for _ in range(a.repeat):
                    wall, cpu = time.perf_counter(), time.thread_time()
                    assert len(renew()) == a.mailboxes
                    walls.append(time.perf_counter() - wall)
                    cpus.append(time.thread_time() - cpu)
                print(f"| {busy} | {label} | {statistics.median(walls) * 1000:.1f} ms"
                      f" | {max(walls) * 1000:.1f} ms | {statistics.median(cpus) * 1000:.1f} ms |")
            stop.set()
            for t in spinners:
                t.join()
        store.close()
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
