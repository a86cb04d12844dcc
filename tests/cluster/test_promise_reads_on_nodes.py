"""The leader reads a promise's text on a mailbox another node watches: with its own
short read-only session (the promise keeper's body reader), never through a second
watcher. So a mailbox has at most two IMAP sessions at any instant, as with one node:
its holder's watcher and, during the read, the leader's reader, logged out after it."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from tests.servers.dovecot import DovecotServer
from tests.support.daemon import client_mail, reply_mail
from tests.support.nodes import cluster_view, nodes_config, open_sessions
from tests.support.waiting import wait_for

pytestmark = [pytest.mark.integration, pytest.mark.dovecot]


def most_sessions_at_once(dovecot: DovecotServer, user: str) -> int:
    """The most IMAP sessions ``user`` had open at one instant, from Dovecot's log read
    in order (a session shorter than any sampling interval counts too)."""
    login = re.compile(rf"Login: user=<{re.escape(user)}>")
    end = re.compile(rf"imap\({re.escape(user)}\)<[^>]*><[^>]*>: (?:Info: )?"
                     r"(?:Logged out|Disconnected)")
    open_now = most = 0
    for line in dovecot.log_text().splitlines():
        if login.search(line):
            open_now += 1
            most = max(most, open_now)
        elif end.search(line):
            open_now -= 1
    return most


def test_the_leaders_promise_read_on_a_followers_mailbox_keeps_two_sessions_at_most(
        dovecot, tmp_path, sink, ackwatch, postgres_server):
    cfg, users = nodes_config(tmp_path, dovecot, postgres_server, mailboxes=2,
                              smtp_port=sink.port, window="1h", nudge_before="30m")
    nodes = {n: ackwatch(cfg, args=("--node", n)) for n in ("n1", "n2")}

    def spread():
        view = cluster_view(cfg)
        return view if len(set(view.leases.values())) == 2 and view.leader else None
    view = wait_for(spread, 30, "one mailbox each and a leader", step=0.2)
    follower = next(n for n in nodes if n != view.leader)
    (mailbox,) = [m for m, n in view.leases.items() if n == follower]
    user = users[int(mailbox.removeprefix("mb"))]
    nodes[follower].wait_event("mailbox_up")
    mid = "<promise-1@acme.example>"
    now = dt.datetime.now(dt.UTC)
    dovecot.append(user, "INBOX", client_mail("Quote", mid),
                   internaldate=now - dt.timedelta(minutes=2))
    dovecot.append(user, "Sent", reply_mail(mid, "Quote"),  # "... by Friday."
                   internaldate=now - dt.timedelta(minutes=1))

    (recorded,) = nodes[view.leader].wait_event("promise_recorded", timeout=30)
    assert recorded["account"] == "anna@agency.example"
    assert not nodes[follower].events("promise_recorded")  # only the leader keeps promises
    wait_for(lambda: open_sessions(dovecot, [user])[user] == 1, 10,
             "the reader's session logged out", step=0.1)
    assert most_sessions_at_once(dovecot, user) == 2  # the watcher's and the reader's
