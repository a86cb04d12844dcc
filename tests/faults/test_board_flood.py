"""Hostile browsers and a taken port cannot hold back the nudges (the board, issue 22).

The board is served by the daemon's own process, so whatever its clients do must cost a
bounded amount: 300 idle connections and a stream of oversized requests leave the
daemon's threads and descriptors flat and a due nudge on time; a port that is taken is
logged and the daemon carries on without a board.
"""

from __future__ import annotations

import socket
import urllib.error
import urllib.request

import pytest
from tests.faults.daemon_config import write_config
from tests.servers.imapserver import free_port
from tests.support.daemon import ANNA, client_mail, started, times_mentioned, with_board
from tests.support.flood import assert_nudged_on_time, count, idle_connections
from tests.support.waiting import wait_for

pytestmark = [pytest.mark.integration, pytest.mark.dovecot]


def test_a_flood_on_the_board_port_does_not_hold_back_a_due_nudge(
    dovecot, tmp_path, sink, ackwatch
):
    user = dovecot.add_user()
    port = free_port()
    cfg = with_board(write_config(tmp_path, dovecot, {"anna": (user, ANNA)},
                                  smtp_port=sink.port, window="8s", nudge_before="4s"), port)
    d = started(ackwatch, cfg)
    d.wait_event("web_listening")
    fds_before, threads_before = count(d.pid, "fd"), count(d.pid, "task")

    with idle_connections(port):
        assert_nudged_on_time(d, dovecot, user, sink, "During the board flood",
                              "<during-the-board-flood@acme.example>")
        fds_flood, threads_flood = count(d.pid, "fd"), count(d.pid, "task")
    assert fds_flood - fds_before <= 64 + 20  # the board's connection limit, and some slack
    assert threads_flood - threads_before <= 10

    # Oversized requests are refused by the server before the application sees them.
    big = urllib.request.Request(f"http://127.0.0.1:{port}/", headers={"X-Big": "a" * 65536})
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(big, timeout=30)
    assert refused.value.code == 431
    page = urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=30).read()
    assert b"During the board flood" in page
    assert d.stop() == 0


def test_a_taken_board_port_is_logged_and_the_nudges_go_on(dovecot, tmp_path, sink, ackwatch):
    user = dovecot.add_user()
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        cfg = with_board(write_config(tmp_path, dovecot, {"anna": (user, ANNA)},
                                      smtp_port=sink.port, window="6s", nudge_before="3s"),
                         port)
        d = started(ackwatch, cfg)
        (failed,) = d.wait_event("web_listen_failed")
        assert failed["listen"] == f"127.0.0.1:{port}"
        mid = "<board-port-taken@acme.example>"
        dovecot.append(user, "INBOX", client_mail("Port taken", mid))
        wait_for(lambda: times_mentioned(sink, mid), 30, "the nudge without a board")
        assert d.stop() == 0
