"""What a plan costs while one manager is over the hourly cap (issue 24), in-process.

    .venv/bin/python bench/capped_plan.py --backlog 0 1000 5000 20000

Kasia (``max_per_hour: 1``, one escalation in her hour) manages Anna, whose
``--backlog`` escalations are all due and wait for Kasia's cap; Piotr has one nudge
due. `nudges.plan` is made on a SQLite state as a step makes it without the memo of
who is capped (``whole``: every item due is read) and with it (``skip``: the capped
escalations are left unread). The figures: CPU milliseconds per plan
(`time.process_time`, median of ``--rounds`` rounds of ``--plans`` plans) and the items
each plan read; both must plan the same mail (asserted).
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from ackwatch.core.item_rules import Deadlines, Item  # noqa: E402
from ackwatch.daemon import nudges  # noqa: E402
from ackwatch.store.sqlite import SqliteStore  # noqa: E402
from configfactory import ANNA, KASIA, PIOTR, make_config  # noqa: E402

T0 = dt.datetime(2026, 11, 23, 12, 0, tzinfo=dt.UTC)
MIN = dt.timedelta(minutes=1)


def item(key: str, account: str, nudge_at: dt.datetime,
         escalate_at: dt.datetime | None) -> Item:
    return Item(key=key, thread=key, message_id=f"<{key}@client.example>",
                client_address="buyer@client.example", client="Acme", subject="Quote",
                received=T0 - 180 * MIN, mailboxes=("anna",), account=account,
                deadlines=Deadlines("default", "business", T0, nudge_at, escalate_at))


def measure(backlog: int, plans: int, rounds: int) -> dict[str, object]:
    with tempfile.TemporaryDirectory() as d:
        config = make_config(state_dir=Path(d))
        config = dataclasses.replace(
            config, notify=dataclasses.replace(config.notify, max_per_hour=1))
        store = SqliteStore.open(Path(d))
        try:
            store.sync_items(
                [item(f"e{i}", ANNA, T0 - 120 * MIN, T0 - 60 * MIN) for i in range(backlog)]
                + [item("p", PIOTR, T0 - MIN, None)], now=T0, initial_keys=set())
            store.mark_items_done("nudge", [f"e{i}" for i in range(backlog)], "sent")
            store.enqueue(kind="escalation", recipient=KASIA, cc=(), account=ANNA,
                          nudge_keys=[], escalation_keys=[], message_id="<e@ackwatch.example>",
                          now=T0 - 30 * MIN)
            result: dict[str, object] = {"backlog": backlog}
            planned = {}
            for label, capped in (("whole", None), ("skip", {KASIA: T0 + 30 * MIN})):
                times = []
                for _ in range(rounds):
                    start = time.process_time()
                    for _ in range(plans):
                        due = nudges.plan(store, config, T0, lambda accounts, now: [], capped)
                    times.append((time.process_time() - start) / plans * 1000)
                planned[label] = due.plan.actions
                result[f"{label}_ms"] = round(statistics.median(times), 2)
                result[f"{label}_items_read"] = len(due.items)
            assert planned["whole"] == planned["skip"], planned
            return result
        finally:
            store.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--backlog", type=int, nargs="+", default=[0, 1000, 5000, 20000])
    ap.add_argument("--plans", type=int, default=20)
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()
    for backlog in args.backlog:
        print(measure(backlog, args.plans, args.rounds), flush=True)


if __name__ == "__main__":
    main()
