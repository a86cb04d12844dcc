"""Several nodes on one state: mailbox leases, one leader with an epoch, fenced sends, and
dirty marks that an evaluation ends only as it read them. On SQLite and PostgreSQL, each
"node" a store with a connection of its own.

A lease taken for a negative time has expired already: the tests expire leases that way
instead of waiting.
"""

from __future__ import annotations

import dataclasses
import threading

import pytest
from tests.support.storing import T0, new, store_step

from ackwatch.core.item_rules import Deadlines, Item
from ackwatch.store import NotLeading, Term

LEASE = 30.0
EXPIRED = -1.0


def test_two_nodes_never_both_win_a_mailbox(open_state):
    a, b = open_state(), open_state()
    assert a.claim_leases("a", ["anna", "piotr"], LEASE) == {"anna", "piotr"}
    assert b.claim_leases("b", ["anna", "piotr", "ola"], LEASE) == {"ola"}
    assert a.cluster_view().leases == {"anna": "a", "piotr": "a", "ola": "b"}


def test_a_holder_renews_its_own_lease(open_state):
    a = open_state()
    a.claim_leases("a", ["anna"], 1.0)
    assert a.claim_leases("a", ["anna"], LEASE) == {"anna"}
    assert a.cluster_view().expires_in["anna"] > 10


def test_an_expired_lease_goes_to_the_next_claimer(open_state):
    a, b = open_state(), open_state()
    a.claim_leases("a", ["anna"], EXPIRED)  # "a" stopped renewing
    assert a.cluster_view().leases == {}  # an expired lease holds nothing
    assert b.claim_leases("b", ["anna"], LEASE) == {"anna"}
    assert a.claim_leases("a", ["anna"], LEASE) == set()  # "a" back: it lost it


def test_a_released_lease_is_free_at_once(open_state):
    a, b = open_state(), open_state()
    a.claim_leases("a", ["anna", "piotr"], LEASE)
    a.release_leases("a", ["anna"])
    b.release_leases("b", ["piotr"])  # not its own: nothing happens
    assert b.claim_leases("b", ["anna", "piotr"], LEASE) == {"anna"}


def test_one_claim_takes_the_free_and_expired_renews_its_own_and_leaves_the_others(
        open_state):
    a, b, c = open_state(), open_state(), open_state()
    a.claim_leases("a", ["anna"], 1.0)  # its own, about to run out
    b.claim_leases("b", ["piotr"], LEASE)  # another node's, live
    c.claim_leases("c", ["ola"], EXPIRED)  # another node's, expired
    assert a.claim_leases("a", ["anna", "piotr", "ola", "zofia"], LEASE) == {
        "anna", "ola", "zofia"}
    view = b.cluster_view()
    assert view.leases == {"anna": "a", "piotr": "b", "ola": "a", "zofia": "a"}
    assert view.expires_in["anna"] > 10  # renewed
    assert 0 < view.expires_in["piotr"] <= LEASE  # left alone


# Mailbox names across two chunk boundaries of the one-statement claim (`CHUNK` 500).
MANY = [f"mb{i:04d}" for i in range(1001)]
BOUNDARY = {"mb0499", "mb0500", "mb0999", "mb1000"}  # the last and first of a chunk


def test_a_claim_over_many_chunks_keeps_the_rules_at_each_chunk_boundary(open_state):
    a, b, c = open_state(), open_state(), open_state()
    b.claim_leases("b", BOUNDARY, LEASE)
    c.claim_leases("c", {"mb0001", "mb0501", "mb1000"}, EXPIRED)  # mb1000: b's, live
    assert a.claim_leases("a", reversed(MANY), LEASE) == set(MANY) - BOUNDARY
    assert a.claim_leases("a", MANY, LEASE) == set(MANY) - BOUNDARY  # renewed
    a.release_leases("a", MANY)  # b's are not a's to release
    assert b.cluster_view().leases == dict.fromkeys(sorted(BOUNDARY), "b")


def test_two_nodes_claiming_the_same_mailboxes_at_once_never_both_win_one(open_state):
    a, b = open_state(), open_state()
    won: dict[str, set[str]] = {}
    ready = threading.Barrier(2)

    def claim(store, node: str) -> None:
        ready.wait()
        won[node] = store.claim_leases(node, MANY, LEASE)

    threads = [threading.Thread(target=claim, args=(s, n)) for s, n in ((a, "a"), (b, "b"))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not won["a"] & won["b"]
    assert won["a"] | won["b"] == set(MANY)
    leases = a.cluster_view().leases
    assert {m for m, n in leases.items() if n == "a"} == won["a"]


def test_one_leader_at_a_time_and_a_new_epoch_for_each_term(open_state):
    a, b = open_state(), open_state()
    assert a.take_leadership("a", LEASE) == 1
    assert b.take_leadership("b", LEASE) is None
    assert a.take_leadership("a", LEASE) == 1  # a renewal keeps the term
    a.take_leadership("a", EXPIRED)  # "a" paused past its term
    assert b.take_leadership("b", LEASE) == 2
    assert a.take_leadership("a", LEASE) is None
    view = a.cluster_view()
    assert (view.leader, view.epoch) == ("b", 2)


def test_a_leader_renewing_after_its_term_expired_starts_a_new_one(open_state):
    a = open_state()
    a.take_leadership("a", EXPIRED)
    assert a.take_leadership("a", LEASE) == 2


def _queued(store) -> int:
    store.sync_items([_item("k")], now=T0, initial_keys=set())
    return store.enqueue(kind="nudge", recipient="anna@agency.example", cc=(), account=None,
                         nudge_keys=["k"], escalation_keys=[], message_id="<n1@ackwatch>",
                         now=T0)


def test_only_the_current_leader_may_begin_a_send(open_state):
    a, b = open_state(), open_state()
    oid = _queued(a)
    epoch = a.take_leadership("a", LEASE)
    assert a.outbox_fence(oid, "a", epoch)
    assert not b.outbox_fence(oid, "b", epoch)  # not the leader
    assert not a.outbox_fence(oid, "a", epoch + 1)  # not its term


def test_a_leader_whose_term_expired_can_never_send(open_state):
    a, b = open_state(), open_state()
    oid = _queued(a)
    old = a.take_leadership("a", EXPIRED)
    assert not a.outbox_fence(oid, "a", old)  # expired, even before anyone took over
    new_epoch = b.take_leadership("b", LEASE)
    assert not a.outbox_fence(oid, "a", old)
    assert b.outbox_fence(oid, "b", new_epoch)


def test_the_next_leader_resends_the_row_a_dead_leader_began(open_state):
    a, b = open_state(), open_state()
    oid = _queued(a)
    epoch = a.take_leadership("a", LEASE)
    assert a.outbox_fence(oid, "a", epoch)
    # "a" dies in the SMTP conversation: the row stays pending, marked with its term.
    a.take_leadership("a", EXPIRED)
    new_epoch = b.take_leadership("b", LEASE)
    due = b.outbox_due(T0)
    assert [(o.id, o.message_id) for o in due] == [(oid, "<n1@ackwatch>")]  # same Message-ID
    assert b.outbox_fence(oid, "b", new_epoch)
    b.outbox_sent(oid, T0)
    assert not b.outbox_fence(oid, "b", new_epoch)  # sent: never begun again


# Each write that queues mail, as a leader's step calls it ("k" an item stored before).
QUEUEING = {
    "nudge": lambda s, mid: s.enqueue(
        kind="nudge", recipient="anna@agency.example", cc=(), account=None,
        nudge_keys=["k"], escalation_keys=[], message_id=mid, now=T0),
    "digest": lambda s, mid: s.enqueue_once(
        once_key=f"digest:{mid}", kind="digest", recipient="kasia@agency.example",
        message_id=mid, now=T0),
    "promise": lambda s, mid: s.enqueue_promises(
        kind="promise", recipient="anna@agency.example", cc=(), account=None,
        promise_ids=[], message_id=mid, now=T0),
    "ask-date": lambda s, mid: s.enqueue_date_asks(
        recipient="anna@agency.example", account=None, item_keys=["k"], message_id=mid,
        now=T0),
}


def _outbox_ids(store) -> list[str]:
    return [r[0] for r in store._conn.execute("SELECT message_id FROM outbox ORDER BY id")]


@pytest.mark.parametrize("kind", sorted(QUEUEING))
def test_a_node_that_lost_the_lead_queues_nothing(open_state, kind):
    """A leader paused between its check and the write, while another took over: the
    write is refused whole, so the item is queued once, by the leader of the day."""
    a, b = open_state(), open_state()
    a.sync_items([_item("k")], now=T0, initial_keys=set())
    old = a.take_leadership("a", EXPIRED)  # "a" paused past its term ...
    new_epoch = b.take_leadership("b", LEASE)  # ... and "b" took over
    a.fence_queueing(Term("a", old))
    with pytest.raises(NotLeading):
        QUEUEING[kind](a, "<from-a@ackwatch>")
    assert _outbox_ids(b) == []
    assert [i.nudge_done for i in b.items()] == [None]  # not marked queued either
    b.fence_queueing(Term("b", new_epoch))
    assert QUEUEING[kind](b, "<from-b@ackwatch>") is not None
    assert _outbox_ids(a) == ["<from-b@ackwatch>"]


def test_a_leader_queues_in_its_term_and_not_after_it_expired(open_state):
    a = open_state()
    a.sync_items([_item("k")], now=T0, initial_keys=set())
    epoch = a.take_leadership("a", LEASE)
    a.fence_queueing(Term("a", epoch))
    QUEUEING["nudge"](a, "<n1@ackwatch>")
    a.fence_queueing(Term("a", 0))  # epoch 0: no term at all
    with pytest.raises(NotLeading):
        QUEUEING["digest"](a, "<d1@ackwatch>")
    a.fence_queueing(Term("a", epoch))
    a.take_leadership("a", EXPIRED)  # expired, even before anyone took over
    with pytest.raises(NotLeading):
        QUEUEING["digest"](a, "<d2@ackwatch>")
    a.fence_queueing(None)  # one node: nothing to check
    QUEUEING["digest"](a, "<d3@ackwatch>")
    assert _outbox_ids(a) == ["<n1@ackwatch>", "<d3@ackwatch>"]


def test_a_leaving_node_frees_its_leases_and_its_leadership(open_state):
    a, b = open_state(), open_state()
    a.heartbeat("a", starting=True)
    a.claim_leases("a", ["anna"], LEASE)
    a.take_leadership("a", LEASE)
    a.leave("a")
    view = b.cluster_view()
    assert (view.leases, view.leader, view.nodes) == ({}, None, ())
    assert b.take_leadership("b", LEASE) == 2


def test_heartbeats_tell_the_live_nodes(open_state):
    a, b = open_state(), open_state()
    a.heartbeat("a", starting=True)
    b.heartbeat("b", starting=True)
    view = a.cluster_view()
    assert [n.name for n in view.nodes] == ["a", "b"]
    assert view.live_nodes(max_age=LEASE) == ["a", "b"]
    assert view.live_nodes(max_age=-1) == []
    a.forget_nodes(older_than=-1)
    assert a.cluster_view().nodes == ()


def test_a_node_name_is_held_by_one_process_while_it_renews(open_state):
    a, b = open_state(), open_state()
    assert a.heartbeat("n1", instance="first", starting=True, stale_after=LEASE) is None
    holder = b.heartbeat("n1", instance="second", starting=True, stale_after=LEASE)
    assert holder is not None and holder.instance == "first"
    assert a.heartbeat("n1", instance="first") is None  # the holder renews
    again = b.heartbeat("n1", instance="second", starting=True, stale_after=LEASE)
    assert again is not None and again.heartbeat_at >= holder.heartbeat_at
    assert [n.name for n in a.cluster_view().nodes] == ["n1"]


def test_a_process_takes_over_a_silent_holders_name_and_begins_a_new_term(open_state):
    a, b = open_state(), open_state()
    a.heartbeat("n1", instance="first", starting=True)
    a.claim_leases("n1", ["anna"], LEASE)
    assert a.take_leadership("n1", LEASE) == 1
    # "first" was killed: its heartbeat is older than stale_after (here: any age).
    assert b.heartbeat("n1", instance="second", starting=True, stale_after=EXPIRED) is None
    assert b.take_leadership("n1", LEASE) == 2  # what "first" began is fenced
    assert b.claim_leases("n1", ["anna"], LEASE) == {"anna"}
    holder = a.heartbeat("n1", instance="first")  # "first" back: the name is not its own
    assert holder is not None and holder.instance == "second"


def test_a_process_that_lost_its_name_leaves_the_new_holders_leases_alone(open_state):
    a, b = open_state(), open_state()
    a.heartbeat("n1", instance="first", starting=True)
    b.heartbeat("n1", instance="second", starting=True, stale_after=EXPIRED)
    b.claim_leases("n1", ["anna"], LEASE)
    b.take_leadership("n1", LEASE)
    a.leave("n1", instance="first")
    view = b.cluster_view()
    assert (view.leases, view.leader, [n.name for n in view.nodes]) == (
        {"anna": "n1"}, "n1", ["n1"])


def _item(key: str) -> Item:
    return Item(
        key=key, thread=key, message_id=key, client_address="c@client.example", client="Acme",
        subject="Quote", received=T0, mailboxes=("anna",), account="anna@agency.example",
        deadlines=Deadlines("default", "calendar", T0, T0, None), ack=None,
    )


def test_a_key_marked_again_during_an_evaluation_keeps_its_mark(open_state):
    leader, other = open_state(), open_state()
    store_step(leader, [new(1)], now=T0)
    read = leader.dirty_marks()  # the leader's evaluation reads the marks
    (key,) = read
    # Meanwhile another node stores a copy of the same mail in another mailbox.
    store_step(other, [new(7, 1)], mailbox="piotr", now=T0)
    leader.sync_items([dataclasses.replace(_item(key))], now=T0, initial_keys=set(),
                      scope={key}, marks=read)
    assert leader.dirty_keys() == {key}  # evaluated again next time


def test_an_evaluation_ends_the_marks_it_read(open_state):
    s = open_state()
    store_step(s, [new(1), new(2)], now=T0)
    read = s.dirty_marks()
    s.sync_items([], now=T0, initial_keys=set(), scope=set(read), marks=read)
    assert s.dirty_keys() == set()
    assert s.message_count() == 2


def test_marks_kept_aside_end_with_an_evaluation_of_everything(open_state):
    s = open_state()
    store_step(s, [new(1), new(2)], now=T0)
    kept = s.keep_marks()
    assert kept.count == 2
    s.sync_items([], now=T0, initial_keys=set(), marks=kept)
    assert s.dirty_keys() == set()
    assert s.message_count() == 2


def test_a_key_marked_again_after_the_marks_were_kept_keeps_its_new_mark(open_state):
    leader, other = open_state(), open_state()
    store_step(leader, [new(1)], now=T0)
    (key,) = leader.dirty_keys()
    kept = leader.keep_marks()  # an evaluation of everything keeps the marks aside
    store_step(other, [new(7, 1)], mailbox="piotr", now=T0)  # a copy of mail 1 elsewhere
    leader.sync_items([], now=T0, initial_keys=set(), marks=kept)
    assert leader.dirty_keys() == {key}  # evaluated again next time


def test_the_leader_asks_a_holder_to_recheck_and_reads_its_answer(open_state):
    leader, holder = open_state(), open_state()
    asked = leader.ask_recheck("n2", ["piotr", "anna"])
    assert holder.recheck_requests("n1") == {}
    assert holder.recheck_requests("n2") == {asked: ["anna", "piotr"]}
    assert leader.recheck_answers([asked]) == {}  # not answered yet
    holder.answer_recheck(asked, done=["anna"], failed=["piotr"])
    assert holder.recheck_requests("n2") == {}
    assert leader.recheck_answers([asked]) == {asked: (frozenset({"anna"}),
                                                       frozenset({"piotr"}))}
    leader.forget_rechecks([asked])
    assert leader.recheck_answers([asked]) == {}
