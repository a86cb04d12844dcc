"""A flood of idle connections on the metrics port while a nudge falls due (issue 18).

prometheus-client's server gave each connection a thread and never timed one out: 200
idle connections kept the core loop from starting threads (a due nudge held back), 250
took every descriptor (the state database could not be opened). The endpoint now holds a
bounded number of connections; the daemon's threads and descriptors stay flat.
"""

from __future__ import annotations

import contextlib
import os
import resource
import socket
import threading
import urllib.request
from collections.abc import Iterator

import pytest
from tests.faults.daemon_config import write_config
from tests.support.daemon import ANNA, client_mail, iso, started, times_mentioned
from tests.support.waiting import wait_for

pytestmark = [pytest.mark.integration, pytest.mark.dovecot]

FLOOD = 300


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def count(pid: int, what: str) -> int:
    return len(os.listdir(f"/proc/{pid}/{what}"))


class Peak:
    """The most descriptors and threads a process held while it was watched."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.fds = self.threads = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)

    def _watch(self) -> None:
        while not self._stop.wait(0.1):
            with contextlib.suppress(OSError):
                self.fds = max(self.fds, count(self.pid, "fd"))
                self.threads = max(self.threads, count(self.pid, "task"))

    def __enter__(self) -> Peak:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


@contextlib.contextmanager
def descriptors_for_the_flood() -> Iterator[None]:
    """This test process's descriptor limit raised for the flood's client sockets; the
    daemon, started before, keeps the usual one."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = FLOOD + 512
    if soft < wanted:
        if hard != resource.RLIM_INFINITY and hard < wanted:
            pytest.skip(f"RLIMIT_NOFILE hard limit {hard} is below {wanted}")
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


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

    flood: list[socket.socket] = []
    with descriptors_for_the_flood(), Peak(d.pid) as peak, contextlib.ExitStack() as cleanup:
        cleanup.callback(lambda: [s.close() for s in flood])
        for _ in range(FLOOD):  # connects that never send a byte, not waited for
            s = socket.socket()
            s.setblocking(False)
            s.connect_ex(("127.0.0.1", port))
            flood.append(s)
        mid = "<during-the-flood@acme.example>"
        dovecot.append(user, "INBOX", client_mail("During the metrics flood", mid))
        item = d.wait_item(mid)
        wait_for(lambda: times_mentioned(sink, mid), 30, "the nudge during the flood")
        late = sink.messages.times[0] - iso(item["nudge_at"]).timestamp()
        assert late < 10, f"the nudge went out {late:.1f}s after its time"
    # The daemon's resources stayed flat while 300 connections were held open.
    assert peak.fds - fds_before <= 32 + 20  # the connection limit, and some slack
    assert peak.threads - threads_before <= 10
    body = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=30).read()
    assert b"ackwatch_nudges_sent_total" in body
    assert d.stop() == 0
