"""A folder's pending UIDs (the copies whose flags a sync re-fetches) are the copies of
pending items' mail: each item's first message and its follow-ups, in any mailbox and
folder, read from the copies' pending marker; on both backends."""

from __future__ import annotations

import datetime as dt
import random
import sqlite3

import pytest
from tests.support.storing import T0, new, store_step

from ackwatch.core.item_rules import Ack, Deadlines, Item
from ackwatch.store import Store
from ackwatch.store.database import DB_NAME
from ackwatch.store.sqlite import SqliteStore

H = dt.timedelta(hours=1)
FOLDERS = (("anna", "INBOX", "inbox"), ("anna", "Sent", "sent"), ("piotr", "INBOX", "inbox"))
# What the marker stands for: the copies of the keys of pending items and their follow-ups.
BY_ITEMS = (
    "SELECT m.uid FROM messages m WHERE m.mailbox = ? AND m.folder = ? AND m.key IN ("
    " SELECT key FROM items WHERE state = 'pending'"
    " UNION SELECT im.member_key FROM item_members im"
    " JOIN items i ON i.key = im.item_key WHERE i.state = 'pending')"
)


def key(n: int) -> str:
    return f"<m{n}@client.example>"


def item(n: int, follow_ups: tuple[int, ...], acked: bool) -> Item:
    return Item(
        key=key(n), thread=key(n), message_id=key(n), client_address="c@client.example",
        client="Acme", subject="Quote", received=T0, mailboxes=("anna",),
        account="anna@agency.example",
        deadlines=Deadlines("default", "business", T0 + 2 * H, T0 + H, T0 + 3 * H),
        ack=Ack("r", T0 + H, "reply", "anna@agency.example") if acked else None,
        follow_ups=tuple(key(f) for f in follow_ups),
    )


def by_items(store: Store, mailbox: str, folder: str) -> set[int]:
    return {r[0] for r in store._db.conn.execute(BY_ITEMS, (mailbox, folder))}  # type: ignore[attr-defined]


def assert_marker_agrees(store: Store) -> None:
    for mailbox, folder, _ in FOLDERS:
        assert store.pending_uids(mailbox, folder) == by_items(store, mailbox, folder)


@pytest.mark.parametrize("seed", range(4))
def test_pending_uids_are_the_copies_of_pending_items_mail_through_any_history(store, seed):
    """Random states: copies arriving in several folders before and after their items,
    items acknowledged, re-opened, dropped, their follow-ups changed, evaluations of all
    the mail or of some keys only."""
    rnd = random.Random(seed)
    uids = {f: 0 for f in FOLDERS}
    items: dict[int, Item] = {}
    for _ in range(30):
        op = rnd.random()
        if op < 0.4:
            f = rnd.choice(FOLDERS)
            batch = []
            for n in rnd.sample(range(1, 13), rnd.randint(1, 3)):
                uids[f] += 1
                batch.append(new(uids[f], n))
            store_step(store, batch, now=T0, mailbox=f[0], folder=f[1], role=f[2])
        else:
            for n in rnd.sample(range(1, 13), rnd.randint(1, 4)):
                others = [k for k in range(1, 13) if k != n]
                items[n] = item(n, tuple(rnd.sample(others, rnd.randint(0, 2))),
                                rnd.random() < 0.3)
            for n in rnd.sample(sorted(items), rnd.randint(0, 2)):
                del items[n]  # no longer yielded: dropped
            if rnd.random() < 0.5:
                store.sync_items(list(items.values()), now=T0, initial_keys=set())
            else:
                scope = {key(n) for n in rnd.sample(range(1, 13), rnd.randint(1, 6))}
                scope |= {f for n in items if key(n) in scope for f in items[n].follow_ups}
                evaluated = [i for i in items.values() if i.key in scope]
                store.sync_items(evaluated, now=T0, initial_keys=set(), scope=scope)
        assert_marker_agrees(store)


def test_a_copy_stored_after_its_item_is_pending_at_once(store):
    store_step(store, [new(1)], now=T0)
    store.sync_items([item(1, (2,), False)], now=T0, initial_keys=set())
    store_step(store, [new(1, 2)], now=T0, mailbox="piotr")  # the follow-up, elsewhere
    store_step(store, [new(1, 1)], now=T0, folder="Sent", role="sent")
    assert store.pending_uids("piotr", "INBOX") == {1}
    assert store.pending_uids("anna", "Sent") == {1}


def test_a_follow_up_of_two_items_stays_pending_while_one_of_them_is(store):
    store_step(store, [new(1), new(2), new(3)], now=T0)
    store.sync_items([item(1, (3,), False), item(2, (3,), False)], now=T0, initial_keys=set())
    store.sync_items([item(1, (3,), True)], now=T0, initial_keys=set(), scope={key(1), key(3)})
    assert store.pending_uids("anna", "INBOX") == {2, 3}


def test_the_migration_marks_the_copies_of_a_state_made_before_the_marker(tmp_path):
    s = SqliteStore.open(tmp_path)
    store_step(s, [new(1), new(2), new(3)], now=T0)
    s.sync_items([item(1, (2,), False), item(3, (), True)], now=T0, initial_keys=set())
    s.close()
    conn = sqlite3.connect(tmp_path / DB_NAME)  # back to schema 8, the markers gone
    conn.execute("DROP TABLE pending_copies")  # 13's (9's column it replaced)
    for table in ("nodes", "mailbox_leases", "leadership", "recheck_requests"):  # 10's
        conn.execute(f"DROP TABLE {table}")
    conn.execute("ALTER TABLE outbox DROP COLUMN epoch")
    for index in ("promises_reminder_due", "promises_state_promised", "promises_follow",
                  "promise_reads_state"):  # 12's
        conn.execute(f"DROP INDEX {index}")
    conn.execute("DROP TABLE outbox_reach")  # 14's
    conn.execute("DROP TABLE sent_counts")  # 15's
    conn.execute("PRAGMA user_version = 8")
    conn.commit()
    conn.close()
    s = SqliteStore.open(tmp_path)
    assert s.pending_uids("anna", "INBOX") == {1, 2}
    s.close()


def test_a_new_item_over_copies_already_stored_marks_them(store):
    store_step(store, [new(1), new(2)], now=T0)
    assert store.pending_uids("anna", "INBOX") == set()
    store.sync_items([item(2, (), False)], now=T0, initial_keys=set())
    assert store.pending_uids("anna", "INBOX") == {2}


def test_a_follow_up_no_longer_folded_in_stops_being_pending_outside_the_scope(store):
    """The thread split: the evaluation covers the item's new thread, not the old follow-up."""
    store_step(store, [new(1), new(2)], now=T0)
    store.sync_items([item(1, (2,), False)], now=T0, initial_keys=set())
    store.sync_items([item(1, (), False)], now=T0, initial_keys=set(), scope={key(1)})
    assert store.pending_uids("anna", "INBOX") == {1}


def test_a_copy_forgotten_at_a_uidvalidity_change_is_no_longer_pending(store):
    """The folder rescanned under a new UIDVALIDITY: its old copies and their markers go;
    the same mail under its new UIDs is pending again."""
    store_step(store, [new(1), new(2)], now=T0)
    store.sync_items([item(1, (), False)], now=T0, initial_keys=set())
    assert store.pending_uids("anna", "INBOX") == {1}
    store_step(store, [new(7, 2)], now=T0, uidvalidity=2, reset=True)
    assert store.pending_uids("anna", "INBOX") == set()
    store_step(store, [new(8, 1)], now=T0, uidvalidity=2)
    assert store.pending_uids("anna", "INBOX") == {8}
