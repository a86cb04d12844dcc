"""What the promise keeper's update reads when only some things changed (issue 24): the
promises touched, the notices due by an instant, the next instants, the reads of
changed items, each the same as filtering everything tracked. On both backends."""

from __future__ import annotations

import datetime as dt
import random

from tests.support.storing import new, store_step

from ackwatch.core.item_rules import Ack, Deadlines, Item
from ackwatch.store import NewPromise, PromiseRecord, Store

T0 = dt.datetime(2026, 11, 23, 9, 0, tzinfo=dt.UTC)
H = dt.timedelta(hours=1)
ANNA = "anna@agency.example"


def source(n: int) -> str:
    return f"<m{n}@client.example>"  # the key `storing.new` gives mail n


def promise(n: int, rnd: random.Random) -> NewPromise:
    made = T0 - rnd.randrange(0, 60 * 24) * H
    promised = made + rnd.randrange(1, 24 * 10) * H
    return NewPromise(
        source_key=source(n), thread=source(n), item_key=f"<i{n}@client.example>",
        account=ANNA, client="Acme", client_address="c@client.example", subject="Quote",
        made_at=made, promised=promised,
        remind_at=None if n % 5 == 0 else promised - rnd.randrange(1, 30) * H,
        sentence="I will send it by Friday.",
    )


def seeded(store: Store, count: int = 80) -> list[PromiseRecord]:
    """``count`` promises in every state: followed up or not, notices done or not, some
    follow-ups read, some reads to try again."""
    rnd = random.Random(24)
    for n in range(count):
        store.record_promise_read(source(n), state="promise", now=T0, promise=promise(n, rnd))
    changes = []
    for p in store.promises():
        state = rnd.choice(("open", "open", "kept", "moved", "broken", "broken"))
        follow = None if state == "open" or rnd.random() < 0.4 else f"<f{p.id}@agency.example>"
        changes.append((p.id, state, follow, None if state == "open" else p.promised))
        if follow and rnd.random() < 0.5:
            store.record_promise_read(follow, state=rnd.choice(("retry", "none", "promise")),
                                      now=T0)  # fmt: skip
    store.update_promises(changes)
    ids = [p.id for p in store.promises()]
    store.mark_promises("promise", rnd.sample(ids, 25), "skipped")
    store.mark_promises("promise-overdue", rnd.sample(ids, 25), "skipped")
    return store.promises()


def order(ps: list[PromiseRecord]) -> list[int]:
    return [p.id for p in sorted(ps, key=lambda p: (p.promised, p.id))]


def test_the_promises_touched_are_those_tracked_of_the_keys_ids_instant_and_retries(store):
    everything = seeded(store)
    rnd = random.Random(7)
    retry = {k for (k,) in store._db.conn.execute(  # type: ignore[attr-defined]
        "SELECT key FROM promise_reads WHERE state = 'retry'")}  # fmt: skip
    assert retry, "the seed has reads to try again"
    for since, breaking in ((T0 - 30 * 24 * H, T0), (T0 - 10 * 24 * H, T0 + 48 * H)):
        sources = {source(n) for n in rnd.sample(range(80), 10)}
        follows = {p.follow_key for p in everything if p.follow_key and rnd.random() < 0.3}
        ids = set(rnd.sample([p.id for p in everything], 5))
        got = store.promises_touched(since, sources=sources, follows=follows, ids=ids,
                                     breaking_by=breaking)  # fmt: skip
        want = [
            p for p in everything
            if (p.state == "open" or p.made_at >= since)
            and (p.source_key in sources or p.follow_key in follows | retry or p.id in ids
                 or (p.state == "open" and p.promised <= breaking))
        ]
        assert [p.id for p in got] == order(want)
        # Nothing changed: only those waiting for a follow-up's read to be tried again.
        assert [p.id for p in store.promises_touched(since)] == order(
            [p for p in everything
             if (p.state == "open" or p.made_at >= since) and p.follow_key in retry])


def test_the_notices_are_the_tracked_promises_with_one_due_by_the_instant(store):
    everything = seeded(store)
    for by in (T0 - 24 * H, T0, T0 + 72 * H, T0 + 400 * H):
        since = T0 - 30 * 24 * H
        want = [
            p for p in everything
            if (p.state == "open" and p.reminder_done is None and p.remind_at is not None
                and p.remind_at <= by)
            or (p.state == "broken" and p.made_at >= since
                and ((p.reminder_done is None and p.remind_at is not None)
                     or (p.overdue_done is None and p.follow_key is None)))
        ]
        assert [p.id for p in store.promise_notices(by, since)] == order(want)


def test_the_next_instants_are_the_first_reminder_after_and_the_first_break(store):
    everything = seeded(store)
    opened = [p for p in everything if p.state == "open"]
    for after in (T0 - 24 * H, T0, T0 + 72 * H):
        reminders = [p.remind_at for p in opened
                     if p.reminder_done is None and p.remind_at and p.remind_at > after]
        assert store.next_promise_times(after) == (
            min(reminders, default=None), min(p.promised for p in opened))


def acked(n: int, ack: int) -> Item:
    key = f"<i{n}@client.example>"
    return Item(
        key=key, thread=key, message_id=key, client_address="c@client.example", client="Acme",
        subject="Quote", received=T0, mailboxes=("anna",), account=ANNA,
        deadlines=Deadlines("default", "calendar", T0 + 2 * H, T0 + H, None),
        ack=Ack(source(ack), T0 + dt.timedelta(minutes=10), "reply", ANNA),
    )


def test_the_reads_of_changed_items_are_those_of_the_full_look_for_them_and_retries(store):
    """`promise_read_candidates` for some item keys: the full look's rows of those
    items, and of the items whose read is to be tried again."""
    store_step(store, [new(uid) for uid in range(1, 31)], now=T0, mailbox="anna",
               folder="Sent", role="sent")  # fmt: skip
    store.sync_items([acked(n, n) for n in range(1, 31)], now=T0, initial_keys=set())
    for n in range(1, 31, 3):
        store.record_promise_read(source(n), state="none", now=T0)
    for n in range(2, 31, 7):
        store.record_promise_read(source(n), state="retry", now=T0,
                                  next_attempt_at=T0 + H)  # fmt: skip
    since = T0 - 48 * H
    full = store.promise_read_candidates(since)
    assert len(full) == 21  # 10 read, one of them (16) to try again
    retried = {f"<i{n}@client.example>" for n in range(2, 31, 7)}
    for keys in ({"<i1@client.example>", "<i5@client.example>", "<i6@client.example>"},
                 set(), {f"<i{n}@client.example>" for n in range(1, 31)}):
        got = store.promise_read_candidates(since, keys)
        assert got == [r for r in full if r["key"] in keys | retried]
