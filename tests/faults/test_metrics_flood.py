"""A flood of idle connections on the metrics port while a nudge falls due (issue 18).

prometheus-client's server gave each connection a thread and never timed one out: 200
idle connections kept the core loop from starting threads (a due nudge held back), 250
took every descriptor (the state database could not be opened). The endpoint now holds a
bounded number of connections; the daemon's threads and descriptors stay flat.
"""

from __future__ import annotations

import urllib.request

import pytest
from tests.faults.daemon_config import write_config
from tests.servers.imapserver import free_port
from tests.support.daemon import ANNA, started
from tests.support.flood import (
    Peak,
    assert_nudged_on_time,
    count,
    descriptors_for_the_flood,
    idle_connections,
)

pytestmark = [pytest.mark.integration, pytest.mark.dovecot]


def test_idle_connections_to_the_metrics_port_do_not_hold_back_a_due_nudge(
    dovecot, tmp_path, sink, ackwatch
):
    user = dovecot.add_user()
    port = free_port()
    cfg = write_config(tmp_path, dovecot, {"anna": (user, ANNA)}, smtp_port=sink.port,
                       window="8s", nudge_before="4s")
    with cfg.open("a") as f:
        f.write(f"metrics:\n  listen: 127.0.0.1:{port}\n")
    d = started(ackwatch, cfg)  # before the limit is raised: the daemon has the usual one
    d.wait_event("metrics_listening")
    fds_before, threads_before = count(d.pid, "fd"), count(d.pid, "task")

    with descriptors_for_the_flood(), Peak(d.pid) as peak, idle_connections(port):
        assert_nudged_on_time(d, dovecot, user, sink, "During the metrics flood",
                              "<during-the-flood@acme.example>")
    # The daemon's resources stayed flat while 300 connections were held open.
    assert peak.fds - fds_before <= 32 + 20  # the connection limit, and some slack
    assert peak.threads - threads_before <= 10
    body = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=30).read()
    assert b"ackwatch_nudges_sent_total" in body
    assert d.stop() == 0
