"""Several nodes share the mailboxes: two or three real ``ackwatch run --node`` processes,
one Dovecot, one PostgreSQL, one SMTP sink. A 3 s lease renewed every second."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter

import pytest
from tests.support.daemon import client_mail, mails, reply_mail, times_mentioned
from tests.support.nodes import (
    LEASE_SECONDS,
    cluster_view,
    held_by,
    nodes_config,
    open_sessions,
)
from tests.support.waiting import wait_for

pytestmark = [pytest.mark.integration, pytest.mark.dovecot]


def start_nodes(ackwatch, cfg, names):
    return {n: ackwatch(cfg, args=("--node", n)) for n in names}


def spread_evenly(cfg, names, mailboxes):
    """The view once every mailbox is held and the nodes hold M/N each (+-1)."""
    def even():
        view = cluster_view(cfg)
        counts = [held_by(view)[n] for n in names]
        if len(view.leases) == mailboxes and max(counts) - min(counts) <= 1 and view.leader:
            return view
        return None
    return wait_for(even, 30, "the mailboxes spread evenly over the nodes", step=0.2)


def test_mailboxes_spread_evenly_each_watched_by_exactly_one_node(
        dovecot, tmp_path, sink, ackwatch, postgres_server):
    cfg, users = nodes_config(tmp_path, dovecot, postgres_server, mailboxes=6,
                              smtp_port=sink.port)
    nodes = start_nodes(ackwatch, cfg, ["n1", "n2", "n3"])
    view = spread_evenly(cfg, list(nodes), 6)
    assert sorted(held_by(view).values()) == [2, 2, 2]

    wait_for(lambda: all(v == 1 for v in open_sessions(dovecot, users).values()), 20,
             "one IMAP session per mailbox", step=0.2)
    end = time.monotonic() + 4 * LEASE_SECONDS  # several renewals, no move, no second session
    while time.monotonic() < end:
        sessions = open_sessions(dovecot, users)
        assert all(v == 1 for v in sessions.values()), sessions
        assert cluster_view(cfg).leases == view.leases
        time.sleep(0.3)
    assert sum(1 for d in nodes.values() for _ in d.events("leader_elected")) == 1
    for d in nodes.values():
        assert all(e.get("node") in nodes for e in d.events()), "every event names its node"
    listed = json.loads(subprocess.run(
        [sys.executable, "-m", "ackwatch", "status", "-c", str(cfg), "--json", "--nodes"],
        capture_output=True, text=True, timeout=30, check=True).stdout)
    assert [n["node"] for n in listed] == ["n1", "n2", "n3"]
    assert [n["node"] for n in listed if n["leader"]] == [view.leader]
    assert {m: n["node"] for n in listed for m in n["mailboxes"]} == view.leases


def test_a_killed_nodes_mailboxes_are_watched_again_within_the_lease_and_mail_nudged(
        dovecot, tmp_path, sink, ackwatch, postgres_server):
    cfg, users = nodes_config(tmp_path, dovecot, postgres_server, mailboxes=4,
                              smtp_port=sink.port, window="20s", nudge_before="10s")
    nodes = start_nodes(ackwatch, cfg, ["n1", "n2"])
    view = spread_evenly(cfg, list(nodes), 4)
    victim = next(n for n in nodes if n != view.leader)
    orphaned = sorted(m for m, n in view.leases.items() if n == victim)
    nodes[victim].kill9()
    killed = time.monotonic()
    # Mail arrives in one of its mailboxes while nobody watches it.
    user = users[int(orphaned[0].removeprefix("mb"))]
    mid = "<orphan-1@acme.example>"
    received = dt.datetime.now(dt.UTC)
    dovecot.append(user, "INBOX", client_mail("While nobody watched", mid),
                   internaldate=received)

    def taken_over():
        leases = cluster_view(cfg).leases
        return all(leases.get(m) == view.leader for m in orphaned)
    wait_for(taken_over, LEASE_SECONDS + 5, "the survivor holding the killed node's mailboxes",
             step=0.1)
    assert time.monotonic() - killed <= LEASE_SECONDS + 5
    wait_for(lambda: all(v == 1 for v in open_sessions(dovecot, users).values()), 10,
             "every mailbox watched again, once", step=0.2)
    wait_for(lambda: times_mentioned(sink, mid) >= 1, 30, "the nudge", step=0.2)
    at = dt.datetime.fromtimestamp(sink.messages.times[0], dt.UTC)
    assert at <= received + dt.timedelta(seconds=20), "nudged before its deadline"


def _kill(pid):
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)


def test_a_leader_killed_as_a_nudge_goes_out_is_replaced_and_the_nudge_sent_at_most_twice(
        dovecot, tmp_path, sink, ackwatch, postgres_server):
    cfg, users = nodes_config(tmp_path, dovecot, postgres_server, mailboxes=2,
                              smtp_port=sink.port, window="12s", nudge_before="6s",
                              batch_window="0s")
    nodes = start_nodes(ackwatch, cfg, ["n1", "n2", "n3"])
    view = spread_evenly(cfg, list(nodes), 2)
    leader = nodes[view.leader]
    mid = "<due-1@acme.example>"
    dovecot.append(users[0], "INBOX", client_mail("Due now", mid),
                   internaldate=dt.datetime.now(dt.UTC))
    # Kill the leader as the SMTP server takes the nudge, before it hears "250".
    sink.messages.on_append = lambda _m, pid=leader.pid: _kill(pid)
    wait_for(lambda: not leader.alive(), 30, "the leader killed sending the nudge", step=0.05)
    killed = time.monotonic()
    sink.messages.on_append = None
    wait_for(lambda: len(mails(sink, "nudge")) >= 2, LEASE_SECONDS + 5,
             "another node sending the nudge again", step=0.1)
    assert time.monotonic() - killed <= LEASE_SECONDS + 5
    time.sleep(2.0)
    nudges = mails(sink, "nudge")
    ids = Counter(str(m["Message-ID"]) for m in nudges)
    assert len(ids) == 1 and sum(ids.values()) == 2, ids  # one duplicate, same Message-ID
    new_leader = cluster_view(cfg).leader
    assert new_leader not in (None, view.leader)
    assert nodes[new_leader].events("leader_elected")


def test_mail_a_following_node_stores_reaches_the_leader_at_once(
        dovecot, tmp_path, sink, ackwatch, postgres_server):
    """NOTIFY, not the next round: the rounds are 4 s apart here."""
    cfg, users = nodes_config(tmp_path, dovecot, postgres_server, mailboxes=2,
                              smtp_port=sink.port, lease=8, renew=4)
    nodes = start_nodes(ackwatch, cfg, ["n1", "n2"])
    view = spread_evenly(cfg, list(nodes), 2)
    follower = next(n for n in nodes if n != view.leader)
    (mailbox,) = [m for m, n in view.leases.items() if n == follower]
    nodes[follower].wait_event("mailbox_up")
    time.sleep(0.5)  # its first sync done and stored
    dovecot.append(users[int(mailbox.removeprefix("mb"))], "INBOX",
                   client_mail("Hello", "<notify-1@acme.example>"),
                   internaldate=dt.datetime.now(dt.UTC))
    def first_new(node, event):
        return next((e for e in nodes[node].events(event) if e.get("new") == 1), None)
    synced = wait_for(lambda: first_new(follower, "folder_synced"), 20, "the follower's sync")
    evaluated = wait_for(lambda: first_new(view.leader, "items_updated"), 10,
                         "the leader's evaluation")
    lag = (dt.datetime.fromisoformat(evaluated["timestamp"])
           - dt.datetime.fromisoformat(synced["timestamp"])).total_seconds()
    assert lag < 1.5, lag


def test_the_leader_has_the_holder_recheck_its_sent_folder_before_a_nudge(
        dovecot, tmp_path, sink, ackwatch, postgres_server):
    """The sent folders are polled once a minute here: only the re-check the leader
    asks of the holder right before the nudge can see the reply."""
    cfg, users = nodes_config(tmp_path, dovecot, postgres_server, mailboxes=2,
                              smtp_port=sink.port, window="12s", nudge_before="6s",
                              batch_window="0s")
    cfg.write_text(cfg.read_text().replace("  poll_interval: 1s\n",
                                           "  poll_interval: 60s\n  watch_sent: poll\n"))
    nodes = start_nodes(ackwatch, cfg, ["n1", "n2"])
    view = spread_evenly(cfg, list(nodes), 2)
    follower = next(n for n in nodes if n != view.leader)
    (mailbox,) = [m for m, n in view.leases.items() if n == follower]
    nodes[follower].wait_event("mailbox_up")
    user = users[int(mailbox.removeprefix("mb"))]
    mid = "<answered-1@acme.example>"
    dovecot.append(user, "INBOX", client_mail("Answered in time", mid),
                   internaldate=dt.datetime.now(dt.UTC))
    nodes[view.leader].wait_event("items_updated")
    time.sleep(2.0)
    dovecot.append(user, "Sent", reply_mail(mid, "Answered in time"),
                   internaldate=dt.datetime.now(dt.UTC))
    time.sleep(7.0)  # the nudge was due 6 s after the mail
    assert times_mentioned(sink, mid) == 0, "the reply cancelled the nudge"
    asked = nodes[view.leader].events("recheck_asked")
    assert asked and asked[0]["nodes"] == [follower] and asked[0]["answered"] == 1


def test_a_node_joining_or_leaving_is_re_spread_without_a_mailbox_watched_twice(
        dovecot, tmp_path, sink, ackwatch, postgres_server):
    cfg, users = nodes_config(tmp_path, dovecot, postgres_server, mailboxes=4,
                              smtp_port=sink.port)
    nodes = start_nodes(ackwatch, cfg, ["n1", "n2"])
    spread_evenly(cfg, list(nodes), 4)
    nodes["n3"] = ackwatch(cfg, args=("--node", "n3"))
    end = time.monotonic() + 20
    while sorted(held_by(cluster_view(cfg)).values()) != [1, 1, 2]:
        assert time.monotonic() < end, "n3 never got its share"
        sessions = open_sessions(dovecot, users)
        assert all(v <= 1 for v in sessions.values()), sessions
        time.sleep(0.1)
    # A node stopped cleanly hands its mailboxes over at the others' next round, well
    # before its leases would have expired.
    gone = next(n for n, c in held_by(cluster_view(cfg)).items() if c == 1)
    assert nodes[gone].stop() == 0
    stopped = time.monotonic()
    view = spread_evenly(cfg, [n for n in nodes if n != gone], 4)
    assert time.monotonic() - stopped < LEASE_SECONDS
    assert gone not in view.leases.values()
    wait_for(lambda: all(v == 1 for v in open_sessions(dovecot, users).values()), 10,
             "one IMAP session per mailbox", step=0.2)
