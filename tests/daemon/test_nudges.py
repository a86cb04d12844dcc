"""What the daemon plans (`daemon/nudges.py`)."""

from __future__ import annotations

import datetime as dt
import random

from ackwatch.core import dispatch as scheduler
from ackwatch.core import item_rules as sla
from ackwatch.core.item_rules import Deadlines, Item
from ackwatch.daemon import nudges
from ackwatch.store.sqlite import SqliteStore as Store
from configfactory import ANNA, PIOTR, make_config

WARSAW = dt.timezone(dt.timedelta(hours=1))  # November: CET
MONDAY_0900 = dt.datetime(2026, 11, 23, 9, 0, tzinfo=WARSAW)


def test_planning_from_the_items_due_equals_planning_from_every_pending_item(tmp_path):
    """`nudges.plan` reads only the items with an action due within the batch window,
    and the next due time beyond it from the index: the same mails, to the same people,
    and the same next due time as a plan over every pending item (accounts with a
    manager: a skip is planned when it comes due, see the test above)."""
    config = make_config(state_dir=tmp_path)
    rng = random.Random(10)
    now = MONDAY_0900
    for trial in range(25):
        store = Store.open(tmp_path / str(trial))
        items = []
        for n in range(rng.randrange(0, 60)):
            account = rng.choice([ANNA, PIOTR])
            nudge_at = now + dt.timedelta(minutes=rng.randrange(-180, 180))
            escalate_at = (nudge_at + dt.timedelta(minutes=rng.randrange(0, 120))
                           if rng.random() < 0.8 else None)
            items.append(Item(
                key=f"<k{n}@client.example>", thread=f"t{n}", message_id=f"<k{n}@client.example>",
                client_address="jan@client.example", client=None, subject=f"Order {n}",
                received=nudge_at - dt.timedelta(hours=2), mailboxes=("anna",), account=account,
                deadlines=Deadlines("default", "calendar", nudge_at + dt.timedelta(minutes=30),
                                    nudge_at, escalate_at)))
        store.sync_items(items, now=now, initial_keys=set())
        for kind in ("nudge", "escalation"):
            done = [i.key for i in items if rng.random() < 0.3]
            if done:
                store.mark_items_done(kind, done, rng.choice(["sent", "suppressed"]))
        store.enqueue(kind="nudge", recipient=ANNA, cc=(), account=ANNA, nudge_keys=(),
                      escalation_keys=(), message_id="<n@agency.example>",
                      now=now - dt.timedelta(minutes=rng.randrange(0, 90)))
        try:
            due = nudges.plan(store, config, now, lambda accounts, at: [])
            everything = scheduler.plan(
                [scheduler.Pending(r.key, r.account, r.nudge_at, r.escalate_at,
                                   r.nudge_done is not None, r.escalation_done is not None)
                 for r in store.pending_items()],
                config=config, now=now,
                recipient_of=lambda acc: sla.recipient_for(acc, config, now, []),
                sent_last_hour=store.reached_since(now - dt.timedelta(hours=1)),
            )
            assert due.plan == everything
        finally:
            store.close()
