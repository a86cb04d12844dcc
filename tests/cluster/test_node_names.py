"""A node's name is held by one process at a time: a second ``ackwatch run --node`` under
a name a live process holds (a copied unit, two machines with the same host name) is
refused, exit 78, and the first one goes on; a node started again after ``kill -9``
takes its name back once the dead one's heartbeat is older than a lease minus a renewal.
Real processes, one Dovecot, one PostgreSQL; a 3 s lease renewed every second."""

from __future__ import annotations

import time

import pytest
from tests.support.nodes import LEASE_SECONDS, cluster_view, held_by, nodes_config, open_sessions
from tests.support.waiting import wait_for

pytestmark = [pytest.mark.integration, pytest.mark.dovecot]


def all_held_by(cfg, node, mailboxes):
    def held():
        view = cluster_view(cfg)
        return view if held_by(view)[node] == mailboxes and view.leader == node else None
    return wait_for(held, 20, f"{node} holding every mailbox and leading", step=0.2)


def test_a_second_process_under_a_live_nodes_name_is_refused_with_exit_78(
        dovecot, tmp_path, sink, ackwatch, postgres_server):
    cfg, users = nodes_config(tmp_path, dovecot, postgres_server, mailboxes=2,
                              smtp_port=sink.port)
    first = ackwatch(cfg, args=("--node", "n1"))
    view = all_held_by(cfg, "n1", 2)
    first.wait_event("mailbox_up", count=2)
    copy = ackwatch(cfg, args=("--node", "n1"))  # the same unit copied to a second machine
    assert copy.proc.wait(LEASE_SECONDS + 5) == 78, copy.tail()
    (taken,) = copy.events("node_name_taken")
    assert taken["level"] == "error" and taken["node"] == "n1"
    assert "node names must be unique" in copy.text()
    assert not copy.events("mailbox_up") and not copy.events("leader_elected")
    # The first one never noticed: same leases, same term, one session per mailbox.
    assert first.alive() and not first.events("node_name_taken")
    after = cluster_view(cfg)
    assert (after.leases, after.leader, after.epoch) == (view.leases, "n1", view.epoch)
    assert all(v == 1 for v in open_sessions(dovecot, users).values())


def test_a_node_started_again_after_kill_9_takes_its_name_and_mailboxes_back(
        dovecot, tmp_path, sink, ackwatch, postgres_server):
    cfg, _ = nodes_config(tmp_path, dovecot, postgres_server, mailboxes=2,
                          smtp_port=sink.port)
    first = ackwatch(cfg, args=("--node", "n1"))
    view = all_held_by(cfg, "n1", 2)
    first.kill9()
    killed = time.monotonic()
    again = ackwatch(cfg, args=("--node", "n1"))
    again.wait_event("mailbox_up", count=2, timeout=LEASE_SECONDS + 10)
    assert time.monotonic() - killed <= LEASE_SECONDS + 5
    after = all_held_by(cfg, "n1", 2)
    assert after.epoch > view.epoch  # a new process, a new term: the old one's is fenced
    assert again.alive() and not again.events("node_name_taken")
