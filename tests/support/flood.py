"""Floods of idle connections on a port the daemon serves (metrics, the board), and what
the flood tests watch meanwhile: the daemon's descriptors and threads, and a due nudge."""

from __future__ import annotations

import contextlib
import os
import resource
import socket
import threading
from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest
from tests.support.daemon import client_mail, iso, times_mentioned
from tests.support.waiting import wait_for

if TYPE_CHECKING:
    from tests.servers.imapserver import ImapTestServer
    from tests.servers.smtp import SmtpSink
    from tests.support.daemon import Ackwatch

FLOOD = 300
NUDGE_LATE_SECONDS = 10  # how late a nudge may go out during a flood


def count(pid: int, what: str) -> int:
    """How many entries ``/proc/<pid>/<what>`` has: "fd" descriptors, "task" threads."""
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
def descriptors_for_the_flood(n: int = FLOOD) -> Iterator[None]:
    """This test process's descriptor limit raised for ``n`` client sockets; a daemon
    started before keeps the usual one."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = n + 512
    if soft < wanted:
        if hard != resource.RLIM_INFINITY and hard < wanted:
            pytest.skip(f"RLIMIT_NOFILE hard limit {hard} is below {wanted}")
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


@contextlib.contextmanager
def idle_connections(port: int, n: int = FLOOD) -> Iterator[list[socket.socket]]:
    """``n`` connections to ``port`` on loopback that never send a byte, held open until
    the block ends. The connects are not waited for: beyond the server's backlog the
    kernel answers none of them, and that must not block the test."""
    flood: list[socket.socket] = []
    try:
        for _ in range(n):
            s = socket.socket()
            s.setblocking(False)
            s.connect_ex(("127.0.0.1", port))
            flood.append(s)
        yield flood
    finally:
        for s in flood:
            s.close()


def assert_nudged_on_time(
    d: Ackwatch, dovecot: ImapTestServer, user: str, sink: SmtpSink, subject: str, mid: str
) -> None:
    """A client mail delivered now is nudged, at most `NUDGE_LATE_SECONDS` after its time."""
    dovecot.append(user, "INBOX", client_mail(subject, mid))
    item = d.wait_item(mid)
    wait_for(lambda: times_mentioned(sink, mid), 30, f"the nudge of {subject!r}")
    late = sink.messages.times[0] - iso(item["nudge_at"]).timestamp()
    assert late < NUDGE_LATE_SECONDS, f"the nudge went out {late:.1f}s after its time"
