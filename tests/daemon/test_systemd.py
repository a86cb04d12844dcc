"""sd_notify never holds up the core loop: systemd's queue full drops a routine line."""

from __future__ import annotations

import contextlib
import os
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from structlog.testing import capture_logs
from tests.servers.notifysocket import bound_notify_socket

from ackwatch.daemon.systemd import Systemd as _Systemd


@pytest.fixture
def systemd_socket(tmp_path: Path) -> Iterator[socket.socket]:
    """The reading end of a NOTIFY_SOCKET that nobody reads until a test does."""
    with bound_notify_socket(tmp_path) as (_, sock):
        sock.settimeout(0.5)
        yield sock


def notifier_of(sock: socket.socket, monkeypatch: pytest.MonkeyPatch) -> _Systemd:
    monkeypatch.setenv("NOTIFY_SOCKET", sock.getsockname())
    monkeypatch.setenv("WATCHDOG_USEC", "2000000")
    systemd = _Systemd.from_env()
    assert systemd.socket is not None and systemd.watchdog_interval == 1.0
    return systemd


def in_a_thread(work, seconds: float = 20.0):
    """``work()``'s result; fails (instead of hanging the suite) if it blocks."""
    out: list[object] = []
    t = threading.Thread(target=lambda: out.append(work()), daemon=True)
    t.start()
    t.join(seconds)
    assert not t.is_alive(), "the notification blocked"
    return out[0]


def drain(sock: socket.socket) -> list[str]:
    lines = []
    sock.setblocking(False)
    with contextlib.suppress(BlockingIOError):
        while True:
            lines.append(sock.recv(4096).decode())
    sock.settimeout(0.5)
    return lines


def test_outside_systemd_notifying_does_nothing(monkeypatch):
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    systemd = _Systemd.from_env()
    assert systemd.socket is None and systemd.watchdog_interval is None
    assert systemd.notify("READY=1") is False


def test_lines_reach_systemd_when_it_reads(systemd_socket, monkeypatch):
    systemd = notifier_of(systemd_socket, monkeypatch)
    assert systemd.notify("READY=1", wait=1.0)
    assert systemd.notify("STATUS=watching 1 mailbox")
    assert drain(systemd_socket) == ["READY=1", "STATUS=watching 1 mailbox"]


def test_a_systemd_that_does_not_read_never_blocks_a_routine_line(systemd_socket, monkeypatch):
    systemd = notifier_of(systemd_socket, monkeypatch)
    with capture_logs() as logs:
        sent = in_a_thread(lambda: [systemd.notify(f"STATUS=step {i}") for i in range(500)])
    assert sent[0] is True and sent[-1] is False  # the kernel's queue filled, then drops
    dropped = sent.count(False)
    # One warning when the drops start, not one a line.
    assert [e["event"] for e in logs] == ["systemd_notify_dropped"]
    assert logs[0]["notification"] == "STATUS"
    assert systemd.dropped == dropped

    heard = drain(systemd_socket)
    assert heard == [f"STATUS=step {i}" for i in range(len(heard))]  # in order, none torn
    with capture_logs() as logs:
        assert systemd.notify("WATCHDOG=1")
    assert logs == [{"event": "systemd_notify_resumed", "dropped": dropped,
                     "log_level": "info"}]
    assert systemd.dropped == 0


def test_ready_and_stopping_wait_a_moment_for_a_busy_systemd(systemd_socket, monkeypatch):
    systemd = notifier_of(systemd_socket, monkeypatch)
    filled = in_a_thread(lambda: [systemd.notify(f"STATUS=filler {i}") for i in range(500)])
    assert filled[-1] is False
    # Still full: a bounded wait, then given up.
    assert in_a_thread(lambda: systemd.notify("STOPPING=1", wait=0.2)) is False
    # systemd reads while the line waits: it goes through (that read may get it too).
    heard: list[str] = []
    reader = threading.Timer(0.1, lambda: heard.extend(drain(systemd_socket)))
    reader.start()
    assert in_a_thread(lambda: systemd.notify("READY=1", wait=10.0)) is True
    reader.join()
    assert "READY=1" in heard + drain(systemd_socket)


def test_an_abstract_notify_socket_is_reached(monkeypatch):
    name = f"ackwatch-sd-test-{os.getpid()}"
    with contextlib.closing(socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)) as sock:
        sock.bind("\0" + name)
        sock.settimeout(5)
        monkeypatch.setenv("NOTIFY_SOCKET", "@" + name)
        assert _Systemd.from_env().notify("READY=1", wait=1.0)
        assert sock.recv(64) == b"READY=1"
